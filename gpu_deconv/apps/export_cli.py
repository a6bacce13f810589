"""``gpu-deconv export``: write the designed filter as an mpv user shader or a stand-alone GLSL file.

    gpu-deconv export --target mpv|glsl --sigma S --noise N [--method M] [--level A] [--strength S]
                      [-o FILE] [--overwrite]

No image is involved, so the noise must be a number and the natural-spectrum level, when not given,
is the designer's default (:data:`gpu_deconv.core.spectrum.DEFAULT_LEVEL`) - a filter for typical photographs.

Exit codes follow the rest of the CLI: 0 written; 2 for usage errors (malformed flags, caught by
argparse, and parameter values that :class:`~gpu_deconv.core.params.DeconvParams` rejects, caught before any
file is touched); 1 when the filter cannot be designed or the file cannot be written. Errors are one
line on stderr.

The output is written atomically: a temporary file in the target's folder, fsync'ed, then renamed into
place, so a reader (mpv watching the file, a build) never sees half a shader. Without ``--overwrite`` an
existing file is refused, and the final step is a hard link, which fails rather than replacing a file
that appeared meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.params import METHODS, DeconvParams
from ..errors import FileError
from ..io.atomic import write_text_atomic

PROG = "gpu-deconv export"


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    The parser's default ``func`` is :func:`run_export`, so ``args.func(args)`` runs it.
    """
    from .export import TARGETS

    p = subparsers.add_parser(
        "export",
        help="write the filter as an mpv user shader or a stand-alone GLSL 330 file",
        description="Design the filter for a blur and noise level and write it as shader source: 'mpv' is a "
        "user shader (mpv --glsl-shaders=FILE), 'glsl' a self-contained GLSL 330 file for other engines.",
    )
    p.add_argument("--target", required=True, choices=TARGETS, help="mpv user shader or plain GLSL 330")
    p.add_argument("--sigma", required=True, type=float, help="blur sigma in pixels")
    p.add_argument("--noise", required=True, type=float, help="noise std in linear [0,1] units")
    p.add_argument("--method", choices=METHODS, default="auto", help="filter method (default: auto)")
    p.add_argument("--level", type=float, default=None,
                   help="natural-spectrum level A (default: the designer's default level)")
    p.add_argument("--strength", type=float, default=1.0, help="0 = identity, 1 = full filter (baked in)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run_export)
    return p


def _error(msg: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return code


def run_export(args: argparse.Namespace) -> int:
    """Run ``gpu-deconv export``; returns the exit code (0, 1 or 2) and prints errors as one line."""
    from ..core.design import FilterDesigner
    from .export import design_description, export_glsl, export_mpv

    try:
        params = DeconvParams(sigma=args.sigma, noise=args.noise, method=args.method, level=args.level,
                              strength=args.strength)
    except (TypeError, ValueError) as e:
        return _error(e, 2)
    out = None if args.output in (None, "-") else Path(args.output)
    if out is not None:
        if out.exists() and not args.overwrite:
            return _error(f"{out}: already exists (use --overwrite to replace it)", 1)
        if not out.parent.is_dir():
            return _error(f"{out}: no such folder {str(out.parent)!r}", 1)
    try:
        design = FilterDesigner().design(params)
    except ValueError as e:
        return _error(e, 1)
    desc = design_description(design)
    text = export_mpv(design.plan, desc) if args.target == "mpv" else export_glsl(design.plan, desc)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        write_text_atomic(out, text, overwrite=bool(args.overwrite))
    except FileError as e:
        return _error(str(e), 1)
    return 0
