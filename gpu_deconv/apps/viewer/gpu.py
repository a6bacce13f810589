"""The viewer's own GL passes: the "simulate" degradation (blur + noise) and the display of the view.

Their GLSL lives in ``shaders/`` with the engine's (``viewer_blur.frag``, ``viewer_display.frag``, and
``copy.frag`` for sRGB decode/encode), assembled by the same :func:`gpu_deconv.gl.shaders.build_source`, so
the sRGB transfer and the mirror rule are written once. Every pass is one full-screen triangle and leaves
the state it touches as it found it (viewport, bound framebuffer, blending off).

* :class:`Simulator` blurs a sharp frame with the chosen blur model's taps (separable, mirror boundary
  with the edge pixel repeated) and adds white Gaussian noise, in linear light, exactly as
  :func:`gpu_deconv.core.chart.blur_and_noise` does (same noise for the same seed); it can write its result
  sRGB-encoded, to stand in for an 8-bit source.
* :class:`Encoder` sRGB-encodes a linear float texture into RGBA8 once per change (a linear "before");
* :class:`Display` draws the "before" and "after" textures (display-ready sRGB values; the engine
  writes "after" encoded) into the view rectangle with zoom and pan: ``texelFetch`` (nearest
  neighbour) at zoom >= 1, bilinear when minified; left of the divider shows "before", right "after".
  No per-pixel ``pow`` runs in the display, which matters on software rasterisers.
* :class:`Overlay` blends a false-colour map over the view (``viewer_overlay.frag``): the adaptive
  mode's level map (``Deconvolver.draw_level_map``, drawn on the GPU into a float texture) or the blind
  sigma estimate per map cell (a tiny grid uploaded as a texture). The colour scale is :func:`viridis`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

#: Largest blur radius the simulator handles (Gaussian sigma 4 px has radius 17).
MAX_SIM_RADIUS = 31

#: The overlays the view can show: none, the adaptive mode's local level, the blind per-cell sigma.
OVERLAYS = ("none", "level", "sigma")
#: Colour scale of the level overlay: ``v = log2(A / sigma^2)`` over the adaptive table's rows
#: (:data:`gpu_deconv.core.adaptive.TABLE_START` .. + ``TABLE_SIZE - 1``; levels outside it use the end rows).
LEVEL_RANGE = (-10.0, 21.0)
#: Colour scale of the sigma overlay (px): the Gaussian sigma range the estimator reports.
SIGMA_RANGE = (0.0, 4.0)

#: Coefficients of the degree-6 polynomial fit of matplotlib's viridis (Matt Zucker, shadertoy WlfXRN, CC0):
#: ``rgb(t) = sum_i c_i t^i``, display (sRGB) codes in [0, 1]; the same numbers as ``viewer_overlay.frag``.
VIRIDIS = np.array([
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
])


def viridis(t: np.ndarray) -> np.ndarray:
    """The overlay's colour scale: sRGB display codes ``(..., 3)`` in [0, 1] for positions ``t`` in [0, 1].

    Horner evaluation of :data:`VIRIDIS` (perceptually uniform, readable in greyscale and by colour-blind
    viewers), clipped to [0, 1] as the shader does. Reference: S. van der Walt and N. Smith, "mpl
    colormaps" (2015), https://bids.github.io/colormap/.
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)[..., None]
    rgb = np.zeros(t.shape[:-1] + (3,))
    for c in VIRIDIS[::-1]:
        rgb = rgb * t + c
    return np.clip(rgb, 0.0, 1.0)


def _program(ctx, frag: str, defines: dict[str, object]) -> tuple:
    """A (program, empty VAO) pair for one of the shaders/ files (same assembly as the engine's passes)."""
    from ...gl.shaders import build_source

    prog = ctx.program(vertex_shader=build_source("fullscreen.vert"), fragment_shader=build_source(frag, defines))
    return prog, ctx.vertex_array(prog, [])


