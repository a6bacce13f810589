"""Moving NumPy images in and out of textures, and cutting a frame into tiles.

Upload: gray and RGBA arrays go to the GPU as they are (uint8 -> RGBA8/R8, uint16 -> RGBA16/R16 unorm,
float -> 32-bit float); RGB and gray+alpha are padded to RGBA in a reused staging buffer, because
3-component textures are 4-10x slower to upload and read on common drivers (MEASURED.md). Integer codes
stay integers on the GPU: the first pass decodes them (sRGB through an exact table), so no float copy of
the frame is made on the CPU.

Tiles: a frame too large for one texture (``GL_MAX_TEXTURE_SIZE``) or for the memory budget is processed
as tiles whose interiors sit on the 16-pixel statistics grid, each uploaded with a halo clipped at the
image border, so the mirror rule applies exactly where the untiled run applies it and every interior pixel
is computed from the same values by the same operations - bit-identical to the untiled frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.stats import BLOCK
from .executor import DrawTarget, Layout, Region, TexturePool

#: Texture dtype (moderngl spelling) of each integer sample type; floats upload as 'f4'.
INT_TEX = {np.dtype(np.uint8): "f1", np.dtype(np.uint16): "nu2"}
_NP = {"f1": np.uint8, "nu2": np.uint16, "f4": np.float32}
_BYTES = {"f1": 1, "nu2": 2, "f2": 2, "f4": 4}
#: A rectangle (x0, y0, x1, y1), end exclusive, in image pixels.
Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageIO:
    """How :meth:`Deconvolver.process <gpu_deconv.gl.engine.Deconvolver.process>` moves an array: the
    texture dtype it uploads as, whether its values are sRGB codes, the default quantization depth, and the
    output array (the caller's, checked, or a new one)."""

    tex_dtype: str
    srgb: bool
    bits: int | None
    out: np.ndarray

    @staticmethod
    def of(img: np.ndarray, space: str, out: np.ndarray | None) -> ImageIO:
        """Validate ``img`` (``(H, W[, C])``, C in 1..4; uint8/uint16 codes or float) and resolve ``space``
        ('auto': sRGB for integers, linear for floats)."""
        if img.ndim not in (2, 3) or (img.ndim == 3 and not 1 <= img.shape[2] <= 4):
            raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {img.shape}")
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"image is empty: shape {img.shape}")
        if img.dtype in INT_TEX:
            tex_dtype, out_dtype = INT_TEX[img.dtype], img.dtype
            bits: int | None = 8 if img.dtype == np.uint8 else 16
        elif img.dtype in (np.float32, np.float16, np.float64):
            tex_dtype, out_dtype, bits = "f4", np.dtype(np.float32), None
        else:
            raise TypeError(f"unsupported image dtype {img.dtype}: use uint8, uint16, float16 or float32")
        if space == "auto":
            space = "srgb" if tex_dtype != "f4" else "linear"
        if space not in ("srgb", "linear"):
            raise ValueError(f"space must be 'auto', 'srgb' or 'linear', got {space!r}")
        if out is None:
            out = np.empty(img.shape, dtype=out_dtype)
        elif out.shape != img.shape or out.dtype != out_dtype:
            raise ValueError(f"out must have shape {img.shape} and dtype {out_dtype}")
        return ImageIO(tex_dtype, space == "srgb", bits, out)


class FramebufferCache:
    """Framebuffers over a caller's textures (``apply(src, texture)``), made once per texture, at most 8 kept."""

    def __init__(self, ctx: Any, pool: TexturePool, size: int = 8) -> None:
        self.ctx, self.pool, self.size = ctx, pool, size
        self._fbos: OrderedDict[int, tuple[Any, Any]] = OrderedDict()

    def get(self, tex: Any) -> Any:
        hit = self._fbos.get(id(tex))
        if hit is not None and hit[0] is tex:
            self._fbos.move_to_end(id(tex))
            return hit[1]
        fb = self.ctx.framebuffer(color_attachments=[tex])
        self._fbos[id(tex)] = (tex, fb)
        while len(self._fbos) > self.size:
            self.pool._release_fbo(self._fbos.popitem(last=False)[1][1])
        return fb

    def release(self) -> None:
        for _, fb in self._fbos.values():
            self.pool._release_fbo(fb)
        self._fbos.clear()


def layout_of(image: np.ndarray) -> Layout:
    return Layout.for_channels(1 if image.ndim == 2 else image.shape[2])


