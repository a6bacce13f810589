"""Smoke tests of benchmarks/quality.py's building blocks (the full benchmark is never run here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench_support import loaded_benchmark

from gpu_deconv.core.blur import Gaussian


@pytest.fixture(scope="module")
def quality():
    pytest.importorskip("skimage")
    with loaded_benchmark("quality.py", "bench_quality") as mod:
        yield mod


def _tiny(rng: np.random.Generator, shape=(40, 48, 3)) -> np.ndarray:
    return rng.random(shape).astype(np.float32)


def test_fft_identity_returns_input(quality):
    x = _tiny(np.random.default_rng(0))
    out = quality.fft_apply(x, lambda wx, wy: np.ones(np.broadcast(wx, wy).shape))
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_fft_matches_separable_mirror_convolution(quality):
    # FFT of the mirror-extended image == direct convolution with the mirror boundary (a blur's response)
    x = _tiny(np.random.default_rng(1), (37, 41))
    blur = Gaussian(1.3)
    out = quality.fft_apply(x, blur.response2d)
    np.testing.assert_allclose(out, quality.blur_image(x, 1.3), atol=2e-6)


def test_psnr_ignores_border(quality):
    rng = np.random.default_rng(2)
    truth = _tiny(rng, (64, 64))
    out = truth.copy()
    b = quality.BORDER
    out[:b] = 5.0
    out[:, -b:] = -3.0
    assert math.isinf(quality.psnr(truth, out))
    out[b, b] += 0.1  # first interior pixel counts
    interior = (64 - 2 * b) ** 2
    assert quality.psnr(truth, out) == pytest.approx(10 * math.log10(interior / 0.01), rel=1e-4)


def test_quantize8_roundtrip(quality):
    x = _tiny(np.random.default_rng(3), (8, 8))
    q = quality.quantize8(x)
    np.testing.assert_array_equal(quality.quantize8(q), q)
    assert np.abs(q - x).max() < 0.01


def test_one_case_row_has_all_methods(quality):
    backend = quality.Backend(prefer_gl=False)  # the reference mirror: fast and GL-free
    clean = quality.load_image("coins", 64)
    row = quality.run_case(backend, "coins", 1.2, 0.01, True, clean=clean, do_ssim=False)
    assert set(row.psnr) == set(quality.METHODS)
    for m in quality.METHODS:
        if m.startswith("comb"):  # 2-level comb refuses sigma 1.2: n/a
            assert math.isnan(row.psnr[m]) and row.info[m].startswith("n/a")
        else:
            assert math.isfinite(row.psnr[m]), m
    assert row.psnr["fft-target"] > row.psnr["input"]
    goals = quality.check_goals([row])
    assert len(goals) == 6 and all(isinstance(ok, bool) for _, ok, _ in goals)
