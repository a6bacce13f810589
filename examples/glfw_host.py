"""Embedding example (a): a raw glfw OpenGL program that deblurs its own rendering with gpu_deconv.

The host is an ordinary OpenGL 3.3 core program:

* it opens its own window and context with glfw (3.3 core, forward-compatible);
* it allocates its scene texture with *raw* GL calls (``glGenTextures`` / ``glTexImage2D``, as C++ code
  or another library would) and renders an animated, slightly blurred scene into it with its own shader;
* it wraps its current context with ``moderngl.create_context()`` and its texture id with
  ``ctx.external_texture(...)``, and lends both to ``Deconvolver(ctx=ctx)``;
* every frame it changes sigma (``set_blur``: a CPU solve, then only uniforms change) and calls
  ``apply``, which draws the deblurred scene straight into the window's default framebuffer (right
  half), next to the host's own copy of the blurred scene (left half); then it swaps buffers.

Ownership: the host owns the window, the context, its scene texture (deleted with ``glDeleteTextures``
- the moderngl wrapper's ``release()`` never deletes an external id), its framebuffer, programs and
vertex array. The deconvolver owns only its programs, intermediate textures and queries, and frees
them in ``release()``; it never releases the borrowed context. Order at exit: engine, host objects,
window.

Usage::

    python examples/glfw_host.py                    # interactive; Esc or closing the window quits
    python examples/glfw_host.py --frames 12 --screenshot shot.png --stats stats.json   # test mode

``--stats`` writes JSON: per-frame CPU times, GPU ms, the design (plan) of the last frame - so a test
can recompute that frame offscreen - and how many programs/textures the engine created after warm-up.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

# GL enums for the few raw calls the host makes itself
GL_TEXTURE_2D = 0x0DE1
GL_RGBA8 = 0x8058
GL_RGBA = 0x1908
GL_UNSIGNED_BYTE = 0x1401
GL_TEXTURE_MIN_FILTER = 0x2801
GL_TEXTURE_MAG_FILTER = 0x2800
GL_NEAREST = 0x2600

VERT = """#version 330 core
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);   // full-screen triangle
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

# The host's scene: a rotating Siemens star and moving discs, with edges softened by a Gaussian of
# u_blur pixels (what a camera or a resampler does), written sRGB-encoded into an RGBA8 texture.
SCENE_FRAG = """#version 330 core
uniform float u_phase;
uniform float u_blur;
uniform vec2 u_size;
out vec4 o;
float erf_(float x) {                      // Abramowitz-Stegun 7.1.26, |error| < 1.5e-7
    float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                     + 0.254829592) * t * exp(-x * x);
    return sign(x) * y;
}
float edge(float d) { return 0.5 + 0.5 * erf_(d / (1.41421356 * u_blur)); }  // blurred step at d = 0
float srgb(float c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * pow(c, 1.0 / 2.4) - 0.055; }
void main() {
    vec2 p = gl_FragCoord.xy;
    vec2 c = vec2(0.32, 0.5) * u_size;
    float R = 0.42 * u_size.y;
    vec2 d = p - c;
    float r = length(d);
    float a = atan(d.y, d.x) + u_phase;
    const float N = 18.0;                                  // spokes
    float s = sin(N * a);
    float dist = r * s / max(N * abs(cos(N * a)), 1e-3);   // distance to the nearest spoke edge (px)
    dist = clamp(dist, -3.0 * u_blur - 1.0, 3.0 * u_blur + 1.0);
    float star = mix(0.5, edge(dist), smoothstep(2.0 * u_blur, 6.0 * u_blur, r * 3.14159 / N));
    float inside = edge(R - r);
    vec3 bg = vec3(0.18, 0.2, 0.24) * (0.6 + 0.4 * p.y / u_size.y);
    vec3 col = mix(bg, vec3(0.05 + 0.9 * star), inside);
    for (int i = 0; i < 3; i++) {                          // discs drifting on the right
        float fi = float(i);
        vec2 q = vec2(0.78 + 0.1 * sin(u_phase * (1.0 + 0.3 * fi) + 2.0 * fi),
                      0.2 + 0.3 * fi + 0.05 * cos(u_phase + fi)) * u_size;
        float disc = edge(0.09 * u_size.y - length(p - q));
        col = mix(col, vec3(0.9, 0.35 + 0.25 * fi, 0.2 + 0.3 * fi), disc);
    }
    o = vec4(srgb(col.r), srgb(col.g), srgb(col.b), 1.0);
}
"""

# The host's own copy of its texture to the window (texelFetch: exact, whatever the filter).
BLIT_FRAG = """#version 330 core
uniform sampler2D u_tex;
uniform ivec2 u_origin;
out vec4 o;
void main() { o = texelFetch(u_tex, ivec2(gl_FragCoord.xy) - u_origin, 0); }
"""


