"""The fused compute path (gpu_deconv.gl.compute) against the NumPy reference and the fragment path.

Tolerances are the brief's (fp32 <= 1e-5, fp16 <= 4e-3), but like the fragment passes the fused stage
follows the reference's order of operations and rounds its half-precision values with the driver's
probed rounding, so on Mesa llvmpipe every comparison here is asserted *bit for bit* (``_exact``);
on another renderer the stated tolerances apply.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import pytest
from test_engine_reference import _plans

from gpu_deconv.core.plan import MixtureStage, Plan
from gpu_deconv.core.reference import apply_plan

TOL = {32: 1e-5, 16: 4e-3}
PLANS = {name: plan for name, plan in _plans().items() if plan.stages}


@pytest.fixture(scope="module")
def paths(gl_ctx):
    """(PlanExecutor, ComputeExecutor) on the shared context, default variant."""
    from gpu_deconv.gl.compute import ComputeExecutor, compute_available
    from gpu_deconv.gl.executor import PlanExecutor

    if not compute_available(gl_ctx):
        msg = f"OpenGL {gl_ctx.version_code} < 4.3: no compute shaders"
        if os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    ex = PlanExecutor(gl_ctx)
    ce = ComputeExecutor(ex)
    yield ex, ce
    ce.release()
    ex.release()


def _llvmpipe(ctx) -> bool:
    return "llvmpipe" in ctx.info["GL_RENDERER"]


def _layout(channels: int | None):
    from gpu_deconv.gl.executor import Layout

    return Layout.for_channels(1 if channels is None else channels)


def _to_texture_data(img: np.ndarray, comps: int) -> np.ndarray:
    """An (H, W[, C]) image as the texture layout of the engine: gray 1 component, LA -> (L, 0, 0, A),
    RGB -> RGB + 1."""
    x = img if img.ndim == 3 else img[:, :, None]
    h, w, c = x.shape
    if comps == 1:
        return np.ascontiguousarray(x[:, :, :1], dtype=np.float32)
    out = np.zeros((h, w, 4), np.float32)
    if c == 2:
        out[..., 0], out[..., 3] = x[..., 0], x[..., 1]
    else:
        out[..., :c] = x
        if c == 3:
            out[..., 3] = 1.0
    return out


def _from_texture_data(data: np.ndarray, channels: int | None) -> np.ndarray:
    if channels is None:
        return data[..., 0]
    if channels == 2:
        return np.stack([data[..., 0], data[..., 3]], axis=-1)
    return data[..., :channels]


def run_path(ctx, runner, img: np.ndarray, plan: Plan, precision: int, *, dtype: str = "f4",
             encode: bool = False, offset: tuple[int, int] = (0, 0), pad: int = 0) -> np.ndarray:
    """Run ``runner.run_stages`` on ``img`` (linear float32) into a texture of ``dtype``; return the region.

    ``offset``/``pad``: the target texture is ``pad`` texels larger than the image on each axis and the
    result lands at ``offset`` (what a caller's atlas or a pooled, larger texture looks like); texels
    outside the region must keep the marker value 7.
    """
    from gpu_deconv.gl.executor import DrawTarget, Region

    channels = None if img.ndim == 2 else img.shape[2]
    layout = _layout(channels)
    h, w = img.shape[:2]
    data = _to_texture_data(img, layout.comps)
    src = ctx.texture((w, h), layout.comps, data.tobytes(), dtype="f4")
    tw, th = w + pad, h + pad
    marker = np.full((th, tw, layout.comps), 7, np.float32)
    if dtype == "f4":
        init = marker.tobytes()
    elif dtype == "f2":
        init = marker.astype(np.float16).tobytes()
    elif dtype == "f1":
        init = np.full(marker.shape, 7, np.uint8).tobytes()
    else:
        init = np.full(marker.shape, 7, np.uint16).tobytes()
    dst = ctx.texture((tw, th), layout.comps, init, dtype=dtype)
    fbo = ctx.framebuffer([dst])
    try:
        runner.run_stages(plan, Region(src, w, h), DrawTarget(fbo, (*offset, w, h)), layout, precision=precision,
                          encode_srgb=encode)
        np_dtype = {"f4": np.float32, "f2": np.float16, "f1": np.uint8, "nu2": np.uint16}[dtype]
        full = np.frombuffer(dst.read(), np_dtype).reshape(th, tw, layout.comps).astype(np.float32)
    finally:
        ctx.detect_framebuffer(0).use()
        fbo.release()
        src.release()
        dst.release()
    ox, oy = offset
    outside = np.ones((th, tw), bool)
    outside[oy:oy + h, ox:ox + w] = False
    assert np.all(full[outside] == 7), "texels outside the target region were written"
    return _from_texture_data(full[oy:oy + h, ox:ox + w], channels)


def _exact(ctx, got: np.ndarray, ref: np.ndarray, precision: int, what: str) -> None:
    assert got.shape == ref.shape, what
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if got.size else 0.0
    if _llvmpipe(ctx):
        assert np.array_equal(got, ref), f"{what}: not bit-exact on llvmpipe, max abs err {err:.3g}"
    assert err <= TOL[precision], f"{what}: max abs err {err:.3g}"


def _alpha_exact(got: np.ndarray, img: np.ndarray) -> None:
    if img.ndim == 3 and img.shape[2] in (2, 4):
        a = img.shape[2] - 1
        assert np.array_equal(got[..., a].view(np.uint32), img[..., a].astype(np.float32).view(np.uint32))


# -- the generated body (no GL) -------------------------------------------------------------------------------

def test_body_fetches_each_texel_once_per_row():
    """The laplacian (5 levels, radius 7, 15 offsets): the loop body fetches each texel of the block's
    source row once - 15 for one column, 16 (not 30) for two - plus one base texel per column; the
    prologue is the same row code again; the code does not grow with the strip height (ROWS is a define)."""
    from gpu_deconv.gl.compute import FusedVariant, fused_body
    from gpu_deconv.gl.executor import stage_shape

    shape = stage_shape(PLANS["laplacian"].stages[0])

    def body(rows: int, cols: int) -> str:
        return fused_body(shape, FusedVariant(rows=rows, cols=cols), alpha=True, encode=False, round_h=True,
                          store_half=False)

    b1, b2 = body(8, 1), body(8, 2)
    assert b1.count("FETCH(u_src") == 2 * 15 and b1.count("FETCH(u_base") == 1
    assert b2.count("FETCH(u_src") == 2 * 16 and b2.count("FETCH(u_base") == 2
    assert b1.count("imageStore") == 1 and b2.count("imageStore") == 2
    assert b1.count("half_round(") == 2 * 5 and b2.count("half_round(") == 2 * 10
    assert body(64, 2) == b2
    # window: level k keeps rows R - r_k .. 2R; the new row is slot 2R = 14
    for k, r in enumerate((3, 4, 5, 6, 7)):
        assert f"w{k}_0_{7 - r - 1} " not in b1 and f"COL w{k}_0_{7 - r} = COL(0.0);" in b1


def test_variant_validation():
    from gpu_deconv.gl.compute import FusedVariant

    for bad in ({"rows": 0}, {"cols": 17}, {"local_x": 0}, {"rows": 2000}):
        with pytest.raises(ValueError):
            FusedVariant(**bad)
    assert FusedVariant(rows=8, cols=4, local_x=8).groups(1920, 1080) == (60, 135)


def test_size_class_and_plan_shape():
    from gpu_deconv.gl.compute import plan_shape, size_class

    assert size_class(1920, 1080) == 21 and size_class(3840, 2160) == 23 and size_class(1, 1) == 0
    p = PLANS["comb"]
    st = p.stages[0]
    same_shape = Plan("comb", (MixtureStage(tuple(t * 0.5 for t in st.taps), st.weights * 2),))
    assert plan_shape(same_shape) == plan_shape(p) == ((2, 3, "input"),) != plan_shape(PLANS["laplacian"])
    inner_radius = Plan("comb", (MixtureStage((np.ones(5) / 5, st.taps[1]), st.weights),))  # 1 -> 2
    assert plan_shape(inner_radius) == plan_shape(p)
    assert plan_shape(PLANS["polyblur"]) == ((1, 3, "input"), (1, 3, "previous"), (1, 3, "previous"))


# -- against the reference --------------------------------------------------------------------------------------

@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("precision", [32, 16])
def test_plans_rgba_odd_size(gl_ctx, paths, plan_name, precision):
    _, ce = paths
    rng = np.random.default_rng(1)
    img = rng.random((23, 31, 4), dtype=np.float32)
    img[..., 3] = rng.normal(size=(23, 31)).astype(np.float32)  # alpha outside [0, 1] too
    got = run_path(gl_ctx, ce, img, PLANS[plan_name], precision)
    _exact(gl_ctx, got, apply_plan(img, PLANS[plan_name], precision, ce.executor.fp16_rounding), precision, plan_name)
    _alpha_exact(got, img)


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (41, 1), (2, 3), (17, 13)])
@pytest.mark.parametrize("plan_name", ["comb", "laplacian", "fir31", "polyblur"])
def test_tiny_and_thin_images(gl_ctx, paths, shape, plan_name):
    """Kernels longer than the image mirror again (period 2n); strips and blocks running past the image
    edge store nothing there."""
    _, ce = paths
    rng = np.random.default_rng(2)
    for c in (None, 3):
        img = rng.random(shape if c is None else (*shape, c), dtype=np.float32)
        got = run_path(gl_ctx, ce, img, PLANS[plan_name], 32)
        _exact(gl_ctx, got, apply_plan(img, PLANS[plan_name], 32), 32, f"{plan_name} {img.shape}")


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("precision", [32, 16])
def test_channel_layouts(gl_ctx, paths, channels, precision):
    """Gray (1 component), LA (luma filtered, alpha copied), RGB (padded to RGBA) and RGBA."""
    _, ce = paths
    rng = np.random.default_rng(3)
    img = rng.random((19, 26) if channels is None else (19, 26, channels), dtype=np.float32)
    for name in ("comb", "polyblur"):  # (the 5-level laplacian on RGBA: test_plans_rgba_odd_size)
        got = run_path(gl_ctx, ce, img, PLANS[name], precision)
        _exact(gl_ctx, got, apply_plan(img, PLANS[name], precision, ce.executor.fp16_rounding), precision,
               f"{name} channels={channels}")
        _alpha_exact(got, img)


@pytest.mark.parametrize("variant", [(1, 1, 8), (8, 2, 8), (4, 4, 4), (64, 4, 8), (16, 1, 64), (7, 3, 5)])
def test_variants(gl_ctx, paths, variant):
    """Every strip shape (rows, cols, local_x) gives the same bits (odd sizes: partial blocks, strips and
    workgroups at the right and bottom edges). Precision 16 only: precision 32 differs by the rounding
    calls alone, which test_plans_rgba_odd_size covers."""
    from gpu_deconv.gl.compute import ComputeExecutor, FusedVariant

    ex, _ = paths
    ce = ComputeExecutor(ex, FusedVariant(*variant))
    try:
        rng = np.random.default_rng(4)
        img = rng.random((21, 35, 4), dtype=np.float32)
        for name in ("comb", "polyblur", "zero_taps"):
            got = run_path(gl_ctx, ce, img, PLANS[name], 16)
            _exact(gl_ctx, got, apply_plan(img, PLANS[name], 16, ex.fp16_rounding), 16, f"{name} {variant}")
            _alpha_exact(got, img)
    finally:
        ce.release()


@pytest.mark.parametrize("rounding", ["toward_zero", "nearest"])
def test_half_rounding_edge_values(gl_ctx, rounding):
    """The in-shader fp16 rounding on values that stress it - ties, subnormals, the largest half, overflow,
    signs - equals numpy's (nearest: IEEE round-to-nearest-even, as GPUs store RGBA16F; toward zero:
    Mesa llvmpipe). The plan is a one-tap identity stage, so the output is exactly the rounded H."""
    from gpu_deconv.gl.compute import ComputeExecutor, compute_available
    from gpu_deconv.gl.executor import PlanExecutor

    if not compute_available(gl_ctx):
        pytest.skip("no compute shaders")
    ulp = 2.0 ** -10
    vals = [1 + 0.5 * ulp, 1 + 1.5 * ulp, 1 + 0.75 * ulp, 1 + 0.25 * ulp, 2 - 0.25 * ulp, 65504.0, 65519.0,
            65520.0, 70000.0, 2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11), 2.0 ** -24 * 2.5, 2.0 ** -24 * 3.5,
            2.0 ** -25, 2.0 ** -26, 1e-9, 0.0, 0.1, 1 / 3, 1234.567]
    v = np.array(vals + [-x for x in vals], np.float32)
    img = np.zeros((len(v), 1, 4), np.float32)
    img[:, 0, 0] = v
    img[:, 0, 1] = v[::-1]
    img[:, 0, 2] = 0.5
    img[:, 0, 3] = 1
    plan = Plan("fir", (MixtureStage((np.array([1.0]),), [0.0, 1.0]),))
    ex = PlanExecutor(gl_ctx)
    ex.fp16_rounding = rounding  # what the compute path emulates (the fragment path's probe is unaffected)
    ce = ComputeExecutor(ex)
    try:
        got = run_path(gl_ctx, ce, img, plan, 16)
    finally:
        ce.release()
        ex.release()
    with np.errstate(over="ignore"):  # 65520 and 70000 overflow to inf when rounded to nearest, as intended
        ref = apply_plan(img, plan, 16, rounding)
    np.testing.assert_array_equal(got, ref)


# -- against the fragment path: output formats, offsets, fallbacks ------------------------------------------------

@pytest.mark.parametrize("dtype", ["f1", "nu2", "f2", "f4"])
@pytest.mark.parametrize("channels", [None, 4])
def test_direct_store_formats_match_fragment_path(gl_ctx, paths, dtype, channels):
    """imageStore into 8/16-bit unorm, half and float targets, sRGB-encoded for the integer ones, at a
    viewport offset inside a larger texture: the same texels as the fragment path's last pass writes."""
    ex, ce = paths
    rng = np.random.default_rng(5)
    img = rng.random((18, 22) if channels is None else (18, 22, channels), dtype=np.float32)
    if channels:
        img[..., 3] = rng.random((18, 22), dtype=np.float32)
    encode = dtype in ("f1", "nu2")
    for name in ("comb", "polyblur"):
        for p in (32, 16):
            kw = {"dtype": dtype, "encode": encode, "offset": (3, 2), "pad": 5}
            got = run_path(gl_ctx, ce, img, PLANS[name], p, **kw)
            frag = run_path(gl_ctx, ex, img, PLANS[name], p, **kw)
            if _llvmpipe(gl_ctx):
                assert np.array_equal(got, frag), (name, p, dtype)
            else:  # one code step (unorm) or one half ulp of rounding-mode difference
                step = {"f1": 1.0, "nu2": 1.0, "f2": 2e-3 * max(1.0, float(np.abs(frag).max())), "f4": 1e-5}[dtype]
                assert np.max(np.abs(got - frag)) <= step, (name, p, dtype)


