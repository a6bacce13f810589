"""Per-method cost of the GL engine at 1080p and 4K RGBA, next to a passthrough pass and two CPU baselines.

What is timed
-------------
* **GL**: the filter passes of each method's designed plan on a texture-resident RGBA32F frame (linear,
  float32 output, fp16 intermediates unless ``--precision 32``), on the path the engine takes
  (``Deconvolver.paths``, :class:`~gpu_deconv.gl.compute.PathChooser` 'auto': the fused compute path on CPU
  rasterisers, the faster of the two as measured on GPUs; ``bench_compute.py`` compares the paths); no
  upload/download, noise fixed so no statistics pass. Each frame is bracketed by a GL_TIME_ELAPSED query
  and ``ctx.finish()``; the table shows the median GPU time (the query) of ``--reps`` frames after warm-up,
  and the wall time next to it.
* **passthrough**: one ``copy.frag`` pass RGBA32F -> RGBA32F, timed in the same interleaved rounds; every
  method is also given in passthrough units (wall ms / passthrough wall ms), which factors out how fast the
  machine (and, on a shared box, its current load) is.
* **stats**: the GPU band-statistics passes (what ``noise='auto'`` adds per frame).
* **process u8**: end to end ``Deconvolver.process`` of an 8-bit sRGB RGBA frame with the default
  parameters (noise 'auto': upload, decode, statistics + read-back, solve, laplacian passes, encode,
  download), wall clock.
* **NumPy**: :func:`gpu_deconv.core.reference.apply_plan` (the exact mirror of the passes, float32).
* **scipy**: the same separable filter with ``scipy.ndimage.correlate1d(mode='reflect')`` (float32).

Rounds are interleaved (every method once per round) so a load spike hits all rows alike.

Usage::

    python benchmarks/bench_engine.py            # 1080p and 4K, 10 GL reps, 3 CPU reps
    python benchmarks/bench_engine.py --quick    # 1080p only, 5 GL reps, 1 CPU rep
    python benchmarks/bench_engine.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpu_deconv.core.design import FilterDesigner  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402
from gpu_deconv.core.plan import Plan  # noqa: E402
from gpu_deconv.core.reference import apply_plan  # noqa: E402

METHODS = ("comb", "laplacian", "fir", "unsharp", "polyblur")
SIZES = {"1080p": (1920, 1080), "4K": (3840, 2160)}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def scipy_filter(image: np.ndarray, plan: Plan) -> np.ndarray:
    """The plan's filter with scipy.ndimage (mirror boundary = mode 'reflect'), float32."""
    from scipy.ndimage import correlate1d

    x = image.astype(np.float32, copy=False)
    prev = x
    for st in plan.stages:
        src = x if st.src == "input" else prev
        acc = st.weights[0] * x
        for d, g in zip(st.weights[1:], st.taps, strict=True):
            h = correlate1d(src, g, axis=1, mode="reflect")
            acc += d * correlate1d(h, g, axis=0, mode="reflect")
        prev = acc
    out = np.array(prev, dtype=np.float32, copy=True)
    out[..., 3] = x[..., 3]
    return out


