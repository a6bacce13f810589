"""Noise model, noise estimation and spectrum-level estimation against synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest
from imagegen import gaussian_blur, power_law_field, textured_image

from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.noise import HH_CORRELATION, NoiseModel, estimate_noise, percentile_bias, quantization_variance
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.spectrum import estimate_level
from gpu_deconv.core.stats import band_statistics


def test_noise_model_variance():
    assert NoiseModel(0.01).variance == pytest.approx(1e-4)
    assert NoiseModel(0.01, bits=8).variance == pytest.approx(1e-4 + (1 / 255) ** 2 / 12)
    assert quantization_variance(16) == pytest.approx((1 / 65535) ** 2 / 12)
    assert quantization_variance(None) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        NoiseModel(-0.1)


@pytest.mark.parametrize("pixels", [1, 4, 64, 256, 1024, 65536])
@pytest.mark.parametrize("quantile", [0.1, 0.5])
def test_percentile_bias_is_the_chi_square_quantile(pixels, quantile):
    # the written-out quantile against scipy's (imported here, in the test, not at start-up)
    from scipy.special import gammaincinv

    nu = max(pixels * 3 / HH_CORRELATION, 1.0)
    expected = 2.0 * gammaincinv(nu / 2.0, quantile) / nu
    assert percentile_bias(pixels, 3, quantile) == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_estimate_noise_on_pure_noise_is_unbiased(channels):
    rng = np.random.default_rng(channels)
    x = (0.5 + rng.normal(0, 0.01, (384, 512, channels))).astype(np.float32)
    if channels == 4:
        x[..., 3] = 1.0  # alpha is ignored
    assert estimate_noise(x) == pytest.approx(0.01, rel=0.03)


# (blur sigma, noise levels) where a textured, blurred image must give the noise within 15 %; at sigma 0.5
# and noise <= 0.005 the synthetic texture's own diagonal energy reads as noise (documented bias).
@pytest.mark.parametrize(
    "sigma, noises", [(0.5, (0.01, 0.02, 0.05)), (0.7, (0.005, 0.01, 0.02, 0.05)),
                      (1.0, (0.002, 0.005, 0.01, 0.02, 0.05)), (1.5, (0.002, 0.005, 0.01, 0.05))]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_noise_on_textured_images_within_15_percent(sigma, noises, seed):
    rng = np.random.default_rng(100 + seed)
    y = gaussian_blur(textured_image((256, 256), 3, seed), sigma)
    for n in noises:
        est = estimate_noise(y + rng.normal(0, n, y.shape).astype(np.float32))
        assert est == pytest.approx(n, rel=0.15), (sigma, n, est)


@pytest.mark.parametrize("level", [1e-4, 1e-3, 1e-2])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("noise", [0.001, 0.01])
def test_spectrum_level_recovered_on_matching_field(level, sigma, noise):
    rng = np.random.default_rng(7)
    f = power_law_field((384, 384), level, seed=3)[:, :, None] + 0.5
    y = gaussian_blur(f, sigma) + rng.normal(0, noise, f.shape).astype(np.float32)
    est = estimate_level(band_statistics(y), Gaussian(sigma), noise**2, calibrated=False)
    assert est == pytest.approx(level, rel=0.1)


def test_pure_noise_has_no_signal_and_designs_the_identity():
    rng = np.random.default_rng(9)
    y = (0.5 + rng.normal(0, 0.02, (256, 256, 3))).astype(np.float32)
    st = band_statistics(y)
    assert estimate_level(st, Gaussian(1.0), 0.02**2) < 1e-5
    d = FilterDesigner().design(DeconvParams(sigma=1.0, noise="auto", method="laplacian"), st)
    assert d.result.peak_gain < 1.15  # (a full-strength sigma-1 filter peaks near 3)


def test_band_statistics_tiles_and_energies():
    x = np.zeros((40, 50, 3), np.float32)
    st = band_statistics(x)
    assert st.hh_block_sums.shape == (3, 4) and st.block_counts.sum() == 40 * 50
    assert st.block_counts[-1, -1] == 8 * 2 and st.channels == 3
    np.testing.assert_array_equal(st.band_energies, 0.0)
