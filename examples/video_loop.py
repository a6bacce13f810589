"""Embedding example (c): decode -> upload -> deblur -> display or encode, reusing every texture.

The loop a video player or a transcoder runs::

    VideoReader (PyAV, decoding ahead on a thread; frames as uint8 RGBA, the layout textures take as is)
      -> src texture, RGBA8 (reused; RGB uploads are slow)
      -> Deconvolver.apply(src, out, src_is_srgb=True, encode_srgb=True, bits=8)  # sRGB codes in and out
      -> window: draw `out` to the screen
         | --output: read `out` back (RGBA, into a reused array) -> VideoWriter(source=reader), which keeps
           every frame's timestamp, the audio/subtitle streams and the colour tags of the input

8-bit SDR only, to stay short: deeper sources are read as 8-bit (``depth=8``) and HDR (PQ/HLG) is refused;
``gpu-deconv run`` handles both.

The engine runs with ``stats_latency=1``: with ``noise='auto'`` (the default here) frame n's noise and
spectrum statistics are read back asynchronously and steer frame n + 1, so the CPU never waits for the
GPU mid-frame (frame 0 measures synchronously). A scene cut therefore uses the previous shot's noise for
one frame.

Frames are uploaded top row first, so texture row 0 is the picture's *top*: the filter does not care,
the read-back comes out in file order, and only the display pass flips y.

An 8-bit frame also carries quantisation noise: ``apply(..., bits=8)`` adds it to a numeric ``--noise``,
so the output equals ``Deconvolver.process`` (and ``gpu-deconv run``) of the same frames. With
``noise='auto'`` the measured noise already includes it.

Usage::

    python examples/video_loop.py clip.mp4                      # glfw window; space: before/after, Esc: quit
    python examples/video_loop.py clip.mp4 --output sharp.mp4   # headless (EGL): no window, encode
    python examples/video_loop.py clip.mp4 --output sharp.mp4 --frames 48 --last-frame last.png --stats s.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from gpu_deconv.core.params import DeconvParams  # noqa: E402

VERT = """#version 330 core
out vec2 v_uv;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    v_uv = vec2(p.x, 1.0 - p.y);             // texture row 0 is the top of the picture
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""
SHOW_FRAG = """#version 330 core
uniform sampler2D u_tex;
in vec2 v_uv;
out vec4 o;
void main() { o = vec4(texture(u_tex, v_uv).rgb, 1.0); }
"""


def median_of(records: list[dict], key: str) -> float:
    vals = [r[key] for r in records if r[key] is not None]
    return float(np.median(vals)) if vals else float("nan")


