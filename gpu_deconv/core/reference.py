"""NumPy mirror of every GPU pass, in float32, with the same taps, boundary rule and order of operations.

Used by the tests to check the shaders, and usable on machines with no OpenGL at all. The pass
structure and conventions are documented in :mod:`gpu_deconv.core.plan`.

Intermediate precision ``16`` stores every intermediate texture (the H-pass outputs and the output of
non-final stages) as float16; ``fp16_rounding`` picks how: ``'toward_zero'`` is what Mesa llvmpipe does
when a shader writes f32 into an RGBA16F target (measured), ``'nearest'`` is IEEE round-to-nearest-even
(what numpy's ``astype(float16)`` and most GPUs do).
"""

from __future__ import annotations

import numpy as np

from .plan import MixtureStage, Plan


def mirror_index(p: np.ndarray, n: int) -> np.ndarray:
    """Mirror with the edge pixel repeated, periodic with period 2n: -1 -> 0, n -> n - 1, -n-1 -> n - 1..."""
    period = 2 * n
    m = np.mod(p, period)
    return np.where(m >= n, period - 1 - m, m)


def to_float16(x: np.ndarray, rounding: str = "toward_zero") -> np.ndarray:
    """Round float32 to float16 and back, emulating a GPU's RGBA16F store."""
    x = np.asarray(x, dtype=np.float32)
    h = x.astype(np.float16)
    if rounding == "nearest":
        return h.astype(np.float32)
    if rounding != "toward_zero":
        raise ValueError(f"fp16 rounding must be 'nearest' or 'toward_zero', got {rounding!r}")
    hf = h.astype(np.float32)
    over = np.abs(hf) > np.abs(x)
    if np.any(over):
        h = h.copy()
        h[over] = np.nextafter(h[over], np.float16(0))
    h = np.clip(h, np.float16(-65504), np.float16(65504))
    return h.astype(np.float32)


def convolve_axis(src: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """``sum_i taps[i] * src[mirror(p + i - r)]`` along ``axis`` (0 = y, 1 = x), float32, taps ascending."""
    taps = np.asarray(taps, dtype=np.float32)
    r = taps.size // 2
    n = src.shape[axis]
    idx = mirror_index(np.arange(-r, n + r), n)
    padded = np.take(src, idx, axis=axis)
    acc = None
    for i, t in enumerate(taps):
        sl = [slice(None)] * src.ndim
        sl[axis] = slice(i, i + n)
        term = t * padded[tuple(sl)]
        acc = term if acc is None else acc + term
    return acc.astype(np.float32, copy=False)


def apply_stage(
    src: np.ndarray,
    base: np.ndarray,
    stage: MixtureStage,
    precision: int = 32,
    fp16_rounding: str = "toward_zero",
) -> np.ndarray:
    """One mixture stage (H pass then fused V pass) on float32 ``(H, W, C)`` arrays."""
    store = (lambda a: to_float16(a, fp16_rounding)) if precision == 16 else (lambda a: a)
    d = stage.weights
    acc = d[0] * base
    for k, g in enumerate(stage.taps, start=1):
        h = store(convolve_axis(src, g, axis=1))
        acc = acc + d[k] * convolve_axis(h, g, axis=0)
    return acc.astype(np.float32, copy=False)


def alpha_channel(channels: int) -> int | None:
    """Index of the alpha channel for an image with ``channels`` channels (LA and RGBA), else None."""
    return channels - 1 if channels in (2, 4) else None


def apply_plan(
    image: np.ndarray,
    plan: Plan,
    precision: int = 32,
    fp16_rounding: str = "toward_zero",
) -> np.ndarray:
    """Apply a :class:`~gpu_deconv.core.plan.Plan` to a linear float image exactly as the GPU passes do.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), C in 1..4
        Linear-light values. Alpha (channel 1 of 2, or 3 of 4) is passed through bit-exactly.
    plan : Plan
        From :mod:`gpu_deconv.core.design`.
    precision : {16, 32}
        Storage precision of intermediate textures; the final output is float32.
    """
    if precision not in (16, 32):
        raise ValueError(f"precision must be 16 or 32, got {precision!r}")
    x = np.asarray(image, dtype=np.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    if x.ndim != 3 or not 1 <= x.shape[2] <= 4:
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    out = x
    prev = x
    for i, stage in enumerate(plan.stages):
        src = x if stage.src == "input" else prev
        out = apply_stage(src, x, stage, precision, fp16_rounding)
        last = i == len(plan.stages) - 1
        prev = out if last or precision == 32 else to_float16(out, fp16_rounding)
    out = np.array(out, dtype=np.float32, copy=True)
    a = alpha_channel(x.shape[2])
    if a is not None:
        out[:, :, a] = x[:, :, a]
    return out[:, :, 0] if squeeze else out
