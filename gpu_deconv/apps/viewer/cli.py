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

from ...errors import UsageError, one_line
from ..flags import add_param_arguments, params_from_args

PROG = "gpu-deconv view"

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
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {v}")
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
    add_param_arguments(p)
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
    v.add_argument("--overlay", choices=("none", "level", "sigma"), default="none",
                   help="false-colour overlay: the adaptive mode's local level A(x), or (with --sigma auto) the "
                        "blind sigma per 64 px cell (key V cycles)")
    v.add_argument("--overlay-alpha", type=_fraction, default=0.6, metavar="A",
                   help="opacity of the overlay, 0..1 (default 0.6)")
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


def options_from_args(args: argparse.Namespace):
    """:class:`~gpu_deconv.apps.viewer.app.ViewerOptions` from parsed arguments (raises ValueError on bad values)."""
    from ...core.design import FilterDesigner
    from .app import ViewerOptions
    from .keys import parse_inject

    params = params_from_args(args)
    if params.sigma_per_channel:
        raise ValueError("the viewer's sigma slider is one sigma; a per-channel --sigma R,G,B is for run")
    FilterDesigner().validate(params)  # the method's own limits, before any window opens
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
        screenshot_dir=args.screenshot_dir, overlay=args.overlay, overlay_alpha=args.overlay_alpha,
        chart_size=(args.chart_size[1], args.chart_size[0]) if args.chart_size else None,
    )


def run_view(args: argparse.Namespace) -> int:
    """Run ``gpu-deconv view``; the exit code (0 on a clean exit)."""
    try:
        opts = options_from_args(args)
    except (TypeError, ValueError, UsageError) as e:
        print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
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
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    if args.debug:
        return run_view(args)
    try:
        return run_view(args)
    except Exception as e:  # last resort: one line (the --debug flag shows the traceback)
        print(f"{PROG}: error: {type(e).__name__}: {one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