class _CopyPass:
    """``shaders/copy.frag`` (sRGB decode or encode of a whole texture) drawn into an own framebuffer.

    copy.frag reads with ``FETCH`` (textureLod at texel centres), so a NEAREST sampler object is bound on
    its unit while it runs, whatever filter the texture itself has (the display pass sets LINEAR on it).
    """

    def __init__(self, ctx, *, decode: bool, encode: bool) -> None:
        import moderngl

        self.ctx = ctx
        self.prog, self.vao = _program(ctx, "copy.frag", {"COLOUR": 3, "DECODE_SRGB": decode, "ENCODE_SRGB": encode})
        self.sampler = ctx.sampler(filter=(moderngl.NEAREST, moderngl.NEAREST), repeat_x=False, repeat_y=False)

    def draw(self, src, fbo, size: tuple[int, int]) -> None:
        fbo.use()
        self.ctx.viewport = (0, 0, *size)
        src.use(0)
        self.sampler.use(0)
        for name, value in (("u_src", 0), ("u_src_inv", (1.0 / size[0], 1.0 / size[1])), ("u_origin", (0, 0))):
            if name in self.prog:
                self.prog[name].value = value
        self.vao.render(vertices=3)
        self.sampler.clear(0)

    def release(self) -> None:
        self.vao.release()
        self.prog.release()
        self.sampler.release()


@contextlib.contextmanager
def _keeping_target(ctx):
    """Give the caller back its framebuffer and viewport after our passes (the viewer draws after them)."""
    prev_fbo, prev_vp = ctx.fbo, ctx.viewport
    try:
        yield
    finally:
        if prev_fbo is not None:
            prev_fbo.use()
        ctx.viewport = prev_vp


def _set_filter(tex, linear: bool) -> None:
    import moderngl

    f = moderngl.LINEAR if linear else moderngl.NEAREST
    tex.filter = (f, f)
    tex.repeat_x = False
    tex.repeat_y = False


