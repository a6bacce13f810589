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

Fused path (OpenGL 4.3, given a :class:`~gpu_deconv.gl.compute.ComputeExecutor`): all of it in ONE compute
dispatch, ``shaders/stats_fused.comp`` - the lowpasses G1..G3 as three levels (combined taps of radii 1, 3, 7)
of the sliding-window strip of :func:`gpu_deconv.gl.compute.strip_body`, the per-tile sums in registers, one
RGBA32F texel per (column group of :attr:`FusedVariant.cols <gpu_deconv.gl.compute.FusedVariant>` columns,
tile row); the CPU adds a tile's ``16 / cols`` groups in float64. No intermediate texture. The engine takes it
for the adaptive mode's blind sigma (``blind_only``: the global design's statistics keep the fragment passes,
whose outputs are recorded bit for bit); 1080p RGBA on llvmpipe: 3.6-4.0 passthrough units against 9.5-10.5
for the fragment passes, 1.5 units over the tiles a blind sigma reads (benchmarks/RESULTS.md, ``adaptive``).

Fewer tiles: ``stride=(sx, sy)`` (or ``s`` for both) computes only the tiles whose global column index is a
multiple of ``sx`` and row index one of ``sy`` (the fused path dispatches only their strips: ~1/(sx sy) of the
pixels; with ``sy > 1`` every strip is one tile row, so its 14-row prologue makes it dearer per pixel); every
other tile has count 0 and sums 0, so the :class:`BandStats` are exactly
:func:`~gpu_deconv.core.stats.band_statistics` of the sampled tiles (:func:`sampled_counts`). The noise
estimate and the blind sigma's tile fit (and the viewer's sigma map) keep only tiles of the most common full
size, so they pass over zero-count tiles; the temporal smoother averages tile by tile (the pattern depends on
the frame size only, so a left-out tile stays 0) and compares totals per pixel.

The grid (``ceil(h/16) x ceil(w/16)`` texels, 120 x 68 at 1080p) is the only read-back. It is summed
in float64 on the CPU; counts come from geometry. Each pixel's band values are computed by the same
float32 operations as the reference on the fragment path (G2 and G3 in another summation order on the
fused path); the tests bound the difference by 1e-4 relative on both paths (in practice the per-tile fp32
sums of 256 values differ by ~1e-6).

Tiling: :meth:`GpuBandStats.grid` takes a region of interest in block-aligned global coordinates, so
tiles (with a halo of :data:`STATS_HALO` pixels) produce exactly the cells of the untiled grid; a
:class:`StatsAccumulator` stitches them into one :class:`~gpu_deconv.core.stats.BandStats`.