def parse_noise(text: str) -> float | str:
    return "auto" if text == "auto" else float(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gpu_deconv video loop: decode, upload, deblur, display or encode")
    ap.add_argument("input", help="video file (anything FFmpeg decodes)")
    ap.add_argument("--output", default=None, help="encode to this file instead of showing a window (headless)")
    ap.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: all)")
    ap.add_argument("--sigma", type=float, default=1.0, help="blur sigma (px)")
    ap.add_argument("--noise", type=parse_noise, default="auto", help="noise std (linear) or 'auto' (default)")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--last-frame", default=None, help="also save the last deblurred frame as a lossless PNG")
    ap.add_argument("--screenshot", default=None, help="window mode: save the window after the last frame")
    ap.add_argument("--stats", default=None, help="per-frame timings as JSON")
    ap.add_argument("--no-pace", action="store_true", help="window mode: do not wait for the video's frame rate")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)

    import moderngl

    from gpu_deconv.gl.engine import Deconvolver
    from gpu_deconv.io.video import DecodedFrame, VideoReader, VideoWriter

    reader = VideoReader(args.input, channels=4, depth=8, prefetch=2)
    info = reader.info
    w, h = info.width, info.height
    if reader.pixel_format.space != "srgb":
        print(f"video_loop: {args.input}: HDR ({info.transfer}) video; use gpu-deconv run", file=sys.stderr)
        return 2
    headless = args.output is not None
    glfw = window = None
    if headless:
        from gpu_deconv.gl.context import create_headless_context

        ctx = create_headless_context()
    else:
        import glfw

        if not glfw.init():
            print("video_loop: glfw.init() failed (no display?); use --output for headless", file=sys.stderr)
            return 2
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.SCALE_TO_MONITOR, False)
        scale = min(1.0, 1280 / w, 720 / h)
        window = glfw.create_window(max(1, int(w * scale)), max(1, int(h * scale)),
                                    f"gpu_deconv - {Path(args.input).name}", None, None)
        if not window:
            glfw.terminate()
            print("video_loop: could not open an OpenGL 3.3 core window", file=sys.stderr)
            return 2
        glfw.make_context_current(window)
        glfw.swap_interval(0)
        ctx = moderngl.create_context()

    # host-owned, allocated once, reused every frame
    src_tex = ctx.texture((w, h), 4)                  # RGBA8: uploads are ~40x cheaper than into RGBA16F
    out_tex = ctx.texture((w, h), 4)
    out_fbo = ctx.framebuffer(color_attachments=[out_tex])
    readback = np.empty((h, w, 4), np.uint8)
    show_prog = show_vao = None
    if not headless:
        show_prog = ctx.program(vertex_shader=VERT, fragment_shader=SHOW_FRAG)
        show_vao = ctx.vertex_array(show_prog, [])
        for t in (src_tex, out_tex):
            t.filter = (moderngl.LINEAR, moderngl.LINEAR)   # for the display only; apply() ignores it

    params = DeconvParams(sigma=args.sigma, noise=args.noise, method=args.method)
    dec = Deconvolver(ctx, params, stats_latency=1)
    writer = VideoWriter(args.output, source=reader, overwrite=args.overwrite) if headless else None
    if writer is not None:
        for note in writer.notes:
            print(f"video_loop: note: {note}", file=sys.stderr)
    state = {"before": False}
    if window is not None:
        def on_key(win, key, scancode, action, mods):
            if action == glfw.PRESS and key == glfw.KEY_SPACE:
                state["before"] = not state["before"]
            elif action == glfw.PRESS and key == glfw.KEY_ESCAPE:
                glfw.set_window_should_close(win, True)
        glfw.set_key_callback(window, on_key)

    records: list[dict] = []
    errors: list[str] = []
    shot = None
    screen = None
    t_start = time.perf_counter()
    n = 0
    ok = False
    try:
        for item in reader.items():                   # frames, and (with a writer) the other streams' packets
            if not isinstance(item, DecodedFrame):
                writer.mux(item)                      # audio, subtitles...: copied as they are
                continue
            if window is not None and glfw.window_should_close(window):
                break
            t0 = time.perf_counter()
            src_tex.write(item.pixels)                # same texture every frame, RGBA as decoded
            t1 = time.perf_counter()
            dec.apply(src_tex, out_fbo, src_is_srgb=True, encode_srgb=True, bits=8)
            design = dec.design                       # this frame's filter (steered by frame n - 1)
            t2 = time.perf_counter()
            last = args.frames and n + 1 >= args.frames
            if headless:
                out_fbo.read_into(readback, components=4)   # waits for this frame's passes
                writer.write(readback, item)          # copied before it returns: readback is reused
            else:
                fw, fh = glfw.get_framebuffer_size(window)
                if screen is None:
                    screen = ctx.detect_framebuffer(0)   # the window's default framebuffer (a reference)
                screen.use()
                ctx.viewport = (0, 0, fw, fh)
                (src_tex if state["before"] else out_tex).use(0)
                show_vao.render(moderngl.TRIANGLES, vertices=3)
                if args.screenshot and last:
                    data = screen.read(viewport=(0, 0, fw, fh), components=4, alignment=1)
                    _ = ctx.error  # harmless glReadBuffer complaint on FBO 0 (see glfw_host.py)
                    shot = np.frombuffer(data, np.uint8).reshape(fh, fw, 4)[::-1, :, :3].copy()
                glfw.swap_buffers(window)
                glfw.poll_events()
                if not args.no_pace:                  # present at the frame's own time (VFR stays VFR)
                    wait = t_start + item.time + item.duration * item.time_base - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
            t3 = time.perf_counter()
            err = ctx.error
            if err != "GL_NO_ERROR":
                errors.append(f"frame {n}: {err}")
            records.append({"upload_ms": (t1 - t0) * 1e3, "apply_ms": (t2 - t1) * 1e3,
                            "out_ms": (t3 - t2) * 1e3, "gpu_ms": dec.last_gpu_ms,
                            "noise_std": design.noise_std if design is not None else None,
                            "method": design.method if design is not None else None})
            n += 1
            if last:
                break
        if args.last_frame and n:
            if not headless:                          # out_tex still holds the last frame
                out_fbo.read_into(readback, components=4)
            from gpu_deconv.io.images import write_image

            write_image(args.last_frame, np.ascontiguousarray(readback[..., :3]), format="png", overwrite=True)
        ok = True
    finally:
        reader.close()
        if writer is not None:
            if ok and n:
                writer.close()
            else:
                writer.abort()
        dec.release()                                 # the engine's intermediates
        for obj in (show_vao, show_prog, out_fbo, out_tex, src_tex):
            if obj is not None:
                obj.release()                         # the host's textures
        if window is not None:
            ctx.release()
            glfw.destroy_window(window)
            glfw.terminate()
        else:
            ctx.release()                             # our own headless context
    if shot is not None:
        from gpu_deconv.io.images import write_image

        write_image(args.screenshot, shot, format="png", overwrite=True)
    wall = time.perf_counter() - t_start
    rec = records[2:] or records

    def med(key: str) -> float:
        return median_of(rec, key)

    print(f"video_loop: {n} frames {w}x{h} in {wall:.2f} s ({n / wall:.1f} fps); per frame (median): upload "
          f"{med('upload_ms'):.2f} ms, apply {med('apply_ms'):.2f} ms CPU, GPU {med('gpu_ms'):.2f} ms, "
          f"{'read+encode' if headless else 'display'} {med('out_ms'):.2f} ms")
    if args.output:
        print(f"video_loop: wrote {args.output}")
    if errors:
        print("GL errors: " + "; ".join(errors), file=sys.stderr)
    if args.stats:
        Path(args.stats).write_text(json.dumps({"size": [w, h], "frames": records, "fps": str(info.fps),
                                                "gl_errors": errors}, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