def describe(plan: Plan) -> str:
    if not plan.stages:
        return "-"
    st = plan.stages
    radii = "/".join(",".join(str(t.size // 2) for t in s.taps) for s in st)
    return f"{len(st)}x K={st[0].levels} r={radii}"


def median(v: list[float]) -> float:
    return float(np.median(v)) if v else float("nan")


class BenchFrame:
    """A ``w x h`` RGBA32F texture of uniform noise (a resident linear frame) and an RGBA32F target of the
    same size: what the pass-cost benchmarks time their passes on. ``release()`` when done."""

    def __init__(self, ctx, w: int, h: int, seed: int = 0) -> None:
        from gpu_deconv.gl.executor import DrawTarget, Region

        img = np.random.default_rng(seed).random((h, w, 4), dtype=np.float32)
        self.src = ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
        self.dst = ctx.texture((w, h), 4, dtype="f4")
        self.fbo = ctx.framebuffer([self.dst])
        self.target, self.region = DrawTarget(self.fbo, (0, 0, w, h)), Region(self.src, w, h)

    def release(self) -> None:
        for o in (self.fbo, self.src, self.dst):
            o.release()


def time_interleaved(ctx, timer, names, run_pass, reps: int) -> tuple[dict, dict]:
    """Warm every pass up twice, then time ``reps`` interleaved rounds (every name once per round, so a
    load spike hits all rows alike). Returns per-name lists of GPU ms (timer query) and wall ms (with
    ``ctx.finish()``)."""
    gpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # warm-up: compile, allocate, first-draw JIT
        run_pass(n)
        run_pass(n)
    ctx.finish()
    for _ in range(reps):
        for n in names:
            ctx.finish()
            t0 = time.perf_counter()
            timer.begin()
            run_pass(n)
            timer.end()
            ctx.finish()
            wall[n].append((time.perf_counter() - t0) * 1e3)
            gpu[n].append(timer.result_now() or float("nan"))
    return gpu, wall


def main(argv: list[str] | None = None) -> int:
    sys.stdout = log  # keep a copy of the tables for RESULTS.md
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1080p only, 5 GL reps, 1 CPU rep")
    ap.add_argument("--sizes", default=None,
                    help="comma list of 1080p, 4K or WxH (default 1080p,4K; --quick: 1080p)")
    ap.add_argument("--reps", type=int, default=None, help="timed GL frames per method (default 10)")
    ap.add_argument("--cpu-reps", type=int, default=None, help="timed CPU runs per method (default 3)")
    ap.add_argument("--no-cpu", action="store_true", help="skip the NumPy and scipy baselines")
    ap.add_argument("--precision", type=int, default=16, choices=(16, 32))
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--generic", action="store_true", help="generic (non-specialised) shader programs")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--no-write", action="store_true", help="print only, don't update benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 10)
    cpu_reps = args.cpu_reps or (1 if args.quick else 3)
    sizes = (args.sizes.split(",") if args.sizes else (["1080p"] if args.quick else ["1080p", "4K"]))

    from gpu_deconv.gl.engine import Deconvolver
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region
    from gpu_deconv.gl.timing import GpuTimer

    designer = FilterDesigner()
    plans = {}
    for m in METHODS:
        p = DeconvParams(sigma=args.sigma if m != "comb" else min(args.sigma, 1.0), noise=0.01, method=m,
                         precision=args.precision)
        plans[m] = designer.design(p).plan

    from gpu_deconv.gl.context import create_headless_context

    ctx = create_headless_context()  # ours, current for the whole run; the engine borrows it
    dec = Deconvolver(ctx, DeconvParams(precision=args.precision, mode="global"), specialize=not args.generic)
    import scipy

    info = {
        "renderer": ctx.info["GL_RENDERER"], "gl_version": ctx.info["GL_VERSION"], "cpu": cpu_name(),
        "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "precision": args.precision, "sigma": args.sigma,
        "specialized": not args.generic, "reps": reps, "cpu_reps": cpu_reps,
    }
    print(f"GL renderer : {info['renderer']}  ({info['gl_version']})")
    print(f"machine     : {info['cpu']}, {info['cores']} cores, {platform.system()} {platform.release()}")
    print(f"python {info['python']}  numpy {info['numpy']}  scipy {info['scipy']}")
    print(f"precision fp{args.precision}, sigma {args.sigma}, {'generic' if args.generic else 'specialised'} "
          f"programs, the engine's path ({dec.paths.mode}), GL median of {reps} (after warm-up), CPU median of "
          f"{cpu_reps}\n")

    results: dict[str, dict] = {}
    layout = Layout(3, 4, True)
    ex = dec.executor
    timer = GpuTimer(ctx, dec.raw, ring=2)
    for size in sizes:
        w, h = SIZES[size] if size in SIZES else (int(v) for v in size.lower().split("x"))
        rng = np.random.default_rng(0)
        img = rng.random((h, w, 4), dtype=np.float32)
        src = ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
        dst = ctx.texture((w, h), 4, dtype="f4")
        fbo = ctx.framebuffer([dst])
        target = DrawTarget(fbo, (0, 0, w, h))
        region = Region(src, w, h)

        def run_pass(name: str, region: Region = region, target: DrawTarget = target) -> None:
            if name == "passthrough":
                ex.copy(region, target, layout)
            elif name == "stats":
                dec.gpu_stats.render(region, layout)
            else:
                dec.paths.run_stages(plans[name], region, target, layout, precision=args.precision,
                                     encode_srgb=False)

        names = ["passthrough", *METHODS, "stats"]
        with dec._guard:
            gpu, wall = time_interleaved(ctx, timer, names, run_pass, reps)
        cpu_np: dict[str, float] = {}
        cpu_sp: dict[str, float] = {}
        if not args.no_cpu:
            for m in METHODS:
                tn, ts = [], []
                for _ in range(cpu_reps):
                    t0 = time.perf_counter()
                    apply_plan(img, plans[m], args.precision)
                    tn.append((time.perf_counter() - t0) * 1e3)
                    t0 = time.perf_counter()
                    scipy_filter(img, plans[m])
                    ts.append((time.perf_counter() - t0) * 1e3)
                cpu_np[m], cpu_sp[m] = median(tn), median(ts)
        # units and ratios from the wall clock (ctx.finish): llvmpipe's timer query misses part of a chain of
        # compute dispatches (gl/compute.py), the engine's path there
        pt = median(wall["passthrough"])
        pt_best = min(wall["passthrough"])
        rows = {}
        print(f"== {size} RGBA ({w}x{h})")
        hdr = (f"{'method':12s} {'plan':22s} {'GL ms':>8s} {'wall ms':>8s} {'units':>6s} {'best u':>6s} "
               f"{'NumPy ms':>9s} {'scipy ms':>9s} {'vs NumPy':>8s} {'vs scipy':>8s}")
        print(hdr)
        print("-" * len(hdr))
        for n in names:
            g, wl = median(gpu[n]), median(wall[n])
            npm, spm = cpu_np.get(n, float("nan")), cpu_sp.get(n, float("nan"))
            plan_desc = describe(plans[n]) if n in plans else ("1 pass" if n == "passthrough" else "7 passes")
            best = min(wall[n]) / pt_best
            rows[n] = {"gl_ms": g, "wall_ms": wl, "units": wl / pt, "best_units": best, "numpy_ms": npm,
                       "scipy_ms": spm, "plan": plan_desc, "gl_all": gpu[n]}
            def f(v: float, spec: str, suffix: str = "") -> str:
                return "-".rjust(len(format(1.0, spec)) + len(suffix)) if v != v else format(v, spec) + suffix

            print(f"{n:12s} {plan_desc:22s} {g:8.2f} {wl:8.2f} {wl / pt:6.2f} {best:6.2f} {f(npm, '9.1f')} "
                  f"{f(spm, '9.1f')} {f(npm / wl, '7.1f', 'x')} {f(spm / wl, '7.1f', 'x')}")
        # end to end: 8-bit sRGB frame, default parameters (noise 'auto'), both modes
        u8 = (rng.random((h, w, 4)) * 255).astype(np.uint8)
        for mode in ("global", "adaptive"):
            e2e = Deconvolver(ctx, DeconvParams(sigma=args.sigma, precision=args.precision, mode=mode),
                              specialize=not args.generic)
            e2e.process(u8)
            e2e.process(u8)
            tw, parts = [], []
            for _ in range(max(3, reps // 2)):
                t0 = time.perf_counter()
                e2e.process(u8)
                tw.append((time.perf_counter() - t0) * 1e3)
                parts.append(dict(e2e.timings))
            keys = [k for k in ("upload", "stats", "design", "adaptive", "gpu", "download") if k in parts[0]]
            split = " ".join(f"{k} {median([p[k] for p in parts]):.1f}" for k in keys)
            print(f"process u8 sRGB RGBA, noise auto, mode {mode} ({e2e.design.method}): {median(tw):.1f} ms wall "
                  f"({median(tw) / pt:.1f} units; {split} ms)")
            rows[f"process_u8_{mode}"] = {"wall_ms": median(tw), "method": e2e.design.method,
                                          "timings": {k: median([p[k] for p in parts]) for k in keys}}
            e2e.release()
        print()
        results[size] = rows
        for o in (fbo, src, dst):
            o.release()
    timer.release()
    dec.release()
    ctx.release()
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2, default=float))
        print(f"wrote {args.json}")
    if not args.no_write:
        write_results(info, results, log.getvalue())
    return 0


class _Tee:
    """Copy what the benchmark prints into a buffer for RESULTS.md."""

    def __init__(self, stream) -> None:
        import io

        self.stream, self.buf = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.buf.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def getvalue(self) -> str:
        return self.buf.getvalue()


log = _Tee(sys.stdout)


def write_results(info: dict, results: dict, text: str) -> None:
    """Section ``engine`` of RESULTS.md: the printed tables plus the goals checked against them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import machine_line, update_section

    lines = [f"Machine: {machine_line(info['renderer'])}", "", "```", text.strip(), "```", "", "Goals:"]
    r = results.get("1080p")
    if r:
        comb, lap = r.get("comb"), r.get("laplacian")
        if comb:
            ok = comb["units"] <= 6
            lines.append(f"- comb <= 6 passthrough units at 1080p on llvmpipe: {comb['units']:.2f} "
                         f"({'met' if ok else 'MISSED'})")
        if lap and lap["numpy_ms"] == lap["numpy_ms"]:
            x = lap["numpy_ms"] / lap["gl_ms"]
            verdict = "met" if x >= 3 else "MISSED"
            lines.append(f"- laplacian >= 3x faster than the NumPy reference: {x:.1f}x ({verdict})")
    lines.append("- real GPU (4K RGBA16F comb <= 0.2 ms, laplacian <= 0.4 ms): not measured - this task had no "
                 "GPU machine; `benchmarks/gpu_run.sh` is ready for one.")
    update_section("engine", "## Engine cost per method (benchmarks/bench_engine.py)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
