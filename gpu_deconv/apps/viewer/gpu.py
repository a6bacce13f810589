"""The viewer's own GL passes: the "simulate" degradation (blur + noise) and the display of the view.

Both are GLSL 3.30 core programs drawn as one full-screen triangle, and both leave the state they
touch as they found it (viewport, bound framebuffer, blending off).

* :class:`Simulator` blurs a sharp frame with the chosen blur model's taps (separable, mirror boundary
  with the edge pixel repeated) and adds white Gaussian noise, in linear light, exactly as
  :func:`gpu_deconv.core.chart.blur_and_noise` does (same noise for the same seed); it can write its result
  sRGB-encoded, to stand in for an 8-bit source.
* :class:`Encoder` sRGB-encodes a linear float texture into RGBA8 once per change (a linear "before");
* :class:`Display` draws the "before" and "after" textures (display-ready sRGB values; the engine
  writes "after" encoded) into the view rectangle with zoom and pan: ``texelFetch`` (nearest
  neighbour) at zoom >= 1, bilinear when minified; left of the divider shows "before", right "after".
  No per-pixel ``pow`` runs in the display, which matters on software rasterisers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Largest blur radius the simulator handles (Gaussian sigma 4 px has radius 17).
MAX_SIM_RADIUS = 31

_VERT = """
#version 330
const vec2 P[3] = vec2[3](vec2(-1.0, -1.0), vec2(3.0, -1.0), vec2(-1.0, 3.0));
void main() { gl_Position = vec4(P[gl_VertexID], 0.0, 1.0); }
"""

_SRGB = """
// the sRGB transfer functions of gpu_deconv/colour.py, written as shaders/srgb.glsl writes them
vec3 encode_srgb(vec3 v) {
    vec3 a = abs(v);
    vec3 enc = mix(1.055 * pow(a, vec3(0.41666666)) - 0.055, a * 12.92, lessThanEqual(a, vec3(0.0031308)));
    return mix(enc, -enc, lessThan(v, vec3(0.0)));
}
vec3 decode_srgb(vec3 v) {
    vec3 a = abs(v);
    vec3 lin = mix(pow((a + 0.055) / 1.055, vec3(2.4)), a / 12.92, lessThanEqual(a, vec3(0.04045)));
    return mix(lin, -lin, lessThan(v, vec3(0.0)));
}
"""

_SIM_FRAG = """
#version 330
// one separable blur pass of the simulation; RADIUS and AXIS are #defines (unrolled on llvmpipe).
// V pass (AXIS 1): + noise * N(p + offset), N a stored standard-normal texture; ENCODE: write sRGB.
uniform sampler2D src;
uniform float taps[2 * RADIUS + 1];
#if AXIS == 1
uniform sampler2D noise_tex;
uniform float noise;
uniform ivec2 noise_offset;
#endif
out vec4 frag;
%(srgb)s
int mirror(int p, int n) {  // edge pixel repeated: -1 -> 0, n -> n - 1
    p = p < 0 ? -1 - p : p;
    p = p >= n ? 2 * n - 1 - p : p;
    return clamp(p, 0, n - 1);
}
void main() {
    ivec2 size = textureSize(src, 0);
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 acc = vec3(0.0);
    for (int i = -RADIUS; i <= RADIUS; ++i) {
#if AXIS == 0
        ivec2 q = ivec2(mirror(p.x + i, size.x), p.y);
#else
        ivec2 q = ivec2(p.x, mirror(p.y + i, size.y));
#endif
        acc += taps[i + RADIUS] * texelFetch(src, q, 0).rgb;
    }
    float alpha = texelFetch(src, p, 0).a;
#if AXIS == 1
    acc += noise * texelFetch(noise_tex, (p + noise_offset) %% size, 0).rgb;
#endif
#if ENCODE
    acc = encode_srgb(acc);
#endif
    frag = vec4(acc, alpha);
}
"""

_DECODE_FRAG = """
#version 330
uniform sampler2D src;
out vec4 frag;
%(srgb)s
void main() {
    vec4 c = texelFetch(src, ivec2(gl_FragCoord.xy), 0);
    frag = vec4(decode_srgb(c.rgb), c.a);
}
"""

_DISPLAY_FRAG = """
#version 330
// variants by #define: MODE 0 split / 1 before / 2 after; MAGNIFY (texelFetch) or not (bilinear).
// (llvmpipe executes both sides of a branch, so the choices are compile-time.)
uniform sampler2D before_tex;
uniform sampler2D after_tex;
uniform float fb_height;       // framebuffer height (GL y is up)
uniform vec2 view_origin;      // view rectangle top-left, framebuffer px, y down
uniform vec2 image_origin;     // image top-left inside the view
uniform float zoom;
uniform float divider;         // view x of the divider; left shows before
uniform vec3 background;
out vec4 frag;
vec3 fetch(sampler2D tex, vec2 u, vec2 size) {
#if MAGNIFY
    return texelFetch(tex, ivec2(floor(u)), 0).rgb;
#else
    return texture(tex, u / size).rgb;
#endif
}
void main() {
    vec2 p = vec2(gl_FragCoord.x, fb_height - gl_FragCoord.y) - view_origin;   // view px, y down
    vec2 u = (p - image_origin) / zoom;
    vec2 size = vec2(textureSize(after_tex, 0));
    if (u.x < 0.0 || u.y < 0.0 || u.x >= size.x || u.y >= size.y) {
        frag = vec4(background, 1.0);
        return;
    }
#if MODE == 0
    vec3 c = p.x < divider ? fetch(before_tex, u, size) : fetch(after_tex, u, size);
#elif MODE == 1
    vec3 c = fetch(before_tex, u, size);
#else
    vec3 c = fetch(after_tex, u, size);
#endif
    frag = vec4(clamp(c, 0.0, 1.0), 1.0);
}
"""

_ENCODE_FRAG = """
#version 330
uniform sampler2D src;
out vec4 frag;
%(srgb)s
void main() {
    vec4 c = texelFetch(src, ivec2(gl_FragCoord.xy), 0);
    frag = vec4(encode_srgb(clamp(c.rgb, 0.0, 1.0)), c.a);
}
"""


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
        self._dec_prog = ctx.program(vertex_shader=_VERT, fragment_shader=_DECODE_FRAG % {"srgb": _SRGB})
        self._dec_vao = ctx.vertex_array(self._dec_prog, [])
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
            defines = f"#define RADIUS {radius}\n#define AXIS {axis}\n#define ENCODE {int(encode)}\n"
            src = (_SIM_FRAG % {"srgb": _SRGB}).replace("#version 330\n", "#version 330\n" + defines, 1)
            prog = self.ctx.program(vertex_shader=_VERT, fragment_shader=src)
            v = self._progs[key] = (prog, self.ctx.vertex_array(prog, []))
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
        prog["src"].value = 0
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
        prev_fbo, prev_vp = self.ctx.fbo, self.ctx.viewport
        if src_srgb:
            if src_key is None or (src_key, id(src)) != self._lin_key:
                self._pass(self._dec_prog, self._dec_vao, src, "lin", size)
                self._lin_key = (src_key, id(src)) if src_key is not None else None
            src = self._tex["lin"]
        prog, vao = self._program(r, 0, False)
        prog["taps"].write(taps.tobytes())
        self._pass(prog, vao, src, "tmp", size)
        prog, vao = self._program(r, 1, encode_out)
        prog["taps"].write(taps.tobytes())
        self._noise(size, seed).use(1)
        prog["noise_tex"].value = 1
        prog["noise"].value = float(noise)
        off = (frame_index * 7919 * 31) % size[0], (frame_index * 104729) % size[1]
        prog["noise_offset"].value = off
        self._pass(prog, vao, self._tex["tmp"], "out", size)
        if prev_fbo is not None:
            prev_fbo.use()
        self.ctx.viewport = prev_vp
        self.runs += 1
        return self.out

    def release(self) -> None:
        self._free_textures()
        for prog, vao in self._progs.values():
            vao.release()
            prog.release()
        self._progs.clear()
        self._dec_vao.release()
        self._dec_prog.release()


class Encoder:
    """sRGB-encodes a linear float texture into an RGBA8 one, for display (run only when it changes)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.prog = ctx.program(vertex_shader=_VERT, fragment_shader=_ENCODE_FRAG % {"srgb": _SRGB})
        self.vao = ctx.vertex_array(self.prog, [])
        self.out = None
        self._fbo = None
        self.runs = 0

    def run(self, src):
        """Encode ``src`` (linear) into :attr:`out` (RGBA8, same size); returns :attr:`out`."""
        if self.out is None or self.out.size != src.size:
            self._free()
            self.out = self.ctx.texture(src.size, 4, dtype="f1")
            self._fbo = self.ctx.framebuffer([self.out])
        prev_fbo, prev_vp = self.ctx.fbo, self.ctx.viewport
        self._fbo.use()
        self.ctx.viewport = (0, 0, *src.size)
        src.use(0)
        self.prog["src"].value = 0
        self.vao.render(vertices=3)
        if prev_fbo is not None:
            prev_fbo.use()
        self.ctx.viewport = prev_vp
        self.runs += 1
        return self.out

    def _free(self) -> None:
        for o in (self._fbo, self.out):
            if o is not None:
                o.release()
        self._fbo = self.out = None

    def release(self) -> None:
        self._free()
        self.vao.release()
        self.prog.release()


