"""Smoke runs of benchmark scripts (``--quick``: tiny sizes, RESULTS.md untouched): they must keep running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("gl_ctx")  # they run the GL engine: no context is a skip/CI failure


@pytest.mark.parametrize("script, needles", [
    ("bench_temporal.py", ("tau = 8 frames", "Goals")),
    ("bench_space.py", ("optical blur", "blur on sRGB codes")),
])
def test_benchmark_quick_run(script, needles):
    pytest.importorskip("skimage")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for n in needles:
        assert n in proc.stdout, proc.stdout
