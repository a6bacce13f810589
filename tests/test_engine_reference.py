"""GL engine vs the NumPy reference (gpu_deconv.core.reference.apply_plan) for every plan shape.

The reference mirrors the passes operation for operation (same taps, order, boundary rule, fp16 store
rounding), so the tolerances of the brief (fp32 <= 1e-5, fp16 <= 4e-3) are loose upper bounds: on Mesa
llvmpipe the engine reproduces the reference *bit for bit* in both precisions once the reference
emulates the driver's fp16 rounding (round toward zero, probed at start-up), which
``test_llvmpipe_is_bit_exact`` pins down.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import MixtureStage, Plan
from gpu_deconv.core.reference import apply_plan

TOL = {32: 1e-5, 16: 4e-3}
#: Max abs error seen per (plan, precision), printed by test_zz_report (run pytest -s to see it).
MEASURED: dict[tuple[str, int], float] = {}
#: fp16 max abs error against the reference emulating the *other* rounding (what ignoring the driver's
#: rounding mode would cost).
OTHER_ROUNDING: dict[str, float] = {}


def _gauss(sigma: float, r: int) -> np.ndarray:
    x = np.arange(-r, r + 1)
    g = np.exp(-(x**2) / (2 * sigma * sigma))
    return g / g.sum()


def _sym(rng: np.random.Generator, r: int) -> np.ndarray:
    half = rng.normal(size=r + 1)
    t = np.concatenate([half[:0:-1], half])
    return t / t.sum()


def _plans() -> dict[str, Plan]:
    rng = np.random.default_rng(7)
    comb = MixtureStage((np.array([1, 2, 1]) / 4, np.array([1, 2, 3, 4, 3, 2, 1]) / 16), [1.4, 0.9, -1.3])
    lap_taps = tuple(_gauss(s, r) for s, r in zip((0.3, 0.6, 0.9, 1.2, 1.5), (3, 4, 5, 6, 7), strict=True))
    lap = MixtureStage(lap_taps, [-1.25, 3.97, -6.06, 12.05, -10.08, 2.37])
    fir = MixtureStage((_sym(rng, 15),), [0.0, 1.0])
    uns = MixtureStage((_gauss(1.0, 3),), [1.6, -0.6])
    b = _gauss(0.8, 3)
    poly = (MixtureStage((b,), [4.0, -1.0]), MixtureStage((b,), [-6.0, 1.0], "previous"),
            MixtureStage((b,), [4.0, 1.0], "previous"))
    atrous = np.zeros(9)
    atrous[[0, 4, 8]] = [0.25, 0.5, 0.25]
    seven = MixtureStage(tuple(_gauss(0.4 + 0.3 * k, 1 + k) for k in range(7)) , np.linspace(1, -0.5, 8))
    zeros = MixtureStage((np.array([1, 2, 1]) / 4, atrous), [1.2, 0.5, -0.7])
    return {
        "identity": Plan("identity"),
        "comb": Plan("comb", (comb,)),
        "laplacian": Plan("laplacian", (lap,)),
        "fir31": Plan("fir", (fir,)),
        "unsharp": Plan("unsharp", (uns,)),
        "polyblur": Plan("polyblur", poly),
        "seven_levels": Plan("laplacian", (seven,)),
        "zero_taps": Plan("comb", (zeros,)),
    }


PLANS = _plans()


def _gl(engine, image: np.ndarray, plan: Plan, precision: int, **kw) -> np.ndarray:
    engine.set_params(DeconvParams(precision=precision))
    return engine.process(image, plan=plan, space=kw.pop("space", "linear"), **kw)


def _check(engine, image, plan_name, precision, exact_llvmpipe=True):
    plan = PLANS[plan_name]
    got = _gl(engine, image, plan, precision)
    ref = apply_plan(image, plan, precision, engine.fp16_rounding)
    assert got.shape == ref.shape and got.dtype == np.float32
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if got.size else 0.0
    MEASURED[(plan_name, precision)] = max(MEASURED.get((plan_name, precision), 0.0), err)
    if precision == 16 and got.size:
        other = "nearest" if engine.fp16_rounding == "toward_zero" else "toward_zero"
        e2 = float(np.max(np.abs(got.astype(np.float64) - apply_plan(image, plan, 16, other))))
        OTHER_ROUNDING[plan_name] = max(OTHER_ROUNDING.get(plan_name, 0.0), e2)
    assert err <= TOL[precision], f"{plan_name} p{precision}: max abs err {err:.3g}"
    if image.ndim == 3 and image.shape[2] in (2, 4):
        a = image.shape[2] - 1
        assert np.array_equal(got[..., a].view(np.uint32), image[..., a].astype(np.float32).view(np.uint32))
    return got, ref


@pytest.mark.parametrize("plan_name", sorted(PLANS))
@pytest.mark.parametrize("precision", [32, 16])
def test_plans_rgba_odd_size(engine, plan_name, precision):
    rng = np.random.default_rng(1)
    img = rng.random((23, 31, 4), dtype=np.float32)
    img[..., 3] = rng.normal(size=(23, 31)).astype(np.float32)  # alpha outside [0, 1] too
    _check(engine, img, plan_name, precision)


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (41, 1), (2, 3), (17, 13), (5, 64)])
@pytest.mark.parametrize("plan_name", ["comb", "laplacian", "fir31", "polyblur"])
def test_tiny_and_thin_images(engine, shape, plan_name):
    """Kernels longer than the image mirror again (period 2n), exactly like the reference."""
    rng = np.random.default_rng(2)
    for c in (None, 3):
        img = rng.random(shape if c is None else (*shape, c), dtype=np.float32)
        _check(engine, img, plan_name, 32)


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
@pytest.mark.parametrize("precision", [32, 16])
def test_channel_layouts(engine, channels, precision):
    rng = np.random.default_rng(3)
    shape = (19, 26) if channels is None else (19, 26, channels)
    img = rng.random(shape, dtype=np.float32)
    for name in ("comb", "laplacian", "polyblur"):
        got, _ = _check(engine, img, name, precision)
        assert got.shape == img.shape


def test_generic_programs_match_reference(gl_ctx):
    """specialize=False (uniform loops, never recompiles) is exact too, and shares no programs."""
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(4)
    img = rng.random((21, 18, 4), dtype=np.float32)
    with Deconvolver(gl_ctx, specialize=False) as dec:
        for name in ("comb", "laplacian", "fir31", "polyblur", "seven_levels", "zero_taps"):
            for p in (32, 16):
                got = _gl(dec, img, PLANS[name], p)
                ref = apply_plan(img, PLANS[name], p, dec.fp16_rounding)
                assert np.max(np.abs(got - ref)) <= TOL[p], name
        n = dec.executor.compiles
        # new taps, same level count: no new program in generic mode
        st = PLANS["laplacian"].stages[0]
        other = Plan("laplacian", (MixtureStage(tuple(np.pad(t, 1)[1:-1] * 0.5 + 0.5 * t for t in st.taps),
                                                st.weights * 0.9),))
        _gl(dec, img, other, 16)
        assert dec.executor.compiles == n


@pytest.mark.parametrize("storage", ["native", "emulated"])
def test_llvmpipe_is_bit_exact(gl_ctx, storage):
    """On llvmpipe the passes reproduce the reference bit for bit (fp32, and fp16 with toward-zero), with
    RGBA16F targets and with the shader-side fp16 rounding alike."""
    from gpu_deconv.gl.engine import Deconvolver

    if "llvmpipe" not in gl_ctx.info["GL_RENDERER"]:
        pytest.skip("bit-exactness is only pinned down for Mesa llvmpipe")
    rng = np.random.default_rng(5)
    img = rng.random((29, 35, 4), dtype=np.float32)
    with Deconvolver(gl_ctx, fp16_storage=storage) as dec:
        assert dec.fp16_rounding == "toward_zero"
        for name in ("comb", "laplacian", "polyblur", "fir31", "seven_levels"):
            for p in (32, 16):
                for im in (img, img[..., 0]):
                    got = _gl(dec, im, PLANS[name], p)
                    ref = apply_plan(im, PLANS[name], p, "toward_zero")
                    assert np.array_equal(got, ref), (name, p, im.ndim, float(np.max(np.abs(got - ref))))


@pytest.mark.parametrize("precision", [16, 32])
def test_1080p_rgba(engine, precision):
    rng = np.random.default_rng(6)
    img = rng.random((1080, 1920, 4), dtype=np.float32)
    _check(engine, img, "comb", precision)


@pytest.mark.parametrize("method", ["comb", "laplacian", "fir", "unsharp", "polyblur", "identity", "auto"])
def test_designed_plans_and_flat_images(engine, method):
    """Every method's designed plan matches the reference; a flat image stays flat (DC gain 1)."""
    designer = FilterDesigner()
    params = DeconvParams(sigma=0.9, noise=0.01, method=method, precision=32)
    plan = designer.design(params).plan
    rng = np.random.default_rng(8)
    img = rng.random((24, 20, 3), dtype=np.float32)
    for p in (32, 16):
        got = _gl(engine, img, plan, p)
        assert np.max(np.abs(got - apply_plan(img, plan, p, engine.fp16_rounding))) <= TOL[p]
    flat = np.full((16, 21, 4), 0.37, dtype=np.float32)
    flat[..., 3] = 0.5
    got = _gl(engine, flat, plan, 32)
    assert np.max(np.abs(got[..., :3] - 0.37)) <= 1e-5
    assert np.all(got[..., 3] == 0.5)
    engine.set_params(params)
    u8 = np.full((9, 10, 3), 77, dtype=np.uint8)
    assert np.all(engine.process(u8, plan=plan) == 77)


