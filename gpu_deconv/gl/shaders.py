"""Finding and assembling the GLSL sources in ``shaders/``.

The ``.frag``/``.vert`` files are real GLSL with three kinds of marker comments that this module
expands by plain string substitution (no GL needed, so it is testable anywhere):

* ``//@defines`` (right after ``#version``) - replaced by ``#define NAME VALUE`` lines; the variant
  switches (level count, colour layout, sRGB encode...) are compile-time so Mesa llvmpipe, which runs
  both sides of every ``if``, never pays for a disabled feature;
* ``//@include name.glsl`` - replaced by that file's text, recursively and once per file (GLSL 3.30 has no
  ``#include``);
* ``//@body`` and ``//@decls`` - replaced by generated code (the unrolled, shape-specialised tap loops
  of the mixture passes and, for packed intermediates, their output declarations; see
  :mod:`gpu_deconv.gl.executor`); ``//@name`` - a further generated part (``sections``).

Lookup order for the directory: ``$GPU_DECONV_SHADER_DIR``, then ``gpu_deconv/shaders`` inside the
package (an installed wheel: ``pyproject.toml`` force-includes the top-level ``shaders/`` there), then
``<repo>/shaders`` next to the package (a source checkout or editable install).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

#: Every shader file the engine needs; the lookup accepts a directory only if it holds all of them.
SHADER_FILES = (
    "fullscreen.vert",
    "mixture_h.frag",
    "mixture_v.frag",
    "copy.frag",
    "atrous.frag",
    "stats_reduce.frag",
    "stats_fused.comp",
    "mixture_fused.comp",
    "adaptive_bands.frag",
    "adaptive_energy.frag",
    "adaptive_reduce.frag",
    "adaptive_apply.frag",
    "adaptive_apply.glsl",
    "adaptive_apply_fused.comp",
    "adaptive_bands_fused.comp",
    "adaptive_lookup.glsl",
    "limiter.glsl",
    "common.glsl",
    "mirror.glsl",
    "srgb.glsl",
    "viewer_blur.frag",
    "viewer_display.frag",
    "viewer_overlay.frag",
)

_ENV = "GPU_DECONV_SHADER_DIR"


class ShaderNotFoundError(FileNotFoundError):
    """The shader directory (or one of its files) could not be found."""


def _candidates() -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent  # .../gpu_deconv
    out = []
    env = os.environ.get(_ENV)
    if env:
        out.append(Path(env))
    out.append(pkg / "shaders")
    out.append(pkg.parent / "shaders")
    return out


def shader_dir() -> Path:
    """The directory holding the GLSL sources (see the module docstring for the lookup order).

    Raises
    ------
    ShaderNotFoundError
        If no candidate directory holds every file of :data:`SHADER_FILES`; the message lists where
        it looked, which is what a broken wheel or a moved checkout needs to be diagnosed.
    """
    tried = []
    for cand in _candidates():
        tried.append(str(cand))
        if all((cand / f).is_file() for f in SHADER_FILES):
            return cand
    raise ShaderNotFoundError(
        "gpu_deconv shaders not found; looked in: " + ", ".join(tried)
        + f" (set ${_ENV} to a directory holding {', '.join(SHADER_FILES)})"
    )


@cache
def _read(directory: str, name: str) -> str:
    path = Path(directory) / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShaderNotFoundError(f"shader file {path} not found") from None


def load_source(name: str) -> str:
    """Raw text of one shader file (cached)."""
    return _read(str(shader_dir()), name)


def _expand_includes(name: str, seen: set[str]) -> list[str]:
    """The file's lines with ``//@include`` markers replaced by the files' text, recursively, each file once."""
    out = []
    for line in load_source(name).splitlines():
        stripped = line.strip()
        if stripped.startswith("//@include "):
            inc = stripped[len("//@include "):].strip()
            if inc in seen:  # already pasted above (e.g. mirror.glsl via common.glsl and directly)
                continue
            seen.add(inc)
            out.append(f"// ---- begin {inc} ----")
            out.extend(_expand_includes(inc, seen))
            out.append(f"// ---- end {inc} ----")
        else:
            out.append(line)
    return out


def build_source(
    name: str,
    defines: Mapping[str, object] | None = None,
    body: str | None = None,
    decls: str | None = None,
    sections: Mapping[str, str] | None = None,
) -> str:
    """Expand a shader file's markers into compilable GLSL.

    Parameters
    ----------
    name : str
        File name inside :func:`shader_dir`, e.g. ``"mixture_h.frag"``.
    defines : mapping, optional
        ``NAME -> value``; ``True`` emits ``#define NAME``, ``False``/``None`` omits it, anything else
        ``#define NAME value``.
    body : str, optional
        Code for the ``//@body`` marker (required when the SPECIALIZED define is set, since the file's
        specialised branch is empty without it).
    decls : str, optional
        Code for the ``//@decls`` marker (global declarations).
    sections : mapping, optional
        ``name -> code`` for further ``//@name`` markers (a file with two generated parts, e.g. a compute
        walk that calls a function whose body is generated too).

    Returns
    -------
    str
        The source; ``#version`` stays the first directive, as GLSL requires.
    """
    lines: list[str] = []
    for line in _expand_includes(name, set()):
        stripped = line.strip()
        if stripped == "//@defines":
            for key, val in (defines or {}).items():
                if val is True:
                    lines.append(f"#define {key}")
                elif val is not False and val is not None:
                    lines.append(f"#define {key} {val}")
        elif stripped == "//@body":
            if body is not None:
                lines.append(body)
        elif stripped == "//@decls":
            if decls is not None:
                lines.append(decls)
        elif stripped.startswith("//@") and sections and stripped[3:] in sections:
            lines.append(sections[stripped[3:]])
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
