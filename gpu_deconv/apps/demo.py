"""The built-in demo: a sharp chart made by code, blurred with a known sigma and noise, restored on the
GPU (headless), written out with a side-by-side comparison and a response plot, PSNR printed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..core.chart import blur_and_noise, psnr, test_chart
from ..core.colour import linear_to_srgb
from ..core.params import DeconvParams
from ..errors import FileError
from ..io.images import write_image

NAMES = ("original.png", "blurred.png", "restored.png", "comparison.png", "response.png")


def to_srgb8(x: np.ndarray) -> np.ndarray:
    """Linear float -> sRGB-encoded uint8 (clipped)."""
    return np.clip(np.rint(linear_to_srgb(np.clip(x, 0.0, 1.0)) * 255.0), 0, 255).astype(np.uint8)


def comparison_strip(images: list[np.ndarray], labels: list[str], crop: tuple[slice, slice] | None = None,
                     zoom: int = 2) -> np.ndarray:
    """Side-by-side sRGB uint8 panels (cropped, nearest-neighbour zoomed, labelled with the chart font)."""
    from ..core.chart import text_mask

    panels = []
    for img, label in zip(images, labels, strict=True):
        a = to_srgb8(img[crop] if crop else img)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        a = np.repeat(np.repeat(a, zoom, axis=0), zoom, axis=1)
        bar = np.full((22, a.shape[1], 3), 255, np.uint8)
        m = text_mask(label, 2)[: 18, : a.shape[1] - 8]
        bar[2 : 2 + m.shape[0], 6 : 6 + m.shape[1]][m > 0.5] = 0
        panels.append(np.concatenate([bar, a], axis=0))
        panels.append(np.full((panels[-1].shape[0], 6, 3), 255, np.uint8))
    return np.concatenate(panels[:-1], axis=1)


def run_demo(out: Path, params: DeconvParams, *, true_noise: float = 0.005, overwrite: bool = False,
             seed: int = 0, log=print) -> int:
    """Run the demo into folder ``out``; returns the exit code. Raises ValueError for bad parameters."""
    out.mkdir(parents=True, exist_ok=True)
    existing = [n for n in NAMES if (out / n).exists()]
    if existing and not overwrite:
        print(f"gpu-deconv: error: {out / existing[0]}: output exists; pass --overwrite to replace it",
              file=sys.stderr)
        return 1
    sharp = test_chart()
    blurred = blur_and_noise(sharp, params.sigma, true_noise, seed)
    from ..gl.engine import Deconvolver

    t0 = time.perf_counter()
    with Deconvolver(params=params) as d:
        t_ctx = time.perf_counter() - t0
        restored = d.process(blurred)  # first call compiles shaders and allocates
        t1 = time.perf_counter()
        for _ in range(3):
            restored = d.process(blurred)
        t_frame = (time.perf_counter() - t1) / 3
        design = d.design
        renderer = d.ctx.info.get("GL_RENDERER", "?")
        timings = dict(getattr(d, "timings", {}) or {})
    p_blur, p_rest = psnr(blurred, sharp), psnr(restored, sharp)
    try:
        for name, img in (("original.png", sharp), ("blurred.png", blurred), ("restored.png", restored)):
            write_image(out / name, to_srgb8(img), overwrite=overwrite)
        h, w = sharp.shape[:2]
        crop = (slice(0, min(h, 256)), slice(0, min(w, 320)))
        strip = comparison_strip([sharp, blurred, restored], ["ORIGINAL", f"BLURRED {p_blur:.1f} DB",
                                                               f"RESTORED {p_rest:.1f} DB"], crop)
        write_image(out / "comparison.png", strip, overwrite=overwrite)
    except FileError as e:
        print(f"gpu-deconv: error: {e}", file=sys.stderr)
        return 1
    plot_note = ""
    try:
        from .plotting import plot_response

        plot_response(design, out / "response.png", overwrite=overwrite)
    except ImportError:
        plot_note = " (response.png skipped: pip install 'gpu_deconv[plot]' for matplotlib)"
    log(f"renderer      {renderer}")
    log(f"chart         {w}x{h} linear RGB; blur sigma {params.sigma:g} px, noise {true_noise:g} (linear std)")
    log(f"design        {design.summary()}")
    log(f"PSNR          blurred {p_blur:.2f} dB -> restored {p_rest:.2f} dB ({p_rest - p_blur:+.2f} dB)")
    gpu = timings.get("gpu")
    gpu_txt = f", GPU {gpu:.2f} ms" if gpu else ""
    log(f"time          context {t_ctx * 1e3:.0f} ms; per frame {t_frame * 1e3:.1f} ms incl. upload/readback{gpu_txt}")
    log(f"wrote         {', '.join(str(out / n) for n in NAMES[:4])}" + ("" if plot_note else f", {out / NAMES[4]}")
        + plot_note)
    return 0