Latency: :meth:`GpuBandStats.grid` reads back immediately (a pipeline sync - fine for ``process()``);
:meth:`GpuBandStats.grid_async` starts the read into a pixel-pack buffer and returns a handle resolved
one frame later (video: the statistics of frame n steer frame n + 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import moderngl
import numpy as np

from ..core.comb import atrous_lowpass_taps
from ..core.plan import MixtureStage
from ..core.stats import BLOCK, BandStats
from .compute import ComputeExecutor, FusedVariant, _cpu_rasteriser, _slot, strip_body
from .executor import Layout, PlanExecutor, Region, pack_taps
from .shaders import build_source

#: Pixels of context the statistics of a pixel depend on (G3 = A_4 A_2 A_1: 1 + 2 + 4 per axis).
STATS_HALO = 7
#: The fused dispatch's levels: G1, G2, G3 (combined a-trous taps, radii 1, 3, 7) and [0, 1, 0], which keeps
#: x itself in the window (its three rows give the vertical 3-tap ay of the diagonal band).
FUSED_STAGE = MixtureStage(taps=(*atrous_lowpass_taps(3), np.array([0.0, 1.0, 0.0])), weights=np.zeros(5))
FUSED_SHAPE = ((-1, 0, 1), tuple(range(-3, 4)), tuple(range(-7, 8)), (-1, 0, 1))
#: Layout of the fused dispatch on CPU rasterisers and on GPUs. llvmpipe, 1080p RGBA, one sweep side by side (loaded
#: 2-core machine, passthrough units): 8 columns x 64 rows / 8 per group 3.6-4.4 (stride 2: 1.55-1.7), 8 x 128 the
#: same, 8 x 32 5.4, 4 x 64 4.5, 2 x 64 5.2, 16 x 64 6.6-8.4 (register pressure); the seven fragment passes 10.1-10.5.
#: GPUs: not measured (one column per thread, short strips, like gl/compute.py GPU_VARIANTS); the engine keeps
#: the fragment passes there.
CPU_STATS_VARIANT = FusedVariant(rows=64, cols=8, local_x=8)
GPU_STATS_VARIANT = FusedVariant(rows=16, cols=1, local_x=64)
#: Tiles a blind-sigma stride keeps at least: about the most the estimator fits (2048,
#: ``gpu_deconv.core.blur_estimation.MAX_FIT_TILES``, evenly strided) - 1080p gets stride 2 (60 x 34 = 2040
#: tiles), 4K stride 4. Held-out photos mirror-extended to 1080p (camera, brick, grass, gravel, astronaut,
#: coffee, chelsea, rocket; blur 0.7-2 px, noise 0.005, 8-bit; 32 cases): the estimate's mean error against
#: the true blur is 0.197 px from every tile, 0.199 px with stride 2 (0.015 px mean change); the column-only
#: stride (4, 1), a third cheaper on llvmpipe (long strips, no per-tile prologue), 0.208 px.
BLUR_TILES = 2000


def blur_stride(width: int, height: int, block: int = BLOCK, min_tiles: int = BLUR_TILES) -> int:
    """The largest tile stride (see :func:`sampled_counts`) that keeps at least ``min_tiles`` tiles of a
    ``width x height`` frame (1 when the frame has fewer)."""
    nx, ny = -(-width // block), -(-height // block)
    s = 1
    while -(-nx // (s + 1)) * -(-ny // (s + 1)) >= min_tiles:
        s += 1
    return s


#: A tile stride: ``s`` (every s-th tile column and row) or ``(sx, sy)``.
Stride = int | tuple[int, int]


def stride_pair(stride: Stride) -> tuple[int, int]:
    """``(sx, sy)`` of a :data:`Stride`; ValueError unless both are integers >= 1."""
    sx, sy = (stride, stride) if isinstance(stride, (int, np.integer)) else tuple(stride)
    if int(sx) != sx or int(sy) != sy or sx < 1 or sy < 1:
        raise ValueError(f"a tile stride is an integer >= 1 or a pair of them, got {stride!r}")
    return int(sx), int(sy)


def sampled_counts(width: int, height: int, block: int = BLOCK, stride: Stride = 1,
                   first_tile: tuple[int, int] = (0, 0)) -> np.ndarray:
    """:func:`block_counts` with 0 for every tile left out by ``stride = (sx, sy)``: tile ``(i, j)`` (row i,
    column j) of the grid, global index ``first_tile + (j, i)``, is kept when its global column index is a
    multiple of ``sx`` and its row index one of ``sy``."""
    sx, sy = stride_pair(stride)
    counts = block_counts(width, height, block)
    keep_y = (np.arange(counts.shape[0]) + first_tile[1]) % sy == 0
    keep_x = (np.arange(counts.shape[1]) + first_tile[0]) % sx == 0
    return counts * np.outer(keep_y, keep_x)


def block_counts(width: int, height: int, block: int = BLOCK) -> np.ndarray:
    """Pixels per tile of the block grid of a ``width x height`` image (partial tiles at the edges)."""
    nbx, nby = -(-width // block), -(-height // block)
    cx = np.full(nbx, block, dtype=np.float64)
    cy = np.full(nby, block, dtype=np.float64)
    cx[-1] = width - block * (nbx - 1)
    cy[-1] = height - block * (nby - 1)
    return np.outer(cy, cx)


def stats_from_grid(grid: np.ndarray, width: int, height: int, block: int = BLOCK, channels: int = 3,
                    stride: Stride = 1) -> BandStats:
    """:class:`BandStats` from a full ``(nby, nbx, 4)`` grid of per-tile sums of ``channels`` colour channels
    (with ``stride``: the tiles :func:`sampled_counts` keeps; the grid holds 0 at the others)."""
    g = np.asarray(grid, dtype=np.float64)
    return BandStats(g[..., :3].sum(axis=(0, 1)), g[..., 3].copy(), sampled_counts(width, height, block, stride),
                     block, channels, band_block_sums=g[..., :3].copy())


class StatsAccumulator:
    """Stitches per-tile grids (block-aligned) into the whole image's grid (``stride``, ``blind``: how
    :meth:`measure` asks :meth:`GpuBandStats.grid` for them, see there)."""

    def __init__(self, width: int, height: int, block: int = BLOCK, channels: int = 3, stride: Stride = 1,
                 blind: bool = False) -> None:
        self.width, self.height, self.block, self.channels, self.stride = width, height, block, channels, stride
        self.blind = blind
        self.grid = np.zeros((-(-height // block), -(-width // block), 4), dtype=np.float64)

    def measure(self, stats: GpuBandStats, src: Region, layout: Layout, interior: tuple[int, int, int, int],
                rect: tuple[int, int, int, int]) -> None:
        """Add the statistics of the pixels ``interior`` (global ``(x0, y0, x1, y1)``, on the block grid) from
        ``src``, the region ``rect`` of the image (the interior plus its halo), with this accumulator's stride."""
        x0, y0, x1, y1 = interior
        roi = (x0 - rect[0], y0 - rect[1], x1 - rect[0], y1 - rect[1])
        b = self.block
        cells = stats.grid(src, layout, roi, stride=self.stride, first_tile=(x0 // b, y0 // b), blind=self.blind)
        self.add(cells, x0 // b, y0 // b)

    def add(self, cells: np.ndarray, bx0: int, by0: int) -> None:
        """Place a tile's grid whose first cell is global cell ``(bx0, by0)``."""
        ny, nx = cells.shape[:2]
        self.grid[by0:by0 + ny, bx0:bx0 + nx] = cells

    def result(self) -> BandStats:
        return stats_from_grid(self.grid, self.width, self.height, self.block, self.channels, self.stride)


@dataclass(frozen=True)
class _Written:
    """What :meth:`GpuBandStats.render` left in the pooled texture ``name``: ``(texels_x, texels_y)`` texels
    that :attr:`fold` turns (float32 array ``(texels_y, texels_x, 4)``) into the region's full float64 grid."""

    name: str
    texels: tuple[int, int]
    fold: Callable[[np.ndarray], np.ndarray]


@dataclass
class PendingGrid:
    """An asynchronous grid read (see :meth:`GpuBandStats.grid_async`)."""

    buffer: moderngl.Buffer
    written: _Written
    width: int
    height: int
    block: int
    channels: int = 3

    def result(self) -> BandStats:
        """Map the buffer (waits only if the GPU has not finished that frame yet)."""
        tx, ty = self.written.texels
        data = np.frombuffer(self.buffer.read(size=tx * ty * 16), dtype=np.float32).reshape(ty, tx, 4)
        return stats_from_grid(self.written.fold(data), self.width, self.height, self.block, self.channels)


class GpuBandStats:
    """GPU band statistics (see the module docstring).

    Parameters
    ----------
    executor : PlanExecutor
        Supplies the program cache, texture pool and NEAREST sampler.
    block : int
        Tile edge in pixels (16, like :data:`gpu_deconv.core.stats.BLOCK`).
    compute : ComputeExecutor, optional
        Run the fused dispatch (``stats_fused.comp``) instead of the seven fragment passes; its image-unit
        save/restore keeps a caller's bindings. None (default): the fragment passes (any OpenGL 3.3).
    variant : FusedVariant, optional
        Layout of the fused dispatch (default :data:`CPU_STATS_VARIANT` on CPU rasterisers, else
        :data:`GPU_STATS_VARIANT`); ``cols`` must divide ``block`` and ``rows`` be a multiple of it.
    blind_only : bool
        Take the fused dispatch only for statistics that feed a blind sigma alone (``blind=True``: the adaptive
        mode's); the others - the global design's noise and level - keep the fragment passes, whose outputs
        tests/test_recorded_outputs.py holds bit for bit (the fused tile sums differ from them in the last bits,
        ~1e-7 relative, which moves noise-'auto' outputs by up to 1.7e-4 at fp16, 1 code in 8/16 bits).

    Attributes
    ----------
    blur_tile_stride : int or (int, int) or None
        The tile stride of the statistics the engine gathers for a blind sigma in the adaptive mode (where only
        the estimator reads them; :meth:`blind_stride`): None (default) picks :func:`blur_stride` per frame
        size (1080p: every 2nd tile column and row); 1 keeps every tile (a per-tile overlay of the engine's
        ``last_blur_stats``); ``(sx, sy)`` strides columns and rows apart ((4, 1) is a third cheaper on
        llvmpipe, see :data:`BLUR_TILES`).
    """

    def __init__(self, executor: PlanExecutor, block: int = BLOCK, compute: ComputeExecutor | None = None,
                 variant: FusedVariant | None = None, blind_only: bool = False) -> None:
        self.ex = executor
        self.ctx = executor.ctx
        self.block = int(block)
        self.compute = compute
        if variant is None:
            variant = CPU_STATS_VARIANT if _cpu_rasteriser(self.ctx) else GPU_STATS_VARIANT
        if compute is not None and (self.block % variant.cols or variant.rows % self.block):
            raise ValueError(f"fused statistics variant {variant.label}: cols must divide the {self.block}-pixel "
                             f"block and rows be a multiple of it")
        self.variant = variant
        self.blind_only = blind_only
        self.blur_tile_stride: Stride | None = None
        self._fused_programs: dict[tuple, moderngl.ComputeShader] = {}
        self._taps = pack_taps(FUSED_STAGE).tobytes()
        self._pbos: list[moderngl.Buffer] = []
        self._pbo_next = 0
        self._readbuf: np.ndarray | None = None

    def blind_stride(self, width: int, height: int) -> Stride:
        """:attr:`blur_tile_stride`, or :func:`blur_stride` of the frame size when that is None."""
        return blur_stride(width, height, self.block) if self.blur_tile_stride is None else self.blur_tile_stride

    @property
    def fused(self) -> bool:
        """Whether the fused compute dispatch is available (it serves every call, or with ``blind_only`` the
        blind ones)."""
        return self.compute is not None

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

    def render(self, src: Region, layout: Layout, roi: tuple[int, int, int, int] | None = None, *,
               stride: Stride = 1, first_tile: tuple[int, int] = (0, 0), blind: bool = False) -> _Written:
        """Run the passes (or the fused dispatch); leave the per-tile sums in a pooled texture.

        Parameters
        ----------
        src : Region
            Linear input (colour channels as ``layout`` says).
        roi : (x0, y0, x1, y1), optional
            Pixels of ``src`` to count (default: all); ``x0, y0`` must sit on the global block grid.
        stride : int or (int, int)
            Compute only every ``sx``-th tile column and ``sy``-th tile row (see :func:`sampled_counts`); the
            fused dispatch skips the others, the fragment passes compute them and the fold zeroes them.
        first_tile : (int, int)
            Global tile index of the region of interest's first tile (which tiles ``stride`` keeps).
        blind : bool
            The statistics feed a blind sigma alone (the fused dispatch serves them even with ``blind_only``).

        Returns
        -------
        What was written and how it folds into the region's grid (:meth:`grid` reads it).
        """
        w, h = src.width, src.height
        x0, y0, x1, y1 = roi if roi is not None else (0, 0, w, h)
        stride = stride_pair(stride)
        b = self.block
        nx, ny = -(-(x1 - x0) // b), -(-(y1 - y0) // b)
        if self.compute is not None and (blind or not self.blind_only):
            return self._render_fused(src, layout, (x0, y0, x1, y1), (nx, ny), stride, first_tile)
        c = layout.colour
        ax = self._atrous(src, "s_ax", (1, 0), c)
        g1 = self._atrous(ax, "s_g1", (0, 1), c)
        t = self._atrous(g1, "s_tmp", (2, 0), c)
        g2 = self._atrous(t, "s_g2", (0, 2), c)
        t = self._atrous(g2, "s_tmp", (4, 0), c)
        g3 = self._atrous(t, "s_g3", (0, 4), c)
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
        keep = sampled_counts(nx * b, ny * b, b, stride, first_tile) > 0

        def fold(texels: np.ndarray) -> np.ndarray:
            return np.where(keep[..., None], texels.astype(np.float64), 0.0)

        return _Written("s_grid", (nx, ny), fold)

    def _fused_program(self, colour: int, periodic: bool, variant: FusedVariant) -> moderngl.ComputeShader:
        key = (colour, periodic, variant)
        p = self._fused_programs.get(key)
        if p is None:
            gpt = self.block // variant.cols
            start = (f"u_origin.x + int(gl_GlobalInvocationID.x) / {gpt} * u_step.x"
                     f" + int(gl_GlobalInvocationID.x) % {gpt} * COLS",
                     "u_origin.y + int(gl_GlobalInvocationID.y) * u_step.y")
            defines = {"LOCAL_X": variant.local_x, "ROWS": variant.rows, "COLS": variant.cols, "COLOUR": colour,
                       "BLOCK": self.block, "MIRROR_PERIODIC": periodic}
            p = self.ctx.compute_shader(build_source("stats_fused.comp", defines,
                                                     fused_stats_body(variant, self.block, start)))
            p["u_src"].value = 0
            self._fused_programs[key] = p
        return p

    def _render_fused(self, src: Region, layout: Layout, roi: tuple[int, int, int, int], tiles: tuple[int, int],
                      stride: tuple[int, int], first_tile: tuple[int, int]) -> _Written:
        w, h = src.width, src.height
        x0, y0, x1, y1 = roi
        b, nx, ny = self.block, tiles[0], tiles[1]
        # the first kept tile of the region of interest and how many are kept along each axis
        sx, sy = stride
        fx, fy = (-first_tile[0]) % sx, (-first_tile[1]) % sy
        kx, ky = max(0, -(-(nx - fx) // sx)), max(0, -(-(ny - fy) // sy))
        # with a row stride a walk covers one tile row per strip (the next kept row is sy tiles down)
        v = self.variant if sy == 1 else FusedVariant(rows=b, cols=self.variant.cols, local_x=self.variant.local_x)
        gpt = b // v.cols  # column groups per tile
        tx, ty = kx * gpt, ky
        full = np.zeros((ny, nx, 4), dtype=np.float64)
        if tx == 0 or ty == 0:
            return _Written("s_fgrid", (0, 0), lambda texels: full)
        out = self.ex.pool.get("s_fgrid", tx, ty, 4, "f4")
        p = self._fused_program(layout.colour, STATS_HALO > min(w, h), v)
        self.ex.bind(0, src.texture)
        _set(p, "u_src_inv", src.inv)
        _set(p, "u_region", (w, h))
        _set(p, "u_origin", (x0 + fx * b, y0 + fy * b))
        _set(p, "u_step", (b * sx, v.rows * sy))
        _set(p, "u_roi_end", (x1, y1))
        taps = p["u_taps"]
        taps.write(self._taps[: taps.array_length * 16])  # the compiler may trim the array past the last slot read
        comp = self.compute
        assert comp is not None
        saved = comp.save_image_units(1)
        try:
            out.bind_to_image(0, read=False, write=True)
            rows_per_strip = v.rows // b
            p.run(-(-tx // v.local_x), -(-ty // rows_per_strip), 1)
            self.ctx.memory_barrier(0xFFFFFFFF)  # the read-back (framebuffer or pixel-pack buffer) follows
        finally:
            comp.restore_image_units(saved)
        # a group that starts at or past the region of interest's right edge stored nothing: leave it out
        starts = x0 + fx * b + (np.arange(kx)[:, None] * sx * b + np.arange(gpt)[None, :] * v.cols)
        live = (starts < x1)[None, :, :, None]

        def fold(texels: np.ndarray) -> np.ndarray:
            sums = np.where(live, texels.reshape(ty, kx, gpt, 4).astype(np.float64), 0.0).sum(axis=2)
            full[fy::sy, fx::sx] = sums
            return full

        return _Written("s_fgrid", (tx, ty), fold)

    def grid(self, src: Region, layout: Layout, roi: tuple[int, int, int, int] | None = None, *,
             stride: Stride = 1, first_tile: tuple[int, int] = (0, 0), blind: bool = False) -> np.ndarray:
        """Per-tile sums ``(ny, nx, 4)`` float64 of the region of interest, read back now (``stride``,
        ``first_tile``, ``blind``: see :meth:`render`; tiles left out hold 0)."""
        written = self.render(src, layout, roi, stride=stride, first_tile=first_tile, blind=blind)
        tx, ty = written.texels
        if self._readbuf is None or self._readbuf.size < tx * ty * 4:
            self._readbuf = np.empty(tx * ty * 4, dtype=np.float32)
        view = self._readbuf[: tx * ty * 4]
        if tx and ty:
            self.ex.pool.fbo((written.name,)).read_into(view, viewport=(0, 0, tx, ty), components=4, dtype="f4")
        return written.fold(view.reshape(ty, tx, 4))

    def measure(self, src: Region, layout: Layout, stride: Stride = 1) -> BandStats:
        """Whole-region :class:`BandStats`, read back now (``stride``: see :func:`sampled_counts`)."""
        return stats_from_grid(self.grid(src, layout, stride=stride), src.width, src.height, self.block,
                               layout.colour, stride)

    def grid_async(self, src: Region, layout: Layout) -> PendingGrid:
        """Start the passes and a read into a pixel-pack buffer; resolve later with ``.result()``.

        Two buffers alternate, so frame n's read is still intact while frame n + 1 starts its own.
        """
        written = self.render(src, layout)
        tx, ty = written.texels
        need = max(tx * ty * 16, 16)
        if len(self._pbos) < 2 or self._pbos[0].size < need:
            for buf in self._pbos:
                buf.release()
            self._pbos = [self.ctx.buffer(reserve=need) for _ in range(2)]
        buf = self._pbos[self._pbo_next]
        self._pbo_next ^= 1
        if tx and ty:
            self.ex.pool.fbo((written.name,)).read_into(buf, viewport=(0, 0, tx, ty), components=4, dtype="f4")
        return PendingGrid(buf, written, src.width, src.height, self.block, layout.colour)

    def release(self) -> None:
        for buf in self._pbos:
            buf.release()
        self._pbos = []
        for p in self._fused_programs.values():
            p.release()
        self._fused_programs = {}


def fused_stats_body(variant: FusedVariant, block: int, start: tuple[str, str]) -> str:
    """The ``main()`` body of ``stats_fused.comp``: :func:`gpu_deconv.gl.compute.strip_body` over
    :data:`FUSED_SHAPE`; per output pixel the bands in the fragment passes' order (G_k summed ascending from
    the window, ``ay`` from the identity level's three rows), the channel-mean squares added into the row's
    sums inside the region of interest; after the last column the row goes into the tile's sums, and after
    the tile's last row they are stored at (invocation, tile row of the strip)."""

    def emit_row(add: Callable[[str], None], c: int, window: Callable[[int, int], str]) -> None:
        add(f"ivec2 p = ivec2(x0 + {c}, y0 + row);")
        add(f"COL x = {window(3, 0)};")
        for lv in range(3):
            add(f"PRECISE COL g{lv} = COL(0.0);")
            for j in FUSED_SHAPE[lv]:
                sl, comp = _slot(lv, j)
                add(f"g{lv} += u_taps[{sl}].{comp} * {window(lv, j)};")
        add(f"PRECISE COL ay = 0.25 * {window(3, -1)};")
        add("ay += 0.5 * x;")
        add(f"ay += 0.25 * {window(3, 1)};")
        add(f"PRECISE COL hh = x - {window(0, 0)};")
        add("hh -= ay;")
        add("hh += g0;")
        add("if (p.x < u_roi_end.x && p.y < u_roi_end.y)")
        add("    g_row += vec4(chan_mean_sq(x - g0), chan_mean_sq(g0 - g1), chan_mean_sq(g1 - g2), chan_mean_sq(hh));")
        if c == variant.cols - 1:
            add("g_tile += g_row;")
            add("g_row = vec4(0.0);")
            add(f"if (row % {block} == {block - 1}) {{")
            add(f"    imageStore(u_out, ivec2(gl_GlobalInvocationID.x, int(gl_GlobalInvocationID.y) * "
                f"{variant.rows // block} + row / {block}), g_tile);")
            add("    g_tile = vec4(0.0);")
            add("}")

    return strip_body(FUSED_SHAPE, variant, False, emit_row, start)


def _set(p: moderngl.ComputeShader, name: str, value: object) -> None:
    u = p.get(name, None)
    if u is not None:
        u.value = value


__all__ = ["BLUR_TILES", "CPU_STATS_VARIANT", "Stride", "FUSED_SHAPE", "FUSED_STAGE", "GPU_STATS_VARIANT", "STATS_HALO",
           "GpuBandStats", "PendingGrid", "StatsAccumulator", "block_counts", "blur_stride", "fused_stats_body",
           "sampled_counts", "stats_from_grid", "stride_pair"]