def _srgb_reference(img: np.ndarray, plan: Plan, precision: int, rounding: str) -> np.ndarray:
    maxv = np.float32(np.iinfo(img.dtype).max)
    x = img.astype(np.float32) / maxv
    lin = x.copy()
    c = img.shape[2] if img.ndim == 3 else 1
    colour = slice(None) if img.ndim == 2 else slice(0, c - 1 if c in (2, 4) else c)
    lin[..., colour] = srgb_to_linear(x[..., colour])
    out = apply_plan(lin, plan, precision, rounding)
    enc = out.copy()
    enc[..., colour] = linear_to_srgb(out[..., colour])
    return np.round(np.clip(enc, 0, 1) * maxv).astype(img.dtype)


@pytest.mark.parametrize("dtype,precision", [(np.uint8, 16), (np.uint8, 32), (np.uint16, 16), (np.uint16, 32)])
@pytest.mark.parametrize("channels", [None, 2, 3, 4])
def test_integer_srgb_paths(engine, dtype, precision, channels):
    """8/16-bit sRGB in -> same out within 1 code of decode -> reference -> encode -> round. Integer codes
    are decoded through an exact table, so even 16-bit with fp16 intermediates stays within 1 code (with
    GLSL's pow() a 1e-7 decode difference can flip an fp16 rounding and cost ~70 codes at 16 bits)."""
    rng = np.random.default_rng(9)
    maxv = np.iinfo(dtype).max
    shape = (27, 22) if channels is None else (27, 22, channels)
    img = rng.integers(0, maxv + 1, size=shape, dtype=dtype)
    for name in ("comb", "laplacian", "polyblur", "identity"):
        plan = PLANS[name]
        got = _gl(engine, img, plan, precision, space="srgb")
        assert got.dtype == dtype and got.shape == img.shape
        ref = _srgb_reference(img, plan, precision, engine.fp16_rounding)
        diff = np.abs(got.astype(np.int64) - ref.astype(np.int64))
        assert diff.max() <= 1, (name, int(diff.max()))
        if channels in (2, 4):
            assert np.array_equal(got[..., -1], img[..., -1])


