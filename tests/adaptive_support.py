"""Shared by the adaptive-pass GL tests (test_adaptive_gl.py, test_sigma_map_gl.py): tolerances, the passes on
the session's context, and the engine's texture layout of an image."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: GL vs NumPy, absolute, linear light (as the engine tests state them): fp32 intermediates, fp16 ones.
TOL = {32: 1e-5, 16: 4e-3}


def adaptive_passes(gl_ctx, path: str = "fragment") -> Iterator[tuple]:
    """``(ctx, PlanExecutor, AdaptiveExecutor)`` for a module fixture (``yield from``); released after.
    ``path='fused'`` runs passes 1 and 2 as the fused compute dispatch (OpenGL 4.3; CI's llvmpipe has it)."""
    from gpu_deconv.gl.adaptive import AdaptiveExecutor
    from gpu_deconv.gl.compute import ComputeExecutor
    from gpu_deconv.gl.executor import PlanExecutor

    ex = PlanExecutor(gl_ctx)
    comp = ComputeExecutor(ex) if path == "fused" else None
    ad = AdaptiveExecutor(ex, compute=comp)
    yield gl_ctx, ex, ad
    ad.release()
    if comp is not None:
        comp.release()
    ex.release()


def llvmpipe(ctx) -> bool:
    return "llvmpipe" in str(ctx.info.get("GL_RENDERER", "")).lower()


def texture_data(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Image -> the engine's texture layout (gray: 1 component; LA, RGB -> RGBA with LA as (L, 0, 0, A))."""
    x = image if image.ndim == 3 else image[:, :, None]
    c = x.shape[2]
    if c == 1:
        return np.ascontiguousarray(x), 1
    data = np.zeros(x.shape[:2] + (4,), x.dtype)
    if c == 2:
        data[..., 0], data[..., 3] = x[..., 0], x[..., 1]
    else:
        data[..., :c] = x
    return data, 4


def from_texture(data: np.ndarray, channels: int) -> np.ndarray:
    """The inverse of :func:`texture_data` for ``channels`` image channels."""
    if channels == 1:
        return data[..., 0]
    if channels == 2:
        return np.stack([data[..., 0], data[..., 3]], axis=-1)
    return data[..., :channels]
