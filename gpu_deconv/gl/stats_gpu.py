"""Band statistics on the GPU: the :func:`gpu_deconv.core.stats.band_statistics` numbers without reading the frame.

Passes (all 32-bit float, mirror boundary, ``atrous.frag`` = one axis of the [1/4, 1/2, 1/4] a-trous
lowpass at a dilation; ``stats_reduce.frag`` = per-tile sums):

=====  ==================  =========================================================
 pass   output              what
=====  ==================  =========================================================
 1      ``ax``              A_1 along x of the linear input x
 2      ``g1``              A_1 along y of ax  -> G1
 3, 4   ``tmp``, ``g2``     A_2 along x, then y -> G2
 5, 6   ``tmp``, ``g3``     A_4 along x, then y -> G3
 7      grid (RGBA32F)      per block x block tile: sums of <b1^2>, <b2^2>, <b3^2>, <hh^2>
=====  ==================  =========================================================

The grid (``ceil(h/16) x ceil(w/16)`` texels, 120 x 68 at 1080p) is the only read-back. It is summed
in float64 on the CPU; counts come from geometry. Each pixel's band values are computed by the same
float32 operations as the reference (the tests bound the difference by 1e-4 relative; in practice the
per-tile fp32 sums of 256 values differ by ~1e-6).

Tiling: :meth:`GpuBandStats.grid` takes a region of interest in block-aligned global coordinates, so
tiles (with a halo of :data:`STATS_HALO` pixels) produce exactly the cells of the untiled grid; a
:class:`StatsAccumulator` stitches them into one :class:`~gpu_deconv.core.stats.BandStats`.

Latency: :meth:`GpuBandStats.grid` reads back immediately (a pipeline sync - fine for ``process()``);
:meth:`GpuBandStats.grid_async` starts the read into a pixel-pack buffer and returns a handle resolved
one frame later (video: the statistics of frame n steer frame n + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import moderngl
import numpy as np

from ..core.stats import BLOCK, BandStats
from .executor import Layout, PlanExecutor, Region

#: Pixels of context the statistics of a pixel depend on (G3 = A_4 A_2 A_1: 1 + 2 + 4 per axis).
STATS_HALO = 7


def block_counts(width: int, height: int, block: int = BLOCK) -> np.ndarray:
    """Pixels per tile of the block grid of a ``width x height`` image (partial tiles at the edges)."""
    nbx, nby = -(-width // block), -(-height // block)
    cx = np.full(nbx, block, dtype=np.float64)
    cy = np.full(nby, block, dtype=np.float64)
    cx[-1] = width - block * (nbx - 1)
    cy[-1] = height - block * (nby - 1)
    return np.outer(cy, cx)


def stats_from_grid(grid: np.ndarray, width: int, height: int, block: int = BLOCK, channels: int = 3) -> BandStats:
    """:class:`BandStats` from a full ``(nby, nbx, 4)`` grid of per-tile sums of ``channels`` colour channels."""
    g = np.asarray(grid, dtype=np.float64)
    return BandStats(g[..., :3].sum(axis=(0, 1)), g[..., 3].copy(), block_counts(width, height, block), block,
                     channels, band_block_sums=g[..., :3].copy())


class StatsAccumulator:
    """Stitches per-tile grids (block-aligned) into the whole image's grid."""

    def __init__(self, width: int, height: int, block: int = BLOCK, channels: int = 3) -> None:
        self.width, self.height, self.block, self.channels = width, height, block, channels
        self.grid = np.zeros((-(-height // block), -(-width // block), 4), dtype=np.float64)

    def add(self, cells: np.ndarray, bx0: int, by0: int) -> None:
        """Place a tile's grid whose first cell is global cell ``(bx0, by0)``."""
        ny, nx = cells.shape[:2]
        self.grid[by0:by0 + ny, bx0:bx0 + nx] = cells

    def result(self) -> BandStats:
        return stats_from_grid(self.grid, self.width, self.height, self.block, self.channels)


@dataclass
class PendingGrid:
    """An asynchronous grid read (see :meth:`GpuBandStats.grid_async`)."""

    buffer: moderngl.Buffer
    shape: tuple[int, int]
    width: int
    height: int
    block: int
    channels: int = 3

    def result(self) -> BandStats:
        """Map the buffer (waits only if the GPU has not finished that frame yet)."""
        ny, nx = self.shape
        data = np.frombuffer(self.buffer.read(size=ny * nx * 16), dtype=np.float32).reshape(ny, nx, 4)
        return stats_from_grid(data, self.width, self.height, self.block, self.channels)


class GpuBandStats:
    """GPU band statistics (see the module docstring).

    Parameters
    ----------
    executor : PlanExecutor
        Supplies the program cache, texture pool and NEAREST sampler.
    block : int
        Tile edge in pixels (16, like :data:`gpu_deconv.core.stats.BLOCK`).
    """

    def __init__(self, executor: PlanExecutor, block: int = BLOCK) -> None:
        self.ex = executor
        self.ctx = executor.ctx
        self.block = int(block)
        self._pbos: list[moderngl.Buffer] = []
        self._pbo_next = 0
        self._readbuf: np.ndarray | None = None

    def _atrous(self, src: Region, out_name: str, step: tuple[int, int], colour: int) -> Region:
        w, h = src.width, src.height
        comps = 1 if colour == 1 else 4
        tex = self.ex.pool.get(out_name, w, h, comps, "f4")
        d = max(step)
        n = w if step[0] else h
        p = self.ex.program(("atrous", colour, d > n), "atrous.frag",
                            {"COLOUR": colour, "MIRROR_PERIODIC": d > n}, samplers={"u_src": 0})
        self.ex._use_target(self.ex.internal_target((out_name,), w, h), None)
        self.ex.bind(0, src.texture)
        p.set("u_src_inv", src.inv)
        p.set("u_region", (w, h))
        p.set("u_step", step)
        p.draw()
        return Region(tex, w, h)

    def render(self, src: Region, layout: Layout, roi: tuple[int, int, int, int] | None = None
               ) -> tuple[int, int]:
        """Run the passes; leave the per-tile sums in the pooled 'grid' texture.

        Parameters
        ----------
        src : Region
            Linear input (colour channels as ``layout`` says).
        roi : (x0, y0, x1, y1), optional
            Pixels of ``src`` to count (default: all); ``x0, y0`` must sit on the global block grid.

        Returns
        -------
        (nx, ny) : the grid size written.
        """
        w, h = src.width, src.height
        x0, y0, x1, y1 = roi if roi is not None else (0, 0, w, h)
        c = layout.colour
        ax = self._atrous(src, "s_ax", (1, 0), c)
        g1 = self._atrous(ax, "s_g1", (0, 1), c)
        t = self._atrous(g1, "s_tmp", (2, 0), c)
        g2 = self._atrous(t, "s_g2", (0, 2), c)
        t = self._atrous(g2, "s_tmp", (4, 0), c)
        g3 = self._atrous(t, "s_g3", (0, 4), c)
        b = self.block
        nx, ny = -(-(x1 - x0) // b), -(-(y1 - y0) // b)
        self.ex.pool.get("s_grid", nx, ny, 4, "f4")
        p = self.ex.program(("reduce", c), "stats_reduce.frag", {"COLOUR": c},
                            samplers={"u_x": 0, "u_ax": 1, "u_g1": 2, "u_g2": 3, "u_g3": 4})
        self.ex._use_target(self.ex.internal_target(("s_grid",), nx, ny), None)
        for unit, reg in enumerate((src, ax, g1, g2, g3)):
            self.ex.bind(unit, reg.texture)
        p.set("u_x_inv", src.inv)
        p.set("u_g_inv", ax.inv)
        p.set("u_region", (w, h))
        p.set("u_roi_origin", (x0, y0))
        p.set("u_roi_end", (x1, y1))
        p.set("u_block", b)
        p.draw()
        return nx, ny

    def grid(self, src: Region, layout: Layout, roi: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Per-tile sums ``(ny, nx, 4)`` float32, read back now."""
        nx, ny = self.render(src, layout, roi)
        if self._readbuf is None or self._readbuf.size < nx * ny * 4:
            self._readbuf = np.empty(nx * ny * 4, dtype=np.float32)
        view = self._readbuf[: nx * ny * 4]
        fbo = self.ex.pool.fbo(("s_grid",))
        fbo.read_into(view, viewport=(0, 0, nx, ny), components=4, dtype="f4")
        return view.reshape(ny, nx, 4).copy()

    def measure(self, src: Region, layout: Layout) -> BandStats:
        """Whole-region :class:`BandStats`, read back now."""
        return stats_from_grid(self.grid(src, layout), src.width, src.height, self.block, layout.colour)

    def grid_async(self, src: Region, layout: Layout) -> PendingGrid:
        """Start the passes and a read into a pixel-pack buffer; resolve later with ``.result()``.

        Two buffers alternate, so frame n's read is still intact while frame n + 1 starts its own.
        """
        nx, ny = self.render(src, layout)
        need = nx * ny * 16
        if len(self._pbos) < 2 or self._pbos[0].size < need:
            for buf in self._pbos:
                buf.release()
            self._pbos = [self.ctx.buffer(reserve=need) for _ in range(2)]
        buf = self._pbos[self._pbo_next]
        self._pbo_next ^= 1
        self.ex.pool.fbo(("s_grid",)).read_into(buf, viewport=(0, 0, nx, ny), components=4, dtype="f4")
        return PendingGrid(buf, (ny, nx), src.width, src.height, self.block, layout.colour)

    def release(self) -> None:
        for buf in self._pbos:
            buf.release()
        self._pbos = []


__all__ = ["STATS_HALO", "GpuBandStats", "PendingGrid", "StatsAccumulator", "block_counts", "stats_from_grid"]