class Display:
    """Draws the before/after view into the current framebuffer (see the module docstring).

    Both textures must hold display-ready (sRGB-encoded) values; programs are compiled per variant
    (view mode x magnified) on first use.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._variants: dict[tuple[str, bool], tuple] = {}

    def _variant(self, mode: str, magnify: bool) -> tuple:
        key = (mode, magnify)
        v = self._variants.get(key)
        if v is None:
            defines = f"#define MODE {('split', 'before', 'after').index(mode)}\n#define MAGNIFY {int(magnify)}\n"
            src = _DISPLAY_FRAG.replace("#version 330\n", "#version 330\n" + defines, 1)
            prog = self.ctx.program(vertex_shader=_VERT, fragment_shader=src)
            v = self._variants[key] = (prog, self.ctx.vertex_array(prog, []))
        return v

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
        x, y_top, w, h = view_rect
        magnify = zoom >= 0.999
        prog, vao = self._variant(mode, magnify)
        for t in (before, after):
            _set_filter(t, linear=not magnify)
        before.use(0)
        after.use(1)
        for name, value in (("before_tex", 0), ("after_tex", 1), ("fb_height", float(fb_size[1])),
                            ("view_origin", (float(x), float(y_top))),
                            ("image_origin", (float(image_origin[0]), float(image_origin[1]))),
                            ("zoom", float(zoom)), ("divider", float(divider)), ("background", background)):
            if name in prog:  # the compiler drops what a variant does not use
                prog[name].value = value
        prev_vp = self.ctx.viewport
        self.ctx.viewport = (x, fb_size[1] - y_top - h, w, h)
        vao.render(vertices=3)
        self.ctx.viewport = prev_vp

    def release(self) -> None:
        for prog, vao in self._variants.values():
            vao.release()
            prog.release()
        self._variants.clear()