def test_fallback_through_copy_pass(gl_ctx, paths):
    """A framebuffer without a texture (a renderbuffer here, a window's framebuffer in practice) cannot be
    an image: the stage goes to a pooled texture and the copy pass draws (and encodes) it."""
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region

    ex, ce = paths
    rng = np.random.default_rng(6)
    h, w = 15, 20
    img = rng.random((h, w, 4), dtype=np.float32)
    src = gl_ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
    rb = gl_ctx.renderbuffer((w, h), 4, dtype="f4")
    fbo = gl_ctx.framebuffer([rb])
    try:
        for encode in (False, True):
            got = {}
            for label, runner in (("compute", ce), ("fragment", ex)):
                runner.run_stages(PLANS["laplacian"], Region(src, w, h), DrawTarget(fbo, (0, 0, w, h)),
                                  Layout(3, 4, True), precision=16, encode_srgb=encode)
                got[label] = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32).reshape(h, w, 4)
            tol = 0.0 if _llvmpipe(gl_ctx) else TOL[16]
            assert np.max(np.abs(got["compute"] - got["fragment"])) <= tol
    finally:
        gl_ctx.detect_framebuffer(0).use()
        fbo.release()
        rb.release()
        src.release()


def test_three_component_textures_go_through_the_copy_pass(gl_ctx, paths):
    """``Deconvolver.apply`` passes a caller's RGB (3-component) textures as Layout(3, 3, False): no image
    format stores RGB, so the stage lands in an RGBA texture and the copy pass writes the target."""
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region

    ex, ce = paths
    h, w = 13, 17
    img = np.random.default_rng(10).random((h, w, 3), dtype=np.float32)
    src = gl_ctx.texture((w, h), 3, img.tobytes(), dtype="f4")
    dst = gl_ctx.texture((w, h), 3, dtype="f4")
    fbo = gl_ctx.framebuffer([dst])
    try:
        ce.run_stages(PLANS["comb"], Region(src, w, h), DrawTarget(fbo, (0, 0, w, h)), Layout(3, 3, False),
                      precision=16, encode_srgb=False)
        got = np.frombuffer(dst.read(), np.float32).reshape(h, w, 3)
        _exact(gl_ctx, got, apply_plan(img, PLANS["comb"], 16, ex.fp16_rounding), 16, "RGB texture")
    finally:
        gl_ctx.detect_framebuffer(0).use()
        fbo.release()
        src.release()
        dst.release()


