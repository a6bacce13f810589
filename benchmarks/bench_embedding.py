"""Per-frame cost of the embedding API: changing sigma/noise every frame vs a fixed filter.

What is timed, at 1080p by default, on a caller's RGBA8 texture (sRGB codes) drawn into a caller's RGBA8
framebuffer (``apply(src, dst, src_is_srgb=True, encode_srgb=True)``), in ONE run with the modes
interleaved frame by frame so load changes hit them alike:

* **apply** - the parameters stay fixed (the design is cached: no CPU solve);
* **set_blur + apply** - every frame a new sigma and noise (``set_blur`` solves on the CPU; the passes
  then only get new uniform values);
* **set_blur alone** - the CPU solve, many repetitions, no GL at all.

Each frame is followed by ``ctx.finish()``: "CPU ms" is the time of the API calls (solve + submission),
"wall ms" includes the GPU finishing the frame, "GPU ms" is the engine's timer query for that frame.
"solve in apply" is the designer time apply() itself spent (``Deconvolver.timings['design']``).

Warm-up visits every (sigma, noise) of the cycle once, so every shader shape is compiled; after that the
benchmark counts, both with the engine's counters (``executor.compiles``, ``executor.pool.allocations``)
and by wrapping ``ctx.program``/``ctx.texture``/``ctx.framebuffer``/..., the GL objects created during the
timed frames, prints them and fails (exit 1) if any was.

Two scenarios: ``level`` fixed (no statistics pass, so the difference between the modes is the solve),
and ``level=None`` - the default of DeconvParams - where the GPU statistics pass and a solve run every
frame in both modes (``--fixed-only`` skips it).

Usage::

    python benchmarks/bench_embedding.py                 # 1080p, writes section 'embedding' of RESULTS.md
    python benchmarks/bench_embedding.py --size 256x144 --reps 2 --no-results   # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SIGMAS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.25, 1.15, 1.05)
NOISES = (0.002, 0.004, 0.006, 0.003)
LEVEL = 2e-3
CREATORS = ("program", "texture", "framebuffer", "renderbuffer", "sampler", "buffer", "vertex_array", "query")


def _median(v: list[float]) -> float:
    v = [x for x in v if x is not None]
    return float(np.median(v)) if v else float("nan")


class CreationCounter:
    """Wrap a context's object constructors to count what is created (by kind)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.counts = dict.fromkeys(CREATORS, 0)
        self._orig = {}
        for name in CREATORS:
            orig = getattr(ctx, name)
            self._orig[name] = orig

            def wrapped(*a, _name=name, _orig=orig, **k):
                self.counts[_name] += 1
                return _orig(*a, **k)

            setattr(ctx, name, wrapped)

    def total(self) -> int:
        return sum(self.counts.values())

    def restore(self) -> None:
        for name in CREATORS:
            delattr(self.ctx, name)


