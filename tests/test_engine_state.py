"""The embedding path: apply() draws into a caller's framebuffer and leaves the GL state as it found it."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import MixtureStage, Plan
from gpu_deconv.gl.context import RawGL
from gpu_deconv.gl.state import (
    CAPS,
    GL_ACTIVE_TEXTURE,
    GL_COLOR_WRITEMASK,
    GL_CURRENT_PROGRAM,
    GL_DRAW_FRAMEBUFFER_BINDING,
    GL_READ_FRAMEBUFFER_BINDING,
    GL_SAMPLER_BINDING,
    GL_SCISSOR_BOX,
    GL_TEXTURE_BINDING_2D,
    GL_VERTEX_ARRAY_BINDING,
    GL_VIEWPORT,
)

moderngl = pytest.importorskip("moderngl")

COMB = Plan("comb", (MixtureStage((np.array([1, 2, 1]) / 4, np.array([1, 2, 3, 4, 3, 2, 1]) / 16),
                                  [1.4, 0.9, -1.3]),))
SENTINEL = (0.25, 0.5, 0.75, 1.0)


def _snapshot(raw: RawGL) -> dict:
    s = {
        "draw_fb": raw.get_int(GL_DRAW_FRAMEBUFFER_BINDING),
        "read_fb": raw.get_int(GL_READ_FRAMEBUFFER_BINDING),
        "viewport": raw.get_int(GL_VIEWPORT, 4),
        "scissor": raw.get_int(GL_SCISSOR_BOX, 4),
        "program": raw.get_int(GL_CURRENT_PROGRAM),
        "vao": raw.get_int(GL_VERTEX_ARRAY_BINDING),
        "active": raw.get_int(GL_ACTIVE_TEXTURE),
        "caps": [raw.is_enabled(c) for c in CAPS],
        "mask": raw.get_bool(GL_COLOR_WRITEMASK, 4),
    }
    active = s["active"][0]
    units = []
    for u in range(10):
        raw.glActiveTexture(0x84C0 + u)
        units.append((raw.get_int(GL_TEXTURE_BINDING_2D)[0], raw.get_int(GL_SAMPLER_BINDING)[0]))
    raw.glActiveTexture(active)
    s["units"] = units
    return s


@pytest.fixture
def caller_scene(gl_ctx):
    """A caller mid-frame: own framebuffer, odd viewport, blending/depth/scissor/cull on, program bound..."""
    ctx = gl_ctx
    raw = RawGL(ctx)
    if not raw.available:
        pytest.skip("no raw GL loader to read state with")
    dst_tex = ctx.texture((64, 48), 4, dtype="f4")
    depth = ctx.depth_renderbuffer((64, 48))
    dst = ctx.framebuffer([dst_tex], depth)
    dst.use()
    dst.clear(*SENTINEL, depth=1.0)
    prog = ctx.program(
        vertex_shader="#version 330 core\nvoid main(){ gl_Position = vec4(0.0, 0.0, 0.0, 1.0); }",
        fragment_shader="#version 330 core\nout vec4 o; void main(){ o = vec4(1.0); }",
    )
    vao = ctx.vertex_array(prog, [])
    vao.render(moderngl.POINTS, vertices=1)  # leaves the caller's program and VAO bound
    other = ctx.texture((4, 4), 4)
    smp = ctx.sampler()
    other.use(0)
    other.use(3)
    smp.use(2)
    ctx.enable(moderngl.BLEND | moderngl.DEPTH_TEST | moderngl.CULL_FACE)
    ctx.blend_func = moderngl.ONE, moderngl.ONE
    ctx.scissor = (1, 2, 30, 20)
    raw.glViewport(3, 4, 50, 40)
    raw.glColorMask(1, 0, 1, 1)
    raw.glActiveTexture(0x84C0 + 5)
    assert ctx.error == "GL_NO_ERROR"
    yield ctx, raw, dst, dst_tex, vao
    raw.glColorMask(1, 1, 1, 1)
    ctx.disable(moderngl.BLEND | moderngl.DEPTH_TEST | moderngl.CULL_FACE)
    ctx.scissor = None
    ctx.detect_framebuffer(0).use()  # never release the framebuffer moderngl believes is bound
    for o in (vao, prog, other, smp, dst, depth, dst_tex):
        o.release()


def test_apply_renders_into_viewport_and_restores_state(engine, caller_scene):
    ctx, raw, dst, dst_tex, vao = caller_scene
    rng = np.random.default_rng(1)
    h, w = 17, 23
    img = rng.random((h, w, 4), dtype=np.float32)
    src = ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
    src.filter = (moderngl.LINEAR, moderngl.LINEAR)  # caller's filtering must not matter
    engine.set_params(DeconvParams(precision=32))
    before = _snapshot(raw)
    engine.apply(src, dst, viewport=(10, 7, w, h), plan=COMB)
    after = _snapshot(raw)
    assert after == before
    assert ctx.fbo is dst
    assert ctx.error == "GL_NO_ERROR"
    # the pixels: the region equals process(), everything else is untouched
    raw.glColorMask(1, 1, 1, 1)
    full = np.frombuffer(dst_tex.read(), dtype=np.float32).reshape(48, 64, 4)
    expect = engine.process(img, plan=COMB, space="linear")
    np.testing.assert_array_equal(full[7:7 + h, 10:10 + w], expect)
    mask = np.ones((48, 64), bool)
    mask[7:7 + h, 10:10 + w] = False
    assert np.all(full[mask] == np.array(SENTINEL, np.float32))
    # the caller carries on with moderngl without errors
    dst.use()
    vao.render(moderngl.POINTS, vertices=1)
    dst.clear(0, 0, 0, 0)
    assert ctx.error == "GL_NO_ERROR"
    src.release()


def test_apply_with_statistics_and_texture_target(engine, caller_scene):
    ctx, raw, dst, dst_tex, vao = caller_scene
    rng = np.random.default_rng(2)
    h, w = 32, 40
    img = (rng.random((h, w, 4)) * 255).astype(np.uint8)
    src = ctx.texture((w, h), 4, img.tobytes())
    out_tex = ctx.texture((w, h), 4)
    engine.set_params(DeconvParams(sigma=0.8, noise="auto", precision=16, mode="global"))
    before = _snapshot(raw)
    engine.apply(src, out_tex, src_is_srgb=True, encode_srgb=True)
    assert _snapshot(raw) == before and ctx.fbo is dst and ctx.error == "GL_NO_ERROR"
    design = engine.design
    assert design.params == engine.params and design.plan.stages
    got = np.frombuffer(out_tex.read(), dtype=np.uint8).reshape(h, w, 4)
    ref = engine.process(img, plan=design.plan)  # same plan through the upload path
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
    assert np.array_equal(got[..., 3], img[..., 3])
    # timer queries: a later frame sees the previous frame's GPU time without waiting
    for _ in range(3):
        engine.apply(src, out_tex, src_is_srgb=True, encode_srgb=True)
    ctx.finish()
    assert engine.last_gpu_ms is not None and engine.last_gpu_ms >= 0
    src.release()
    out_tex.release()


def test_apply_rejects_mismatched_viewport(engine, gl_ctx):
    src = gl_ctx.texture((8, 8), 4, dtype="f4")
    dst = gl_ctx.texture((16, 16), 4, dtype="f4")
    with pytest.raises(ValueError, match="viewport"):
        engine.apply(src, dst, viewport=(0, 0, 16, 16), plan=COMB)
    src.release()
    dst.release()


def test_borrowed_context_survives_release(gl_ctx):
    from gpu_deconv.gl.engine import Deconvolver

    assert gl_ctx.error == "GL_NO_ERROR"
    dec = Deconvolver(gl_ctx, DeconvParams(noise=0.01))
    out = dec.process(np.zeros((8, 8), np.float32))
    assert out.shape == (8, 8)
    dec.release()
    t = gl_ctx.texture((4, 4), 4)  # the context is still alive
    t.release()
    assert gl_ctx.error == "GL_NO_ERROR"
    with pytest.raises(RuntimeError):
        dec.process(np.zeros((8, 8), np.float32))


def test_own_context_is_released(gl_ctx):
    from gpu_deconv.gl.engine import Deconvolver

    with Deconvolver(params=DeconvParams(noise=0.01)) as dec:
        own = dec.ctx
        assert own is not gl_ctx
        t = gl_ctx.texture((4, 4), 4)  # the caller's context is still the current one
        assert dec.process(np.full((5, 6, 3), 0.5, np.float32)).shape == (5, 6, 3)
        t.write(np.zeros((4, 4, 4), np.uint8).tobytes())
        t.release()
        assert gl_ctx.error == "GL_NO_ERROR"
    assert dec._released
    assert gl_ctx.error == "GL_NO_ERROR"


def test_render_loop_polls_params_and_reports_gpu_time(gl_ctx):
    from gpu_deconv.apps.render_loop import RenderLoop
    from gpu_deconv.gl.engine import Deconvolver

    state = {"p": DeconvParams(sigma=1.0, noise="auto")}
    rng = np.random.default_rng(3)
    with Deconvolver(gl_ctx, stats_latency=1) as dec:
        loop = RenderLoop(dec, params=lambda: state["p"])
        frames = [(rng.random((24, 30, 3)) * 255).astype(np.uint8) for _ in range(4)]
        infos = []
        for i, (out, info) in enumerate(loop.run(frames)):
            assert out.shape == (24, 30, 3) and out.dtype == np.uint8
            infos.append(info)
            if i == 1:
                state["p"] = DeconvParams(sigma=0.5, noise="auto", method="comb")
        assert [i.index for i in infos] == [0, 1, 2, 3]
        assert infos[1].design.method == "laplacian" and infos[2].design.method == "comb"
        assert infos[-1].gpu_ms is not None and loop.gpu_ms_mean() > 0
        src = gl_ctx.texture((30, 24), 4, frames[0][..., [0, 1, 2, 2]].tobytes())
        dst = gl_ctx.texture((30, 24), 4)
        info = loop.frame(src, dst, src_is_srgb=True, encode_srgb=True)
        assert info.index == 4 and gl_ctx.error == "GL_NO_ERROR"
        src.release()
        dst.release()


def test_bench_engine_smoke(gl_ctx):
    """benchmarks/bench_engine.py runs end to end on a tiny frame (the real sizes are for humans); in a
    subprocess, since the benchmark makes its own context current."""
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engine.py"
    res = subprocess.run([sys.executable, str(path), "--quick", "--sizes", "64x48", "--reps", "1", "--no-write"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "GL renderer" in res.stdout and "laplacian" in res.stdout and "passthrough" in res.stdout


def test_draw_buffers_and_pixel_store_survive_apply_and_process(engine, gl_ctx):
    """A caller's own draw-buffer selection and pixel-store parameters (row lengths, skips) are restored,
    and they do not corrupt our uploads, statistics read-back or results while they are set."""
    import ctypes

    from gpu_deconv.gl.state import GL_DRAW_BUFFER0, PIXEL_STORE

    ctx = gl_ctx
    raw = RawGL(ctx)
    if not raw.available:
        pytest.skip("no raw GL loader to read state with")
    a, b = ctx.texture((32, 24), 4, dtype="f4"), ctx.texture((32, 24), 4, dtype="f4")
    fbo = ctx.framebuffer([a, b])
    fbo.use()
    bufs = (ctypes.c_uint * 2)(0, 0x8CE1)  # GL_NONE, GL_COLOR_ATTACHMENT1
    raw.glDrawBuffers(2, bufs)
    img = np.random.default_rng(3).random((24, 32, 4), dtype=np.float32)
    engine.set_params(DeconvParams(sigma=1.0, noise="auto", precision=32))
    clean = engine.process(img, space="linear")
    src = ctx.texture((32, 24), 4, img.tobytes(), dtype="f4")
    out = ctx.texture((32, 24), 4, dtype="f4")
    fbo.use()
    raw.glDrawBuffers(2, bufs)
    for i, (name, _) in enumerate(PIXEL_STORE[:10]):
        raw.glPixelStorei(name, 3 + i)
    store = [raw.get_int(name)[0] for name, _ in PIXEL_STORE]
    engine.apply(src, out)
    assert [raw.get_int(GL_DRAW_BUFFER0 + i)[0] for i in range(2)] == [0, 0x8CE1]
    assert [raw.get_int(name)[0] for name, _ in PIXEL_STORE] == store
    np.testing.assert_array_equal(engine.process(img, space="linear"), clean)
    assert [raw.get_int(name)[0] for name, _ in PIXEL_STORE] == store
    for name, neutral in PIXEL_STORE:
        raw.glPixelStorei(name, neutral)
    got = np.frombuffer(out.read(), dtype=np.float32).reshape(24, 32, 4)
    np.testing.assert_array_equal(got, clean)
    assert ctx.error == "GL_NO_ERROR"
    ctx.detect_framebuffer(0).use()
    for o in (fbo, a, b, src, out):
        o.release()


def test_apply_with_bits_designs_like_process_and_set_blur_solves_once(engine, gl_ctx):
    ctx = gl_ctx
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 28, 4), dtype=np.uint8)
    engine.set_params(DeconvParams(sigma=0.8, noise=0.004, level=2e-3, precision=32))
    want = engine.process(img, bits=8)
    var = engine.design.noise_var
    assert var == pytest.approx(0.004**2 + (1 / 255) ** 2 / 12)
    src = ctx.texture((28, 20), 4, img.tobytes())
    dst = ctx.texture((28, 20), 4)
    calls = []
    real = engine.designer._design  # the solve (design() itself returns a cached design when nothing changed)
    engine.designer._design = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        engine.set_blur(0.9, bits=8)  # a new blur: one solve here ...
        engine.set_blur(0.8, bits=8)  # noise and method are kept; one solve here ...
        engine.apply(src, dst, src_is_srgb=True, encode_srgb=True, bits=8)  # ... and none here
        engine.apply(src, dst, src_is_srgb=True, encode_srgb=True, bits=8)  # ... nor for the next frame
    finally:
        del engine.designer._design
    assert len(calls) == 2 and engine.params.noise == 0.004
    assert engine.design.noise_var == pytest.approx(var)
    got = np.frombuffer(dst.read(), dtype=np.uint8).reshape(20, 28, 4)
    assert np.abs(got.astype(int) - want).max() <= 1
    ctx.detect_framebuffer(0).use()
    src.release()
    dst.release()