def test_caller_image_binding_restored(gl_ctx, paths):
    """Into a caller's framebuffer under the state guard: the image unit the dispatch uses is given back."""
    from gpu_deconv.gl.compute import _GL_IMAGE_BINDING_NAME
    from gpu_deconv.gl.executor import TEXTURE_UNITS, DrawTarget, Layout, Region
    from gpu_deconv.gl.state import GLStateGuard

    ex, ce = paths
    if not ce.raw.available:
        pytest.skip("no raw GL loader to read state with")
    h, w = 12, 16
    img = np.random.default_rng(7).random((h, w, 4), dtype=np.float32)
    src = gl_ctx.texture((w, h), 4, img.tobytes(), dtype="f4")
    dst = gl_ctx.texture((w, h), 4, dtype="f4")
    mine = gl_ctx.texture((4, 4), 4, dtype="f4")
    fbo = gl_ctx.framebuffer([dst])
    mine.bind_to_image(0, read=True, write=False)
    try:
        with GLStateGuard(gl_ctx, ex.raw, TEXTURE_UNITS) as guard:
            ce.run_stages(PLANS["comb"], Region(src, w, h), DrawTarget(fbo, (0, 0, w, h), external=True),
                          Layout(3, 4, True), precision=32, encode_srgb=False, guard=guard)
        buf = (ctypes.c_int * 4)()
        ce.raw.glGetIntegeri_v(_GL_IMAGE_BINDING_NAME, 0, buf)
        assert buf[0] == mine.glo
        got = np.frombuffer(dst.read(), np.float32).reshape(h, w, 4)
        _exact(gl_ctx, got, apply_plan(img, PLANS["comb"], 32), 32, "comb into a caller's texture")
        assert gl_ctx.error == "GL_NO_ERROR"
    finally:
        gl_ctx.detect_framebuffer(0).use()
        fbo.release()
        for t in (src, dst, mine):
            t.release()


