"""The synthetic test chart, the blur/noise degradation and PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import correlate1d
from scipy.special import erf

from gpu_deconv.core import chart
from gpu_deconv.core.colour import linear_to_srgb


@pytest.fixture(scope="module")
def ref() -> np.ndarray:
    return chart.test_chart()


def test_chart_shape_range_and_determinism(ref):
    assert ref.shape == (512, 768, 3) and ref.dtype == np.float32
    assert ref.min() >= 0.01 and ref.max() <= 0.95
    np.testing.assert_array_equal(ref, chart.test_chart())
    gray = chart.test_chart(color=False)
    assert gray.shape == (512, 768) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, ref @ np.array([0.2126, 0.7152, 0.0722], np.float32), atol=1e-6)
    other = chart.test_chart(seed=1)
    assert not np.array_equal(other, ref)  # the texture follows the seed ...
    same = np.abs(other - ref).max(axis=2) == 0
    assert same.mean() > 0.8  # ... and nothing else does


@pytest.mark.parametrize("size", [(64, 96), (300, 301), (720, 1280)])
def test_chart_other_sizes(size):
    c = chart.test_chart(size)
    assert c.shape == (*size, 3)
    assert np.isfinite(c).all() and c.std() > 0.1


def test_chart_is_sharp_and_antialiased(ref):
    y = ref @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    dx = np.abs(np.diff(y, axis=1))
    assert dx.max() > 0.7  # full-contrast steps between neighbouring pixels
    # 1-px lines (pitch 2) are present: strong alternation along a row of the vertical bars
    row = y[170, 512:760]
    alternations = np.sum(np.abs(np.diff(row)) > 0.6)
    assert alternations >= 8
    # The slanted edge is anti-aliased: intermediate values along it, not just two levels
    patch = y[8:128, 512:632]
    mid = (patch > 0.1) & (patch < 0.75)
    assert 50 < mid.sum() < 1000
    # Supersampling makes the star's edge values the true coverage: symmetric around the mean level
    assert 0.3 < np.mean(y[8:248, 8:248]) < 0.6


def test_text_mask():
    m = chart.text_mask("AB", 2)
    assert m.shape == (14, 22) and m.dtype == bool
    assert m.any()
    assert chart.text_mask("a").shape == chart.text_mask("A").shape
    np.testing.assert_array_equal(chart.text_mask("~"), chart.text_mask("?"))


def test_gaussian_taps_formula():
    for sigma in (0.3, 0.7, 1.0, 1.6, 3.0):
        t = chart.gaussian_taps(sigma)
        r = math.ceil(4 * sigma) + 1
        assert t.size == 2 * r + 1
        x = np.arange(-r, r + 1)
        s = sigma * math.sqrt(2)
        expected = 0.5 * (erf((x + 0.5) / s) - erf((x - 0.5) / s))
        np.testing.assert_allclose(t, expected / expected.sum(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(t, t[::-1], atol=0)
    # outside the engine's sigma range the same formula still applies
    assert chart.gaussian_taps(6.0).size == 2 * 25 + 1


def test_blur_matches_independent_convolution(ref):
    sigma = 1.3
    out = chart.blur_and_noise(ref, sigma, 0.0)
    t = chart.gaussian_taps(sigma)
    # scipy 'reflect' = edge pixel repeated, the GPU's mirror rule
    expected = correlate1d(correlate1d(ref.astype(np.float64), t, axis=1, mode="reflect"), t, axis=0, mode="reflect")
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert out.dtype == np.float32 and out.shape == ref.shape


def test_blur_properties():
    flat = np.full((40, 50, 3), 0.3, np.float32)
    np.testing.assert_allclose(chart.blur_and_noise(flat, 2.0, 0.0), flat, atol=1e-6)
    img = chart.test_chart((64, 96), color=False)
    np.testing.assert_array_equal(chart.blur_and_noise(img, 0.0, 0.0), img)
    noisy = chart.blur_and_noise(flat, 0.0, 0.02, seed=3)
    assert abs(float((noisy - flat).std()) - 0.02) < 0.001
    np.testing.assert_array_equal(noisy, chart.blur_and_noise(flat, 0.0, 0.02, seed=3))
    assert not np.array_equal(noisy, chart.blur_and_noise(flat, 0.0, 0.02, seed=4))
    clipped = chart.blur_and_noise(np.zeros((32, 32), np.float32), 1.0, 0.1, clip=True)
    assert clipped.min() >= 0.0
    blurred = chart.blur_and_noise(img, 1.0, 0.0)
    assert np.abs(np.diff(blurred, axis=1)).max() < np.abs(np.diff(img, axis=1)).max()
    with pytest.raises(ValueError):
        chart.blur_and_noise(img, -1.0, 0.0)


def test_psnr(ref):
    assert chart.psnr(ref, ref) == math.inf
    shifted = ref + np.float32(0.01)
    assert chart.psnr(ref, shifted) == pytest.approx(40.0, abs=1e-3)
    worse = chart.psnr(ref, chart.blur_and_noise(ref, 2.0, 0.0))
    better = chart.psnr(ref, chart.blur_and_noise(ref, 0.7, 0.0))
    assert worse < better < 60
    # border pixels are ignored
    damaged = ref.copy()
    damaged[:8] = 0
    assert chart.psnr(ref, damaged, border=16) == math.inf
    assert chart.psnr(ref, damaged, border=0) < 40
    # integer images are sRGB: compared in linear light
    u8 = np.round(np.clip(linear_to_srgb(ref), 0, 1) * 255).astype(np.uint8)
    assert chart.psnr(ref, u8) > 40
    with pytest.raises(ValueError):
        chart.psnr(ref, ref[:-1])