def test_designed_process_uses_gpu_stats(engine):
    """process() with noise='auto' measures the frame on the GPU and designs with those numbers."""
    from gpu_deconv.core.stats import band_statistics

    rng = np.random.default_rng(10)
    img = (rng.random((40, 48, 3)) * 0.5 + 0.25).astype(np.float32)
    engine.set_params(DeconvParams(sigma=1.0, noise="auto", precision=32, mode="global"))
    got = engine.process(img)
    ref_stats = band_statistics(img)
    np.testing.assert_allclose(engine.last_stats.band_sums, ref_stats.band_sums, rtol=1e-4)
    d = FilterDesigner().design(engine.params, ref_stats, None)
    np.testing.assert_allclose(engine.design.noise_std, d.noise_std, rtol=1e-4)
    ref = apply_plan(img, engine.design.plan, 32)
    assert np.max(np.abs(got - ref)) <= 1e-5
    assert set(engine.timings) >= {"upload", "gpu", "download", "total"}


def test_set_blur_does_not_compile_or_allocate(engine):
    engine.set_params(DeconvParams(sigma=0.9, noise=0.01, method="laplacian"))
    img = np.random.default_rng(11).random((32, 40, 4), dtype=np.float32)
    engine.process(img)
    n_prog, n_tex = engine.executor.compiles, engine.executor.pool.allocations
    for sigma in (0.7, 1.1, 1.6, 2.2):
        d = engine.set_blur(sigma, noise=0.01, method="laplacian")
        assert d.method == "laplacian"
        engine.process(img)
    assert engine.executor.compiles == n_prog
    assert engine.executor.pool.allocations == n_tex


