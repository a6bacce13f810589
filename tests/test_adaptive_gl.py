"""GL passes of the adaptive filter (gpu_deconv.gl.adaptive) against their NumPy mirror (gpu_deconv.core.adaptive).

Tolerances as the engine tests state them (fp32 <= 1e-5, fp16 <= 4e-3 absolute); on Mesa llvmpipe the
passes are bit-identical to the reference (same taps, order of operations, fp16 rounding toward zero,
``precise`` arithmetic, the table index from the float's bits instead of ``log2``), which
``test_llvmpipe_is_bit_exact`` pins down - on both paths of passes 1-2 (the fragment pair and the fused
compute dispatch; the ``gl`` fixture runs every test on each). The sRGB encode (``pow``) is compared in 8-bit codes.
"""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_support import TOL, adaptive_passes, from_texture, llvmpipe, texture_data

from gpu_deconv.core.adaptive import AdaptiveSolver, apply_adaptive, pseudo_log2, upsample_energy
from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.colour import decode_lut, linear_to_srgb
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian

BASES = {"laplacian": GaussianLaplacian(), "comb2": Comb(2), "comb3": Comb(3)}


@pytest.fixture(scope="module", params=["fragment", "fused"])
def gl(gl_ctx, request):
    """Every test runs on both paths of passes 1-2: the fragment pair and the fused compute dispatch."""
    yield from adaptive_passes(gl_ctx, request.param)


def _run(gl, image, table, *, precision=16, limiter=None, encode=False, level_map=False, origin=(0, 0),
         decode=False):
    from gpu_deconv.gl.executor import TEXTURE_UNITS, DrawTarget, Layout, Region
    from gpu_deconv.gl.state import GLStateGuard

    ctx, ex, ad = gl
    channels = 1 if image.ndim == 2 else image.shape[2]
    layout = Layout.for_channels(channels)
    data, comps = texture_data(image)
    h, w = image.shape[:2]
    src = ctx.texture((w, h), comps, data.tobytes(), dtype="f1" if decode else "f4")
    ox, oy = origin
    out = ctx.texture((w + ox, h + oy), 4 if level_map else comps, dtype="f1" if encode else "f4")
    fb = ctx.framebuffer([out])
    try:
        with GLStateGuard(ctx, ex.raw, TEXTURE_UNITS):
            base = ex.decode(Region(src, w, h), layout) if decode else Region(src, w, h)
            ad.prepare(base, layout, table.basis, table.bands, precision=precision)
            ad.apply(table, DrawTarget(fb, (ox, oy, w, h)), encode_srgb=encode, limiter=limiter,
                     level_map=level_map)
            stats = ad.stats()
        dt = np.uint8 if encode else np.float32
        got = np.frombuffer(out.read(), dt).reshape(h + oy, w + ox, out.components)[oy:, ox:]
    finally:
        fb.release()
        out.release()
        src.release()
    return (got if level_map else from_texture(got, channels)), stats


def _table(basis, sigma=1.0, noise=0.01):
    return AdaptiveSolver(basis).solve(Gaussian(sigma), noise * noise)


SHAPES = [(37, 53, 3), (40, 33), (33, 40, 4), (29, 31, 2), (1, 1, 3), (1, 20), (20, 1, 3), (3, 2), (2, 1, 4),
          (17, 16, 3)]


@pytest.mark.parametrize("precision", [16, 32])
@pytest.mark.parametrize("shape", SHAPES)
def test_laplacian_matches_reference(gl, shape, precision):
    rng = np.random.default_rng(sum(shape) + precision)
    img = rng.random(shape, dtype=np.float32)
    table = _table(BASES["laplacian"])
    got, stats = _run(gl, img, table, precision=precision)
    ref = apply_adaptive(img, table, precision=precision)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[precision])
    np.testing.assert_allclose(stats.energy_sums, ref.stats.energy_sums, rtol=1e-5)
    np.testing.assert_allclose(stats.hh_sums, ref.stats.hh_sums, rtol=1e-5)
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref.output)