class Simulator:
    """GPU blur + noise of a sharp frame (the viewer's "simulate" mode).

    The result equals :func:`gpu_deconv.core.chart.blur_and_noise` of the (linear) frame with the same
    taps, noise and seed, up to float32 summation order: the noise is NumPy's
    ``default_rng(seed).standard_normal((h, w, 3), float32)``, made and uploaded once per size and seed
    (video frames shift it by a per-frame offset instead of drawing new noise). An sRGB source is
    decoded once per frame content; the blur programs are specialised per radius.

    Parameters
    ----------
    ctx : moderngl.Context
        The window's context (borrowed).
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._progs: dict[tuple[int, int, bool], tuple] = {}
        self._decode = _CopyPass(ctx, decode=True, encode=False)
        self._tex: dict[str, Any] = {}
        self._fbos: dict[str, Any] = {}
        self._size: tuple[int, int] | None = None
        self._noise_key: tuple | None = None
        self._lin_key: Any = None
        self.out = None
        self.runs = 0

    def _program(self, radius: int, axis: int, encode: bool) -> tuple:
        key = (radius, axis, encode)
        v = self._progs.get(key)
        if v is None:
            v = self._progs[key] = _program(self.ctx, "viewer_blur.frag",
                                            {"RADIUS": radius, "AXIS": axis, "ENCODE": encode})
        return v

    def _alloc(self, size: tuple[int, int]) -> None:
        if self._size == size:
            return
        self._free_textures()
        for name in ("lin", "tmp", "out"):
            t = self._tex[name] = self.ctx.texture(size, 4, dtype="f4")
            _set_filter(t, linear=False)
            self._fbos[name] = self.ctx.framebuffer([t])
        self.out = self._tex["out"]
        self._size = size
        self._noise_key = self._lin_key = None

    def _noise(self, size: tuple[int, int], seed: int):
        key = (size, seed)
        if key != self._noise_key:
            w, h = size
            n = np.random.default_rng(seed).standard_normal((h, w, 3), dtype=np.float32)
            rgba = np.zeros((h, w, 4), dtype=np.float32)
            rgba[:, :, :3] = n
            if "noise" in self._tex:
                self._tex["noise"].release()
            self._tex["noise"] = self.ctx.texture(size, 4, rgba.tobytes(), dtype="f4")
            self._noise_key = key
        return self._tex["noise"]

    def _free_textures(self) -> None:
        for o in (*self._fbos.values(), *self._tex.values()):
            o.release()
        self._fbos.clear()
        self._tex.clear()
        self.out = None
        self._size = None

    def _pass(self, prog, vao, inp, target: str, size: tuple[int, int]) -> None:
        self._fbos[target].use()
        self.ctx.viewport = (0, 0, *size)
        inp.use(0)
        prog["u_src"].value = 0
        vao.render(vertices=3)

    def run(self, src, taps: np.ndarray, noise: float, seed: int, *, src_srgb: bool, encode_out: bool,
            src_key: Any = None, frame_index: int = 0):
        """Blur ``src`` by the symmetric ``taps`` and add noise; returns the output texture (RGBA32F).

        ``src_srgb``: the source holds sRGB codes (decoded first, once per ``src_key``).
        ``encode_out``: write sRGB-encoded values. ``frame_index`` shifts the noise (video).
        """
        taps = np.asarray(taps, dtype=np.float32).ravel()
        r = taps.size // 2
        if r > MAX_SIM_RADIUS:
            raise ValueError(f"simulated blur radius {r} exceeds {MAX_SIM_RADIUS} px")
        size = tuple(src.size)
        self._alloc(size)
        with _keeping_target(self.ctx):
            if src_srgb:
                if src_key is None or (src_key, id(src)) != self._lin_key:
                    self._decode.draw(src, self._fbos["lin"], size)
                    self._lin_key = (src_key, id(src)) if src_key is not None else None
                src = self._tex["lin"]
            prog, vao = self._program(r, 0, False)
            prog["u_taps"].write(taps.tobytes())
            self._pass(prog, vao, src, "tmp", size)
            prog, vao = self._program(r, 1, encode_out)
            prog["u_taps"].write(taps.tobytes())
            self._noise(size, seed).use(1)
            prog["u_noise_tex"].value = 1
            prog["u_noise"].value = float(noise)
            off = (frame_index * 7919 * 31) % size[0], (frame_index * 104729) % size[1]
            prog["u_noise_offset"].value = off
            self._pass(prog, vao, self._tex["tmp"], "out", size)
        self.runs += 1
        return self.out

    def release(self) -> None:
        self._free_textures()
        for prog, vao in self._progs.values():
            vao.release()
            prog.release()
        self._progs.clear()
        self._decode.release()


class Encoder:
    """sRGB-encodes a linear float texture into an RGBA8 one, for display (run only when it changes).

    ``shaders/copy.frag`` with ENCODE_SRGB; the RGBA8 target clamps to [0, 1] after encoding, which equals
    clamping before (the transfer is monotonic).
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._pass = _CopyPass(ctx, decode=False, encode=True)
        self.out = None
        self._fbo = None
        self.runs = 0

    def run(self, src):
        """Encode ``src`` (linear) into :attr:`out` (RGBA8, same size); returns :attr:`out`."""
        if self.out is None or self.out.size != src.size:
            self._free()
            self.out = self.ctx.texture(src.size, 4, dtype="f1")
            self._fbo = self.ctx.framebuffer([self.out])
        with _keeping_target(self.ctx):
            self._pass.draw(src, self._fbo, src.size)
        self.runs += 1
        return self.out

    def _free(self) -> None:
        for o in (self._fbo, self.out):
            if o is not None:
                o.release()
        self._fbo = self.out = None

    def release(self) -> None:
        self._free()
        self._pass.release()


