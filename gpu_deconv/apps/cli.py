"""The ``gpu-deconv`` command: ``run`` (batch), ``demo``, ``fit``, ``info``, ``view``, ``export``.

Exit codes: 0 success; 1 when any file failed (the batch goes on past it); 2 for usage errors (bad
flags or parameters, detected before any file is touched). Errors are one line on stderr naming the
file and the reason; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ..core.params import DeconvParams
from ..errors import FileError, UsageError, one_line
from .flags import add_param_arguments, params_from_args

PROG = "gpu-deconv"
#: Output formats of ``run --format`` (gpu_deconv.io.images.FORMATS, spelled out so --help imports no codec).
IMAGE_FORMATS = ("png", "jpeg", "tiff", "webp", "bmp", "jxl", "avif", "npy")


def _validate(params: DeconvParams) -> DeconvParams:
    """The parameters checked against their method, before any file is touched (a UsageError if not)."""
    from ..core.design import FilterDesigner

    try:
        FilterDesigner().validate(params)
    except ValueError as e:
        raise UsageError(" ".join(str(e).split())) from None
    return params


# --- run -------------------------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from ..io.atomic import remove_live_temp_files
    from ..io.batch import BatchReport, BatchRunner, plan_jobs, report_format
    from ..io.video_options import video_options_from_args

    if args.sigma is None and not args.params and args.sigma_map is None:
        raise UsageError("--sigma is required (or --sigma-map, or --params FILE.json)")
    params = _validate(params_from_args(args))
    if args.tile is not None and args.tile < 16:
        raise UsageError(f"--tile must be >= 16 px, got {args.tile}")
    if args.quality is not None and not 1 <= args.quality <= 100:
        raise UsageError(f"--quality must be 1..100, got {args.quality}")
    if args.max_pixels < 0:
        raise UsageError(f"--max-pixels must be >= 0 (0: no limit), got {args.max_pixels}")
    if args.report:
        report_format(args.report)
        if os.path.lexists(args.report) and not args.overwrite:
            raise UsageError(f"{args.report}: output exists; pass --overwrite to replace it")
    try:
        video_options = video_options_from_args(args)
    except ValueError as e:
        raise UsageError(one_line(e)) from None
    jobs, failures, note = plan_jobs(args.inputs, args.output, args.suffix, args.format, video_options.container)
    if note:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if args.format and any(j.video for j in jobs) and any(not j.video for j in jobs):
        print(f"{PROG}: note: --format {args.format} applies to images; videos keep a video container "
              "(--container chooses it)", file=sys.stderr)
    report = BatchReport()
    for f in failures:
        print(f"{PROG}: error: {f.input}: {f.reason}", file=sys.stderr)
        f.reason = f"{f.input}: {f.reason}"
        report.results.append(f)
    options = dict(overwrite=args.overwrite, skip_existing=args.skip_existing, fmt=args.format, quality=args.quality,
                   tile=args.tile, max_pixels=args.max_pixels or None, jpeg_noise=not args.no_jpeg_noise,
                   video_options=video_options, progress=None if not args.quiet else False, verbose=args.verbose,
                   debug=args.debug)
    try:
        with _terminate_on_signals():
            if jobs and args.ray:  # the same claims, results and report, the pixels on a Ray cluster
                from .distributed import ClusterError, Driver

                try:
                    Driver(params, address=args.ray, **options).run(jobs, report)
                except ClusterError as e:
                    print(f"{PROG}: error: {e}", file=sys.stderr)
                    return 1
            elif jobs:
                from ..gl.engine import Deconvolver

                try:
                    deconv = Deconvolver(params=params)
                except Exception as e:  # no GL context at all: nothing can be processed
                    print(f"{PROG}: error: cannot create an OpenGL context: {one_line(e)}", file=sys.stderr)
                    return 1
                with deconv:
                    BatchRunner(deconv, params, **options).run(jobs, report)
    finally:
        remove_live_temp_files()  # an interrupted write's temp file (Ctrl-C, SIGTERM, SIGHUP)
        if args.report and report.results:
            report.write(args.report, overwrite=args.overwrite)
    print(f"{PROG}: {report.summary(args.skip_existing)}", file=sys.stderr)
    return 1 if report.failed or (report.skipped and not args.skip_existing) else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (temp files removed), exit 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _terminate_on_signals():
    """SIGTERM (CI time-outs, ``docker stop``, systemd) and SIGHUP handled like Ctrl-C for the block."""
    import signal

    def handler(signum, frame):
        raise Terminated(signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    try:
        previous = {s: signal.signal(s, handler) for s in wanted}
    except ValueError:  # not the main thread: leave the process's handlers alone
        previous = {}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --- fit -------------------------------------------------------------------------------------------------------
def _cmd_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from ..core.design import FilterDesigner, FrameFormat

    if args.sigma is None and not args.params:
        raise UsageError("--sigma is required (or --params FILE.json)")
    params = _validate(params_from_args(args))
    if params.noise_is_auto or params.sigma_is_auto:
        raise UsageError("fit needs a numeric --sigma and --noise (there is no image to estimate them from)")
    if params.sigma_map is not None:
        raise UsageError("fit designs one filter for one sigma; --sigma-map is for run and view")
    if params.sigma_per_channel:
        raise UsageError("fit designs one filter for one sigma; a per-channel --sigma R,G,B is for run (fit each "
                         "channel's sigma on its own)")
    if args.plot and Path(args.plot).exists() and not args.overwrite:
        raise UsageError(f"{args.plot}: output exists; pass --overwrite to replace it")
    designer = FilterDesigner()
    try:  # what run would apply: the adaptive table (its level is per pixel) or one global filter
        if designer.uses_adaptive(params):
            design = designer.adaptive(params, FrameFormat(bits=args.bits))
        else:
            design = designer.design(params, frame=FrameFormat(bits=args.bits))
    except ValueError as e:
        raise UsageError(one_line(e)) from None
    res = design.result
    info: dict[str, Any] = {"mode": "adaptive" if design.adaptive else "global", "method": design.method,
                            "sigma": params.sigma, "noise_std": design.noise_std, "noise_var_total": design.noise_var}
    if design.adaptive:
        from ..core.adaptive import TABLE_SIZE, TABLE_START

        t = design.table
        info.update(basis=repr(t.basis), energy_bands=list(t.bands), passes=5,
                    table_v=[TABLE_START + i for i in range(TABLE_SIZE)], coefficients=t.coefficients.tolist())
    else:
        info.update(level=design.level, passes=design.plan.passes, fetches_per_pixel=design.plan.fetches_per_pixel,
                    stages=[{"src": s.src, "weights": s.weights.tolist(), "taps": [t.tolist() for t in s.taps]}
                            for s in design.plan.stages])
    if res is not None and not design.adaptive and hasattr(res, "coefficients"):
        info.update(coefficients=np.asarray(res.coefficients).tolist(), basis=repr(res.basis),
                    fit_rms=res.fit_rms, excess_error=res.excess_error, identity_error=res.identity_error,
                    peak_gain=res.peak_gain)
    elif res is not None and not design.adaptive:
        info.update(result=repr(res), peak_gain=float(getattr(res, "peak_gain", float("nan"))))
    if args.json:
        print(json.dumps(info, indent=2))
    elif design.adaptive:
        print(design.summary())
        print(f"basis        {info['basis']}; local level from bands L{t.bands[0] + 1} + L{t.bands[1] + 1}")
        print("table        c_k at the local level v = log2(A / noise variance):")
        for v, row in zip(info["table_v"], t.coefficients, strict=True):
            if v % 4 == 0:
                print(f"  v = {v:+5.0f}  {np.array2string(row, precision=4, suppress_small=True)}")
    else:
        print(design.summary())
        if "coefficients" in info:
            print(f"basis        {info['basis']}")
            print(f"coefficients {np.array2string(np.asarray(info['coefficients']), precision=5)}")
            print(f"fit rms      {info['fit_rms']:.4g}   excess mse {info['excess_error']:.3g} "
                  f"(identity {info['identity_error']:.3g})")
        elif "result" in info:
            print(info["result"])
        print(f"peak gain    {info.get('peak_gain', float('nan')):.4g}")
        for i, s in enumerate(design.plan.stages):
            print(f"stage {i}      src={s.src} weights={np.array2string(s.weights, precision=5)}")
    if args.plot:
        from .plotting import plot_response

        try:
            plot_response(design, args.plot, overwrite=args.overwrite)
        except ImportError:
            print(f"{PROG}: error: --plot needs matplotlib (pip install 'gpu_deconv[plot]')", file=sys.stderr)
            return 1
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# --- info ------------------------------------------------------------------------------------------------------
#: Extensions that change what the engine can do or how fast.
INFO_EXTENSIONS = ("GL_ARB_timer_query", "GL_EXT_texture_sRGB_decode", "GL_ARB_framebuffer_sRGB",
                   "GL_ARB_color_buffer_float", "GL_ARB_texture_float", "GL_KHR_debug", "GL_ARB_compute_shader",
                   "GL_ARB_texture_gather")


def describe_context(ctx) -> dict[str, object]:
    """What ``gpu-deconv info`` prints about a moderngl context."""
    info = ctx.info
    exts = ctx.extensions
    out: dict[str, object] = {
        "GL_RENDERER": info.get("GL_RENDERER"), "GL_VENDOR": info.get("GL_VENDOR"),
        "GL_VERSION": info.get("GL_VERSION"), "version_code": ctx.version_code,
        "backend": "egl (headless)" if sys.platform.startswith("linux") else "platform default (headless)",
    }
    for key in ("GL_MAX_TEXTURE_SIZE", "GL_MAX_DRAW_BUFFERS", "GL_MAX_COLOR_ATTACHMENTS",
                "GL_MAX_FRAGMENT_UNIFORM_COMPONENTS", "GL_MAX_TEXTURE_IMAGE_UNITS"):
        if key in info:
            out[key] = info[key]
    for ext in INFO_EXTENSIONS:
        out[ext] = "yes" if ext in exts else "no"
    return out


def _cmd_info(args: argparse.Namespace) -> int:
    from ..gl.context import create_headless_context

    try:
        ctx = create_headless_context()
    except Exception as e:
        print(f"{PROG}: error: cannot create an OpenGL context: {one_line(e)}", file=sys.stderr)
        return 1
    try:
        info = describe_context(ctx)
    finally:
        ctx.release()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


# --- demo ------------------------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    params = _validate(params_from_args(args))
    if params.sigma_per_channel:
        raise UsageError("demo blurs its chart with one sigma; a per-channel --sigma R,G,B is for run")
    return run_demo(Path(args.output), params, true_noise=args.true_noise, overwrite=args.overwrite, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    from ..io.video_options import add_video_arguments  # no PyAV, no NumPy: --help stays fast

    ap = argparse.ArgumentParser(prog=PROG, description="Real-time GPU deconvolution of mild, known blur.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="deblur images, folders (recursive) and videos")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, help="output folder (or file, for one input file)")
    add_param_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (and an existing --report)")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that already exist and go on (resume an interrupted run)")
    p.add_argument("--suffix", default="", help="added to output file names, e.g. _deblur")
    p.add_argument("--format", choices=IMAGE_FORMATS, default=None,
                   help="output format of images (default: the input's; videos keep a video container); metadata "
                        "and the colour profile go along")
    p.add_argument("--quality", type=int, default=None, metavar="Q",
                   help="quality 1..100 of lossy image outputs (JPEG, WebP, AVIF, JPEG XL); default: like the input "
                        "(videos: --crf or --qscale)")
    p.add_argument("--max-pixels", type=int, default=250_000_000, metavar="N",
                   help="refuse images with more pixels, read from the header before decoding (0: no limit; "
                        "default 250000000)")
    p.add_argument("--no-jpeg-noise", action="store_true",
                   help="do not add a JPEG's compression noise (from its quantisation tables) to the noise model")
    p.add_argument("--tile", type=int, default=None, help="force tiled processing with this tile edge (px)")
    p.add_argument("--report", metavar="FILE.json|FILE.csv", default=None,
                   help="write one row per file: input, output, status, reason, sigma, noise, level, method, ms")
    p.add_argument("--ray", metavar="local|auto|ADDRESS", default=None,
                   help="process on Ray workers, one per GPU (or CPU slot): 'local' starts one on this machine, "
                        "'auto' joins the running cluster, else the cluster at ADDRESS; inputs and output must "
                        "be at the same paths on every node (needs gpu_deconv[ray])")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per file")
    add_video_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="built-in chart: blur, restore on the GPU, write comparisons")
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    add_param_arguments(p)
    p.add_argument("--true-noise", type=float, default=0.005, help="noise added to the chart (linear std)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("fit", help="print the filter designed for a sigma and noise")
    add_param_arguments(p)
    p.add_argument("--bits", type=int, default=None, help="integer bit depth (adds quantization noise)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="plot blur, target and achieved response")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("info", help="OpenGL renderer, version and limits")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    from .export_cli import add_export_parser
    from .viewer.cli import add_view_parser

    add_view_parser(sub)
    add_export_parser(sub)
    for command in sub.choices.values():  # --debug after the command too (not resetting one given before it)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except FileError as e:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", 2)  # Ctrl-C is SIGINT (2); SIGTERM/SIGHUP arrive as Terminated
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # e.g. `gpu-deconv fit --json | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 0
    except Exception as e:  # a bug: one line, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {type(e).__name__}: {one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
