"""``gpu-deconv view [PATH]``: the interactive viewer's command line.

``gpu_deconv/cli.py`` calls :func:`add_view_parser` on its sub-parsers; ``python -m gpu_deconv.apps.viewer.cli``
runs the same command on its own. This module imports neither glfw nor imgui-bundle at import time,
so ``gpu-deconv --help`` works where they are missing; :func:`run_view` reports their absence in one line.

Exit codes: 0 clean exit; 1 the viewer could not start (no display, no OpenGL 3.3, missing packages);
2 bad command line or parameters; 3 GL errors were seen with ``--check-gl``.
"""

from __future__ import annotations

import argparse
import sys

from ...core.params import BLURS, METHODS, TARGETS, DeconvParams, parse_noise

PROG = "gpu-deconv view"

#: command-line flag (argparse dest) -> DeconvParams field
PARAM_FLAGS = {
    "sigma": "sigma", "noise": "noise", "method": "method", "blur": "blur", "binomial_order": "binomial_order",
    "target": "target", "level": "level", "min_gain": "min_gain", "max_gain": "max_gain",
    "strength": "strength", "comb_levels": "comb_levels", "fir_taps": "fir_taps",
    "unsharp_radius": "unsharp_radius", "unsharp_amount": "unsharp_amount",
    "polyblur_alpha": "polyblur_alpha", "polyblur_beta": "polyblur_beta", "space": "space",
    "precision": "precision",
}


