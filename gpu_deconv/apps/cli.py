"""The ``gpu-deconv`` command: ``run`` (batch), ``demo``, ``fit``, ``info``, ``view``, ``export``.

Exit codes: 0 success; 1 when any file failed (the batch goes on past it); 2 for usage errors (bad
flags or parameters, detected before any file is touched). Errors are one line on stderr naming the
file and the reason; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import numpy as np

from ..core.params import METHODS, DeconvParams, parse_noise

PROG = "gpu-deconv"


class UsageError(Exception):
    """Bad command line or parameters (exit 2)."""


def _add_param_flags(p: argparse.ArgumentParser, sigma_required: bool = False) -> None:
    g = p.add_argument_group("deconvolution parameters (units: sigma in px, noise as linear std)")
    g.add_argument("--sigma", type=float, default=None, required=sigma_required, help="blur sigma in pixels")
    g.add_argument("--noise", type=parse_noise, default=None, help="noise std in linear [0,1] units, or 'auto'")
    g.add_argument("--method", choices=METHODS, default=None)
    g.add_argument("--level", type=float, default=None, help="natural-spectrum level A (default: from the frame)")
    g.add_argument("--strength", type=float, default=None, help="0 = identity, 1 = full filter")
    g.add_argument("--target", choices=("natural", "flat"), default=None)
    g.add_argument("--comb-levels", type=int, choices=(2, 3), default=None)
    g.add_argument("--max-gain", type=float, default=None)
    g.add_argument("--space", choices=("auto", "srgb", "linear"), default=None)
    g.add_argument("--precision", type=int, choices=(16, 32), default=None, help="intermediate texture precision")
    g.add_argument("--params", metavar="FILE.json", default=None, help="parameters saved by the viewer")


_FLAG_TO_FIELD = {"sigma": "sigma", "noise": "noise", "method": "method", "level": "level",
                  "strength": "strength", "target": "target", "comb_levels": "comb_levels",
                  "max_gain": "max_gain", "space": "space", "precision": "precision"}


def params_from_args(args: argparse.Namespace, **defaults) -> DeconvParams:
    """DeconvParams from ``--params`` (if any) overridden by explicitly given flags."""
    try:
        base = DeconvParams.load(args.params) if getattr(args, "params", None) else DeconvParams(**defaults)
        changes = {f: getattr(args, a) for a, f in _FLAG_TO_FIELD.items() if getattr(args, a, None) is not None}
        return base.replace(**changes)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


# --- run -------------------------------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from ..core.design import FilterDesigner
    from ..io.batch import BatchRunner, plan_jobs
    from ..io.video import video_options_from_args

    if args.sigma is None and not args.params:
        raise UsageError("--sigma is required (or --params FILE.json)")
    params = params_from_args(args)
    if args.tile is not None and args.tile < 16:
        raise UsageError(f"--tile must be >= 16 px, got {args.tile}")
    # check the parameters against the method before touching any file (e.g. sigma outside the comb's range)
    try:
        probe = params.replace(noise=0.01 if params.noise_is_auto else params.noise, level=params.level or 1e-3)
        FilterDesigner().design(probe)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        video_options = video_options_from_args(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    jobs, errors = plan_jobs(args.inputs, args.output, args.suffix, args.format, video_options.container)
    for msg in errors:
        print(f"{PROG}: error: {msg}", file=sys.stderr)
    from ..io.batch import BatchReport

    report = BatchReport(failed=len(errors), errors=list(errors))
    if jobs:
        from ..gl.engine import Deconvolver

        try:
            deconv = Deconvolver(params=params)
        except Exception as e:  # no GL context at all: nothing can be processed
            print(f"{PROG}: error: cannot create an OpenGL context: {' '.join(str(e).split())}", file=sys.stderr)
            return 1
        with deconv:
            runner = BatchRunner(deconv, params, overwrite=args.overwrite, fmt=args.format, tile=args.tile,
                                 progress=None if not args.quiet else False, debug=args.debug,
                                 video_options=video_options)
            runner.run(jobs, report)
    print(f"{PROG}: {report.summary()}", file=sys.stderr)
    return 1 if report.failed else 0


# --- fit -------------------------------------------------------------------------------------------------------
def _cmd_fit(args: argparse.Namespace) -> int:
    from ..core.design import FilterDesigner

    params = params_from_args(args)
    if params.noise_is_auto:
        raise UsageError("fit needs a numeric --noise (there is no image to estimate it from)")
    try:
        design = FilterDesigner().design(params, bits=args.bits)
    except ValueError as e:
        raise UsageError(str(e)) from None
    res = design.result
    info = {
        "method": design.method, "sigma": params.sigma, "noise_std": design.noise_std,
        "noise_var_total": design.noise_var, "level": design.level, "passes": design.plan.passes,
        "fetches_per_pixel": design.plan.fetches_per_pixel,
        "stages": [{"src": s.src, "weights": s.weights.tolist(), "taps": [t.tolist() for t in s.taps]}
                   for s in design.plan.stages],
    }
    if res is not None and hasattr(res, "coefficients"):
        info.update(coefficients=np.asarray(res.coefficients).tolist(), basis=repr(res.basis),
                    fit_rms=res.fit_rms, excess_error=res.excess_error, identity_error=res.identity_error,
                    peak_gain=res.peak_gain)
    elif res is not None:
        info.update(result=repr(res), peak_gain=float(getattr(res, "peak_gain", float("nan"))))
    if args.json:
        print(json.dumps(info, indent=2))
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
            plot_response(design, args.plot)
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
        print(f"{PROG}: error: cannot create an OpenGL context: {' '.join(str(e).split())}", file=sys.stderr)
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

    params = params_from_args(args, sigma=1.0, noise="auto")
    try:
        return run_demo(Path(args.output), params, true_noise=args.true_noise, overwrite=args.overwrite,
                        seed=args.seed)
    except ValueError as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="Real-time GPU deconvolution of mild, known blur.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="deblur images, folders (recursive) and videos")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, help="output folder (or file, for one input file)")
    _add_param_flags(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--suffix", default="", help="added to output file names, e.g. _deblur")
    p.add_argument("--format", choices=("png", "jpeg", "tiff", "webp", "bmp", "npy"), default=None,
                   help="output format (default: the input's)")
    p.add_argument("--tile", type=int, default=None, help="force tiled processing with this tile edge (px)")
    __import__("gpu_deconv.io.video", fromlist=["add_video_arguments"]).add_video_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("demo", help="built-in chart: blur, restore on the GPU, write comparisons")
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    _add_param_flags(p)
    p.add_argument("--true-noise", type=float, default=0.005, help="noise added to the chart (linear std)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("fit", help="print the filter designed for a sigma and noise")
    _add_param_flags(p)
    p.add_argument("--bits", type=int, default=None, help="integer bit depth (adds quantization noise)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="plot blur, target and achieved response")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("info", help="OpenGL renderer, version and limits")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    for mod, adder in (("apps.viewer.cli", "add_view_parser"), ("apps.export_cli", "add_export_parser")):
        try:
            module = __import__(f"gpu_deconv.{mod}", fromlist=[adder])
            getattr(module, adder)(sub)
        except ImportError:  # optional parts (viewer needs glfw + imgui-bundle)
            pass
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if getattr(args, "command", None) == "fit" and args.sigma is None and not args.params:
        ap.error("fit: --sigma is required")
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort: one line, traceback only with --debug
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
