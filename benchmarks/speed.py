"""Side-by-side speed on this machine: cost per megapixel (ms/MP) of each gpu_deconv method through the GL
engine, the NumPy reference, scipy.ndimage, a full-image FFT of the same target (numpy.fft, scipy.fft) and
the GL CAS/RCAS peer sharpeners (benchmarks/peers), plus the per-frame solve (design) in microseconds.

What is timed (1080p RGBA float32 unless ``--size``; medians, rounds interleaved like bench_engine):

* **GL**: each method's plan as texture-resident passes (RGBA32F in/out, fp16 intermediates, no
  upload/download, noise fixed), GL_TIME_ELAPSED query per frame (+ wall with ``ctx.finish()``); a one-pass
  copy ("passthrough") for scale; CAS and RCAS single passes on the same texture.
* **process u8**: end-to-end ``Deconvolver.process`` of an 8-bit sRGB RGBA frame, default parameters
  (noise 'auto': upload, statistics, solve, passes, download), wall.
* **NumPy**: ``reference.apply_plan`` (float32); **scipy**: separable ``scipy.ndimage.correlate1d`` (reflect
  = the mirror rule), as in bench_engine; **CAS/RCAS NumPy**: the peers' references.
* **FFT**: the laplacian design's target applied exactly to the RGB channels: mirror-extend to 2H x 2W,
  rfft2, multiply, irfft2, crop - numpy.fft (float64) and scipy.fft (float32, all cores).
* **solve**: ``FilterDesigner.design`` per frame for each method (fresh parameters, solver cached, as in
  the render loop), best of 5 runs.

Usage: ``python benchmarks/speed.py [--quick] [--no-write]`` (about 1-2 minutes; --quick: a smoke run).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import METHODS, cpu_name, median, scipy_filter, time_interleaved  # noqa: E402
from peers import KINDS, Sharpener, apply_reference  # noqa: E402

from gpu_deconv.core.design import FilterDesigner  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402
from gpu_deconv.core.reference import apply_plan  # noqa: E402


def fft_numpy(x: np.ndarray, response) -> np.ndarray:
    h, w = x.shape[:2]
    ext = np.pad(x.astype(np.float64), ((0, h), (0, w), (0, 0)), mode="symmetric")
    wy = 2.0 * np.pi * np.fft.fftfreq(2 * h)[:, None]
    wx = 2.0 * np.pi * np.fft.rfftfreq(2 * w)[None, :]
    spec = np.fft.rfft2(ext, axes=(0, 1)) * response(wx, wy)[:, :, None]
    return np.fft.irfft2(spec, s=(2 * h, 2 * w), axes=(0, 1))[:h, :w].astype(np.float32)


def fft_scipy(x: np.ndarray, response) -> np.ndarray:
    import scipy.fft as sf

    h, w = x.shape[:2]
    ext = np.pad(x.astype(np.float32), ((0, h), (0, w), (0, 0)), mode="symmetric")
    wy = 2.0 * np.pi * sf.fftfreq(2 * h)[:, None]
    wx = 2.0 * np.pi * sf.rfftfreq(2 * w)[None, :]
    spec = sf.rfft2(ext, axes=(0, 1), workers=-1)
    spec *= response(wx, wy).astype(np.float32)[:, :, None]
    return sf.irfft2(spec, s=(2 * h, 2 * w), axes=(0, 1), workers=-1)[:h, :w]


def timed(fn, reps: int) -> float:
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return median(t)


def solve_us(designer: FilterDesigner, method: str, sigma: float, repeat: int) -> float:
    sigmas = sigma * (1.0 - 1e-3 * np.arange(8))  # a fresh blur each frame, as when the user drags sigma

    def frame(i=[0]):  # noqa: B006 - a counter
        i[0] += 1
        designer.design(DeconvParams(sigma=float(sigmas[i[0] % 8]), noise=0.01, method=method))

    frame()
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            frame()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="640x360, 3 GL reps, 1 CPU rep: a smoke run")
    ap.add_argument("--size", default=None, help="WxH (default 1920x1080)")
    ap.add_argument("--reps", type=int, default=None, help="timed GL frames per row (default 10)")
    ap.add_argument("--cpu-reps", type=int, default=None, help="timed CPU runs per row (default 3)")
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--no-write", action="store_true", help="print only, don't update benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 10)
    cpu_reps = args.cpu_reps or (1 if args.quick else 3)
    w, h = (int(v) for v in (args.size or ("640x360" if args.quick else "1920x1080")).lower().split("x"))
    mp_ = w * h / 1e6

    from gpu_deconv.gl.context import create_headless_context
    from gpu_deconv.gl.engine import Deconvolver
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region
    from gpu_deconv.gl.timing import GpuTimer

    designer = FilterDesigner()
    designs = {m: designer.design(DeconvParams(sigma=args.sigma if m != "comb" else min(args.sigma, 1.0),
                                               noise=0.01, method=m)) for m in METHODS}
    ctx = create_headless_context()
    dec = Deconvolver(ctx, DeconvParams(mode="global"))
    sharp = Sharpener(ctx)
    import scipy

    renderer = ctx.info["GL_RENDERER"]
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    say(f"GL renderer : {renderer}  ({ctx.info['GL_VERSION']})")
    say(f"machine     : {cpu_name()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"{platform.system()} {platform.release()}")
    say(f"python {platform.python_version()}  numpy {np.__version__}  scipy {scipy.__version__}")
    say(f"{w}x{h} RGBA float32 ({mp_:.2f} MP), sigma {args.sigma}, noise 0.01; GL median of {reps}, "
        f"CPU median of {cpu_reps}")

    rng = np.random.default_rng(0)
    img = rng.random((h, w, 4), dtype=np.float32)
    src = ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
    dst = ctx.texture((w, h), 4, dtype="f4")
    fbo = ctx.framebuffer([dst])
    target, region, layout = DrawTarget(fbo, (0, 0, w, h)), Region(src, w, h), Layout(3, 4, True)
    ex = dec.executor
    timer = GpuTimer(ctx, dec.raw, ring=2)

    def run_pass(name: str) -> None:
        if name == "passthrough":
            ex.copy(region, target, layout)
        elif name in KINDS:
            sharp.render(name, src, fbo)
        else:
            ex.run_stages(designs[name].plan, region, target, layout, precision=16, encode_srgb=False)

    names = ["passthrough", *METHODS, *KINDS]
    with dec._guard:
        gpu, wall = time_interleaved(ctx, timer, names, run_pass, reps)
    # end to end, 8-bit frame, default parameters
    u8 = (rng.random((h, w, 4)) * 255).astype(np.uint8)
    e2e = Deconvolver(ctx, DeconvParams(sigma=args.sigma))
    e2e.process(u8)
    e2e_ms = timed(lambda: e2e.process(u8), max(3, reps // 2))
    e2e_method = e2e.design.method
    e2e.release()

    cpu: dict[str, dict[str, float]] = {}
    for m in METHODS:
        cpu[m] = {"numpy": timed(lambda m=m: apply_plan(img, designs[m].plan, 16), cpu_reps),
                  "scipy": timed(lambda m=m: scipy_filter(img, designs[m].plan), cpu_reps)}
    for k in KINDS:
        cpu[k] = {"numpy": timed(lambda k=k: apply_reference(img, k), cpu_reps)}
    d = designs["laplacian"]

    def resp(wx, wy):
        return np.asarray(d.target.response(d.blur, wx, wy), dtype=np.float64)

    rgb = np.ascontiguousarray(img[:, :, :3])
    fft = {"numpy.fft": timed(lambda: fft_numpy(rgb, resp), cpu_reps),
           "scipy.fft": timed(lambda: fft_scipy(rgb, resp), cpu_reps)}
    solves = {m: solve_us(designer, m, args.sigma if m != "comb" else min(args.sigma, 1.0), 50 if args.quick else 300)
              for m in METHODS}

    def f(v: float | None, spec: str = "8.1f") -> str:
        return "-".rjust(len(format(1.0, spec))) if v is None or v != v else format(v, spec)


    say()
    hdr = (f"{'method':12s} {'GL wall':>8s} {'GL query':>9s} {'NumPy':>8s} {'scipy':>8s} {'x NumPy':>8s} "
           f"{'x scipy':>8s} {'solve us':>9s}")
    say("ms/MP; GL wall = draw + ctx.finish() (the figure to compare: llvmpipe's timer query misses work it")
    say("defers to the finish, so 'GL query' under-reads single passes); 'x' = CPU time / GL wall")
    say(hdr)
    say("-" * len(hdr))
    rows = {}
    for n in names:
        g, wl = median(gpu[n]) / mp_, median(wall[n]) / mp_
        npm = cpu.get(n, {}).get("numpy")
        spm = cpu.get(n, {}).get("scipy")
        npm, spm = (None if v is None else v / mp_ for v in (npm, spm))
        label = n if n not in KINDS else f"{n} (peer)"
        rows[n] = {"gl": g, "wall": wl, "numpy": npm, "scipy": spm, "solve_us": solves.get(n)}
        say(f"{label:12s} {wl:8.2f} {g:9.2f} {f(npm)} {f(spm)} {f(npm and npm / wl, '7.1f')}x "
            f"{f(spm and spm / wl, '7.1f')}x {f(solves.get(n), '9.0f')}")
    say(f"{'FFT':12s} numpy.fft (f64) {fft['numpy.fft'] / mp_:.1f} ms/MP, scipy.fft (f32, all cores) "
        f"{fft['scipy.fft'] / mp_:.1f} ms/MP  (laplacian's target, exact, RGB on the 2Hx2W mirror extension; "
        f"{fft['scipy.fft'] / median(wall['laplacian']):.1f}x the GL laplacian wall)")
    say(f"process u8 end to end (sRGB RGBA, noise auto -> {e2e_method}): {e2e_ms / mp_:.1f} ms/MP wall, "
        f"{e2e_ms:.1f} ms per frame ({e2e_ms / median(wall['passthrough']):.0f} passthrough walls)")

    timer.release()
    sharp.release()
    for o in (fbo, src, dst):
        o.release()
    dec.release()
    ctx.release()
    if not args.no_write:
        from _results import machine_line, update_section

        md = ["## Speed side by side (`benchmarks/speed.py`)", "", f"Machine: {machine_line(renderer)}", "",
              "ms per megapixel of a float RGBA frame (GL: texture-resident passes, wall time with `ctx.finish()`; "
              "CPU rows: wall). CAS/RCAS are the single-pass peer sharpeners of `benchmarks/peers` at their default "
              "sharpness; 'solve us' is the per-frame `FilterDesigner.design` (best of 5). On llvmpipe the "
              "'GPU' is these same CPU cores, so the GL columns are a software-rasteriser figure, not a GPU "
              "one.", "", "```", *out, "```"]
        update_section("speed", "\n".join(md))
        print("wrote section 'speed' of benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