class _ViewPass:
    """A full-screen pass over a rectangle of the bound framebuffer, compiled per variant on first use."""

    def __init__(self, ctx, frag: str) -> None:
        self.ctx = ctx
        self._frag = frag
        self._variants: dict[Any, tuple] = {}

    def _variant(self, key: Any, defines: dict[str, object]) -> tuple:
        v = self._variants.get(key)
        if v is None:
            v = self._variants[key] = _program(self.ctx, self._frag, defines)
        return v

    def _draw(self, prog, vao, uniforms: dict[str, object], fb_height: int, view_rect: tuple[int, int, int, int],
              blend: bool = False) -> None:
        """Set the ``uniforms`` the variant uses (the compiler drops the others) and draw ``view_rect =
        (x, y_top, w, h)`` (framebuffer px, y down), the caller's viewport kept."""
        import moderngl

        for name, value in uniforms.items():
            if name in prog:
                prog[name].value = value
        x, y_top, w, h = view_rect
        prev_vp = self.ctx.viewport
        self.ctx.viewport = (x, fb_height - y_top - h, w, h)
        if blend:
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        vao.render(vertices=3)
        if blend:
            self.ctx.disable(moderngl.BLEND)
        self.ctx.viewport = prev_vp

    def release(self) -> None:
        for prog, vao in self._variants.values():
            vao.release()
            prog.release()
        self._variants.clear()


class Display(_ViewPass):
    """Draws the before/after view into the current framebuffer (see the module docstring).

    Both textures must hold display-ready (sRGB-encoded) values; programs are compiled per variant
    (view mode x magnified) on first use.
    """

    def __init__(self, ctx) -> None:
        super().__init__(ctx, "viewer_display.frag")

    def draw(
        self,
        before,
        after,
        *,
        fb_size: tuple[int, int],
        view_rect: tuple[int, int, int, int],
        image_origin: tuple[float, float],
        zoom: float,
        divider: float,
        mode: str,
        background: tuple[float, float, float] = (0.11, 0.11, 0.12),
    ) -> None:
        """Draw into ``view_rect = (x, y_top, w, h)`` (framebuffer px, y down) of the bound framebuffer."""
        x, y_top = view_rect[:2]
        magnify = zoom >= 0.999
        prog, vao = self._variant((mode, magnify), {"MODE": ("split", "before", "after").index(mode),
                                                    "MAGNIFY": magnify})
        for t in (before, after):
            _set_filter(t, linear=not magnify)
        before.use(0)
        after.use(1)
        self._draw(prog, vao, {"u_before": 0, "u_after": 1, "u_fb_height": float(fb_size[1]),
                               "u_view_origin": (float(x), float(y_top)),
                               "u_image_origin": (float(image_origin[0]), float(image_origin[1])),
                               "u_zoom": float(zoom), "u_divider": float(divider), "u_background": background},
                   fb_size[1], view_rect)


class Overlay(_ViewPass):
    """Blends a false-colour map over the view rectangle of the bound framebuffer (``viewer_overlay.frag``).

    The map is a float texture: the level map (``r`` = ``v``, one texel per image pixel) or the sigma
    cells (``r`` = sigma px, ``g`` = 1 where the cell had a usable edge, 0 where it is drawn transparent;
    one texel per ``cell`` image px). Colour ``viridis((r - lo) / (hi - lo))`` at opacity ``alpha``.
    """

    def __init__(self, ctx) -> None:
        super().__init__(ctx, "viewer_overlay.frag")

    def draw(self, tex, *, tiles: bool, cell: float, value_range: tuple[float, float], alpha: float,
             image_size: tuple[int, int], fb_size: tuple[int, int], view_rect: tuple[int, int, int, int],
             image_origin: tuple[float, float], zoom: float) -> None:
        """Blend ``tex`` over ``view_rect = (x, y_top, w, h)`` (framebuffer px, y down) of the bound framebuffer."""
        x, y_top = view_rect[:2]
        prog, vao = self._variant(tiles, {"TILES": tiles})
        lo, hi = value_range
        tex.use(0)
        self._draw(prog, vao, {"u_map": 0, "u_fb_height": float(fb_size[1]), "u_view_origin": (float(x), float(y_top)),
                               "u_image_origin": (float(image_origin[0]), float(image_origin[1])),
                               "u_zoom": float(zoom), "u_image_size": (float(image_size[0]), float(image_size[1])),
                               "u_cell": float(cell), "u_lo": float(lo), "u_inv_range": 1.0 / float(hi - lo),
                               "u_alpha": float(alpha)}, fb_size[1], view_rect, blend=True)