def test_zz_report(engine):
    """Print the largest errors measured above (pytest -s shows them)."""
    if MEASURED:
        print("\nmax abs error vs reference (fp16 with the driver's rounding emulated):")
        for (name, p), e in sorted(MEASURED.items()):
            print(f"  {name:14s} fp{p}: {e:.3g}")
        print("fp16 vs the reference emulating the other rounding mode:")
        for name, e in sorted(OTHER_ROUNDING.items()):
            print(f"  {name:14s} fp16: {e:.3g}")


@pytest.mark.parametrize("storage", ["native", "emulated"])
def test_fp16_storage_rounding(gl_ctx, storage):
    """Precision-16 stores round like the reference's emulation - natively (RGBA16F targets) and with the
    shader-side rounding used on CPU rasterisers - across normal, subnormal and overflowing values."""
    from gpu_deconv.core.reference import to_float16
    from gpu_deconv.gl.engine import Deconvolver

    with Deconvolver(gl_ctx, DeconvParams(precision=16), fp16_storage=storage) as dec:
        if storage == "emulated" and dec.executor.fp16_rounding != "toward_zero":
            pytest.skip("shader-side rounding emulates toward-zero drivers only")
        rng = np.random.default_rng(12)
        mags = 10.0 ** rng.uniform(-9, 5.5, size=(12, 16, 3))
        img = (mags * rng.choice([-1.0, 1.0], size=mags.shape)).astype(np.float32)
        img[0, :3] = [[6.1e-5, 6.2e-5, 5.9e-8], [-3e-8, 65519.0, 65521.0], [1e9, -1e9, 0.0]]
        one = Plan("fir", (MixtureStage((np.array([1.0]),), [0.0, 1.0]),))  # output = stored H
        with np.errstate(over="ignore"):  # numpy warns while casting 1e9 to float16 (inf, then clamped)
            expect = to_float16(img, dec.fp16_rounding)
        np.testing.assert_array_equal(dec.process(img, plan=one), expect)
        two = Plan("polyblur", (one.stages[0], MixtureStage((np.array([1.0]),), [0.0, 1.0], "previous")))
        np.testing.assert_array_equal(dec.process(img, plan=two), expect)