def make_frame(w: int, h: int) -> np.ndarray:
    from gpu_deconv.core.chart import blur_and_noise, test_chart

    lin = np.clip(blur_and_noise(test_chart((h, w)), 1.2, 0.003, seed=0), 0, 1)
    enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = np.round(enc * 255)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1920x1080", help="WxH (default 1920x1080)")
    ap.add_argument("--reps", type=int, default=12, help="timed frames per mode (default 12)")
    ap.add_argument("--solve-reps", type=int, default=400, help="repetitions of set_blur alone")
    ap.add_argument("--fixed-only", action="store_true", help="skip the level=None (statistics pass) scenario")
    ap.add_argument("--no-results", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    from gpu_deconv.gl.context import create_headless_context
    from gpu_deconv.gl.engine import Deconvolver

    ctx = create_headless_context()  # stands in for the host's context; the engine borrows it
    renderer = f"{ctx.info['GL_RENDERER']} ({ctx.info['GL_VERSION']})"
    img = make_frame(w, h)
    src = ctx.texture((w, h), 4, img.tobytes())
    dst_tex = ctx.texture((w, h), 4)
    dst = ctx.framebuffer(color_attachments=[dst_tex])
    dec = Deconvolver(ctx)

    scenarios = [("fixed level", LEVEL)]
    if not args.fixed_only:
        scenarios.append(("level auto", None))
    combos = [(s, NOISES[i % len(NOISES)]) for i, s in enumerate(SIGMAS)]

    def frame(mode: str, i: int, level) -> dict:
        t0 = time.perf_counter()
        if mode == "set_blur + apply":
            s, nz = combos[i % len(combos)]
            dec.set_blur(s, noise=nz, level=level)
        t1 = time.perf_counter()
        dec.apply(src, dst, src_is_srgb=True, encode_srgb=True)
        t2 = time.perf_counter()
        ctx.finish()
        t3 = time.perf_counter()
        return {"cpu": (t2 - t0) * 1e3, "set_blur": (t1 - t0) * 1e3, "wall": (t3 - t0) * 1e3,
                "gpu": dec.last_gpu_ms, "solve_in_apply": dec.timings.get("design", 0.0)}

    modes = ("apply", "set_blur + apply")
    results: dict[tuple[str, str], list[dict]] = {}
    created = {}
    engine_counts = {}
    for scen, level in scenarios:
        # warm-up: every (sigma, noise) once - compiles every shape, allocates every intermediate
        for i in range(len(combos)):
            frame("set_blur + apply", i, level)
        dec.set_blur(1.2, noise=0.004, level=level)
        frame("apply", 0, level)
        frame("apply", 0, level)
        before = (dec.executor.compiles, dec.executor.pool.allocations)
        counter = CreationCounter(ctx)
        try:
            for r in range(args.reps):
                for mode in modes:
                    if mode == "apply":
                        dec.set_blur(1.2, noise=0.004, level=level)  # back to the fixed filter (untimed)
                        frame("apply", 0, level)                     # one untimed frame re-caches the design
                    results.setdefault((scen, mode), []).append(frame(mode, r, level))
        finally:
            counter.restore()
        created[scen] = dict(counter.counts)
        engine_counts[scen] = (dec.executor.compiles - before[0], dec.executor.pool.allocations - before[1])

    # set_blur alone: the CPU solve (no GL)
    solve = []
    for i in range(args.solve_reps):
        s, nz = combos[i % len(combos)]
        t0 = time.perf_counter()
        dec.set_blur(s, noise=nz, level=LEVEL)
        solve.append((time.perf_counter() - t0) * 1e6)
    plan = dec.design.plan
    method = dec.design.method
    dec.release()
    for o in (dst, dst_tex, src):
        o.release()
    ctx.release()

    lines = [f"GL renderer: {renderer}",
             f"{w}x{h} RGBA8 sRGB -> RGBA8, method {method} (K={plan.stages[0].levels if plan.stages else 0}), "
             f"fp16 intermediates; {args.reps} interleaved frames per mode after warm-up; "
             f"sigma cycles {SIGMAS[0]}..{max(SIGMAS)} px, noise {min(NOISES)}..{max(NOISES)}", ""]
    hdr = "| level | mode | CPU ms (calls) | wall ms (+finish) | GPU ms (query) | solve in apply ms |"
    lines += [hdr, "|---|---|---:|---:|---:|---:|"]
    for scen, _ in scenarios:
        for mode in modes:
            rs = results[(scen, mode)]
            lines.append(f"| {scen} | {mode} | {_median([r['cpu'] for r in rs]):.2f} | "
                         f"{_median([r['wall'] for r in rs]):.2f} | {_median([r['gpu'] for r in rs]):.2f} | "
                         f"{_median([r['solve_in_apply'] for r in rs]):.3f} |")
    lines.append(f"| fixed level | set_blur alone (CPU solve) | {_median(solve) / 1e3:.3f} "
                 f"({_median(solve):.0f} us, p90 {np.percentile(solve, 90):.0f} us) | - | - | - |")
    lines.append("")
    ok = True
    for scen, _ in scenarios:
        made = {k: v for k, v in created[scen].items() if v}
        comp, alloc = engine_counts[scen]
        ok &= not made and comp == 0 and alloc == 0
        lines.append(f"After warm-up ({scen}): {comp} programs compiled, {alloc} textures (re)allocated "
                     f"(engine counters); GL objects created during the timed frames: "
                     f"{', '.join(f'{k} {v}' for k, v in made.items()) or 'none'}.")
    md = "\n".join(lines)
    print(md)
    if not args.no_results:
        from _results import machine_line, update_section

        update_section("embedding", "## Embedding: per-frame API cost (`benchmarks/bench_embedding.py`)\n\n"
                       + machine_line(renderer) + "\n\n" + md)
        print("\nwrote section 'embedding' of benchmarks/RESULTS.md")
    if not ok:
        print("FAIL: GL objects were created after warm-up", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
