"""The locally adaptive filter's maths and NumPy passes (gpu_deconv.core.adaptive)."""

from __future__ import annotations

import numpy as np
import pytest
from imagegen import gaussian_blur, power_law_field, psnr, textured_image

import gpu_deconv.core.adaptive as ad
from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.fit import LaplacianFit
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.noise import estimate_noise
from gpu_deconv.core.spectrum import LEVEL_CALIBRATION
from gpu_deconv.core.targets import Target


@pytest.fixture(scope="module")
def solver():
    return ad.AdaptiveSolver(GaussianLaplacian())


def test_pseudo_log2_is_exact_at_powers_of_two_monotone_and_close_to_log2():
    p = np.exp2(np.arange(-30, 31)).astype(np.float32)
    np.testing.assert_array_equal(ad.pseudo_log2(p), np.arange(-30, 31, dtype=np.float32))
    x = np.geomspace(1e-6, 1e6, 20001).astype(np.float32)
    v = ad.pseudo_log2(x)
    assert np.all(np.diff(v) >= 0)
    err = np.log2(x.astype(np.float64)) - v
    assert err.min() >= -1e-6 and err.max() <= 0.0861
    assert ad.pseudo_log2(np.float32([0.0]))[0] <= -126  # zero: far below the table, no NaN


@pytest.mark.parametrize("basis", [GaussianLaplacian(), Comb(2), Comb(3)])
@pytest.mark.parametrize("sigma, noise", [(0.5, 0.003), (1.0, 0.01), (1.5, 0.03)])
def test_batched_table_equals_the_per_level_weighted_fit(basis, sigma, noise, monkeypatch):
    """The affine-in-A normal equations reproduce LaplacianFit's output-weighted fit of the unclamped
    Wiener target at every table row (no ridge on either side, so the comparison is exact maths)."""
    monkeypatch.setattr(ad, "BAND_ROUNDOFF_VAR", 0.0)
    blur, nv = Gaussian(sigma), noise * noise
    table = ad.AdaptiveSolver(basis).solve(blur, nv)
    fit = LaplacianFit(basis)
    for row in (0, 8, 16, 24, 31):
        level = nv * 2.0 ** (ad.TABLE_START + row)
        ref = fit.solve(blur, Target("natural", nv, level, min_gain=0.0)).coefficients
        # compare responses (the basis is nearly collinear, coefficients alone are ill-conditioned)
        w = np.linspace(0, np.pi, 33)
        wy, wx = np.meshgrid(w, w, indexing="ij")
        bands = basis.bands_2d(wx, wy)
        np.testing.assert_allclose(bands @ table.coefficients[row].astype(np.float64), bands @ ref,
                                   atol=2e-4 * max(1.0, np.abs(bands @ ref).max()))


def test_table_attenuates_at_low_level_and_restores_at_high_level(solver):
    blur, nv = Gaussian(1.0), 0.01**2
    table = solver.solve(blur, nv)
    w = np.linspace(0, np.pi, 33)
    wy, wx = np.meshgrid(w, w, indexing="ij")
    low = table.response(nv * 2.0**ad.TABLE_START, wx, wy)
    high = table.response(nv * 2.0 ** (ad.TABLE_START + ad.TABLE_SIZE - 1), wx, wy)
    assert low[0, 0] == pytest.approx(1.0, abs=1e-9) and high[0, 0] == pytest.approx(1.0, abs=1e-9)  # DC kept
    assert low[-1, -1] < 0.2 and low.max() < 1.05  # weak signal: a lowpass, never a boost
    b = blur.response2d(wx, wy)
    mid = (slice(4, 12), slice(4, 12))  # where 1/B is moderate the strong-signal filter inverts the blur
    np.testing.assert_allclose(high[mid] * b[mid], 1.0, atol=0.2)  # (5 bands fit 1/B to ~10 %)
    assert high[11, 11] > 2.0
    # the response grows with the level at mid frequencies
    gains = [table.response(nv * 2.0**v, np.array(1.5), np.array(1.5)) for v in range(-10, 22, 4)]
    assert np.all(np.diff(gains) > -1e-9)