class RawTextures:
    """The four raw GL entry points the host needs, loaded through glfw (as any C host would)."""

    def __init__(self, glfw) -> None:
        def fn(name: str, restype, *args):
            addr = glfw.get_proc_address(name)
            if not addr:
                raise RuntimeError(f"{name} not available")
            return ctypes.CFUNCTYPE(restype, *args)(addr)

        u = ctypes.c_uint
        self.gen = fn("glGenTextures", None, ctypes.c_int, ctypes.POINTER(u))
        self.delete = fn("glDeleteTextures", None, ctypes.c_int, ctypes.POINTER(u))
        self.bind = fn("glBindTexture", None, u, u)
        self.param = fn("glTexParameteri", None, u, u, ctypes.c_int)
        self.image = fn("glTexImage2D", None, u, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                        ctypes.c_int, u, u, ctypes.c_void_p)

    def create_rgba8(self, width: int, height: int) -> int:
        ids = (ctypes.c_uint * 1)()
        self.gen(1, ids)
        self.bind(GL_TEXTURE_2D, ids[0])
        self.image(GL_TEXTURE_2D, 0, GL_RGBA8, width, height, 0, GL_RGBA, GL_UNSIGNED_BYTE, None)
        self.param(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST)  # complete without mipmaps
        self.param(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST)
        self.bind(GL_TEXTURE_2D, 0)
        return int(ids[0])

    def delete_texture(self, glo: int) -> None:
        self.delete(1, (ctypes.c_uint * 1)(glo))


def plan_to_json(plan) -> dict:
    """A Plan as JSON (float32 values survive the float64 round trip exactly)."""
    return {"method": plan.method,
            "stages": [{"taps": [t.astype(float).tolist() for t in s.taps], "weights": s.weights.astype(float).tolist(),
                        "src": s.src} for s in plan.stages]}


