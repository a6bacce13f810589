"""Command-line flags for :class:`~gpu_deconv.core.params.DeconvParams`, generated from its field specs.

Every command that takes filter parameters (``run``, ``view``, ``export``, ``fit``, ``demo``) calls
:func:`add_param_arguments`, so each field has exactly one flag (``--name-with-dashes``) whose help shows
what it is, its range and its default, and :func:`params_from_args` turns the parsed flags into parameters:
``--params FILE.json`` first, then every flag given explicitly on top (flags default to "not given", so a
file's values survive unless overridden).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.params import DeconvParams, ParamSpec, param_specs
from ..errors import UsageError


def _default_text(spec: ParamSpec, default: Any) -> str:
    if default is None:
        return str(spec.optional)
    if default == "auto" and spec.auto:
        return f"auto, {spec.auto}"
    return f"{default:g}" if isinstance(default, float) else str(default)


def _argparse_type(name: str, spec: ParamSpec):
    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{name} {e}") from None

    parse.__name__ = name  # argparse names the type in its error messages
    return parse


def add_param_arguments(parser: argparse.ArgumentParser, title: str | None = None) -> None:
    """Add ``--params FILE.json`` and one flag per :class:`DeconvParams` field to ``parser``."""
    g = parser.add_argument_group(title or "filter parameters (sigma in px; noise as a linear-light std)")
    g.add_argument("--params", metavar="FILE.json", default=None,
                   help="start from parameters saved by the viewer (Ctrl+S); flags given here override them")
    for name, (spec, default) in param_specs().items():
        metavar = None if spec.choices else name.split("_")[-1].upper()
        help_text = f"{spec.help}; {spec.range_text()} (default: {_default_text(spec, default)})"
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_argparse_type(name, spec), default=None,
                       choices=spec.choices, metavar=metavar, help=help_text.replace("%", "%%"))


def params_from_args(args: argparse.Namespace, **defaults: Any) -> DeconvParams:
    """``DeconvParams`` from ``--params`` (or ``defaults``) overridden by the flags given explicitly.

    Raises
    ------
    UsageError
        A parameter file that cannot be read, or a value outside its range (the message quotes the range).
    """
    try:
        path = getattr(args, "params", None)
        base = DeconvParams.load(path) if path else DeconvParams(**defaults)
        changes = {n: v for n in param_specs() if (v := getattr(args, n, None)) is not None}
        return base.replace(**changes)
    except (TypeError, ValueError) as e:
        raise UsageError(" ".join(str(e).split())) from None