def _size(v: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in v.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 1280x720, got {v!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {v!r}")
    return w, h


def _point(v: str) -> tuple[float, float]:
    try:
        x, y = (float(t) for t in v.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in image pixels, got {v!r}") from None
    return x, y


def _fraction(v: str) -> float:
    f = float(v)
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"split must be in [0, 1], got {v}")
    return f


def add_view_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``view`` sub-command to ``gpu-deconv``'s sub-parsers and return its parser."""
    p = subparsers.add_parser(
        "view",
        help="interactive viewer: image, folder, video or the test chart, with live controls",
        description="Interactive real-time viewer (glfw + Dear ImGui). Press F1 in the window for every "
                    "shortcut. Scripted mode (--frames N --screenshot out.png) renders N frames, saves the "
                    "window and exits.",
    )
    configure_parser(p)
    p.set_defaults(func=run_view)
    return p


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add the viewer's arguments to ``p``."""
    p.add_argument("path", nargs="?", default=None,
                   help="image, folder of images (next/previous) or video; omitted: the built-in test chart")
    g = p.add_argument_group("deconvolution parameters (sigma in px, noise as a linear-light std)")
    g.add_argument("--params", metavar="FILE.json", default=None,
                   help="start from saved parameters (flags below override them); Ctrl+S saves here too")
    g.add_argument("--sigma", type=float, default=None)
    g.add_argument("--noise", type=parse_noise, default=None, help="a number or 'auto'")
    g.add_argument("--method", choices=METHODS, default=None)
    g.add_argument("--blur", choices=BLURS, default=None)
    g.add_argument("--binomial-order", type=int, default=None)
    g.add_argument("--target", choices=TARGETS, default=None)
    g.add_argument("--level", type=float, default=None)
    g.add_argument("--min-gain", type=float, default=None)
    g.add_argument("--max-gain", type=float, default=None)
    g.add_argument("--strength", type=float, default=None)
    g.add_argument("--comb-levels", type=int, choices=(2, 3), default=None)
    g.add_argument("--fir-taps", type=int, default=None)
    g.add_argument("--unsharp-radius", type=float, default=None)
    g.add_argument("--unsharp-amount", type=float, default=None)
    g.add_argument("--polyblur-alpha", type=float, default=None)
    g.add_argument("--polyblur-beta", type=float, default=None)
    g.add_argument("--space", choices=("auto", "srgb", "linear"), default=None)
    g.add_argument("--precision", type=int, choices=(16, 32), default=None)
    v = p.add_argument_group("view")
    v.add_argument("--size", type=_size, default=None, metavar="WxH", help="window size (default: fit the image)")
    v.add_argument("--split", type=_fraction, default=None,
                   help="split view with the divider at this fraction of the width (0 = all 'after')")
    v.add_argument("--show", choices=("split", "before", "after"), default=None, help="initial view mode")
    v.add_argument("--zoom", type=float, default=None, help="initial zoom (1 = actual pixels; default: fit)")
    v.add_argument("--center", type=_point, default=None, metavar="X,Y",
                   help="image point (pixels) to centre the view on, e.g. with --zoom 4")
    v.add_argument("--chart-size", type=_size, default=None, metavar="WxH",
                   help="size of the built-in test chart (default 768x512)")
    v.add_argument("--no-ui", action="store_true", help="hide the control panel (Tab shows it)")
    sim = v.add_mutually_exclusive_group()
    sim.add_argument("--simulate", dest="simulate", action="store_true", default=None,
                     help="blur + noise the input first (default for the test chart)")
    sim.add_argument("--no-simulate", dest="simulate", action="store_false")
    v.add_argument("--sim-noise", type=float, default=0.005,
                   help="noise the simulation adds while --noise is auto (default 0.005)")
    v.add_argument("--seed", type=int, default=0, help="seed of the simulated noise")
    v.add_argument("--no-vsync", action="store_true")
    s = p.add_argument_group("scripted mode (tests, docs)")
    s.add_argument("--frames", type=int, default=None, metavar="N", help="render N frames, then exit")
    s.add_argument("--screenshot", metavar="OUT.png", default=None,
                   help="with --frames: save the window framebuffer after the last frame")
    s.add_argument("--screenshot-dir", default=".", help="folder for F12 screenshots (default: .)")
    s.add_argument("--check-gl", action="store_true", help="check for GL errors every frame (exit 3 on any)")
    s.add_argument("--stats", metavar="FILE.json", default=None, help="write counters and timings at exit")
    s.add_argument("--inject", metavar="EVENTS", default=None,
                   help="scripted input fed through the glfw callbacks, e.g. '2:key:S;3:scroll:200,150,1;"
                        "4:drag:10,10,60,10;5:drop:path' (FRAME:KIND:ARGS; key names as glfw.KEY_*)")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def options_from_args(args: argparse.Namespace):
    """:class:`~gpu_deconv.apps.viewer.app.ViewerOptions` from parsed arguments (raises ValueError on bad values)."""
    from .app import ViewerOptions
    from .keys import parse_inject

    base = DeconvParams.load(args.params) if args.params else DeconvParams()
    changes = {f: getattr(args, a) for a, f in PARAM_FLAGS.items() if getattr(args, a, None) is not None}
    params = base.replace(**changes)
    from ...core.design import FilterDesigner

    # the method's own limits (e.g. sigma outside the blur model's or the comb's range), before any window opens
    FilterDesigner().design(params.replace(noise=0.01 if params.noise_is_auto else params.noise,
                                           level=params.level or 1e-3))
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 <= args.sim_noise <= 1.0:
        raise ValueError(f"--sim-noise must be in [0, 1], got {args.sim_noise:g}")
    if args.zoom is not None and not 1 / 32 <= args.zoom <= 64:
        raise ValueError(f"--zoom must be in [1/32, 64], got {args.zoom:g}")
    if args.screenshot and args.frames is None:
        raise ValueError("--screenshot needs --frames N (press F12 in the window for interactive screenshots)")
    mode = args.show or "split"
    split = 0.5 if args.split is None else args.split
    if args.split is not None and args.show is None:
        mode = "split"
    return ViewerOptions(
        path=args.path, params=params, size=args.size, frames=args.frames, screenshot=args.screenshot,
        no_ui=args.no_ui, mode=mode, split=split, zoom=args.zoom, center=args.center, simulate=args.simulate,
        sim_noise=args.sim_noise, seed=args.seed, check_gl=args.check_gl,
        inject=parse_inject(args.inject) if args.inject else [], stats_path=args.stats,
        vsync=not args.no_vsync and args.frames is None, params_path=args.params or "gpu_deconv_params.json",
        screenshot_dir=args.screenshot_dir,
        chart_size=(args.chart_size[1], args.chart_size[0]) if args.chart_size else None,
    )


def run_view(args: argparse.Namespace) -> int:
    """Run ``gpu-deconv view``; the exit code (0 on a clean exit)."""
    try:
        opts = options_from_args(args)
    except (TypeError, ValueError) as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    from .app import ViewerError, run_viewer

    try:
        return run_viewer(opts)
    except ViewerError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    """``python -m gpu_deconv.apps.viewer.cli [PATH] [options]``."""
    ap = argparse.ArgumentParser(prog=PROG, description="Interactive real-time deconvolution viewer")
    configure_parser(ap)
    args = ap.parse_args(argv)
    if args.debug:
        return run_view(args)
    try:
        return run_view(args)
    except Exception as e:  # last resort: one line (the --debug flag shows the traceback)
        print(f"{PROG}: error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
