"""Embedding example (b): a ``moderngl-window`` app that deblurs a texture every frame.

``moderngl-window`` (``pip install moderngl-window``) makes the window and the context; the app lends
``self.ctx`` to ``Deconvolver(ctx=self.ctx)``. The input is the package's test chart, blurred and noisy,
held by the app as a *linear float* RGBA32F texture (a typical HDR render target). Every frame the app
draws that texture on the left half of the window (its own shader, sRGB-encoding for display), picks a
new sigma (``set_blur``) and lets ``apply`` draw the deblurred chart into the right half of the
window's framebuffer, sRGB-encoded (``encode_srgb=True``) because the window framebuffer stores 8-bit
display codes.

Ownership: the app owns the chart texture, its program and VAO; the deconvolver owns its programs and
intermediates and is released in ``on_close`` - before moderngl-window releases the context.

Usage::

    python examples/moderngl_window_app.py                        # a window (pyglet by default)
    python examples/moderngl_window_app.py --window glfw
    python examples/moderngl_window_app.py --window headless --frames 6 --screenshot shot.png --stats s.json

``--window headless`` renders into an offscreen framebuffer of a standalone context (EGL is picked on
Linux unless ``--backend`` says otherwise); ``--screenshot`` reads that framebuffer back after the last
frame. Every standard moderngl-window option (``--size`` excepted: use ``--image-size``) works.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import moderngl
import moderngl_window as mglw
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from gpu_deconv.core.chart import blur_and_noise, test_chart  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402
from gpu_deconv.gl.engine import Deconvolver  # noqa: E402

DEFAULT_IMAGE = (384, 256)

VERT = """#version 330 core
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""
SHOW_FRAG = """#version 330 core
uniform sampler2D u_tex;
out vec4 o;
float enc(float c) { c = clamp(c, 0.0, 1.0); return c <= 0.0031308 ? 12.92 * c : 1.055 * pow(c, 1.0 / 2.4) - 0.055; }
void main() {
    vec4 v = texelFetch(u_tex, ivec2(gl_FragCoord.xy), 0);
    o = vec4(enc(v.r), enc(v.g), enc(v.b), 1.0);
}
"""


def make_input(size: tuple[int, int], blur: float = 1.2, noise: float = 0.003) -> np.ndarray:
    """The blurred, noisy chart as linear float32 RGBA ``(H, W, 4)``, row 0 = top."""
    w, h = size
    rgb = blur_and_noise(test_chart((h, w)), blur, noise, seed=1)
    out = np.ones((h, w, 4), np.float32)
    out[..., :3] = rgb
    return out


def plan_to_json(plan) -> dict:
    return {"method": plan.method,
            "stages": [{"taps": [t.astype(float).tolist() for t in s.taps], "weights": s.weights.astype(float).tolist(),
                        "src": s.src} for s in plan.stages]}


def median_of(records: list[dict], key: str) -> float:
    vals = [r[key] for r in records if r[key] is not None]
    return float(np.median(vals)) if vals else float("nan")


