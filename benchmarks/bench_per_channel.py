"""Per-channel sigma (``--sigma R,G,B``): what it gains over one sigma, and what it costs in pass 5.

**Quality.** Colour photographs (scikit-image; centre crops, linear light) blurred with a different
Gaussian per channel, ``sigma = (0.6, 0.9, 1.3)`` px (pixel-integrated, the blur model the filter
assumes), white noise added, float or 8-bit sRGB. Every output is ``Deconvolver.process`` in the adaptive
mode with noise 'auto': per-channel sigma, the median channel's sigma (0.9 px, what one would type), and
the best single sigma chosen on the ground truth from a 0.1 px grid over 0.5..1.4 px (an oracle no user
has - the baseline is generous). PSNR in linear light over the colour channels. The photographs are the
quality benchmark's colour images plus astronaut; the level model's choice (one level shared by the
channels, :class:`gpu_deconv.core.adaptive.ChannelTable`) was made on astronaut, coffee, chelsea and rocket.

**Cost.** GL wall clock per 1080p RGBA frame (fp16 intermediates), interleaved rounds, in passthrough
units (one ``copy.frag`` pass, as bench_adaptive.py): the adaptive filter with one sigma and per channel,
and pass 5 alone both ways (passes 1-4 are the same code; only pass 5 differs), on the fragment passes and
on the fused compute dispatches (the engine's path on CPU rasterisers; the goal is checked on the engine's
path).

Goals: per-channel beats the best single sigma by >= 1 dB on average; its pass 5 costs <= 1 passthrough
unit more than one sigma's. Writes the ``per_channel`` section of RESULTS.md.

Usage::

    python benchmarks/bench_per_channel.py            # 256 px crops, 1080p cost, 10 reps
    python benchmarks/bench_per_channel.py --quick    # 64 px crops, one image, 320x180 cost (smoke)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_deconv.core.blur import Gaussian  # noqa: E402
from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402
from gpu_deconv.core.reference import convolve_axis  # noqa: E402

SIGMAS = (0.6, 0.9, 1.3)
IMAGES = ("astronaut", "immunohistochemistry", "hubble_deep_field", "retina")
#: (noise std, 8-bit): the cases per image
CASES = ((0.0, True), (0.005, False), (0.005, True), (0.02, False))
SINGLE_GRID = tuple(round(0.5 + 0.1 * i, 1) for i in range(10))
GAIN_GOAL_DB = 1.0
COST_GOAL_UNITS = 1.0


def photo(name: str, size: int) -> np.ndarray:
    """A scikit-image colour photograph, centre crop of at most ``size`` px, linear light float32."""
    import skimage.data

    img = getattr(skimage.data, name)()[:, :, :3]
    h, w = img.shape[:2]
    ch, cw = min(h, size), min(w, size)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return srgb_to_linear(img[y0:y0 + ch, x0:x0 + cw].astype(np.float32) / np.float32(255.0)).astype(np.float32)


def blur_per_channel(x: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Each channel blurred by its pixel-integrated Gaussian (mirror boundary), float32."""
    out = np.empty_like(x)
    for c, s in enumerate(sigmas):
        taps = Gaussian(s).taps
        out[:, :, c:c + 1] = convolve_axis(convolve_axis(x[:, :, c:c + 1], taps, axis=1), taps, axis=0)
    return out


def degrade(clean: np.ndarray, noise: float, eight_bit: bool, seed: int) -> np.ndarray:
    """Per-channel blur, seeded white noise, optionally 8-bit sRGB codes (uint8)."""
    y = blur_per_channel(clean, SIGMAS)
    y = y + np.float32(noise) * np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    if eight_bit:
        return np.clip(np.round(linear_to_srgb(np.clip(y, 0, 1)) * 255), 0, 255).astype(np.uint8)
    return y.astype(np.float32)


