"""The OpenGL engine: :class:`Deconvolver` runs a designed filter on images (NumPy in/out) or textures.

Per frame:

1. the input is uploaded (``process``) or taken from the caller's texture (``apply``) and, if it is
   sRGB-encoded, decoded into a float32 linear texture (deconvolution is linear-light maths);
2. when :meth:`FilterDesigner.needs_stats <gpu_deconv.core.design.FilterDesigner.needs_stats>` (noise
   'auto' or a spectrum level to estimate - the defaults) the GPU computes the frame's band statistics
   (:mod:`gpu_deconv.gl.stats_gpu`; a 120 x 68 grid at 1080p is all that is read back);
3. the designer re-solves the filter on the CPU (microseconds to a millisecond);
4. the plan's passes run (:mod:`gpu_deconv.gl.executor`); the last one sRGB-encodes when the output is
   8/16-bit and copies alpha bit-exactly; ``process`` reads the result back.

``stats_latency=1`` (video): step 2 of frame n is read back asynchronously and steers frame n + 1, so
the CPU never waits for the GPU mid-frame; frame 0 (or the first frame after a size change) measures
synchronously. Scene cuts therefore use the previous scene's noise level for one frame.

Tiling (``tile=``, or automatically above ``GL_MAX_TEXTURE_SIZE`` or the memory budget): the image is
cut into tiles whose interiors sit on the 16-pixel statistics grid, each uploaded with a halo of
``sum of stage radii`` pixels (7 for the statistics pass), clipped at the image border so that the
mirror rule applies exactly where the untiled run applies it. Every pixel of a tile interior is then
computed from the same values by the same operations as untiled - the output is identical bit for bit,
and so are the statistics (the tiles' grid cells are the untiled grid's cells).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from dataclasses import fields
from typing import Any

import moderngl
import numpy as np

from ..core.design import Design, FilterDesigner
from ..core.params import DeconvParams
from ..core.plan import Plan
from ..core.stats import BLOCK, BandStats
from .context import CurrentContext, RawGL, create_headless_context, current_egl_state, restore_egl_state
from .executor import TEXTURE_UNITS, DrawTarget, Layout, PlanExecutor, Region
from .state import GLStateGuard
from .stats_gpu import STATS_HALO, GpuBandStats, PendingGrid, StatsAccumulator
from .timing import GpuTimer

_INT_TEX = {np.dtype(np.uint8): "f1", np.dtype(np.uint16): "nu2"}
_BYTES = {"f1": 1, "nu2": 2, "f2": 2, "f4": 4}


def _plan_halo(plan: Plan) -> int:
    return sum(s.radius for s in plan.stages)


class Deconvolver:
    """Real-time deconvolution with OpenGL.

    Parameters
    ----------
    ctx : moderngl.Context, optional
        A caller's context (borrowed: never released here) or None for an own headless one (EGL on
        Linux), released by :meth:`release`.
    params : DeconvParams, optional
        Initial parameters (default ``DeconvParams()``).
    stats_latency : {0, 1}
        0: each frame's statistics steer that frame (a GPU->CPU sync per frame); 1: they steer the next
        frame (video; see the module docstring).
    specialize : bool
        Shape-specialised shader programs (default; fastest) or generic ones that never recompile
        (:mod:`gpu_deconv.gl.executor`).
    designer : FilterDesigner, optional
        Shared designer (its solver caches) or a stand-in with the same ``design``/``needs_stats``.
    memory_budget_mb : float
        Above this estimated size of the textures a frame needs, ``process`` tiles automatically.
    tile_size : int
        Interior edge of automatic tiles (rounded up to the 16-pixel statistics grid).
    fp16_storage : {'auto', 'native', 'emulated'}
        How precision-16 intermediates are stored: RGBA16F targets ('native'), or RGBA32F with the
        driver's toward-zero rounding done in the shader ('emulated': bit-identical on Mesa llvmpipe and
        ~20-30% faster there); 'auto' emulates exactly on CPU rasterisers that round toward zero.

    Examples
    --------
    >>> with Deconvolver(params=DeconvParams(sigma=1.2)) as dec:      # doctest: +SKIP
    ...     sharp = dec.process(image_u8)
    """

    def __init__(
        self,
        ctx: moderngl.Context | None = None,
        params: DeconvParams | None = None,
        *,
        stats_latency: int = 0,
        specialize: bool = True,
        designer: FilterDesigner | None = None,
        memory_budget_mb: float = 2048.0,
        tile_size: int = 2048,
        fp16_storage: str = "auto",
    ) -> None:
        if stats_latency not in (0, 1):
            raise ValueError(f"stats_latency must be 0 or 1, got {stats_latency!r}")
        self._own_ctx = ctx is None
        saved = current_egl_state() if ctx is None else ()
        self._ctx = create_headless_context() if ctx is None else ctx
        # our GL work runs with this context current and gives the thread back afterwards
        # (see gl.context.CurrentContext); an own one is current from here to the end of __init__
        self._current = CurrentContext(self._ctx, owned=ctx is None)
        self._current.__enter__()
        self.raw = RawGL(self._ctx)
        self.params = params if params is not None else DeconvParams()
        if not isinstance(self.params, DeconvParams):
            raise TypeError(f"params must be a DeconvParams, got {type(self.params).__name__}")
        self.designer = designer if designer is not None else FilterDesigner()
        self.stats_latency = stats_latency
        self.memory_budget_mb = float(memory_budget_mb)
        self.tile_size = max(BLOCK, -(-int(tile_size) // BLOCK) * BLOCK)
        self._guard = GLStateGuard(self._ctx, self.raw, TEXTURE_UNITS)
        with self._guard:
            self.executor = PlanExecutor(self._ctx, specialize=specialize, raw=self.raw, fp16_storage=fp16_storage)
        self.gpu_stats = GpuBandStats(self.executor)
        self.timer = GpuTimer(self._ctx, self.raw)
        #: The last :class:`~gpu_deconv.core.design.Design` used (or returned by :meth:`set_blur`).
        self.design: Design | None = None
        #: The statistics that steered the last frame (also what :meth:`set_blur` designs with).
        self.last_stats: BandStats | None = None
        #: Milliseconds of the last :meth:`process`: upload, stats, design, gpu, download, total.
        self.timings: dict[str, float] = {}
        # latency 1: (frame size, statistics or pending read) of the previous frame, for the next one
        self._next: tuple[tuple[int, int], BandStats | PendingGrid] | None = None
        self._design_key: tuple | None = None
        self._staging: dict[str, np.ndarray] = {}
        self._dst_fbos: OrderedDict[int, tuple[moderngl.Texture, moderngl.Framebuffer]] = OrderedDict()
        self._released = False
        self._current.__exit__()
        if ctx is None:
            restore_egl_state(saved)

    def _bound(self) -> contextlib.AbstractContextManager:
        """Our context current for the block; whatever was current before is given back after."""
        return self._current

    # -- properties / parameters --------------------------------------------------------------------
    @property
    def ctx(self) -> moderngl.Context:
        return self._ctx

    @property
    def last_gpu_ms(self) -> float | None:
        """GPU time of the newest finished frame (normally the previous one), from timer queries."""
        if self._released:
            return None
        with self._bound():
            return self.timer.latest()

    @property
    def fp16_rounding(self) -> str:
        """How this driver rounds into fp16 targets ('toward_zero' on llvmpipe, 'nearest' on most GPUs)."""
        return self.executor.fp16_rounding

    def set_params(self, params: DeconvParams) -> None:
        """Replace the parameters; the filter is re-solved for the next frame (no GL work here)."""
        if not isinstance(params, DeconvParams):
            raise TypeError(f"params must be a DeconvParams, got {type(params).__name__}")
        self.params = params
        self._design_key = None

    def set_blur(self, sigma: float, noise: float | str | None = None, method: str | None = None,
                 *, bits: int | None = None, **other: Any) -> Design:
        """Change the blur (and any other :class:`DeconvParams` field) and re-solve the filter now.

        ``noise`` and ``method`` left as None keep their current values. ``bits`` is the integer depth
        of the frames to come (adds their quantization noise), as in :meth:`process` and :meth:`apply`.

        CPU only (no shader compile, no texture reallocation). The returned design uses the last
        measured statistics; before any frame, a filter that needs statistics is designed with the
        defaults (noise 0 for ``'auto'``) and re-designed with real statistics at the first frame.

        Raises
        ------
        ValueError
            Unknown fields or invalid values (from :class:`DeconvParams`).
        """
        known = {f.name for f in fields(DeconvParams)}
        unknown = sorted(set(other) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        changes = dict(other, sigma=sigma)
        if noise is not None:
            changes["noise"] = noise
        if method is not None:
            changes["method"] = method
        self.set_params(self.params.replace(**changes))
        stats = self.last_stats
        params = self.params
        needs = self.designer.needs_stats(params)
        if stats is None and params.noise_is_auto:
            params = params.replace(noise=0.0)
        d = self.designer.design(params, stats if needs else None, bits)
        self.design = d
        if not needs:  # the next frame reuses this solve instead of repeating it
            self._design_key = (self.params, bits)
        return d

    def _design_for(self, stats: BandStats | None, bits: int | None) -> Design:
        needs = self.designer.needs_stats(self.params)
        key = (self.params, bits)
        if not needs and self._design_key == key and self.design is not None:
            return self.design
        d = self.designer.design(self.params, stats if needs else None, bits)
        self.design = d
        self._design_key = None if needs else key
        return d

    # -- helpers ------------------------------------------------------------------------------------
    def _stage(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A reusable staging array (one allocation per name, grown on demand)."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape))
        buf = self._staging.get(name)
        if buf is None or buf.dtype != dtype or buf.size < n:
            buf = np.empty(n, dtype=dtype)
            self._staging[name] = buf
        return buf[:n].reshape(shape)

    @staticmethod
    def _layout_of(image: np.ndarray) -> Layout:
        return Layout.for_channels(1 if image.ndim == 2 else image.shape[2])

    def _upload(self, image: np.ndarray, layout: Layout, tex_dtype: str) -> Region:
        """Upload ``image`` (H, W[, C]) into the pooled input texture (RGB/LA padded to RGBA)."""
        h, w = image.shape[:2]
        np_dtype = np.float32 if tex_dtype == "f4" else image.dtype
        tex = self.executor.pool.get("in", w, h, layout.comps, tex_dtype)
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

    def _download(self, target: DrawTarget, layout: Layout, tex_dtype: str, out: np.ndarray,
                  rect: tuple[int, int, int, int] | None = None) -> None:
        """Read ``rect`` (x, y, w, h) of the output texture into ``out`` (H, W[, C])."""
        x, y, w, h = rect if rect is not None else target.viewport
        c = 1 if out.ndim == 2 else out.shape[2]
        np_dtype = {"f1": np.uint8, "nu2": np.uint16, "f4": np.float32}[tex_dtype]
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

    def _bytes_per_pixel(self, layout: Layout, in_dtype: str, srgb: bool, plan_levels: int) -> float:
        ic = layout.inter_comps
        p = 2 if self.params.precision == 16 else 4
        b = layout.comps * _BYTES[in_dtype] * 2  # input + output
        b += 16 if srgb else 0
        b += (plan_levels + 2) * ic * p
        b += 5 * ic * 4 if self.designer.needs_stats(self.params) else 0
        return b

    # -- process ------------------------------------------------------------------------------------
    def process(
        self,
        image: np.ndarray,
        *,
        space: str = "auto",
        bits: int | None = None,
        tile: int | tuple[int, int] | None = None,
        out: np.ndarray | None = None,
        plan: Plan | None = None,
    ) -> np.ndarray:
        """Deconvolve one image.

        Parameters
        ----------
        image : ndarray
            (H, W) or (H, W, C), C in 1..4 (gray, LA, RGB, RGBA); uint8/uint16 (sRGB by default) or
            float32/float16 (linear by default).
        space : {'auto', 'srgb', 'linear'}
            'auto' takes ``params.space``, and if that is 'auto' too: sRGB for integers, linear for
            floats. sRGB input is decoded to linear light, filtered, and re-encoded.
        bits : int, optional
            Bit depth whose quantisation noise enters the noise model; default 8/16 for uint8/uint16,
            None for floats.
        tile : int or (w, h), optional
            Force tiled processing with this tile interior (see the module docstring).
        out : ndarray, optional
            Output array (same shape; dtype of the result) to fill instead of allocating one.
        plan : Plan, optional
            Run this plan instead of designing one from the parameters (tests, fixed filters).

        Returns
        -------
        ndarray
            Same shape; uint8/uint16 for integer input, float32 for float input. Alpha is bit-exact.
        """
        self._check_alive()
        t_start = time.perf_counter()
        img = np.asarray(image)
        if img.ndim not in (2, 3) or (img.ndim == 3 and not 1 <= img.shape[2] <= 4):
            raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1..4, got shape {img.shape}")
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"image is empty: shape {img.shape}")
        if img.dtype in _INT_TEX:
            tex_dtype = _INT_TEX[img.dtype]
            out_dtype = img.dtype
            default_bits: int | None = 8 if img.dtype == np.uint8 else 16
        elif img.dtype in (np.float32, np.float16, np.float64):
            tex_dtype, out_dtype, default_bits = "f4", np.dtype(np.float32), None
        else:
            raise TypeError(f"unsupported image dtype {img.dtype}: use uint8, uint16, float16 or float32")
        if space == "auto":
            space = self.params.space
        if space == "auto":
            space = "srgb" if tex_dtype != "f4" else "linear"
        if space not in ("srgb", "linear"):
            raise ValueError(f"space must be 'auto', 'srgb' or 'linear', got {space!r}")
        bits = default_bits if bits is None else int(bits)
        srgb = space == "srgb"
        layout = self._layout_of(img)
        h, w = img.shape[:2]
        if out is None:
            out = np.empty(img.shape, dtype=out_dtype)
        elif out.shape != img.shape or out.dtype != out_dtype:
            raise ValueError(f"out must have shape {img.shape} and dtype {out_dtype}")

        needs_stats = plan is None and self.designer.needs_stats(self.params)
        levels = max((s.levels for s in plan.stages), default=1) if plan is not None else 5
        est = w * h * self._bytes_per_pixel(layout, tex_dtype, srgb, levels) / 2**20
        if tile is None and (max(w, h) > self.executor.max_texture_size or est > self.memory_budget_mb):
            tile = self.tile_size
        self.timings = {"upload": 0.0, "stats": 0.0, "design": 0.0, "gpu": 0.0, "download": 0.0}
        with self._bound(), self._guard:
            if tile is None:
                self._process_whole(img, layout, tex_dtype, srgb, bits, needs_stats, plan, out)
            else:
                self._process_tiled(img, layout, tex_dtype, srgb, bits, needs_stats, plan, out, tile)
        self.timings["total"] = (time.perf_counter() - t_start) * 1e3
        return out

    def _stats_for_frame(self, base: Region, layout: Layout) -> BandStats:
        """The statistics that steer this frame (latency 0: measured now; 1: the previous frame's).

        With latency 1 this frame's grid is read asynchronously and resolved by the next frame; the
        first frame, and a frame whose size differs from the previous one, measure synchronously.
        """
        t = time.perf_counter()
        size = (base.width, base.height)
        nxt = self._next
        if self.stats_latency == 1 and nxt is not None and nxt[0] == size:
            stats = nxt[1].result() if isinstance(nxt[1], PendingGrid) else nxt[1]
            self._next = (size, self.gpu_stats.grid_async(base, layout))
        else:
            stats = self.gpu_stats.measure(base, layout)
            self._next = (size, stats) if self.stats_latency == 1 else None
        self.last_stats = stats
        self.timings["stats"] = self.timings.get("stats", 0.0) + (time.perf_counter() - t) * 1e3
        return stats

    def _resolve(self, plan: Plan | None, stats: BandStats | None, bits: int | None) -> Plan:
        if plan is not None:
            return plan
        t = time.perf_counter()
        d = self._design_for(stats, bits)
        self.timings["design"] = self.timings.get("design", 0.0) + (time.perf_counter() - t) * 1e3
        return d.plan

    def _out_target(self, layout: Layout, tex_dtype: str, w: int, h: int) -> DrawTarget:
        self.executor.pool.get("out", w, h, layout.comps, tex_dtype)
        return self.executor.internal_target(("out",), w, h)

    def _process_whole(self, img: np.ndarray, layout: Layout, tex_dtype: str, srgb: bool, bits: int | None,
                       needs_stats: bool, plan: Plan | None, out: np.ndarray) -> None:
        h, w = img.shape[:2]
        t = time.perf_counter()
        src = self._upload(img, layout, tex_dtype)
        self.timings["upload"] = (time.perf_counter() - t) * 1e3
        self.timer.begin()
        try:
            target = self._out_target(layout, tex_dtype, w, h)
            ex = self.executor
            if not needs_stats and plan is None:
                plan = self._resolve(None, None, bits)
            if plan is not None and not plan.stages:
                ex.copy(src, target, layout, decode=srgb, encode=srgb)
            else:
                base = ex.decode(src, layout) if srgb else src
                stats = self._stats_for_frame(base, layout) if needs_stats else None
                plan = self._resolve(plan, stats, bits)
                if plan.stages:
                    ex.run_stages(plan, base, target, layout, precision=self.params.precision, encode_srgb=srgb)
                else:
                    ex.copy(base, target, layout, encode=srgb)
        finally:
            self.timer.end()
        t = time.perf_counter()
        self._download(target, layout, tex_dtype, out)
        self.timings["download"] = (time.perf_counter() - t) * 1e3
        self.timings["gpu"] = self.timer.result_now() or 0.0

    def _tiles(self, w: int, h: int, tile: int | tuple[int, int]) -> list[tuple[int, int, int, int]]:
        tw, th = (tile, tile) if np.isscalar(tile) else tile  # type: ignore[misc]
        tw = max(BLOCK, -(-int(tw) // BLOCK) * BLOCK)
        th = max(BLOCK, -(-int(th) // BLOCK) * BLOCK)
        return [(x0, y0, min(x0 + tw, w), min(y0 + th, h)) for y0 in range(0, h, th) for x0 in range(0, w, tw)]

    def _process_tiled(self, img: np.ndarray, layout: Layout, tex_dtype: str, srgb: bool, bits: int | None,
                       needs_stats: bool, plan: Plan | None, out: np.ndarray,
                       tile: int | tuple[int, int]) -> None:
        h, w = img.shape[:2]
        tiles = self._tiles(w, h, tile)
        ex = self.executor
        maxt = ex.max_texture_size

        def with_halo(t: tuple[int, int, int, int], halo: int) -> tuple[int, int, int, int]:
            x0, y0, x1, y1 = t
            hx0, hy0, hx1, hy1 = max(0, x0 - halo), max(0, y0 - halo), min(w, x1 + halo), min(h, y1 + halo)
            if hx1 - hx0 > maxt or hy1 - hy0 > maxt:
                raise ValueError(f"tile {x1 - x0}x{y1 - y0} with halo {halo} exceeds GL_MAX_TEXTURE_SIZE {maxt}")
            return hx0, hy0, hx1, hy1

        def upload_linear(hr: tuple[int, int, int, int]) -> Region:
            hx0, hy0, hx1, hy1 = hr
            t0 = time.perf_counter()
            src = self._upload(img[hy0:hy1, hx0:hx1], layout, tex_dtype)
            self.timings["upload"] += (time.perf_counter() - t0) * 1e3
            return ex.decode(src, layout) if srgb else src

        def tile_stats(t: tuple[int, int, int, int], hr: tuple[int, int, int, int], base: Region,
                       acc: StatsAccumulator) -> None:
            x0, y0, x1, y1 = t
            hx0, hy0 = hr[:2]
            t0 = time.perf_counter()
            cells = self.gpu_stats.grid(base, layout, (x0 - hx0, y0 - hy0, x1 - hx0, y1 - hy0))
            acc.add(cells, x0 // BLOCK, y0 // BLOCK)
            self.timings["stats"] += (time.perf_counter() - t0) * 1e3

        acc = StatsAccumulator(w, h, channels=layout.colour) if needs_stats else None
        stats: BandStats | None = None
        nxt = self._next
        if needs_stats and self.stats_latency == 1 and nxt is not None and nxt[0] == (w, h):
            # the previous frame's statistics steer this one; this frame's are gathered on the way
            stats = nxt[1].result() if isinstance(nxt[1], PendingGrid) else nxt[1]
        elif needs_stats:
            # sweep 1: statistics of the whole image before any filtering
            for t in tiles:
                hr = with_halo(t, STATS_HALO)
                tile_stats(t, hr, upload_linear(hr), acc)  # type: ignore[arg-type]
            stats = acc.result()  # type: ignore[union-attr]
            self._next = ((w, h), stats) if self.stats_latency == 1 else None
            acc = None
        if stats is not None:
            self.last_stats = stats
        plan = self._resolve(plan, stats, bits)
        halo = _plan_halo(plan)
        if acc is not None:
            halo = max(halo, STATS_HALO)
        self.timer.begin()
        try:
            for t in tiles:
                x0, y0, x1, y1 = t
                hr = with_halo(t, halo)
                hx0, hy0, hx1, hy1 = hr
                base = upload_linear(hr)
                if acc is not None:
                    tile_stats(t, hr, base, acc)
                tw_, th_ = hx1 - hx0, hy1 - hy0
                target = self._out_target(layout, tex_dtype, tw_, th_)
                if plan.stages:
                    ex.run_stages(plan, base, target, layout, precision=self.params.precision, encode_srgb=srgb)
                else:
                    ex.copy(base, target, layout, encode=srgb)
                t0 = time.perf_counter()
                self._download(target, layout, tex_dtype, out[y0:y1, x0:x1],
                               rect=(x0 - hx0, y0 - hy0, x1 - x0, y1 - y0))
                self.timings["download"] += (time.perf_counter() - t0) * 1e3
        finally:
            self.timer.end()
        self.timings["gpu"] = self.timer.result_now() or 0.0
        if acc is not None:
            self._next = ((w, h), acc.result())

    # -- apply (embedding) --------------------------------------------------------------------------
    def _dst_framebuffer(self, tex: moderngl.Texture) -> moderngl.Framebuffer:
        key = id(tex)
        hit = self._dst_fbos.get(key)
        if hit is not None and hit[0] is tex:
            self._dst_fbos.move_to_end(key)
            return hit[1]
        fb = self._ctx.framebuffer(color_attachments=[tex])
        self._dst_fbos[key] = (tex, fb)
        while len(self._dst_fbos) > 8:
            self.executor.pool._release_fbo(self._dst_fbos.popitem(last=False)[1][1])
        return fb

    def apply(
        self,
        src: moderngl.Texture,
        dst: moderngl.Framebuffer | moderngl.Texture,
        *,
        viewport: tuple[int, int, int, int] | None = None,
        src_is_srgb: bool = False,
        encode_srgb: bool = False,
        bits: int | None = None,
        plan: Plan | None = None,
    ) -> None:
        """Deconvolve a texture into the caller's framebuffer (or texture); GL state is left as found.

        Parameters
        ----------
        src : moderngl.Texture
            1 (gray), 3 (RGB) or 4 (RGBA) components, a normalized or float format (filtering and wrap
            settings do not matter: the passes use their own NEAREST sampler).
        dst : moderngl.Framebuffer or moderngl.Texture
            Where the result goes (colour attachment 0).
        viewport : (x, y, w, h), optional
            Region of ``dst`` to draw; ``w, h`` must equal the source size. Default ``(0, 0, *src.size)``.
        src_is_srgb : bool
            The texture holds sRGB-encoded values (an ``*_SRGB8*`` texture that GL decodes on sampling
            is *not* that: pass False for it).
        encode_srgb : bool
            Encode the output to sRGB in the shader (GL_FRAMEBUFFER_SRGB is disabled meanwhile).
        bits : int, optional
            Integer bit depth the texture's content came from (8 for an RGBA8 video frame): its
            quantization noise joins the noise model, exactly as :meth:`process` does for uint8 input.
        plan : Plan, optional
            Run this plan instead of designing one.

        Notes
        -----
        The design used is left in :attr:`design` (unchanged when ``plan`` is given); GPU time arrives
        in :attr:`last_gpu_ms` a frame later.
        """
        self._check_alive()
        if src.components == 2:
            raise ValueError("apply() takes 1-, 3- or 4-component textures (store LA images as RGBA)")
        w, h = src.size
        vp = tuple(int(v) for v in (viewport if viewport is not None else (0, 0, w, h)))
        if len(vp) != 4 or vp[2] != w or vp[3] != h:
            raise ValueError(f"viewport {vp} must be (x, y, {w}, {h}) - the size of the source")
        layout = Layout(1 if src.components == 1 else 3, src.components, src.components == 4)
        self.timings = {"stats": 0.0, "design": 0.0}
        with self._bound(), self._guard as guard:
            fbo = dst if isinstance(dst, moderngl.Framebuffer) else self._dst_framebuffer(dst)
            target = DrawTarget(fbo, vp, external=True)  # type: ignore[arg-type]
            ex = self.executor
            region = Region(src, w, h)
            needs = plan is None and self.designer.needs_stats(self.params)
            self.timer.begin()
            try:
                if not needs and plan is None:
                    plan = self._resolve(None, None, bits)
                if plan is not None and not plan.stages:
                    ex.copy(region, target, layout, decode=src_is_srgb, encode=encode_srgb, guard=guard)
                    return
                base = ex.decode(region, layout) if src_is_srgb else region
                stats = self._stats_for_frame(base, layout) if needs else None
                plan = self._resolve(plan, stats, bits)
                if plan.stages:
                    ex.run_stages(plan, base, target, layout, precision=self.params.precision,
                                  encode_srgb=encode_srgb, guard=guard)
                else:
                    ex.copy(base, target, layout, encode=encode_srgb, guard=guard)
            finally:
                self.timer.end()

    # -- lifetime -----------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._released:
            raise RuntimeError("this Deconvolver has been released")

    def release(self) -> None:
        """Free every GL object made here; an own context is released too, a borrowed one never."""
        if self._released:
            return
        self._released = True
        with self._bound():
            with self._guard:
                for _, fb in self._dst_fbos.values():
                    self.executor.pool._release_fbo(fb)
                self._dst_fbos.clear()
                self.gpu_stats.release()
                self.timer.release()
                self.executor.release()
            self._staging.clear()
            if self._own_ctx:
                self._ctx.release()

    def __enter__(self) -> Deconvolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