def test_programs_are_reused_across_redesigns(gl_ctx, paths):
    """New taps and weights with the same shape (a slider move) compile nothing new."""
    _, ce = paths
    img = np.random.default_rng(8).random((16, 16, 4), dtype=np.float32)
    run_path(gl_ctx, ce, img, PLANS["comb"], 16)
    n = ce.compiles
    st = PLANS["comb"].stages[0]
    other = Plan("comb", (MixtureStage(tuple(t * 0.9 for t in st.taps), st.weights * 1.1),))
    got = run_path(gl_ctx, ce, img, other, 16)
    assert ce.compiles == n
    _exact(gl_ctx, got, apply_plan(img, other, 16, ce.executor.fp16_rounding), 16, "redesigned comb")


def test_identity_plan_is_refused(gl_ctx, paths):
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region

    _, ce = paths
    t = gl_ctx.texture((4, 4), 4, dtype="f4")
    fbo = gl_ctx.framebuffer([t])
    try:
        with pytest.raises(ValueError, match="identity"):
            ce.run_stages(Plan("identity"), Region(t, 4, 4), DrawTarget(fbo, (0, 0, 4, 4)), Layout(3, 4, True),
                          precision=16, encode_srgb=False)
    finally:
        gl_ctx.detect_framebuffer(0).use()
        fbo.release()
        t.release()


