"""The engine's output is bit-identical to what it produced before the package restructure.

``tests/recorded_cases.py`` lists the cases (every method, noise given and 'auto', fp16 and fp32, gray,
LA, RGB, RGBA, 8/16-bit and float input, tiling and one-frame statistics latency); their outputs were
recorded with the flat layout at commit 1480251 on Mesa llvmpipe. Moving code may not change a single
bit of them. On another driver (fp16 rounding, FMA contraction) the comparison is not meaningful, so the
test requires the renderer the data was recorded on.
"""

from __future__ import annotations

import numpy as np
import pytest
from recorded_cases import DATA, run_cases


def test_outputs_bit_identical_to_recording(gl_ctx):
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    renderer = str(gl_ctx.info.get("GL_RENDERER", ""))
    if "llvmpipe" not in renderer:
        pytest.skip(f"recorded on Mesa llvmpipe; this renderer is {renderer!r}")
    recorded = dict(np.load(DATA))
    engines = []

    def make(**kw):
        engines.append(Deconvolver(gl_ctx, **kw))
        return engines[-1]

    try:
        got = run_cases(make, DeconvParams)
    finally:
        for e in engines:
            e.release()
    assert sorted(got) == sorted(recorded)
    differ = [name for name in recorded if got[name].dtype != recorded[name].dtype
              or not np.array_equal(got[name].view(np.uint8), recorded[name].view(np.uint8))]
    assert not differ, f"outputs changed: {differ}"
