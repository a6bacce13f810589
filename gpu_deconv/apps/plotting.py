"""Response plots (matplotlib, an optional extra: ``pip install gpu_deconv[plot]``)."""

from __future__ import annotations

from pathlib import Path

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

    c = response_curves(design)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, constrained_layout=True)
    for ax, name, label in ((axes[0], "axis", "along x (wy = 0)"), (axes[1], "diagonal", "diagonal (wx = wy)")):
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