# -- choosing the path ---------------------------------------------------------------------------------------------

def test_path_chooser_measures_once_per_key(gl_ctx, paths):
    from gpu_deconv.gl.compute import FusedVariant, PathChooser

    ex, _ = paths
    chooser = PathChooser(ex, (FusedVariant(rows=16, cols=2, local_x=8), FusedVariant(rows=4, cols=1, local_x=16)),
                          reps=2, mode="measure")
    try:
        layout = _layout(4)
        rng = np.random.default_rng(9)
        img = rng.random((40, 50, 4), dtype=np.float32)
        path = chooser.choose(PLANS["comb"], layout, (50, 40), 16)
        assert path in ("fragment", "strip2x16/8", "strip1x4/16") and len(chooser.decisions) == 1
        timing = next(iter(chooser.decisions.values()))
        assert set(timing.ms) == {"fragment", "strip2x16/8", "strip1x4/16"}
        assert all(ms > 0 for ms in timing.ms.values()) and timing.path == path
        assert timing.ms[path] == min(timing.ms.values())
        # same shape, other taps, a size of the same class: no new measurement
        st = PLANS["comb"].stages[0]
        other = Plan("comb", (MixtureStage(tuple(t * 0.9 for t in st.taps), st.weights),))
        assert chooser.choose(other, layout, (45, 44), 16) == path and len(chooser.decisions) == 1
        # another size class, precision or shape: measured separately
        chooser.choose(PLANS["comb"], layout, (200, 160), 16)
        chooser.choose(PLANS["comb"], layout, (50, 40), 32)
        chooser.choose(PLANS["unsharp"], layout, (50, 40), 16)
        assert len(chooser.decisions) == 4
        # whichever path runs, the result is the reference's
        got = run_path(gl_ctx, chooser, img, PLANS["comb"], 16)
        _exact(gl_ctx, got, apply_plan(img, PLANS["comb"], 16, ex.fp16_rounding), 16, "chosen path")
        assert gl_ctx.error == "GL_NO_ERROR"
    finally:
        chooser.release()