def psnr(truth: np.ndarray, out: np.ndarray) -> float:
    """PSNR (dB, peak 1) in linear light; ``out`` as returned by the engine (uint8 is decoded)."""
    y = srgb_to_linear(out.astype(np.float32) / np.float32(255.0)) if out.dtype == np.uint8 else out
    mse = float(np.mean((np.asarray(y, np.float64) - truth) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def quality_rows(ctx, images: tuple[str, ...], size: int, cases) -> list[dict]:
    """One row per (image, case): PSNR of the input, per-channel, median sigma, best single sigma."""
    from gpu_deconv.gl.engine import Deconvolver

    rows = []
    with Deconvolver(ctx) as dec:
        for name in images:
            clean = photo(name, size)
            for i, (noise, eight) in enumerate(cases):
                y = degrade(clean, noise, eight, seed=1000 + i)

                def run(sigma, y=y, clean=clean) -> float:
                    dec.set_params(DeconvParams(sigma=sigma))
                    return psnr(clean, dec.process(y))

                singles = {s: run(s) for s in SINGLE_GRID}
                best = max(singles, key=singles.get)
                rows.append({"image": name, "noise": noise, "bits": 8 if eight else None, "input": psnr(clean, y),
                             "per_channel": run(SIGMAS), "median": run(sorted(SIGMAS)[1]), "best": singles[best],
                             "best_sigma": best})
    return rows


def quality_table(rows: list[dict]) -> tuple[str, float]:
    lines = ["| image | noise | input | per-channel (0.6, 0.9, 1.3) | one sigma 0.9 | best one sigma* | gain over * |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        kind = f"{r['noise']:g}" + (", 8-bit" if r["bits"] else ", float")
        lines.append(f"| {r['image']} | {kind} | {r['input']:.2f} | {r['per_channel']:.2f} | {r['median']:.2f} | "
                     f"{r['best']:.2f} ({r['best_sigma']:g}) | {r['per_channel'] - r['best']:+.2f} |")
    gains = [r["per_channel"] - r["best"] for r in rows]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("input", "per_channel", "median", "best")}
    lines.append(f"| **mean** | | {mean['input']:.2f} | {mean['per_channel']:.2f} | {mean['median']:.2f} | "
                 f"{mean['best']:.2f} | {np.mean(gains):+.2f} (worst {min(gains):+.2f}) |")
    return "\n".join(lines), float(np.mean(gains))


def cost_table(ctx, size: tuple[int, int], reps: int) -> tuple[str, float]:
    """GL wall clock per frame in passthrough units: one sigma vs per channel, whole frame and pass 5, on the
    fragment passes and (OpenGL 4.3) the fused compute dispatches - the engine's path on CPU rasterisers.
    Returns the table and pass 5's extra units on the engine's path."""
    from bench_engine import BenchFrame, time_interleaved

    from gpu_deconv.core.adaptive import AdaptiveSolver
    from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
    from gpu_deconv.gl.adaptive import AdaptiveExecutor
    from gpu_deconv.gl.compute import ComputeExecutor, PathChooser, compute_available
    from gpu_deconv.gl.executor import TEXTURE_UNITS, Layout, PlanExecutor
    from gpu_deconv.gl.state import GLStateGuard
    from gpu_deconv.gl.timing import GpuTimer

    w, h = size
    ex = PlanExecutor(ctx)
    comp = ComputeExecutor(ex) if compute_available(ctx) else None
    paths = {"fragment": AdaptiveExecutor(ex)}
    if comp is not None:
        paths["fused"] = AdaptiveExecutor(ex, compute=comp)
    engine = "fused" if comp is not None and PathChooser(ex).fused_without_measuring() is not None else "fragment"
    timer = GpuTimer(ctx, ex.raw, ring=2)
    solver = AdaptiveSolver(GaussianLaplacian())
    tables = {"one sigma": solver.solve(Gaussian(sorted(SIGMAS)[1]), 1e-4),
              "per-channel sigma": solver.solve_channels(tuple(Gaussian(s) for s in SIGMAS), 1e-4)}
    layout = Layout(3, 4, True)
    frame = BenchFrame(ctx, w, h)
    target, region = frame.target, frame.region
    runs = {"passthrough": lambda: ex.copy(region, target, layout)}
    for path, ad in paths.items():
        for label, table in tables.items():
            runs[f"adaptive ({path}), {label}"] = lambda ad=ad, table=table: ad.run(region, table, target, layout)
        for label, table in tables.items():
            runs[f"  pass 5 ({path}), {label}"] = lambda ad=ad, table=table: ad.apply(table, target)
    one = tables["one sigma"]
    try:
        with GLStateGuard(ctx, ex.raw, TEXTURE_UNITS):
            assert one.bands == tables["per-channel sigma"].bands  # the pass-5 rows reuse the same passes 1-4
            for ad in paths.values():
                ad.prepare(region, layout, one.basis, one.bands)
            _, wall = time_interleaved(ctx, timer, list(runs), lambda n: runs[n](), reps)
    finally:
        frame.release()
        timer.release()
        for ad in paths.values():
            ad.release()
        if comp is not None:
            comp.release()
        ex.release()
    med = {k: float(np.median(v)) for k, v in wall.items()}
    unit = med["passthrough"]
    lines = [f"| {w}x{h} RGBA fp16, wall-clock median of {reps} interleaved rounds (engine path: {engine}) | ms | "
             "units (passthrough) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {v / unit:.2f} |" for k, v in med.items()]
    extra = (med[f"  pass 5 ({engine}), per-channel sigma"] - med[f"  pass 5 ({engine}), one sigma"]) / unit
    return "\n".join(lines), extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke: 64 px crops of one image, 320x180 cost, 2 reps")
    ap.add_argument("--size", type=int, default=256, help="crop edge of the photographs (px)")
    ap.add_argument("--reps", type=int, default=10, help="interleaved rounds of the cost table")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    import moderngl
    from _results import machine_line, update_section

    ctx = moderngl.create_context(standalone=True, backend="egl")
    renderer = ctx.info.get("GL_RENDERER", "?")
    images = IMAGES[:1] if args.quick else IMAGES
    rows = quality_rows(ctx, images, 64 if args.quick else args.size, CASES[1:2] if args.quick else CASES)
    quality, gain = quality_table(rows)
    cost, extra = cost_table(ctx, (320, 180) if args.quick else (1920, 1080), 2 if args.quick else args.reps)
    ctx.release()
    out = ["## Per-channel sigma (`benchmarks/bench_per_channel.py`)\n", machine_line(renderer) + ".",
           f"\nBlur sigma {SIGMAS} px for R, G, B; `Deconvolver.process`, adaptive mode, noise 'auto'; PSNR (dB) in "
           "linear light; `*` chosen on the ground truth from 0.5..1.4 px.\n", "### Goals\n",
           f"- {'PASS' if gain >= GAIN_GOAL_DB else 'MISS'} per-channel beats the best single sigma by >= "
           f"{GAIN_GOAL_DB:g} dB on average: {gain:+.2f} dB",
           f"- {'PASS' if extra <= COST_GOAL_UNITS else 'MISS'} per-channel pass 5 costs <= {COST_GOAL_UNITS:g} "
           f"passthrough unit more than one sigma's on the engine's path: {extra:+.2f} units (wall clock; re-run on a "
           "quiet machine)\n",
           quality, "\n### Cost\n", cost]
    text = "\n".join(out)
    print(text)
    if not args.no_write and not args.quick:
        update_section("per_channel", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