@pytest.mark.parametrize("basis", ["comb2", "comb3"])
@pytest.mark.parametrize("shape", [(37, 53, 3), (40, 33), (1, 9, 3), (6, 5, 2)])
def test_comb_matches_reference(gl, basis, shape):
    img = np.random.default_rng(len(shape)).random(shape, dtype=np.float32)
    table = _table(BASES[basis], sigma=0.6, noise=0.005)
    got, _ = _run(gl, img, table)
    ref = apply_adaptive(img, table).output
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[16])
    if llvmpipe(gl[0]):
        np.testing.assert_array_equal(got, ref)


def test_llvmpipe_is_bit_exact(gl):
    """A natural-like noisy image at every precision, with the limiter: identical floats on llvmpipe
    (other drivers: within the tolerances)."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:70, 0:90].astype(np.float32)
    base = 0.4 + 0.3 * np.sin(x / 5.0) * np.cos(y / 9.0) * (x > 40)
    img = (np.stack([base, 0.8 * base, 0.6 * base], -1) + rng.normal(0, 0.01, (70, 90, 3))).astype(np.float32)
    table = _table(BASES["laplacian"])
    for precision in (16, 32):
        for limiter in (None, 0.0, 0.5):
            got, _ = _run(gl, img, table, precision=precision, limiter=limiter)
            ref = apply_adaptive(img, table, precision=precision, limiter=limiter).output
            np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[precision])
            if llvmpipe(gl[0]):
                np.testing.assert_array_equal(got, ref)


def test_native_fp16_targets_match(gl_ctx):
    """RGBA16F targets (the GPU path) instead of the emulated rounding: same result where the driver
    rounds toward zero (llvmpipe), within the fp16 tolerance anywhere (the reference then rounds to
    nearest like most GPUs)."""
    from gpu_deconv.gl.adaptive import AdaptiveExecutor
    from gpu_deconv.gl.executor import PlanExecutor

    ex = PlanExecutor(gl_ctx, fp16_storage="native")
    ad = AdaptiveExecutor(ex)
    try:
        img = np.random.default_rng(8).random((30, 41, 3), dtype=np.float32)
        table = _table(BASES["laplacian"])
        got, _ = _run((gl_ctx, ex, ad), img, table, precision=16)
        ref = apply_adaptive(img, table, precision=16, fp16_rounding=ex.fp16_rounding).output
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[16])
        if ex.fp16_rounding == "toward_zero":
            np.testing.assert_array_equal(got, ref)
    finally:
        ad.release()
        ex.release()


def test_srgb_encode_and_decode(gl):
    """8-bit sRGB in (decoded through the exact table), 8-bit sRGB out: within one code of the reference."""
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (24, 35, 4), dtype=np.uint8)
    table = _table(BASES["laplacian"], 0.8, 0.005)
    got, _ = _run(gl, codes, table, encode=True, decode=True)
    lin = decode_lut(8)[codes]
    lin[..., 3] = codes[..., 3] / np.float32(255)
    ref = apply_adaptive(lin, table).output
    want = np.clip(np.round(linear_to_srgb(ref[..., :3]) * 255), 0, 255)
    assert np.abs(got[..., :3].astype(int) - want).max() <= 1
    np.testing.assert_array_equal(got[..., 3], codes[..., 3])  # alpha bit-exact


def test_viewport_offset_and_level_map(gl):
    img = np.random.default_rng(6).random((19, 26, 3), dtype=np.float32)
    table = _table(BASES["laplacian"])
    got, _ = _run(gl, img, table, origin=(5, 3))
    np.testing.assert_allclose(got, apply_adaptive(img, table).output, rtol=0, atol=TOL[16])
    lm, _ = _run(gl, img, table, level_map=True)
    ref = apply_adaptive(img, table)
    np.testing.assert_allclose(lm[..., 2], ref.level_ratio, rtol=1e-6, atol=0)
    np.testing.assert_allclose(lm[..., 0], pseudo_log2(ref.level_ratio), rtol=0, atol=1e-6)
    # E itself: the bilinear half-resolution window (cross-check of the upsampling mirror)
    assert upsample_energy(np.ones((10, 13), np.float32), 19, 26).shape == (19, 26)


def test_other_energy_bands_rerun_passes(gl):
    """apply() with a table wanting other energy bands than prepared re-runs passes 2-4 first."""
    from gpu_deconv.gl.executor import TEXTURE_UNITS, DrawTarget, Layout, Region
    from gpu_deconv.gl.state import GLStateGuard

    ctx, ex, ad = gl
    img = np.random.default_rng(9).random((22, 27, 3), dtype=np.float32)
    basis = BASES["laplacian"]
    table = AdaptiveSolver(basis).solve(Gaussian(1.0), 1e-4, bands=(3, 4))
    data, comps = texture_data(img)
    src = ctx.texture((27, 22), comps, data.tobytes(), dtype="f4")
    out = ctx.texture((27, 22), comps, dtype="f4")
    fb = ctx.framebuffer([out])
    try:
        with GLStateGuard(ctx, ex.raw, TEXTURE_UNITS):
            ad.prepare(Region(src, 27, 22), Layout.for_channels(3), basis, (0, 1))
            ad.apply(table, DrawTarget(fb, (0, 0, 27, 22)))
            stats = ad.stats()
        got = np.frombuffer(out.read(), np.float32).reshape(22, 27, 4)[..., :3]
    finally:
        fb.release()
        out.release()
        src.release()
    ref = apply_adaptive(img, table)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[16])
    np.testing.assert_allclose(stats.energy_sums, ref.stats.energy_sums, rtol=1e-5)


def test_frames_reuse_textures_and_programs(gl):
    ctx, ex, ad = gl
    img = np.random.default_rng(1).random((32, 48, 3), dtype=np.float32)
    table = _table(BASES["laplacian"])
    _run(gl, img, table)
    allocs, compiles = ex.pool.allocations, ex.compiles
    table2 = _table(BASES["laplacian"], sigma=1.1, noise=0.012)  # same shape: new uniforms and table only
    for t in (table, table2, table):
        _run(gl, img, t)
    assert ex.pool.allocations == allocs and ex.compiles == compiles


def test_prepare_validates(gl):
    from gpu_deconv.gl.executor import DrawTarget, Layout, Region

    ctx, ex, ad = gl
    tex = ctx.texture((8, 8), 4, dtype="f4")
    try:
        with pytest.raises(ValueError, match="precision"):
            ad.prepare(Region(tex, 8, 8), Layout.for_channels(3), BASES["laplacian"], (0, 1), precision=8)
        with pytest.raises(ValueError, match="grid"):
            ad.prepare(Region(tex, 8, 8), Layout.for_channels(3), BASES["laplacian"], (0, 1), roi=(3, 0, 8, 8))
        ad.prepare(Region(tex, 8, 8), Layout.for_channels(3), BASES["laplacian"], (0, 1))
        with pytest.raises(ValueError, match="basis"):
            ad.apply(_table(BASES["comb2"]), DrawTarget(ex.pool.fbo(("ad_d",)), (0, 0, 8, 8)))
    finally:
        tex.release()


def test_unhalved_emulated_storage_matches(gl):
    """Drivers without packHalf2x16 store the emulated fp16 bands one per float component: same values."""
    ctx, ex, ad = gl
    img = np.random.default_rng(13).random((23, 31, 3), dtype=np.float32)
    table = _table(BASES["laplacian"])
    ad._packing = False
    try:
        got, stats = _run(gl, img, table)
    finally:
        ad._packing = True
    ref = apply_adaptive(img, table)
    np.testing.assert_allclose(got, ref.output, rtol=0, atol=TOL[16])
    np.testing.assert_allclose(stats.hh_sums, ref.stats.hh_sums, rtol=1e-5)
    if llvmpipe(ctx):
        np.testing.assert_array_equal(got, ref.output)