def median_of(records: list[dict], key: str) -> float:
    vals = [r[key] for r in records if r[key] is not None]
    return float(np.median(vals)) if vals else float("nan")


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError("size must be at least 16x16")
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gpu_deconv inside a raw glfw OpenGL host")
    ap.add_argument("--size", type=parse_size, default=(480, 320), help="scene size WxH (window: 2W x H)")
    ap.add_argument("--frames", type=int, default=0, help="render this many frames, then exit (0: until closed)")
    ap.add_argument("--screenshot", default=None, help="save the window (RGB PNG) after the last frame")
    ap.add_argument("--stats", default=None, help="write per-frame timings and the last design as JSON")
    ap.add_argument("--sigma", type=float, default=1.2, help="centre of the per-frame sigma sweep (px)")
    ap.add_argument("--swing", type=float, default=0.25, help="sigma changes by up to +-SWING every frame")
    ap.add_argument("--noise", type=float, default=0.004, help="noise std, linear units")
    ap.add_argument("--scene-blur", type=float, default=1.2, help="blur of the host's own scene (px)")
    ap.add_argument("--hidden", action="store_true", help="do not show the window (still a real window)")
    args = ap.parse_args(argv)

    import glfw
    import moderngl

    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    if not glfw.init():
        print("glfw_host: glfw.init() failed (no display?)", file=sys.stderr)
        return 2
    w, h = args.size
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
    glfw.window_hint(glfw.RESIZABLE, False)
    glfw.window_hint(glfw.SCALE_TO_MONITOR, False)
    if args.hidden:
        glfw.window_hint(glfw.VISIBLE, False)
    window = glfw.create_window(2 * w, h, "gpu_deconv - glfw host (left: scene, right: deblurred)", None, None)
    if not window:
        glfw.terminate()
        print("glfw_host: could not open an OpenGL 3.3 core window", file=sys.stderr)
        return 2
    glfw.make_context_current(window)
    glfw.swap_interval(0 if args.frames else 1)

    # --- host objects: everything here belongs to the host ---------------------------------------
    ctx = moderngl.create_context()          # wraps the window's current context; does not own it
    raw = RawTextures(glfw)
    scene_glo = raw.create_rgba8(w, h)       # a texture id made outside moderngl...
    scene_tex = ctx.external_texture(scene_glo, (w, h), 4, 0, "f1")   # ...wrapped, not adopted
    scene_fbo = ctx.framebuffer(color_attachments=[scene_tex])
    scene_prog = ctx.program(vertex_shader=VERT, fragment_shader=SCENE_FRAG)
    blit_prog = ctx.program(vertex_shader=VERT, fragment_shader=BLIT_FRAG)
    scene_vao = ctx.vertex_array(scene_prog, [])
    blit_vao = ctx.vertex_array(blit_prog, [])
    scene_prog["u_size"].value = (w, h)
    scene_prog["u_blur"].value = args.scene_blur
    blit_prog["u_tex"].value = 0
    screen = ctx.detect_framebuffer(0)       # the window's default framebuffer (a reference)
    renderer = ctx.info["GL_RENDERER"]

    # --- the deconvolver borrows the context; owns only its intermediates ------------------------
    # stats_latency=1: the level estimate of frame n steers frame n + 1, so nothing waits for the GPU.
    # the global mode: one filter per frame, the cheapest for a render loop (the adaptive default costs ~1.5x)
    dec = Deconvolver(ctx, DeconvParams(sigma=args.sigma, noise=args.noise, mode="global"), stats_latency=1)

    frames: list[dict] = []
    warm = 3  # frames after which no program compile or texture allocation is expected
    counts_warm = None
    gl_errors: list[str] = []
    shot = None
    i = 0
    try:
        while not glfw.window_should_close(window):
            if args.frames and i >= args.frames:
                break
            t0 = time.perf_counter()
            # 1. the host renders its scene into its own texture
            scene_fbo.use()
            scene_prog["u_phase"].value = 0.05 * i
            scene_vao.render(moderngl.TRIANGLES, vertices=3)
            # 2. ... and shows it on the left half of the window
            screen.use()
            ctx.viewport = (0, 0, 2 * w, h)
            ctx.clear(0.0, 0.0, 0.0, 1.0)
            ctx.viewport = (0, 0, w, h)
            scene_tex.use(0)
            blit_prog["u_origin"].value = (0, 0)
            blit_vao.render(moderngl.TRIANGLES, vertices=3)
            # 3. a new sigma every frame: CPU solve + uniform upload, no compile, no allocation
            sigma = args.sigma + args.swing * math.sin(0.7 * i)
            t1 = time.perf_counter()
            dec.set_blur(sigma, noise=args.noise)
            t2 = time.perf_counter()
            # 4. deblur the host's texture into the right half of the default framebuffer; the
            #    texture holds sRGB codes (RGBA8, not an SRGB8 format), so decode and re-encode.
            dec.apply(scene_tex, screen, viewport=(w, 0, w, h), src_is_srgb=True, encode_srgb=True)
            design = dec.design               # what this frame used (re-solved with its statistics)
            t3 = time.perf_counter()
            # 5. the host carries on with its own state (apply restored it) and presents
            err = ctx.error
            if err != "GL_NO_ERROR":
                gl_errors.append(f"frame {i}: {err}")
            if args.screenshot and args.frames and i == args.frames - 1:
                data = screen.read(viewport=(0, 0, 2 * w, h), components=4, alignment=1)
                _ = ctx.error  # moderngl's glReadBuffer(GL_COLOR_ATTACHMENT0) on FBO 0; the read itself is right
                shot = np.frombuffer(data, np.uint8).reshape(h, 2 * w, 4)[::-1, :, :3].copy()
            glfw.swap_buffers(window)
            glfw.poll_events()
            if glfw.get_key(window, glfw.KEY_ESCAPE) == glfw.PRESS:
                glfw.set_window_should_close(window, True)
            frames.append({"sigma": sigma, "set_blur_us": (t2 - t1) * 1e6, "apply_ms": (t3 - t2) * 1e3,
                           "frame_ms": (time.perf_counter() - t0) * 1e3, "gpu_ms": dec.last_gpu_ms,
                           "method": design.method if design is not None else None})
            if i == warm - 1:
                counts_warm = (dec.executor.compiles, dec.executor.pool.allocations)
            i += 1
        last_design = dec.design
        counts_end = (dec.executor.compiles, dec.executor.pool.allocations)
    finally:
        # engine first (its objects live in the host's context), then the host's objects, then the window
        dec.release()
        for obj in (blit_vao, scene_vao, blit_prog, scene_prog, scene_fbo, scene_tex):
            obj.release()                    # scene_tex.release() frees the wrapper only...
        raw.delete_texture(scene_glo)        # ...the host deletes its own texture id
        err = ctx.error
        if err != "GL_NO_ERROR":
            gl_errors.append(f"release: {err}")
        ctx.release()                        # a wrapped context: releases moderngl's state, not the window's
        glfw.destroy_window(window)
        glfw.terminate()

    if shot is not None:
        from gpu_deconv.io.images import write_image

        write_image(args.screenshot, shot, format="png", overwrite=True)
    n = len(frames)
    after = frames[warm:] or frames

    def med(key: str) -> float:
        return median_of(after, key)

    print(f"glfw_host: {n} frames {w}x{h}, renderer {renderer}")
    print(f"  set_blur {med('set_blur_us'):.0f} us, apply {med('apply_ms'):.2f} ms (CPU), "
          f"GPU {med('gpu_ms'):.2f} ms, frame {med('frame_ms'):.2f} ms (medians after warm-up)")
    if counts_warm is not None:
        print(f"  after warm-up: {counts_end[0] - counts_warm[0]} programs compiled, "
              f"{counts_end[1] - counts_warm[1]} textures allocated")
    if gl_errors:
        print("  GL errors: " + "; ".join(gl_errors), file=sys.stderr)
    if args.stats:
        Path(args.stats).write_text(json.dumps({
            "size": [w, h], "frames": frames, "renderer": renderer,
            "noise": args.noise, "last_sigma": frames[-1]["sigma"] if frames else None,
            "precision": dec.params.precision,
            "plan": plan_to_json(last_design.plan) if last_design is not None else None,
            "compiles_after_warmup": None if counts_warm is None else counts_end[0] - counts_warm[0],
            "allocations_after_warmup": None if counts_warm is None else counts_end[1] - counts_warm[1],
            "gl_errors": gl_errors,
        }, indent=1))
    return 1 if gl_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
