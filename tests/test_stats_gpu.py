"""GPU band statistics (gpu_deconv.gl.stats_gpu) vs the NumPy definition (gpu_deconv.core.stats.band_statistics)."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.colour import decode_lut
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.stats import band_statistics


def _gpu_stats(engine, image: np.ndarray):
    from gpu_deconv.gl.executor import Layout

    layout = Layout.for_channels(1 if image.ndim == 2 else image.shape[2])
    with engine._guard:
        src = engine.transfer.upload(image, layout, "f4")
        return engine.gpu_stats.measure(src, layout)


def _assert_close(got, ref, rtol=1e-4):
    np.testing.assert_array_equal(got.block_counts, ref.block_counts)
    np.testing.assert_allclose(got.band_sums, ref.band_sums, rtol=rtol, atol=1e-30)
    # tile sums: relative to the largest tile sum (tiles with ~0 energy have no meaningful relative error)
    scale = max(float(np.abs(ref.hh_block_sums).max()), 1e-30)
    assert np.max(np.abs(got.hh_block_sums - ref.hh_block_sums)) <= rtol * scale
    nz = ref.hh_block_sums > 1e-3 * scale
    np.testing.assert_allclose(got.hh_block_sums[nz], ref.hh_block_sums[nz], rtol=rtol)


@pytest.mark.parametrize("shape", [(37, 53, 4), (40, 33), (33, 40, 3), (29, 31, 2), (1, 1, 4), (1, 20), (20, 1, 3),
                                   (3, 2, 3), (16, 16), (17, 47, 1)])
def test_gpu_stats_match_numpy(engine, shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.random(shape, dtype=np.float32)
    _assert_close(_gpu_stats(engine, img), band_statistics(img))


def test_gpu_stats_natural_like_image(engine):
    """Smooth content plus weak noise (tiny high bands next to large low ones) keeps 1e-4 relative."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:90, 0:120].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 11.0)
    img = np.stack([base, base * 0.8, base * 0.6], axis=2) + rng.normal(0, 0.003, (90, 120, 3))
    img = img.astype(np.float32)
    _assert_close(_gpu_stats(engine, img), band_statistics(img))


def test_gpu_stats_1080p(engine):
    img = np.random.default_rng(4).random((1080, 1920, 4), dtype=np.float32)
    _assert_close(_gpu_stats(engine, img), band_statistics(img))


def test_process_measures_the_linear_image(engine):
    """For sRGB integers the statistics describe the decoded (linear) image, alpha excluded."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(48, 64, 4), dtype=np.uint8)
    engine.set_params(DeconvParams(sigma=0.8, noise="auto", mode="global"))
    engine.process(img)
    lin = decode_lut(8)[img[..., :3]]
    _assert_close(engine.last_stats, band_statistics(lin))


def test_stats_latency_one_steers_the_next_frame(gl_ctx):
    """stats_latency=1: frame n is designed with frame n-1's statistics (frame 0 with its own)."""
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(6)
    quiet = (0.5 + rng.normal(0, 0.002, (40, 48, 3))).astype(np.float32)
    noisy = (0.5 + rng.normal(0, 0.05, (40, 48, 3))).astype(np.float32)
    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto", mode="global"), stats_latency=1) as dec:
        dec.process(quiet)
        n0 = dec.design.noise_std
        dec.process(noisy)  # designed with the quiet frame's statistics
        assert dec.design.noise_std == pytest.approx(n0)
        _assert_close(dec.last_stats, band_statistics(quiet))
        dec.process(noisy)  # now with the noisy frame's
        assert dec.design.noise_std > 5 * n0
        _assert_close(dec.last_stats, band_statistics(noisy))


def test_gpu_stats_carry_the_channel_count(gl_ctx):
    """The noise estimator's degrees of freedom depend on the channel count: gray must not read as RGB."""
    from gpu_deconv.core.noise import noise_from_stats
    from gpu_deconv.gl.engine import Deconvolver

    rng = np.random.default_rng(11)
    for shape, channels in (((96, 128), 1), ((96, 128, 3), 3), ((96, 128, 4), 3)):
        x = (0.5 + rng.normal(0, 0.01, shape)).astype(np.float32)
        with Deconvolver(ctx=gl_ctx, params=DeconvParams(sigma=1.0, noise="auto", mode="global")) as d:
            d.process(x)
            st = d.last_stats
        assert st.channels == channels
        assert noise_from_stats(st) == pytest.approx(noise_from_stats(band_statistics(x)), rel=1e-4)
