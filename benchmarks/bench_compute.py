"""Fused compute path vs fragment path per method, at 1080p and 4K RGBA (issue #15).

What is timed
-------------
For each method's designed plan (as in bench_engine.py: sigma 1, noise 0.01, fp16 intermediates unless
``--precision 32``), on a texture-resident RGBA32F frame into an RGBA32F target (no upload/download):

* **fragment**: ``PlanExecutor.run_stages`` - two passes per stage (H to intermediates, V + combine);
* **compute** in each fused variant (``gl/compute.py``: ``stripCxR/L`` = a block of C columns walked
  down R rows per invocation, L invocations per workgroup): ``ComputeExecutor.run_stages`` - one
  dispatch per stage;
* **passthrough**: one ``copy.frag`` pass, the unit that factors out the machine's speed (units are wall
  time over the passthrough's wall time: on llvmpipe the elapsed-time query of a lone copy pass can
  come back near 0).

Every row runs once per round and rounds are interleaved (bench_engine.time_interleaved), so a load
spike hits all rows alike; GPU time is the GL_TIME_ELAPSED query per frame, wall time is bracketed by
``ctx.finish()``. The table also gives each compute variant's speed-up over the fragment path, the
largest difference between the two outputs (0 on llvmpipe: both are bit-exact against the reference),
what :class:`PathChooser` picks at that size, and the first-run time of each path (program compile +
first-dispatch JIT: what a viewer pays when a slider changes the plan's shape), measured cold: the
script turns the drivers' on-disk shader caches off (``MESA_SHADER_CACHE_DISABLE``,
``__GL_SHADER_DISK_CACHE``) unless ``--shader-cache`` is given. Speed-ups are given on GPU time and on
wall time: llvmpipe's elapsed-time query leaves part of a multi-dispatch chain (polyblur) outside.

Usage::

    python benchmarks/bench_compute.py                 # 1080p and 4K, 5 reps, this driver's candidates + 2
    python benchmarks/bench_compute.py --quick         # 640x360, 2 reps, this driver's candidates (smoke)
    python benchmarks/bench_compute.py --variants all  # every variant in VARIANTS (what gpu_run.sh runs)
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import METHODS, SIZES, cpu_name, describe, median, time_interleaved  # noqa: E402

from gpu_deconv.core.design import FilterDesigner  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402

#: Variants by label, (rows, cols, local_x): the CPU and GPU candidates of gl/compute.py and neighbours.
VARIANTS = {f"strip{c}x{r}/{lx}": (r, c, lx) for r, c, lx in (
    (64, 4, 8), (16, 4, 8), (32, 2, 8), (32, 8, 8),                  # CPU rasterisers (llvmpipe)
    (16, 1, 64), (8, 1, 128), (32, 2, 64), (4, 1, 256), (16, 2, 128),  # GPUs
)}
#: Besides this driver's candidates, the default run times these (the neighbours the CPU choice beat).
EXTRA = ("strip4x16/8", "strip2x32/8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="640x360, 2 reps, two variants: a smoke run")
    ap.add_argument("--sizes", default=None, help="comma list of 1080p, 4K or WxH (default 1080p,4K)")
    ap.add_argument("--reps", type=int, default=None, help="timed frames per row (default 5)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma list (default {','.join(METHODS)})")
    ap.add_argument("--variants", default=None,
                    help=f"comma list of {', '.join(VARIANTS)} or 'all' (default: this driver's candidates, "
                         f"plus {', '.join(EXTRA)} without --quick)")
    ap.add_argument("--precision", type=int, default=16, choices=(16, 32))
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--shader-cache", action="store_true", help="leave the drivers' shader disk caches on")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--no-write", action="store_true", help="print only, don't update benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    sizes = args.sizes.split(",") if args.sizes else (["640x360"] if args.quick else ["1080p", "4K"])
    if args.variants == "all":
        labels: list[str] | None = list(VARIANTS)
    elif args.variants:
        labels = args.variants.split(",")
        unknown = [v for v in labels if v not in VARIANTS]
        if unknown:
            ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    else:
        labels = None  # this driver's candidates (known once there is a context)
    methods = args.methods.split(",")
    if not args.shader_cache:  # before the first context: first-run times are cold compiles
        os.environ["MESA_SHADER_CACHE_DISABLE"] = "true"
        os.environ["__GL_SHADER_DISK_CACHE"] = "0"

    from gpu_deconv.gl.compute import (
        ComputeExecutor,
        FusedVariant,
        PathChooser,
        candidate_variants,
        compute_available,
    )
    from gpu_deconv.gl.context import create_headless_context
    from gpu_deconv.gl.engine import Deconvolver
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region
    from gpu_deconv.gl.timing import GpuTimer

    out = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    designer = FilterDesigner()
    plans = {m: designer.design(DeconvParams(sigma=args.sigma if m != "comb" else min(args.sigma, 1.0),
                                             noise=0.01, method=m, precision=args.precision)).plan for m in methods}
    ctx = create_headless_context()
    if labels is None:
        labels = [v.label for v in candidate_variants(ctx)]
        labels += [] if args.quick else [v for v in EXTRA if v not in labels]
    info = {"renderer": ctx.info["GL_RENDERER"], "gl_version": ctx.info["GL_VERSION"], "cpu": cpu_name(),
            "precision": args.precision, "sigma": args.sigma, "reps": reps, "variants": labels}
    say(f"GL renderer : {info['renderer']}  ({info['gl_version']})")
    say(f"machine     : {info['cpu']}, {platform.system()} {platform.release()}, python {platform.python_version()}")
    if not compute_available(ctx):
        say(f"no compute shaders here (OpenGL {ctx.version_code}); the fragment path is the only path")
        ctx.release()
        return 0
    dec = Deconvolver(ctx, DeconvParams(precision=args.precision, mode="global"))
    ex = dec.executor
    ces = {lab: ComputeExecutor(ex, FusedVariant(*VARIANTS[lab])) for lab in labels}
    chooser = PathChooser(ex, mode="measure")  # what it would pick by measuring (auto skips that on CPUs)
    cands = ", ".join(chooser.computes)
    timer = GpuTimer(ctx, dec.raw, ring=2)
    layout = Layout(3, 4, True)
    say(f"precision fp{args.precision}, sigma {args.sigma}, median of {reps} interleaved rounds; "
        f"compute variants {', '.join(labels)} (PathChooser measures fragment and {cands})")
    results: dict[str, dict] = {}
    for size in sizes:
        w, h = SIZES[size] if size in SIZES else (int(v) for v in size.lower().split("x"))
        rng = np.random.default_rng(0)
        src = ctx.texture((w, h), 4, rng.random((h, w, 4), dtype=np.float32).tobytes(), dtype="f4")
        dst = ctx.texture((w, h), 4, dtype="f4")
        fbo = ctx.framebuffer([dst])
        region, target = Region(src, w, h), DrawTarget(fbo, (0, 0, w, h))
        runs = {"passthrough": lambda region=region, target=target: ex.copy(region, target, layout)}
        first: dict[str, float] = {}
        diff: dict[str, float] = {}
        with dec._guard:
            for m in methods:
                frag_name = f"{m}/fragment"
                runs[frag_name] = (lambda m=m, region=region, target=target: ex.run_stages(
                    plans[m], region, target, layout, precision=args.precision, encode_srgb=False))
                for lab, ce in ces.items():
                    runs[f"{m}/{lab}"] = (lambda m=m, ce=ce, region=region, target=target: ce.run_stages(
                        plans[m], region, target, layout, precision=args.precision, encode_srgb=False))
                # first run (compile + JIT) and the output, per path
                ref = None
                for name in [frag_name] + [f"{m}/{lab}" for lab in ces]:
                    ctx.finish()
                    t0 = time.perf_counter()
                    runs[name]()
                    ctx.finish()
                    first[name] = (time.perf_counter() - t0) * 1e3
                    got = np.frombuffer(dst.read(), np.float32)
                    if ref is None:
                        ref = got.copy()
                    else:
                        diff[name] = float(np.max(np.abs(got - ref)))
            gpu, wall = time_interleaved(ctx, timer, list(runs), lambda n, runs=runs: runs[n](), reps)
            choice = {}
            for m in methods:
                path = chooser.choose(plans[m], layout, (w, h), args.precision)
                choice[m] = (path, chooser.decisions[chooser.key(plans[m], layout, (w, h), args.precision)].ms)
        pt = median(wall["passthrough"])
        say()
        say(f"== {size} RGBA ({w}x{h}); passthrough {median(gpu['passthrough']):.2f} ms GPU, {pt:.2f} ms wall")
        hdr = (f"{'method':10s} {'plan':22s} {'path':13s} {'GL ms':>8s} {'wall ms':>8s} {'units':>6s} "
               f"{'speed-up':>8s} {'wall s-u':>8s} {'max diff':>9s} {'1st run ms':>10s}")
        say(hdr)
        say("-" * len(hdr))
        rows: dict[str, dict] = {}
        for m in methods:
            fg, fw = median(gpu[f"{m}/fragment"]), median(wall[f"{m}/fragment"])
            for lab in ["fragment", *ces]:
                name = f"{m}/{lab}"
                g, wl = median(gpu[name]), median(wall[name])
                rows[name] = {"gl_ms": g, "wall_ms": wl, "units": wl / pt, "speedup": fg / g, "wall_speedup": fw / wl,
                              "max_diff": diff.get(name, 0.0), "first_ms": first[name], "gl_all": gpu[name]}
                d = f"{diff[name]:9.2g}" if name in diff else f"{'-':>9s}"
                say(f"{m if lab == 'fragment' else '':10s} {describe(plans[m]) if lab == 'fragment' else '':22s} "
                    f"{lab:13s} {g:8.2f} {wl:8.2f} {wl / pt:6.2f} {fg / g:7.2f}x {fw / wl:7.2f}x {d} "
                    f"{first[name]:10.0f}")
            path, ms = choice[m]
            rows[m] = {"chooser": path, "chooser_ms": ms}
            say(f"{'':10s} {'':22s} PathChooser picks {path} ({chooser.clock} clock, ms: "
                + ", ".join(f"{n} {v:.2f}" for n, v in ms.items()) + ")")
        results[size] = rows
        ctx.detect_framebuffer(0).use()
        for o in (fbo, src, dst):
            o.release()
    timer.release()
    chooser.release()
    for ce in ces.values():
        ce.release()
    dec.release()
    ctx.release()
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2, default=float))
        say(f"wrote {args.json}")
    if not args.no_write:
        write_results(info, results, methods, labels, "\n".join(out))
    return 0


def write_results(info: dict, results: dict, methods: list[str], labels: list[str], text: str) -> None:
    """Section ``compute`` of RESULTS.md: the printed tables plus, per size, where the fused path wins."""
    from _results import machine_line, update_section

    lines = [f"Machine: {machine_line(info['renderer'])}", "", "```", text.strip(), "```", "", "Verdict:"]
    for size, rows in results.items():
        chosen = ", ".join(f"{m} {rows[m]['chooser']}" for m in methods)
        cand = labels[0]
        sp = ", ".join(f"{m} {rows[f'{m}/{cand}']['wall_speedup']:.2f}x" for m in methods)
        best = []
        for m in methods:
            lab = max(labels, key=lambda v, m=m: rows[f"{m}/{v}"]["wall_speedup"])
            best.append(f"{m} {rows[f'{m}/{lab}']['wall_speedup']:.2f}x ({lab})")
        lines.append(f"- {size}: PathChooser picks {chosen}. Wall-time speed-up of {cand} over the fragment "
                     f"path: {sp}; best variant per method: {', '.join(best)}.")
    lines.append("- Timings are only comparable within a table (interleaved rounds); the passthrough's wall time "
                 "shows how loaded the machine was (a quiet 2-core box: ~7 ms at 1080p).")
    lines.append("- real GPU: run `bash benchmarks/gpu_run.sh` (it runs this script with --variants all); the GL ms "
                 "of the best strip against the fragment path at 1080p and 4K decides whether the fused path wins "
                 "there - PathChooser then picks it per driver by itself.")
    update_section("compute", "## Fused compute path vs fragment path (benchmarks/bench_compute.py)\n\n"
                   + "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
