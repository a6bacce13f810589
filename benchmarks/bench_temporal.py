"""Temporal stability of video deconvolution: does the filter flicker, and how fast does it follow a cut?

Run: ``python benchmarks/bench_temporal.py [--quick] [--size N] [--frames N]``.

Case (issue #13): a still photograph (scikit-image ``immunohistochemistry``, ``coins``, ``hubble_deep_field``;
centre crop, linear light)
blurred by a Gaussian of sigma 1.0 px, repeated ``--frames`` times with FRESH white noise (std 0.01) every
frame and quantized to 8-bit sRGB, processed through the GL engine exactly as the video path does
(``stats_latency=1``, ``noise='auto'``). Per frame we record the filter's gain at w = (pi/2, 0) (the
plan's exact response) and the noise it was designed for. Reported: their spread (std / mean) over the
frames after the first few, without smoothing and with :class:`~gpu_deconv.core.temporal.TemporalSmoother`
for several time constants (the worst photo counts). Then a hard cut to another photograph (``moon``, noise
0.02): the number of
frames until the noise estimate is within 2 % and the spectrum level within 5 % of their values 20 frames
later (the cut frame itself counts as 1; with ``stats_latency=1`` it is still designed from the previous
scene's statistics, so 2 is the best possible).

Goals: gain spread <= 0.5 % with smoothing; the estimates settle within 3 frames of a cut.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402
from quality import blur_image, load_image  # noqa: E402

from gpu_deconv.core.colour import linear_to_srgb  # noqa: E402

SIGMA, NOISE, CUT_NOISE = 1.0, 0.01, 0.02
PHOTOS = ("immunohistochemistry", "coins", "hubble_deep_field")
GOAL_SPREAD, GOAL_SETTLE = 0.005, 3


def frames(name: str, n: int, size: int, seed: int, noise: float = 0.01):
    clean = load_image(name, size)
    if clean.ndim == 2:
        clean = np.repeat(clean[:, :, None], 3, axis=2)
    blurred = blur_image(clean, SIGMA)
    rng = np.random.default_rng(seed)
    for _ in range(n):  # an 8-bit sRGB video frame of the same scene with fresh noise
        noisy = blurred + noise * rng.standard_normal(blurred.shape).astype(np.float32)
        yield np.clip(np.rint(linear_to_srgb(noisy) * 255.0), 0, 255).astype(np.uint8)


def run(engine, clips) -> tuple[list[float], list[float], list[float]]:
    gains, noises, levels = [], [], []
    w = np.array([np.pi / 2]), np.array([0.0])
    for clip in clips:
        for frame in clip:
            engine.process(frame)
            d = engine.design
            gains.append(float(d.plan.response(*w)[0]))
            noises.append(float(d.noise_std))
            levels.append(float(d.level))
    return gains, noises, levels


def spread(values: list[float], skip: int) -> float:
    v = np.asarray(values[skip:], dtype=np.float64)
    return float(v.std() / abs(v.mean()))


def settle(noises: list[float], cut: int, tol: float = 0.02, ahead: int = 20) -> int:
    ref = noises[min(cut + ahead, len(noises) - 1)]
    for k in range(cut, len(noises)):
        if all(abs(x / ref - 1.0) <= tol for x in noises[k:k + 5]):
            return k - cut + 1  # frames after the cut, the cut frame counting as 1
    return len(noises) - cut


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: small frames, few of them; no RESULTS.md")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    size, n = (64, 12) if args.quick else (args.size, args.frames)
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.core.temporal import TemporalSmoother
    from gpu_deconv.gl.engine import Deconvolver

    params = DeconvParams(sigma=SIGMA, noise="auto", method="laplacian")
    skip = 3
    photos = ("immunohistochemistry",) if args.quick else PHOTOS
    rows = []
    renderer = "?"
    for tau in (None, 4.0, 8.0, 16.0):
        spreads, noise_spreads, settles, cuts = [], [], [], []
        for i, name in enumerate(photos):
            smoother = None if tau is None else TemporalSmoother(time_constant=tau)
            with Deconvolver(params=params, stats_latency=1, temporal=smoother) as eng:
                renderer = eng.ctx.info.get("GL_RENDERER", "?")
                gains, noises, levels = run(eng, [frames(name, n, size, 1 + i),
                                                  frames("moon", n, size, 50 + i, CUT_NOISE)])
            spreads.append(spread(gains[:n], skip))
            noise_spreads.append(spread(noises[:n], skip))
            settles.append(max(settle(noises, n), settle(levels, n, tol=0.05)))
            cuts.append(None if smoother is None else smoother.cuts)
        rows.append((tau, spreads, noise_spreads, max(settles), cuts))
    lines = [f"Machine: {machine_line(renderer)}", "",
             f"Still photos ({', '.join(photos)}; {size}x{size} centre crops, sigma {SIGMA:g} px, fresh noise "
             f"{NOISE:g} per frame, 8-bit), {n} frames each, then a hard cut to `moon` (noise {CUT_NOISE:g}) for "
             f"{n} frames; GL engine, stats_latency=1, noise auto. Settled: noise within 2 % and level within 5 % "
             "of their values 20 frames later.", "",
             "| smoothing | gain at pi/2: std/mean, per photo | noise estimate: std/mean, per photo "
             "| frames to settle after the cut (worst) | cuts detected per run |",
             "|---|---:|---:|---:|---:|"]
    for tau, g, z, s_, cuts in rows:
        label = "none" if tau is None else f"tau = {tau:g} frames"
        lines.append(f"| {label} | {' / '.join(f'{100 * v:.2f} %' for v in g)} | "
                     f"{' / '.join(f'{100 * v:.2f} %' for v in z)} | {s_} | "
                     f"{'-' if cuts[0] is None else ' / '.join(str(c) for c in cuts)} |")
    default = next(r for r in rows if r[0] == TemporalSmoother().time_constant)
    worst = max(default[1])
    lines += ["", f"Goals (default tau = {default[0]:g}): gain spread <= {100 * GOAL_SPREAD:g} % on every photo: "
                  f"**{'PASS' if worst <= GOAL_SPREAD else 'MISS'}** (worst {100 * worst:.2f} %); settles within "
                  f"{GOAL_SETTLE} frames of a cut: **{'PASS' if default[3] <= GOAL_SETTLE else 'MISS'}** "
                  f"({default[3]})."]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        update_section("temporal", "## Temporal stability (bench_temporal.py)\n\n" + text)


if __name__ == "__main__":
    main()