class DeblurApp(mglw.WindowConfig):
    gl_version = (3, 3)
    title = "gpu_deconv - moderngl-window (left: input, right: deblurred)"
    window_size = (2 * DEFAULT_IMAGE[0], DEFAULT_IMAGE[1])
    resizable = False
    vsync = False
    aspect_ratio = None
    clear_color = (0.0, 0.0, 0.0, 1.0)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--image-size", default=f"{DEFAULT_IMAGE[0]}x{DEFAULT_IMAGE[1]}",
                            help="chart size WxH (the window is 2W x H)")
        parser.add_argument("--frames", type=int, default=0, help="render this many frames, then close")
        parser.add_argument("--screenshot", default=None, help="PNG of the window framebuffer after the last frame")
        parser.add_argument("--stats", default=None, help="JSON: timings and the last frame's plan")
        parser.add_argument("--sigma", type=float, default=1.2)
        parser.add_argument("--swing", type=float, default=0.2, help="sigma changes by up to +-SWING per frame")
        parser.add_argument("--noise", type=float, default=0.003)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        a = self.argv
        self.w, self.h = (int(v) for v in a.image_size.lower().split("x"))
        img = make_input((self.w, self.h), noise=a.noise)
        # the app's texture: GL row 0 is the bottom row, so upload the image bottom-up
        self.src = self.ctx.texture((self.w, self.h), 4, np.ascontiguousarray(img[::-1]).tobytes(), dtype="f4")
        self.show = self.ctx.program(vertex_shader=VERT, fragment_shader=SHOW_FRAG)
        self.show["u_tex"].value = 0
        self.vao = self.ctx.vertex_array(self.show, [])
        # the global mode: one filter per frame, the cheapest in a render loop (adaptive is the batch default)
        self.dec = Deconvolver(self.ctx, DeconvParams(sigma=a.sigma, noise=a.noise, mode="global"))
        self.frame = 0
        self.records: list[dict] = []
        self.errors: list[str] = []
        self.renderer = self.ctx.info["GL_RENDERER"]

    def on_render(self, time_s: float, frame_time: float) -> None:
        a, w, h = self.argv, self.w, self.h
        fbo = self.wnd.fbo                      # bound by moderngl-window before on_render
        fbo.viewport = (0, 0, w, h)
        self.src.use(0)
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        fbo.viewport = (0, 0, 2 * w, h)
        sigma = a.sigma + a.swing * math.sin(0.9 * self.frame)   # by frame number: reproducible
        t0 = time.perf_counter()
        self.dec.set_blur(sigma, noise=a.noise)
        t1 = time.perf_counter()
        self.dec.apply(self.src, fbo, viewport=(w, 0, w, h), encode_srgb=True)
        t2 = time.perf_counter()
        err = self.ctx.error
        if err != "GL_NO_ERROR":
            self.errors.append(f"frame {self.frame}: {err}")
        self.records.append({"sigma": sigma, "set_blur_us": (t1 - t0) * 1e6, "apply_ms": (t2 - t1) * 1e3,
                             "gpu_ms": self.dec.last_gpu_ms})
        self.frame += 1
        if a.frames and self.frame >= a.frames:
            if a.screenshot:
                self.save_screenshot(a.screenshot)
            self.wnd.close()                    # calls on_close, then moderngl-window releases the context

    def save_screenshot(self, path: str) -> None:
        from gpu_deconv.io.images import write_image

        w2, h = 2 * self.w, self.h
        data = self.wnd.fbo.read(viewport=(0, 0, w2, h), components=4, alignment=1)
        _ = self.ctx.error  # reading a window's FBO 0 through moderngl flags a harmless glReadBuffer error
        rgb = np.frombuffer(data, np.uint8).reshape(h, w2, 4)[::-1, :, :3]
        write_image(path, np.ascontiguousarray(rgb), format="png", overwrite=True)

    def on_close(self) -> None:
        design = self.dec.design
        self.dec.release()                      # the engine's objects, while the context is alive
        for obj in (self.vao, self.show, self.src):
            obj.release()
        recs = self.records[2:] or self.records

        def med(key: str) -> float:
            return median_of(recs, key)

        print(f"moderngl_window_app: {self.frame} frames, {self.w}x{self.h}, {self.renderer}: set_blur "
              f"{med('set_blur_us'):.0f} us, apply {med('apply_ms'):.2f} ms CPU, GPU {med('gpu_ms'):.2f} ms")
        if self.errors:
            print("GL errors: " + "; ".join(self.errors), file=sys.stderr)
        if self.argv.stats:
            Path(self.argv.stats).write_text(json.dumps({
                "size": [self.w, self.h], "frames": self.records, "renderer": self.renderer,
                "noise": self.argv.noise, "precision": self.dec.params.precision,
                "plan": plan_to_json(design.plan) if design is not None else None, "gl_errors": self.errors,
            }, indent=1))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--image-size", default=f"{DEFAULT_IMAGE[0]}x{DEFAULT_IMAGE[1]}")
    pre.add_argument("-wnd", "--window", default=None)
    pre.add_argument("--backend", default=None)
    known, _ = pre.parse_known_args(args)
    w, h = (int(v) for v in known.image_size.lower().split("x"))
    DeblurApp.window_size = (2 * w, h)          # moderngl-window reads it before creating the window
    if known.window == "headless" and known.backend is None and sys.platform.startswith("linux"):
        args += ["--backend", "egl"]            # headless without a display: EGL
    config = mglw.create_window_config_instance(DeblurApp, args=args)
    mglw.run_window_config_instance(config)
    return 1 if config.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