def test_energy_bands_follow_the_noise_share():
    m = np.array([1e-4, 1e-3, 1e-3, 1e-3, 1e-3])
    n = np.array([0.04, 0.24, 0.035, 0.01, 0.004])
    assert ad.energy_bands(m, n, 1e-12) == (0, 1)
    assert ad.energy_bands(m, n, 1.0) == (3, 4)  # pure noise: the coarsest pair
    a, b = ad.energy_bands(m, n, 1e-4)
    assert b == a + 1 and 0 < a < 3


def test_lookup_interpolates_linearly_in_pseudo_log_and_clamps(solver):
    table = solver.solve(Gaussian(0.8), 1e-4)
    rows = 2.0 ** (ad.TABLE_START + np.arange(ad.TABLE_SIZE))
    np.testing.assert_array_equal(table.lookup(rows.astype(np.float32)), table.coefficients)
    mid = table.lookup(np.float32([1.5 * rows[3]]))[0]  # plog2 of 1.5 * 2^n is n + 0.5
    np.testing.assert_allclose(mid, 0.5 * (table.coefficients[3] + table.coefficients[4]), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(table.lookup(np.float32([0.0, 1e-30]))[0], table.coefficients[0])
    np.testing.assert_array_equal(table.lookup(np.float32([1e30]))[0], table.coefficients[-1])


def test_solve_validates(solver):
    with pytest.raises(ValueError, match="noise variance"):
        solver.solve(Gaussian(1.0), 0.0)
    with pytest.raises(ValueError, match="energy bands"):
        solver.solve(Gaussian(1.0), 1e-4, bands=(2, 2))
    with pytest.raises(ValueError, match=">= 2 bands"):
        ad.AdaptiveSolver(GaussianLaplacian((0.5,)))


def test_constant_image_stays_constant_and_alpha_is_exact(solver):
    table = solver.solve(Gaussian(1.0), 1e-4)
    img = np.full((21, 34, 4), 0.375, np.float32)
    img[..., 3] = np.random.default_rng(0).random((21, 34), dtype=np.float32)
    out = ad.apply_adaptive(img, table).output
    np.testing.assert_allclose(out[..., :3], 0.375, rtol=1e-5)  # float32 taps sum to 1 within ~1e-7
    np.testing.assert_array_equal(out[..., 3], img[..., 3])


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1, 3), (2, 3, 2), (5, 4, 4)])
def test_tiny_images_follow_the_mirror_rule(solver, shape):
    """A mirrored image (period 2n) gives the mirrored output: the boundary rule is the reference's."""
    table = solver.solve(Gaussian(0.7), 1e-4)
    img = np.random.default_rng(sum(shape)).random(shape, dtype=np.float32)
    out = ad.apply_adaptive(img, table).output
    assert out.shape == img.shape and np.all(np.isfinite(out))
    flipped = ad.apply_adaptive(img[::-1, ::-1], table).output
    # the half-resolution grid starts at pixel 0, so mirroring is exact only for even sizes
    if shape[0] % 2 == 0 and shape[1] % 2 == 0:
        np.testing.assert_allclose(flipped[::-1, ::-1], out, atol=1e-5)


def test_noise_estimate_is_the_global_estimator(solver):
    """The adaptive passes' hh band is the diagonal band of core.noise: same estimate (fp32 storage)."""
    rng = np.random.default_rng(3)
    y = gaussian_blur(textured_image((128, 160), 3, 1), 1.0) + rng.normal(0, 0.01, (128, 160, 3)).astype(np.float32)
    table = solver.solve(Gaussian(1.0), 1e-4)
    got = ad.apply_adaptive(y, table, precision=32).stats.noise_std()
    assert got == pytest.approx(estimate_noise(y), rel=1e-4)
    got16 = ad.apply_adaptive(y, table, precision=16).stats.noise_std()
    assert got16 == pytest.approx(estimate_noise(y), rel=2e-3)


