"""The OpenGL engine: :class:`Deconvolver` runs a designed filter on images (NumPy in/out) or textures.

One frame path (:meth:`Deconvolver._run_frame`) serves ``process`` (NumPy, whole or tiled) and ``apply``
(the caller's textures):

1. the input is uploaded (``process``) or taken from the caller's texture (``apply``) and, if it is
   sRGB-coded, decoded into a float32 linear texture (deconvolution is linear-light maths);
2. when :meth:`FilterDesigner.needs_stats <gpu_deconv.core.design.FilterDesigner.needs_stats>` (noise
   'auto' or a spectrum level to estimate - the defaults) the GPU computes the frame's band statistics
   (:mod:`gpu_deconv.gl.stats_gpu`: seven fragment passes; a 120 x 68 grid at 1080p is all that is read back;
   in the adaptive mode they only feed a blind sigma: one fused compute dispatch where the stages take the
   fused path unmeasured, over every :meth:`~gpu_deconv.gl.stats_gpu.GpuBandStats.blind_stride`-th tile);
3. the designer re-solves the filter on the CPU (microseconds; nothing when nothing changed);
4. the plan's passes run (:mod:`gpu_deconv.gl.executor`); the last one sRGB-encodes when the output is
   8/16-bit and copies alpha bit-exactly; ``process`` reads the result back. The identity plan is one pass.

``stats_latency=1`` (video): the statistics of frame n are read back asynchronously and steer frame n + 1,
so the CPU never waits for the GPU mid-frame; frame 0 (or the first frame after a size change) measures
synchronously. Scene cuts therefore use the previous scene's noise level for one frame.

Tiling (``tile=``, or automatically above ``GL_MAX_TEXTURE_SIZE`` or the memory budget) feeds the same
path with several (interior, halo) rectangles (:mod:`gpu_deconv.gl.frames`): the halo is the sum of the
stage radii (7 for the statistics), the interiors sit on the 16-pixel statistics grid, and the output
and the statistics are bit-identical to the untiled run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import moderngl
import numpy as np

from ..core.design import Design, FilterDesigner, FrameFormat
from ..core.params import DeconvParams
from ..core.plan import Plan
from ..core.stats import BLOCK, BandStats
from ..core.temporal import TemporalSmoother
from .adaptive import AdaptiveFrames
from .compute import PathChooser
from .context import CurrentContext, RawGL, create_headless_context, current_egl_state, restore_egl_state
from .executor import TEXTURE_UNITS, DrawTarget, Layout, PlanExecutor, Region
from .frames import (
    FramebufferCache,
    ImageIO,
    ImageTransfer,
    Rect,
    frame_bytes_per_pixel,
    layout_of,
    tile_grid,
    with_halos,
)
from .state import GLStateGuard
from .stats_gpu import STATS_HALO, GpuBandStats, PendingGrid, StatsAccumulator
from .timing import GpuTimer


@dataclass
class _Frame:
    """One frame for :meth:`Deconvolver._run_frame`: its geometry, coding and where pixels come from and go."""

    width: int
    height: int
    layout: Layout
    decode: bool  # the input holds sRGB codes
    encode: bool  # the output must hold sRGB codes
    format: FrameFormat
    tiles: list[Rect]
    load: Callable[[Rect], Region]  # the coded input of a rectangle
    target: Callable[[Rect], DrawTarget]  # where a (halo) rectangle is drawn
    store: Callable[[Rect, Rect, DrawTarget], None]  # (interior, halo rectangle, target) after drawing
    guard: GLStateGuard | None = None  # needed to draw into a caller's framebuffer


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
        A shared designer (its solver and design caches).
    memory_budget_mb : float
        Above this estimated size of the textures a frame needs, ``process`` tiles automatically.
    tile_size : int
        Interior edge of automatic tiles (rounded up to the 16-pixel statistics grid).
    fp16_storage : {'auto', 'native', 'emulated'}
        How precision-16 intermediates are stored: RGBA16F targets ('native'), or RGBA32F with the
        driver's toward-zero rounding done in the shader ('emulated': bit-identical on Mesa llvmpipe and
        ~20-30% faster there); 'auto' emulates exactly on CPU rasterisers that round toward zero.
    path : {'auto', 'measure', 'fragment', 'compute'}
        How mixture stages run (:class:`~gpu_deconv.gl.compute.PathChooser`): the H + V fragment passes, or
        one fused compute dispatch per stage (OpenGL 4.3; identical output). 'auto': the fused path on CPU
        rasterisers (measured faster there for every method), else whichever measures faster on this
        driver the first time a plan shape and size class come up.
    temporal : TemporalSmoother, optional
        For video: smooth the per-frame statistics (and so the noise and level estimates) over time, reset
        at scene cuts (:mod:`gpu_deconv.core.temporal`). Also settable later as :attr:`temporal`; call its
        ``reset()`` on a seek. None (default): every frame is designed from its own statistics.

    Examples
    --------
    >>> with Deconvolver(params=DeconvParams(sigma=1.2)) as dec:      # doctest: +SKIP
    ...     sharp = dec.process(image_u8)
    """

    def __init__(self, ctx: moderngl.Context | None = None, params: DeconvParams | None = None, *,
                 stats_latency: int = 0, specialize: bool = True, designer: FilterDesigner | None = None,
                 memory_budget_mb: float = 2048.0, tile_size: int = 2048, fp16_storage: str = "auto",
                 path: str = "auto", temporal: TemporalSmoother | None = None) -> None:
        if stats_latency not in (0, 1):
            raise ValueError(f"stats_latency must be 0 or 1, got {stats_latency!r}")
        self.params = params if params is not None else DeconvParams()
        if not isinstance(self.params, DeconvParams):
            raise TypeError(f"params must be a DeconvParams, got {type(self.params).__name__}")
        self._own_ctx = ctx is None
        saved = current_egl_state() if ctx is None else ()
        self._ctx = create_headless_context() if ctx is None else ctx
        # our GL work runs with this context current and gives the thread back afterwards
        # (see gl.context.CurrentContext); an own one is current from here to the end of __init__
        self._current = CurrentContext(self._ctx, owned=ctx is None)
        self._current.__enter__()
        self.raw = RawGL(self._ctx)
        self.designer = designer if designer is not None else FilterDesigner()
        self.stats_latency = stats_latency
        self.temporal = temporal
        self.memory_budget_mb = float(memory_budget_mb)
        self.tile_size = max(BLOCK, -(-int(tile_size) // BLOCK) * BLOCK)
        self._guard = GLStateGuard(self._ctx, self.raw, TEXTURE_UNITS)
        with self._guard:
            self.executor = PlanExecutor(self._ctx, specialize=specialize, raw=self.raw, fp16_storage=fp16_storage)
            self.paths = PathChooser(self.executor, mode=path)
        self.transfer = ImageTransfer(self.executor.pool)
        self.gpu_stats = GpuBandStats(self.executor, compute=self.paths.fused_without_measuring(), blind_only=True)
        self.timer = GpuTimer(self._ctx, self.raw)
        #: The last :class:`~gpu_deconv.core.design.Design` used (or returned by :meth:`set_blur`).
        self.design: Design | None = None
        #: The statistics that steered the last frame (also what :meth:`set_blur` designs with).
        self.last_stats: BandStats | None = None
        #: With sigma 'auto': the statistics (with per-tile band sums) the last blind estimate came from.
        self.last_blur_stats: BandStats | None = None
        #: Milliseconds of the last frame: upload, stats, design, gpu, download, total (``process``); in the
        #: adaptive mode ``adaptive`` is its whole frame (local statistics, table solve and passes, CPU wall).
        self.timings: dict[str, float] = {}
        # latency 1: (frame size, statistics or pending read) of the previous frame, for the next one
        self._next: tuple[tuple[int, int], BandStats | PendingGrid] | None = None
        self._dst_fbos = FramebufferCache(self._ctx, self.executor.pool)
        # the adaptive mode's passes and per-frame state (passes 1-2 fused where the global stages are)
        self._adaptive = AdaptiveFrames(self.executor, self.paths.fused_without_measuring())
        self._released = False
        self._current.__exit__()
        if ctx is None:
            restore_egl_state(saved)

    # -- properties / parameters --------------------------------------------------------------------
    @property
    def ctx(self) -> moderngl.Context:
        return self._ctx

    @property
    def last_gpu_ms(self) -> float | None:
        """GPU time of the newest finished frame (normally the previous one), from timer queries."""
        if self._released:
            return None
        with self._current:
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
        unknown = sorted(set(other) - {f.name for f in fields(DeconvParams)})
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        kept = {k: v for k, v in (("noise", noise), ("method", method)) if v is not None}  # None: keep
        self.set_params(self.params.replace(**other, sigma=sigma, **kept))
        params = self.params
        if self.last_stats is None and params.noise_is_auto:
            params = params.replace(noise=0.0)
        self.design = self.designer.design(params, self.last_stats, FrameFormat(bits, "linear"))
        return self.design

    # -- process (NumPy in, NumPy out) --------------------------------------------------------------
    def process(self, image: np.ndarray, *, space: str = "auto", bits: int | None = None,
                tile: int | tuple[int, int] | None = None, out: np.ndarray | None = None,
                plan: Plan | None = None, extra_noise: float = 0.0) -> np.ndarray:
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
        extra_noise : float
            Coding noise the statistics cannot see (a JPEG's compression noise), linear std; added in
            quadrature to the noise model (:class:`~gpu_deconv.core.design.FrameFormat`).

        Returns
        -------
        ndarray
            Same shape; uint8/uint16 for integer input, float32 for float input. Alpha is bit-exact.
        """
        self._check_alive()
        t_start = time.perf_counter()
        img = np.asarray(image)
        io = ImageIO.of(img, self.params.space if space == "auto" else space, out)
        tex_dtype, srgb, out = io.tex_dtype, io.srgb, io.out
        layout = layout_of(img)
        h, w = img.shape[:2]
        levels = max((s.levels for s in plan.stages), default=1) if plan is not None else 5
        est = w * h * frame_bytes_per_pixel(layout, tex_dtype, srgb, levels, self.params.precision,
                                            plan is None and self.designer.needs_stats(self.params)) / 2**20
        if tile is None and (max(w, h) > self.executor.max_texture_size or est > self.memory_budget_mb):
            tile = self.tile_size
        self.timings = {"upload": 0.0, "stats": 0.0, "design": 0.0, "gpu": 0.0, "download": 0.0}

        def load(r: Rect) -> Region:
            t = time.perf_counter()
            region = self.transfer.upload(img[r[1]:r[3], r[0]:r[2]], layout, tex_dtype)
            self.timings["upload"] += (time.perf_counter() - t) * 1e3
            return region

        def target(r: Rect) -> DrawTarget:
            rw, rh = r[2] - r[0], r[3] - r[1]
            self.executor.pool.get("out", rw, rh, layout.comps, tex_dtype)
            return self.executor.internal_target(("out",), rw, rh)

        def store(interior: Rect, r: Rect, dst: DrawTarget) -> None:
            t = time.perf_counter()
            x0, y0, x1, y1 = interior
            self.transfer.download(dst, layout, tex_dtype, out[y0:y1, x0:x1], (x0 - r[0], y0 - r[1], x1 - x0, y1 - y0))
            self.timings["download"] += (time.perf_counter() - t) * 1e3

        fmt = FrameFormat(io.bits if bits is None else int(bits), "srgb" if srgb else "linear", float(extra_noise))
        frame = _Frame(w, h, layout, srgb, srgb, fmt, tile_grid(w, h, tile), load, target, store)
        with self._current, self._guard:
            self._run_frame(frame, plan)
            self.timings["gpu"] = self.timer.result_now() or 0.0
        self.timings["total"] = (time.perf_counter() - t_start) * 1e3
        return out

    # -- apply (embedding: the caller's textures) ---------------------------------------------------
    def apply(self, src: moderngl.Texture, dst: moderngl.Framebuffer | moderngl.Texture, *,
              viewport: tuple[int, int, int, int] | None = None, src_is_srgb: bool = False,
              encode_srgb: bool = False, bits: int | None = None, plan: Plan | None = None) -> None:
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
        with self._current, self._guard as guard:
            fbo = dst if isinstance(dst, moderngl.Framebuffer) else self._dst_fbos.get(dst)
            drawn = DrawTarget(fbo, vp, external=True)  # type: ignore[arg-type]
            fmt = FrameFormat(bits, "srgb" if src_is_srgb else "linear")
            frame = _Frame(w, h, layout, src_is_srgb, encode_srgb, fmt, [(0, 0, w, h)], lambda r: Region(src, w, h),
                           lambda r: drawn, lambda interior, r, t: None, guard)
            self._run_frame(frame, plan)

    def draw_level_map(self, dst: moderngl.Framebuffer | moderngl.Texture) -> bool:
        """Draw the last adaptive frame's local level instead of the image (the viewer's overlay).

        ``dst`` (the frame's size; a float format keeps the values) gets, per pixel, ``(v, E, A / sigma^2, 1)``
        with ``v = log2(A / sigma^2)`` in [-10, 21] (the table axis, :mod:`gpu_deconv.core.adaptive`). Returns
        False (drawing nothing) when the last frame did not run the adaptive mode.
        """
        self._check_alive()
        if self.design is None or not self.design.adaptive:
            return False
        with self._current, self._guard as guard:
            fbo = dst if isinstance(dst, moderngl.Framebuffer) else self._dst_fbos.get(dst)
            target = DrawTarget(fbo, (0, 0, *fbo.size), external=True)
            return self._adaptive.draw_level_map(self.design.table, target, guard)

    # -- the frame path -------------------------------------------------------------------------------
    def _run_frame(self, frame: _Frame, plan: Plan | None) -> None:
        """Statistics (when the design needs them), design, then the passes over every tile of ``frame``."""
        ex, layout = self.executor, frame.layout
        loaded: dict[str, Any] = {}

        def linear(r: Rect) -> Region:  # the decoded input of a rectangle, uploaded and decoded once
            if loaded.get("rect") != r:
                loaded.clear()
                loaded.update(rect=r, src=frame.load(r))
            if "lin" not in loaded:
                loaded["lin"] = ex.decode(loaded["src"], layout) if frame.decode else loaded["src"]
            return loaded["lin"]

        self.timer.begin()
        try:
            self._filter(frame, plan, linear, loaded)
        finally:
            self.timer.end()

    def _filter(self, frame: _Frame, plan: Plan | None, linear: Callable[[Rect], Region],
                loaded: dict[str, Any]) -> None:
        """The body of :meth:`_run_frame`; ``linear(rect)`` uploads and decodes a rectangle once per frame."""
        ex, layout = self.executor, frame.layout
        size = (frame.width, frame.height)
        adaptive = plan is None and self.designer.uses_adaptive(self.params)
        # the global statistics: for the global design, or (adaptive mode) only for a blind sigma
        needs = plan is None and (self.params.sigma_is_auto if adaptive else self.designer.needs_stats(self.params))
        gather = False  # latency 1: this frame's statistics are gathered while filtering, for the next
        stats: BandStats | None = None
        if needs:
            t = time.perf_counter()
            prev = (self._next if self.stats_latency == 1 and not adaptive and self._next and self._next[0] == size
                    else None)
            if prev is not None:
                stats, gather = (prev[1].result() if isinstance(prev[1], PendingGrid) else prev[1]), True
            else:
                stride = self.gpu_stats.blind_stride(*size) if adaptive else 1  # the blind sigma's tiles only
                acc = StatsAccumulator(*size, channels=layout.colour, stride=stride, blind=adaptive)
                for interior, r in with_halos(frame.tiles, STATS_HALO, *size, ex.max_texture_size):
                    acc.measure(self.gpu_stats, linear(r), layout, interior, r)
                stats = acc.result()
                # the adaptive mode's own statistics steer its next frame; these only give the blind sigma
                self._next = (size, stats) if self.stats_latency == 1 and not adaptive else None
            smoother = self._adaptive.blur_smoother(self.temporal) if adaptive else self.temporal
            if smoother is not None:
                stats = smoother.update(stats)
            self.last_stats = self.last_blur_stats = stats
            self.timings["stats"] += (time.perf_counter() - t) * 1e3
        if adaptive:
            params, estimate = self.designer.resolve_sigma(self.params, stats, frame.format.bits)
            if params.method != "identity":
                self._adaptive_frame(frame, params, estimate, linear)
                return
        if plan is None:
            t = time.perf_counter()
            self.design = self.designer.design(self.params, stats, frame.format)
            plan = self.design.plan
            self.timings["design"] += (time.perf_counter() - t) * 1e3
        halo = max(sum(s.radius for s in plan.stages), STATS_HALO if gather else 0)
        acc = StatsAccumulator(*size, channels=layout.colour) if gather and len(frame.tiles) > 1 else None
        for (x0, y0, x1, y1), r in with_halos(frame.tiles, halo, *size, ex.max_texture_size):
            dst = frame.target(r)
            if not plan.stages and not gather:  # identity: decode and encode in one pass
                src = loaded["src"] if loaded.get("rect") == r else frame.load(r)
                ex.copy(src, dst, layout, decode=frame.decode, encode=frame.encode, guard=frame.guard)
            else:
                base = linear(r)
                if acc is not None:
                    roi = (x0 - r[0], y0 - r[1], x1 - r[0], y1 - r[1])
                    acc.add(self.gpu_stats.grid(base, layout, roi), x0 // BLOCK, y0 // BLOCK)
                elif gather:
                    self._next = (size, self.gpu_stats.grid_async(base, layout))
                if plan.stages:
                    self.paths.run_stages(plan, base, dst, layout, precision=self.params.precision,
                                          encode_srgb=frame.encode, guard=frame.guard)
                else:
                    ex.copy(base, dst, layout, encode=frame.encode, guard=frame.guard)
            frame.store((x0, y0, x1, y1), r, dst)
        if acc is not None:
            self._next = (size, acc.result())

    def _adaptive_frame(self, frame: _Frame, params: DeconvParams, estimate: Any,
                        linear: Callable[[Rect], Region]) -> None:
        """The adaptive mode's frame (:meth:`gpu_deconv.gl.adaptive.AdaptiveFrames.run`); its statistics steer
        the next frame with ``stats_latency=1``."""
        t, size, latency = time.perf_counter(), (frame.width, frame.height), self.stats_latency == 1
        prev = self._next[1] if latency and self._next and self._next[0] == size else None
        design, used, pending = self._adaptive.run(self.designer, params, frame, linear, previous=prev,
                                                   temporal=self.temporal, want_next=latency)
        design.blur_estimate = estimate
        self.design = design
        if used is not None:
            self.last_stats = used
        self._next = (size, pending if pending is not None else used) if latency and used is not None else None
        self.timings["adaptive"] = self.timings.get("adaptive", 0.0) + (time.perf_counter() - t) * 1e3

    # -- lifetime -----------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._released:
            raise RuntimeError("this Deconvolver has been released")

    def release(self) -> None:
        """Free every GL object made here; an own context is released too, a borrowed one never."""
        if self._released:
            return
        self._released = True
        with self._current:
            with self._guard:
                self._dst_fbos.release()
                self.gpu_stats.release()
                self.timer.release()
                self.paths.release()
                self._adaptive.release()
                self.executor.release()
            self.transfer.release()
            if self._own_ctx:
                self._ctx.release()

    def __enter__(self) -> Deconvolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
