"""Temporal smoothing of per-frame statistics (gpu_deconv.core.temporal) and its use by the engine."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.noise import noise_from_stats
from gpu_deconv.core.stats import band_statistics
from gpu_deconv.core.temporal import TemporalSmoother


def _scene(seed: int, shape=(96, 128, 3)) -> np.ndarray:
    """A blurred textured scene: flat enough in places that the noise estimate reads the noise."""
    from imagegen import gaussian_blur, textured_image

    return gaussian_blur(textured_image(shape[:2], shape[2], seed=seed), 1.5)


def _noisy(clean: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    return (clean + noise * rng.standard_normal(clean.shape)).astype(np.float32)


def test_still_scene_estimates_spread_less_and_stay_unbiased():
    rng = np.random.default_rng(0)
    clean = _scene(1)
    raw, smooth = [], []
    sm = TemporalSmoother(time_constant=8)
    for _ in range(40):
        st = band_statistics(_noisy(clean, 0.01, rng))
        raw.append(noise_from_stats(st))
        smooth.append(noise_from_stats(sm.update(st)))
    raw_a, smooth_a = np.array(raw[5:]), np.array(smooth[5:])
    assert sm.cuts == 1  # only the first frame started a scene
    assert smooth_a.std() < 0.5 * raw_a.std()
    # the percentile correction knows the average holds more frames: no upward creep after the reset
    assert abs(smooth_a.mean() / 0.01 - 1) < 0.05 and abs(raw_a.mean() / 0.01 - 1) < 0.05
    assert abs(smooth_a.mean() / raw_a.mean() - 1) < 0.02
    assert abs(np.mean(smooth[1:5]) / raw_a.mean() - 1) < 0.03


def test_cut_restarts_the_average():
    rng = np.random.default_rng(1)
    sm = TemporalSmoother()
    a, b = _scene(2), _scene(3) * 0.25  # another scene, a quarter of the contrast
    for _ in range(10):
        sm.update(band_statistics(_noisy(a, 0.005, rng)))
    st = band_statistics(_noisy(b, 0.02, rng))
    assert sm.is_cut(st)
    out = sm.update(st)
    assert sm.cuts == 2 and out is st and out.frames == 1.0
    assert noise_from_stats(out) == pytest.approx(noise_from_stats(st))


def test_size_change_and_reset_restart():
    rng = np.random.default_rng(2)
    sm = TemporalSmoother()
    sm.update(band_statistics(_noisy(_scene(4), 0.01, rng)))
    assert sm.is_cut(band_statistics(_noisy(_scene(4, (64, 64, 3)), 0.01, rng)))
    same = band_statistics(_noisy(_scene(4), 0.01, rng))
    assert not sm.is_cut(same)
    sm.reset()
    assert sm.is_cut(same)


@pytest.mark.parametrize("kw", [{"time_constant": 0.5}, {"cut_ratio": 1.0}, {"time_constant": float("nan")}])
def test_bad_settings(kw):
    with pytest.raises(ValueError):
        TemporalSmoother(**kw)


def test_engine_applies_the_smoother(gl_ctx):
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(3)
    clean = _scene(5)
    params = DeconvParams(sigma=1.0, noise="auto", method="laplacian")
    spreads = {}
    for tau in (None, 8.0):
        eng = Deconvolver(gl_ctx, params, stats_latency=1, temporal=None if tau is None else TemporalSmoother(tau))
        try:
            noises = []
            for _ in range(16):
                eng.process(_noisy(clean, 0.01, rng))
                noises.append(eng.design.noise_std)
            spreads[tau] = np.std(noises[4:]) / np.mean(noises[4:])
            if tau is not None:
                assert eng.last_stats.frames > 4  # the design saw the smoothed statistics
        finally:
            eng.release()
    assert spreads[8.0] < 0.6 * spreads[None]
