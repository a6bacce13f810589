"""Response plots (matplotlib, an optional extra: ``pip install gpu_deconv[plot]``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..core.design import Design
from ..io.atomic import atomic_write


def response_curves(design: Design, n: int = 257) -> dict[str, np.ndarray]:
    """Blur, target and achieved responses along the x axis and the diagonal, w in [0, pi]."""
    w = np.linspace(0.0, np.pi, n)
    z = np.zeros_like(w)
    out = {"w": w}
    for name, (wx, wy) in {"axis": (w, z), "diagonal": (w / np.sqrt(2), w / np.sqrt(2))}.items():
        out[f"blur_{name}"] = design.blur.response2d(wx, wy)
        out[f"achieved_{name}"] = design.plan.response(wx, wy)
        if design.target is not None:
            out[f"target_{name}"] = design.target.response(design.blur, wx, wy)
    return out


#: Levels ``v = log2(A / sigma_n^2)`` at which the adaptive table's response is plotted.
PLOT_LEVELS = (-4.0, 0.0, 4.0, 8.0, 12.0)


def adaptive_curves(design: Any, diagonal: bool = False, levels: tuple[float, ...] = PLOT_LEVELS,
                    n: int = 256) -> dict[str, np.ndarray]:
    """The adaptive table's responses at a few local levels, and its coefficients over the level axis.

    At a pixel whose level is ``A`` the passes apply ``F_A(w) = 1 + sum_k c_k(A) L_k(w)``
    (:meth:`gpu_deconv.core.adaptive.AdaptiveTable.response`); the levels are given as
    ``v = log2(A / sigma_n^2)``, the table's axis (``sigma_n^2``: the noise variance it was solved for).

    Parameters
    ----------
    design : gpu_deconv.core.design.Design
        An adaptive design (``design.table`` set).
    diagonal : bool
        Slice along ``wx = wy`` (x axis ``|w| = sqrt(2) t``).
    levels : tuple of float
        The ``v`` of the plotted responses.

    Returns
    -------
    dict
        ``'w'`` (rad/px), ``'blur'``, ``'achieved'`` ``(len(levels), n)`` with one row per level, ``'v'``
        (the table rows' levels) and ``'coefficients'`` ``(K, rows)``: ``c_k`` over ``v``.
    """
    from ..core.adaptive import TABLE_START

    table = design.table
    t = np.linspace(0.0, math.pi, n)
    wx, wy = (t, t) if diagonal else (t, np.zeros_like(t))
    achieved = np.stack([table.response(table.noise_var * 2.0 ** v, wx, wy) for v in levels])
    coef = np.asarray(table.coefficients, dtype=np.float64)
    return {"w": t * math.sqrt(2.0) if diagonal else t, "blur": np.asarray(design.blur.response2d(wx, wy), np.float64),
            "achieved": achieved, "v": TABLE_START + np.arange(coef.shape[0], dtype=np.float64),
            "coefficients": np.ascontiguousarray(coef.T)}


def plot_response(design: Design, path: str | Path, title: str | None = None, *,
                  overwrite: bool = True) -> Path:
    """Write a PNG of blur response B, target T and the achieved (GPU) response, on the axis and diagonal.

    The file is written atomically; an existing one is replaced only with ``overwrite``.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install gpu_deconv[plot]``).
    FileError
        The file exists (without ``overwrite``) or cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, constrained_layout=True)
    if design.adaptive:  # the response at a few local levels (the table's axis)
        for ax, diagonal in ((axes[0], False), (axes[1], True)):
            c = adaptive_curves(design, diagonal)
            ax.plot(c["w"], c["blur"], color="0.5", label="blur B")
            for v, row in zip(PLOT_LEVELS, c["achieved"], strict=True):
                ax.plot(c["w"], row, lw=1.5, label=f"F at v = {v:g}")
            ax.axhline(1.0, color="0.8", lw=0.8)
            ax.set_xlabel("|w| (rad/px)")
            ax.set_title("diagonal (wx = wy)" if diagonal else "along x (wy = 0)")
            ax.set_xlim(0, np.pi)
            ax.grid(alpha=0.3)
    c = {} if design.adaptive else response_curves(design)
    for ax, name, label in ((axes[0], "axis", "along x (wy = 0)"), (axes[1], "diagonal", "diagonal (wx = wy)")):
        if design.adaptive:
            break
        r = c["w"]
        ax.plot(r, c[f"blur_{name}"], color="0.5", label="blur B")
        if f"target_{name}" in c:
            ax.plot(r, c[f"target_{name}"], "k--", label="target T")
        ax.plot(r, c[f"achieved_{name}"], color="C3", lw=2, label=f"achieved ({design.method})")
        ax.plot(r, c[f"blur_{name}"] * c[f"achieved_{name}"], color="C0", lw=1, label="B x achieved")
        ax.axhline(1.0, color="0.8", lw=0.8)
        ax.set_xlabel("|w| (rad/px)")
        ax.set_title(label)
        ax.set_xlim(0, np.pi)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gain")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title or design.summary(), fontsize=9)
    path = Path(path)
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), overwrite=overwrite)
    finally:
        plt.close(fig)
    return path
