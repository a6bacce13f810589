"""``gpu-deconv export``: write the designed filter as an mpv user shader or a stand-alone GLSL file.

    gpu-deconv export --format mpv|glsl --sigma S --noise N [--mode adaptive|global] [any filter flag]
                      [--params FILE.json] [-o FILE] [--overwrite]

No image is involved, so the sigma and the noise must be numbers. Two modes:

* ``adaptive`` (the default for the methods that support it: laplacian, comb and auto): the locally
  adaptive filter of :mod:`gpu_deconv.core.adaptive`, its coefficient table solved once for the blur and
  noise (:func:`adaptive_table`) and embedded in the shader; the spectrum level is measured per pixel, so
  ``--level``, ``--target``, ``--min-gain`` and ``--max-gain`` do not apply (a one-line note says so when
  they are given).
* ``global``: one filter for the whole frame (:class:`~gpu_deconv.core.design.FilterDesigner`), every
  method; the natural-spectrum level, when not given, is the designer's default
  (:data:`gpu_deconv.core.spectrum.DEFAULT_LEVEL`) - a filter for typical photographs.

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
from typing import TYPE_CHECKING, Any

from ..core.params import ADAPTIVE_METHODS
from ..errors import FileError, UsageError
from ..io.atomic import write_text_atomic
from .flags import add_param_arguments, params_from_args

if TYPE_CHECKING:
    from ..core.adaptive import AdaptiveTable
    from ..core.params import DeconvParams

PROG = "gpu-deconv export"
#: Export formats (:func:`~gpu_deconv.apps.export.export_glsl`, :func:`~gpu_deconv.apps.export.export_mpv`).
FORMATS = ("glsl", "mpv")
#: Parameters the adaptive mode does not use (the level is measured per pixel, the target is fixed).
ADAPTIVE_UNUSED = ("level", "target", "min_gain", "max_gain")


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


def adaptive_table(params: DeconvParams) -> AdaptiveTable:
    """The adaptive mode's coefficient table for ``params`` (numeric sigma and noise; method laplacian, comb
    or auto, which picks by sigma as :func:`gpu_deconv.core.design.auto_method` does).

    The noise variance is :func:`gpu_deconv.core.adaptive.noise_variance` of the given noise (linear std) for
    float input - the global export's convention: an 8-bit source's quantization is part of ``--noise``.

    Raises
    ------
    ValueError
        A sigma outside the basis' useful range (the message says the range).
    """
    from ..core.adaptive import AdaptiveSolver, noise_variance
    from ..core.blur import make_blur
    from ..core.comb import Comb
    from ..core.design import auto_method
    from ..core.gaussian_laplacian import GaussianLaplacian

    blur = make_blur(params.blur, params.sigma, params.binomial_order)
    sigma = getattr(blur, "sigma", params.sigma)
    method, opts = (params.method, {}) if params.method != "auto" else auto_method(sigma)
    basis = Comb(opts.get("comb_levels", params.comb_levels)) if method == "comb" else GaussianLaplacian()
    basis.check_sigma(sigma)
    return AdaptiveSolver(basis).solve(blur, noise_variance(float(params.noise), None))


def run_export(args: argparse.Namespace) -> int:
    """Run ``gpu-deconv export``; returns the exit code (0, 1 or 2) and prints errors as one line."""
    from ..core.design import FilterDesigner
    from ..core.params import DeconvParams
    from .export import (
        adaptive_description,
        design_description,
        export_glsl,
        export_glsl_adaptive,
        export_mpv,
        export_mpv_adaptive,
    )

    if args.sigma is None and not args.params:
        return _error("--sigma is required (or --params FILE.json)", 2)
    try:
        params = params_from_args(args)
        if params.noise_is_auto or params.sigma_is_auto:
            raise UsageError("export needs a numeric --sigma and --noise (there is no image to estimate them from)")
        if params.sigma_map is not None:
            raise UsageError("--sigma-map is not exported (the shaders have no map texture); export one sigma")
        if params.sigma_per_channel:
            raise UsageError("a per-channel --sigma R,G,B is not exported (the shaders have one table); export "
                             "one sigma")
        if args.runtime_params and args.format != "mpv":
            raise UsageError("--runtime-params is for --format mpv (a GLSL host sets its own uniforms)")
        # --mode is a parameter flag; as in the engine, the baselines always run globally, but asking for
        # the adaptive mode with one of them explicitly is an error here (nothing would honour it)
        mode = params.mode if params.method in ADAPTIVE_METHODS else "global"
        if getattr(args, "mode", None) == "adaptive" and params.method not in ADAPTIVE_METHODS:
            raise UsageError(f"--mode adaptive works with the methods {', '.join(ADAPTIVE_METHODS)}, "
                             f"not {params.method!r} (use --mode global)")
        # a runtime strength blends the full-strength filter with the identity inside the shader
        strength = 1.0 if args.runtime_params else params.strength
        runtime = params.strength if args.runtime_params else None
        if mode == "adaptive":
            table = adaptive_table(params)
            defaults = DeconvParams()
            unused = [n for n in ADAPTIVE_UNUSED if getattr(params, n) != getattr(defaults, n)]
        else:
            if params.limiter is not None:
                raise UsageError("--limiter needs the adaptive mode (methods laplacian, comb, auto)")
            designer = FilterDesigner()
            designer.validate(params)
            design = designer.design(params.replace(strength=strength))
    except (UsageError, ValueError) as e:
        return _error(e, 2)
    if mode == "adaptive":
        if unused:
            flags = ", ".join("--" + n.replace("_", "-") for n in unused)
            print(f"{PROG}: note: {flags} {'is' if len(unused) == 1 else 'are'} not used by the adaptive mode (the "
                  "level is measured per pixel); --mode global uses them", file=sys.stderr)
        desc = adaptive_description(params, table)
        text = (export_mpv_adaptive(table, desc, strength=strength, runtime_strength=runtime,
                                    limiter=params.limiter) if args.format == "mpv"
                else export_glsl_adaptive(table, desc, strength=strength, limiter=params.limiter))
    else:
        desc = design_description(design)
        text = (export_mpv(design.plan, desc, runtime_strength=runtime) if args.format == "mpv"
                else export_glsl(design.plan, desc))
    out = None if args.output in (None, "-") else Path(args.output)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        write_text_atomic(out, text, overwrite=bool(args.overwrite))
    except FileError as e:
        return _error(e, 1)
    return 0