@pytest.mark.parametrize("level", [1e-3, 1e-2])
@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_level_recovered_on_matching_field(solver, level, sigma):
    """On a field that *is* the model (1/|w|^2 spectrum, white noise) the frame-average level from the
    adaptive passes' energies, uncalibrated, is the true level."""
    rng = np.random.default_rng(11)
    noise = 0.005
    f = power_law_field((256, 256), level, seed=5)[:, :, None] + 0.5
    y = gaussian_blur(f, sigma) + rng.normal(0, noise, f.shape).astype(np.float32)
    table = solver.solve(Gaussian(sigma), noise**2)
    got = ad.apply_adaptive(y, table).stats.level(table) / LEVEL_CALIBRATION
    assert got == pytest.approx(level, rel=0.15)


def test_adaptive_beats_input_on_a_noisy_textured_image(solver):
    rng = np.random.default_rng(5)
    truth = textured_image((128, 128), 3, 2)
    y = gaussian_blur(truth, 1.0) + rng.normal(0, 0.01, truth.shape).astype(np.float32)
    out = ad.apply_adaptive(y, solver.solve(Gaussian(1.0), 1e-4)).output
    assert psnr(out, truth) > psnr(y, truth) + 1.0


def test_limiter_soft_clamps_to_the_neighbourhood():
    x = np.zeros((5, 5, 1), np.float32)
    x[:, 3:] = 1.0  # an edge: neighbourhood ranges are [0, 1] next to it, [0, 0] / [1, 1] away from it
    out = x.copy()
    out[2, 2] = 1.4   # overshoot at the edge (range [0, 1])
    out[2, 3] = 0.95  # inside the range: untouched
    out[2, 0] = -0.2  # undershoot in a flat area (range [0, 0]): clamped hard
    lim = ad.limit_overshoot(out, x, 0.25)
    assert lim[2, 3, 0] == pytest.approx(0.95)
    assert lim[2, 0, 0] == 0.0
    # o = 0.4 above hi = 1 with m = 0.25: hi + o m / (m + o)
    assert lim[2, 2, 0] == pytest.approx(1.0 + 0.4 * 0.25 / 0.65)
    assert np.all(ad.limit_overshoot(out, x, 0.0) <= 1.0)
    with pytest.raises(ValueError, match="margin"):
        ad.limit_overshoot(out, x, -1.0)


def test_noise_variance_follows_the_design_rule():
    from gpu_deconv.core.design import NOISE_FLOOR
    from gpu_deconv.core.noise import quantization_variance

    q8 = quantization_variance(8)
    assert ad.noise_variance(0.01, None) == pytest.approx(1e-4)
    assert ad.noise_variance(0.01, 8) == pytest.approx(1e-4 + q8)
    assert ad.noise_variance(None, 8, measured=1e-4) == pytest.approx(q8)  # measured noise below quantization
    assert ad.noise_variance(0.0, None) == pytest.approx(NOISE_FLOOR**2)
    with pytest.raises(ValueError, match="measured"):
        ad.noise_variance(None, None)


def test_deconvolve_with_noise_auto_measures_then_solves(solver):
    rng = np.random.default_rng(12)
    truth = textured_image((96, 112), 3, 4)
    y = gaussian_blur(truth, 1.2) + rng.normal(0, 0.02, truth.shape).astype(np.float32)
    blur = Gaussian(1.2)
    given, t_given = ad.deconvolve(y, blur, 0.02, solver=solver)
    auto, t_auto = ad.deconvolve(y, blur, None, solver=solver)
    assert t_auto.noise_var == pytest.approx(given.stats.noise_std() ** 2)
    assert t_auto.noise_var == pytest.approx(0.02**2, rel=0.3)
    assert t_given.bands == t_auto.bands == solver.solve(blur, 0.02**2).bands
    # noise 0.02 wants other energy bands than the provisional noise: the frame was prepared twice
    assert solver.solve(blur, ad.noise_variance(ad.PROVISIONAL_NOISE, None)).bands != t_auto.bands
    np.testing.assert_array_equal(auto.output, ad.apply_adaptive(y, t_auto).output)
    assert psnr(auto.output, truth) > psnr(y, truth) + 1.0
    with pytest.raises(ValueError, match="energy bands"):
        ad.finish(ad.prepare(y, solver.basis, (0, 1)), t_auto)
