"""``gpu-deconv export``: write the designed filter as an mpv user shader or a stand-alone GLSL file.

    gpu-deconv export --format mpv|glsl --sigma S --noise N [any filter flag] [--params FILE.json]
                      [-o FILE] [--overwrite]

No image is involved, so the noise must be a number and the natural-spectrum level, when not given,
is the designer's default (:data:`gpu_deconv.core.spectrum.DEFAULT_LEVEL`) - a filter for typical photographs.

Exit codes follow the rest of the CLI: 0 written; 2 for usage errors (malformed flags, caught by
argparse, and parameter values that :class:`~gpu_deconv.core.params.DeconvParams` or the method rejects,
caught before any file is touched); 1 when the file cannot be written. Errors are one line on stderr.

The output is written atomically (:mod:`gpu_deconv.io.atomic`), so a reader (mpv watching the file, a
build) never sees half a shader, and an existing file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import FileError, UsageError
from ..io.atomic import write_text_atomic
from .flags import add_param_arguments, params_from_args

PROG = "gpu-deconv export"
#: Export formats (:func:`~gpu_deconv.apps.export.export_glsl`, :func:`~gpu_deconv.apps.export.export_mpv`).
FORMATS = ("glsl", "mpv")


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` sub-command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    The parser's default ``func`` is :func:`run_export`, so ``args.func(args)`` runs it.
    """
    p = subparsers.add_parser(
        "export",
        help="write the filter as an mpv user shader or a stand-alone GLSL 330 file",
        description="Design the filter for a blur and noise level and write it as shader source: 'mpv' is a "
        "user shader (mpv --glsl-shaders=FILE), 'glsl' a self-contained GLSL 330 file for other engines.",
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="mpv user shader or plain GLSL 330")
    add_param_arguments(p)
    p.add_argument("--runtime-params", action="store_true",
                   help="mpv: strength as a //!PARAM players can change while playing (mpv >= 0.36, libplacebo >= 5; "
                        "mpv 0.35 rejects it), default --strength; without it strength is baked in")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run_export)
    return p


def _error(msg: object, code: int) -> int:
    print(f"{PROG}: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return code


def run_export(args: argparse.Namespace) -> int:
    """Run ``gpu-deconv export``; returns the exit code (0, 1 or 2) and prints errors as one line."""
    from ..core.design import FilterDesigner
    from .export import design_description, export_glsl, export_mpv

    if args.sigma is None and not args.params:
        return _error("--sigma is required (or --params FILE.json)", 2)
    try:
        params = params_from_args(args)
        if params.noise_is_auto or params.sigma_is_auto:
            raise UsageError("export needs a numeric --sigma and --noise (there is no image to estimate them from)")
        if args.runtime_params and args.format != "mpv":
            raise UsageError("--runtime-params is for --format mpv (a GLSL host sets its own uniforms)")
        designer = FilterDesigner()
        designer.validate(params)
        # a runtime strength blends the full-strength filter with the identity inside the shader
        design = designer.design(params.replace(strength=1.0) if args.runtime_params else params)
    except (UsageError, ValueError) as e:
        return _error(e, 2)
    out = None if args.output in (None, "-") else Path(args.output)
    desc = design_description(design)
    if args.format == "mpv":
        text = export_mpv(design.plan, desc, runtime_strength=params.strength if args.runtime_params else None)
    else:
        text = export_glsl(design.plan, desc)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        write_text_atomic(out, text, overwrite=bool(args.overwrite))
    except FileError as e:
        return _error(e, 1)
    return 0
