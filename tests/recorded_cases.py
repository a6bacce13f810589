"""Cases whose GL outputs were recorded before the package restructure (tests/data/recorded_outputs.npz).

``python tests/recorded_cases.py --record`` rewrote the file at commit 1480251 (the flat layout); the test
``test_recorded_outputs.py`` re-runs every case through today's engine and requires the same bytes. The
parameters are spelled out in full (no defaults), so later changes of a default do not move them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "recorded_outputs.npz"


def images() -> dict[str, np.ndarray]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from imagegen import textured_image

    rgb = textured_image((53, 67), 3, seed=3)
    gray = textured_image((41, 37), 1, seed=4)[..., 0]
    rng = np.random.default_rng(5)
    rgb_noisy = np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1).astype(np.float32)
    alpha = rng.uniform(0, 1, rgb.shape[:2]).astype(np.float32)
    rgba = np.dstack([rgb_noisy, alpha]).astype(np.float32)
    u8 = np.clip(np.rint(rgb_noisy ** (1 / 2.2) * 255), 0, 255).astype(np.uint8)
    u16 = np.clip(np.rint(np.dstack([rgb_noisy ** (1 / 2.2), alpha]) * 65535), 0, 65535).astype(np.uint16)
    la = np.dstack([u8[..., 1], (alpha * 255).astype(np.uint8)])
    big = textured_image((150, 200), 3, seed=6)
    return {"rgb": rgb, "gray": gray, "rgb_noisy": rgb_noisy, "rgba": rgba, "u8": u8, "u16": u16, "la": la,
            "big": big}


#: (name, image key, DeconvParams fields, process() keyword arguments)
CASES: list[tuple[str, str, dict, dict]] = []
_BASE = dict(blur="gaussian", binomial_order=2, target="natural", level=None, min_gain=1.0, max_gain=None,
             strength=1.0, comb_levels=2, fir_taps=None, unsharp_radius=None, unsharp_amount=None,
             polyblur_alpha=2.0, polyblur_beta=4.0, space="auto", mode="global", limiter=None)
for method, sigma in (("comb", 0.6), ("laplacian", 1.2), ("fir", 1.0), ("unsharp", 1.0), ("polyblur", 0.8),
                      ("identity", 1.0), ("auto", 0.35)):
    for noise in ("auto", 0.01):
        if method == "identity" and noise == "auto":
            continue  # failed before the restructure (identity needed a numeric noise)
        for prec in (16, 32):
            CASES.append((f"{method}-{noise}-{prec}-rgbn", "rgb_noisy",
                          dict(_BASE, sigma=sigma, noise=noise, method=method, precision=prec), {}))
for key in ("rgb", "gray", "rgba", "u8", "u16", "la"):
    CASES.append((f"laplacian-auto-16-{key}", key, dict(_BASE, sigma=1.0, noise="auto", method="laplacian",
                                                        precision=16), {}))
CASES.append(("comb3-level-32", "rgb", dict(_BASE, sigma=1.5, noise=0.002, method="comb", comb_levels=3,
                                            level=3e-3, precision=32), {}))
CASES.append(("laplacian-maxgain-flat", "rgb", dict(_BASE, sigma=1.0, noise=0.003, method="laplacian",
                                                    target="flat", max_gain=4.0, precision=16), {}))
CASES.append(("laplacian-strength-srgb", "u8", dict(_BASE, sigma=0.9, noise=0.004, method="laplacian",
                                                    strength=0.6, space="linear", precision=16), {}))
CASES.append(("tiled-auto", "big", dict(_BASE, sigma=1.1, noise="auto", method="laplacian", precision=16),
              {"tile": 64}))
CASES.append(("whole-big", "big", dict(_BASE, sigma=1.1, noise="auto", method="laplacian", precision=16), {}))


def run_cases(make_engine, params_cls) -> dict[str, np.ndarray]:
    imgs = images()
    out = {}
    eng = make_engine()
    for name, key, fields, kw in CASES:
        eng.set_params(params_cls(**fields))
        out[name] = eng.process(imgs[key], **kw).copy()
    # latency 1: three frames, statistics steer the next frame
    seq = make_engine(stats_latency=1)
    seq.set_params(params_cls(**dict(_BASE, sigma=1.0, noise="auto", method="laplacian", precision=16)))
    rng = np.random.default_rng(9)
    for i in range(3):
        frame = np.clip(imgs["rgb"] + rng.normal(0, 0.004 * (i + 1), imgs["rgb"].shape), 0, 1).astype(np.float32)
        out[f"latency1-{i}"] = seq.process(frame).copy()
    return out


if __name__ == "__main__" and "--record" in sys.argv:  # (flat-layout imports were used at the recording)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.context import create_headless_context
    from gpu_deconv.gl.engine import Deconvolver

    if DATA.exists() and "--force" not in sys.argv:
        sys.exit(f"{DATA} exists: it is the reference of test_recorded_outputs.py (add --force to replace it)")
    ctx = create_headless_context()
    res = run_cases(lambda **kw: Deconvolver(ctx, **kw), DeconvParams)
    np.savez_compressed(DATA, **res)
    print(f"wrote {len(res)} outputs to {DATA} ({DATA.stat().st_size} bytes)")