class ImageTransfer:
    """Uploads into the pooled ``'in'`` texture and reads back, through reused staging buffers."""

    def __init__(self, pool: TexturePool) -> None:
        self.pool = pool
        self._staging: dict[str, np.ndarray] = {}

    def _stage(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A reusable staging array (one allocation per name, grown on demand)."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape))
        buf = self._staging.get(name)
        if buf is None or buf.dtype != dtype or buf.size < n:
            buf = self._staging[name] = np.empty(n, dtype=dtype)
        return buf[:n].reshape(shape)

    def upload(self, image: np.ndarray, layout: Layout, tex_dtype: str) -> Region:
        """Upload ``image`` (H, W[, C]) into the pooled input texture (RGB/LA padded to RGBA)."""
        h, w = image.shape[:2]
        np_dtype = _NP[tex_dtype]
        tex = self.pool.get("in", w, h, layout.comps, tex_dtype)
        c = 1 if image.ndim == 2 else image.shape[2]
        if c in (1, 4) and image.dtype == np_dtype and image.flags.c_contiguous:
            data = image
        elif c in (1, 4):
            data = self._stage("up", (h, w, c), np_dtype)
            data[...] = image.reshape(h, w, c)
        else:
            data = self._stage("up", (h, w, 4), np_dtype)
            if c == 3:
                data[..., :3] = image
                data[..., 3] = 0
            else:  # LA -> (L, 0, 0, A)
                data[..., 0] = image[..., 0]
                data[..., 1:3] = 0
                data[..., 3] = image[..., 1]
        tex.write(data, viewport=(0, 0, w, h))
        return Region(tex, w, h)

    def download(self, target: DrawTarget, layout: Layout, tex_dtype: str, out: np.ndarray,
                 rect: tuple[int, int, int, int] | None = None) -> None:
        """Read ``rect`` (x, y, w, h) of ``target`` into ``out`` (H, W[, C]) without a temporary when possible."""
        x, y, w, h = rect if rect is not None else target.viewport
        c = 1 if out.ndim == 2 else out.shape[2]
        np_dtype = _NP[tex_dtype]
        if c in (1, 4) and out.flags.c_contiguous and out.dtype == np_dtype:
            target.fbo.read_into(out, viewport=(x, y, w, h), components=layout.comps, dtype=tex_dtype)
            return
        buf = self._stage("down", (h, w, layout.comps), np_dtype)
        target.fbo.read_into(buf, viewport=(x, y, w, h), components=layout.comps, dtype=tex_dtype)
        if c == 3:
            out[...] = buf[..., :3]
        elif c == 2:
            out[..., 0] = buf[..., 0]
            out[..., 1] = buf[..., 3]
        else:
            out[...] = buf.reshape(out.shape)

    def release(self) -> None:
        self._staging.clear()


def tile_grid(width: int, height: int, tile: int | tuple[int, int] | None) -> list[Rect]:
    """Tile interiors covering the image; each edge rounded up to the statistics grid. None: the whole image."""
    if tile is None:
        return [(0, 0, width, height)]
    tw, th = (tile, tile) if np.isscalar(tile) else tile  # type: ignore[misc]
    tw = max(BLOCK, -(-int(tw) // BLOCK) * BLOCK)
    th = max(BLOCK, -(-int(th) // BLOCK) * BLOCK)
    return [(x0, y0, min(x0 + tw, width), min(y0 + th, height))
            for y0 in range(0, height, th) for x0 in range(0, width, tw)]


def with_halos(interiors: list[Rect], halo: int, width: int, height: int, max_size: int) -> Iterator[tuple[Rect, Rect]]:
    """``(interior, halo rectangle)`` pairs: each interior grown by ``halo`` px and clipped to the image.

    Raises
    ------
    ValueError
        When a tile with its halo would not fit in a texture.
    """
    for x0, y0, x1, y1 in interiors:
        hr = (max(0, x0 - halo), max(0, y0 - halo), min(width, x1 + halo), min(height, y1 + halo))
        if hr[2] - hr[0] > max_size or hr[3] - hr[1] > max_size:
            raise ValueError(f"tile {x1 - x0}x{y1 - y0} with halo {halo} exceeds GL_MAX_TEXTURE_SIZE {max_size}")
        yield (x0, y0, x1, y1), hr


def frame_bytes_per_pixel(layout: Layout, in_dtype: str, srgb: bool, levels: int, precision: int,
                          stats: bool) -> float:
    """Estimated texture memory per pixel of one frame (input, output, linear copy, intermediates, statistics)."""
    ic = layout.inter_comps
    p = 2 if precision == 16 else 4
    b = layout.comps * _BYTES[in_dtype] * 2
    b += 16 if srgb else 0
    b += (levels + 2) * ic * p
    b += 5 * ic * 4 if stats else 0
    return b