def test_path_chooser_forced_modes_and_candidates(gl_ctx, paths):
    from gpu_deconv.gl.compute import CPU_VARIANTS, GPU_VARIANTS, PathChooser, candidate_variants

    ex, _ = paths
    layout = _layout(3)
    cands = candidate_variants(gl_ctx)
    assert cands == (CPU_VARIANTS if _llvmpipe(gl_ctx) else GPU_VARIANTS)
    forced = PathChooser(ex, mode="compute")
    assert forced.choose(PLANS["comb"], layout, (64, 64), 16) == cands[0].label
    assert forced.choose(Plan("identity"), layout, (64, 64), 16) == "fragment"  # nothing to fuse
    forced.release()
    assert PathChooser(ex, mode="fragment").choose(PLANS["comb"], layout, (64, 64), 16) == "fragment"
    assert PathChooser(ex, variants=()).choose(PLANS["comb"], layout, (64, 64), 16) == "fragment"
    assert not PathChooser(ex, variants=()).decisions
    with pytest.raises(ValueError):
        PathChooser(ex, variants=(), mode="compute")
    with pytest.raises(ValueError):
        PathChooser(ex, mode="fastest")
    with pytest.raises(ValueError):
        PathChooser(ex, clock="sundial")
    auto = PathChooser(ex)
    assert auto.clock == ("wall" if _llvmpipe(gl_ctx) or not ex.raw.available else "gpu")
    # 'auto': CPU rasterisers take the fused path as benchmarked, without a measurement; GPUs measure
    assert auto.mode == ("compute" if _llvmpipe(gl_ctx) else "measure")
    if _llvmpipe(gl_ctx):
        assert auto.choose(PLANS["comb"], layout, (64, 64), 16) == cands[0].label and not auto.decisions
    auto.release()


@pytest.mark.parametrize("clock", ["gpu", "wall"])
def test_chooser_runs_inside_an_open_elapsed_query(gl_ctx, paths, clock):
    """A frame timer (GL_TIME_ELAPSED) may be open while the first frame of a new shape is measured: the
    measurement uses timestamps (GL allows them then) or the wall clock, and leaves no GL error."""
    from gpu_deconv.gl.compute import PathChooser
    from gpu_deconv.gl.timing import GpuTimer

    ex, _ = paths
    timer = GpuTimer(gl_ctx, ex.raw)
    chooser = PathChooser(ex, reps=1, clock=clock, mode="measure")
    try:
        assert chooser.clock == clock or not ex.raw.available
        timer.begin()
        chooser.choose(PLANS["unsharp"], _layout(None), (33, 17), 32)
        timer.end()
        assert timer.result_now() is not None
        assert len(chooser.decisions) == 1
        assert gl_ctx.error == "GL_NO_ERROR"
    finally:
        chooser.release()
        timer.release()


def test_bench_compute_smoke(gl_ctx, paths):
    """benchmarks/bench_compute.py runs end to end on a toy frame (in a subprocess: it makes its own context
    current); the fused outputs equal the fragment path's there (max diff 0 on llvmpipe)."""
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_compute.py"
    res = subprocess.run([sys.executable, str(path), "--quick", "--sizes", "48x32", "--reps", "1", "--no-write",
                          "--methods", "comb,polyblur", "--shader-cache"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "GL renderer" in out and "polyblur" in out and "PathChooser picks" in out
    if _llvmpipe(gl_ctx):
        rows = [line for line in out.splitlines() if line.strip().startswith("strip")]
        assert rows and all(line.split()[-2] == "0" for line in rows), out
