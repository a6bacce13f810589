"""Blind blur estimation (gpu_deconv.core.blur_estimation): the edge model, the per-tile sums the GPU reduces,
recovery of a known blur on synthetic edge images, the sharp-image rule, anisotropy, per-channel estimates and
the video tracker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpu_deconv.core import blur_estimation as be
from gpu_deconv.core.blur import Gaussian
from gpu_deconv.core.reference import convolve_axis
from gpu_deconv.core.spectrum import band_model
from gpu_deconv.core.stats import band_statistics


def blur(x: np.ndarray, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    """Separable pixel-integrated Gaussian blur (sigma 0 = none) with the mirror boundary."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    x3 = x[:, :, None] if x.ndim == 2 else x
    if sigma_x > 0:
        x3 = convolve_axis(x3, Gaussian(sigma_x).taps, axis=1)
    if sigma_y > 0:
        x3 = convolve_axis(x3, Gaussian(sigma_y).taps, axis=0)
    return x3[:, :, 0] if x.ndim == 2 else x3


def discs(size: int = 192, n: int = 60, seed: int = 0, ss: int = 4) -> np.ndarray:
    """Sharp synthetic scene: overlapping discs of random grey levels, drawn with a pixel-aperture
    (``ss x ss`` supersampled box average) so every edge is what a perfect sensor records."""
    rng = np.random.default_rng(seed)
    c = (np.arange(size * ss) + 0.5) / ss
    yy, xx = np.meshgrid(c, c, indexing="ij")
    img = np.full((size * ss, size * ss), 0.3, dtype=np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(6, size / 5)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.05, 0.9)
    return img.reshape(size, ss, size, ss).mean(axis=(1, 3))


def stripes(theta_deg: float, size: int = 256, period: int = 96, ss: int = 8) -> np.ndarray:
    """Straight edges at ``theta_deg`` (a square wave whose half period, 48 px, keeps the edges' b4 responses
    apart), pixel-aperture anti-aliased."""
    th = math.radians(theta_deg)
    c = (np.arange(size * ss) + 0.5) / ss
    yy, xx = np.meshgrid(c, c, indexing="ij")
    v = (((xx * math.cos(th) + yy * math.sin(th) + 7.3) % period) < period / 2).astype(np.float32)
    return v.reshape(size, ss, size, ss).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return discs()


# ------------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("theta", [15.0, 30.0, 45.0])
@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.2, 2.0])
def test_edge_model_matches_drawn_edges(theta, sigma):
    # the analytic K_j ratios against the band energies of anti-aliased straight edges (interior tiles);
    # the model is the 1D cut across an axis-aligned edge, so the finest band is off by up to 11 % at 45
    # degrees (the 2D band and the pixel-integrated Gaussian are not isotropic there: <= 0.04 px of sigma)
    x = blur(stripes(theta), sigma)
    e = be.tile_energies(x, n_bands=4, structure=False).bands[2:-2, 2:-2].sum(axis=(0, 1))
    k = be.edge_band_gains(sigma, 4)
    np.testing.assert_allclose(e[0] / e[2], k[0] / k[2], rtol=0.12)
    np.testing.assert_allclose(e[1:] / e[2], k[1:] / k[2], rtol=0.03)


def test_band_noise_gains_match_spectrum_and_white_noise():
    np.testing.assert_allclose(be.band_noise_gains(3), band_model(Gaussian(1.0))[1], rtol=1e-3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 512)).astype(np.float32)
    te = be.tile_energies(x, n_bands=4, structure=False)
    measured = te.bands[1:-1, 1:-1].sum(axis=(0, 1)) / te.counts[1:-1, 1:-1].sum()
    for m, g, tol in zip(measured, be.band_noise_gains(4), (0.02, 0.02, 0.05, 0.1), strict=True):
        assert m == pytest.approx(g, rel=tol)  # coarse bands: fewer independent samples


def test_tile_energies_are_the_gpu_statistics_grid(scene):
    # the first three bands and hh are exactly stats.band_statistics' definitions, tile by tile
    x = np.stack([scene, 0.5 * scene, scene ** 2], axis=2)
    te = be.tile_energies(x)
    st = band_statistics(x)
    np.testing.assert_allclose(te.bands.sum(axis=(0, 1)), st.band_sums, rtol=1e-9)  # summation order
    np.testing.assert_allclose(te.hh, st.hh_block_sums, rtol=1e-12)
    np.testing.assert_array_equal(te.counts, st.block_counts)
    grid = np.concatenate([te.bands, te.hh[..., None]], axis=-1).astype(np.float32)  # what the GPU reads back
    g = be.TileEnergies.from_grid(grid, x.shape[1], x.shape[0])
    np.testing.assert_array_equal(g.counts, te.counts)
    np.testing.assert_allclose(g.bands, te.bands, rtol=1e-6)
    with pytest.raises(ValueError, match="grid must be"):
        be.TileEnergies.from_grid(grid[:-1], x.shape[1], x.shape[0])


def test_pooled_sums_tiles_exactly(scene):
    te = be.tile_energies(scene[:-5, :-3])  # partial tiles at the edges
    p = te.pooled(4)
    assert p.block == 64 and p.shape == (-(-te.shape[0] // 4), -(-te.shape[1] // 4))
    np.testing.assert_allclose(p.bands.sum(axis=(0, 1)), te.bands.sum(axis=(0, 1)))
    np.testing.assert_allclose(p.counts.sum(), scene[:-5, :-3].size)
    np.testing.assert_allclose(p.bands[0, 0], te.bands[:4, :4].sum(axis=(0, 1)))


def test_weighted_quantile():
    v = np.array([3.0, 1.0, 2.0])
    assert be.weighted_quantile(v, np.ones(3), 0.5) == pytest.approx(2.0)
    assert be.weighted_quantile(v, np.array([0.0, 1.0, 0.0]), 0.9) == pytest.approx(1.0)
    assert math.isnan(be.weighted_quantile(np.array([]), np.array([]), 0.5))


# ------------------------------------------------------------------------------------------ recovery
@pytest.mark.parametrize("sigma", [0.5, 0.8, 1.2, 2.0])
def test_recovers_the_blur_of_sharp_edges(scene, sigma):
    # sharp synthetic edges have no intrinsic blur: the raw edge quantile reads sigma itself (a low quantile,
    # and at 2 px band 3 of an edge near a tile border spills into the next tile: ~6 % low), and `sigma`
    # removes INTRINSIC_SIGMA in quadrature
    est = be.estimate_blur(be.tile_energies(blur(scene, sigma)), noise_std=0.0)
    assert est.sigma_edges == pytest.approx(sigma, abs=0.05 + 0.05 * sigma)
    assert est.sigma == pytest.approx(be.remove_intrinsic(est.sigma_edges))
    assert est.tiles > 20 and est.confidence > 0.5
    assert est.spread[0] <= est.sigma_edges <= est.spread[1] + 1e-9
    assert est.sigma_sharp_edges <= est.sigma_edges


@pytest.mark.parametrize("noise", [0.003, 0.01])
def test_recovers_the_blur_under_noise_and_8_bits(scene, noise):
    from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear

    rng = np.random.default_rng(1)
    y = blur(scene, 1.0) + noise * rng.standard_normal(scene.shape).astype(np.float32)
    y8 = srgb_to_linear(np.round(np.clip(linear_to_srgb(y), 0, 1) * 255).astype(np.float32) / 255)
    for img, bits in ((y, None), (y8, 8)):
        est = be.estimate_blur(be.tile_energies(img), bits=bits)  # noise estimated from the hh tiles
        assert est.noise_std == pytest.approx(noise, rel=0.25)
        assert est.sigma_edges == pytest.approx(1.0, abs=0.12)


def test_sharp_input_gives_the_identity(scene):
    est = be.estimate_blur(be.tile_energies(scene), noise_std=0.0)
    assert est.sigma_edges < 0.1
    assert est.sigma == 0.0
    assert be.deconvolution_sigma(est) == 0.0


@pytest.mark.parametrize("kind", ["flat", "noise"])
def test_no_edges_gives_the_identity(kind):
    rng = np.random.default_rng(2)
    x = np.full((128, 128), 0.4, np.float32) if kind == "flat" else rng.random((128, 128)).astype(np.float32)
    est = be.estimate_blur(be.tile_energies(x))
    assert est.tiles == 0 and est.confidence == 0.0
    assert est.sigma == 0.0 and be.deconvolution_sigma(est) == 0.0


def test_deconvolution_sigma_rule():
    def est(s: float) -> be.BlurEstimate:
        return be.BlurEstimate(s, s, s, (s, s), 10, 0.5, 0.0)

    d = be.DECONV_SHRINK
    assert be.deconvolution_sigma(est(1.0)) == pytest.approx(math.sqrt(1.0 - d * d))
    assert be.deconvolution_sigma(est(d)) == 0.0
    just_below = math.sqrt(d * d + (be.IDENTITY_BELOW * 0.99) ** 2)
    assert be.deconvolution_sigma(est(just_below)) == 0.0  # a deconvolution sigma below IDENTITY_BELOW
    assert be.deconvolution_sigma(est(0.5), shrink=0.0, identity_below=0.0) == pytest.approx(0.5)
    assert be.remove_intrinsic(float("nan")) == 0.0


def test_anisotropic_blur(scene):
    y = blur(scene, 1.2, 0.5)  # more blur along x
    est = be.estimate_blur(be.tile_energies(y), noise_std=0.0, anisotropic=True)
    along = math.sqrt(est.sigma_x ** 2 + be.INTRINSIC_SIGMA ** 2)  # back to raw edge sigmas
    across = math.sqrt(est.sigma_y ** 2 + be.INTRINSIC_SIGMA ** 2)
    assert along == pytest.approx(1.2, abs=0.15)
    assert across == pytest.approx(0.5, abs=0.15)
    assert min(est.theta, math.pi - est.theta) < math.radians(10)  # the major axis is x
    iso = be.estimate_blur(be.tile_energies(blur(scene, 0.8)), noise_std=0.0, anisotropic=True)
    assert abs(iso.sigma_x - iso.sigma_y) < 0.12
    with pytest.raises(ValueError, match="structure tensor"):
        be.estimate_blur(be.tile_energies(y, structure=False), anisotropic=True)


def test_per_channel_estimates(scene):
    x = np.stack([blur(scene, 0.8), blur(scene, 0.6), blur(scene, 1.3)], axis=2)
    r, g, b = be.estimate_blur_image(x, noise_std=0.0, per_channel=True)
    assert g.sigma_edges < r.sigma_edges < b.sigma_edges
    for e, s in ((r, 0.8), (g, 0.6), (b, 1.3)):
        assert e.sigma_edges == pytest.approx(s, abs=0.1)


def test_tile_energies_validates():
    with pytest.raises(ValueError, match="n_bands"):
        be.tile_energies(np.zeros((32, 32)), n_bands=5)
    with pytest.raises(ValueError, match="block"):
        be.tile_energies(np.zeros((32, 32)), block=0)
    with pytest.raises(ValueError, match="noise_std"):
        be.estimate_blur(be.tile_energies(np.zeros((32, 32))), noise_std=-1.0)


# ------------------------------------------------------------------------------------------ video
def test_tracker_smooths_and_resets_at_cuts(scene):
    rng = np.random.default_rng(3)
    other = discs(seed=7)
    tracker = be.BlurTracker(time_constant=0.5)
    raw, smoothed = [], []
    for f in range(40):
        src, s = (scene, 0.8) if f < 30 else (other, 1.6)
        y = blur(src, s) + 0.01 * rng.standard_normal(src.shape).astype(np.float32)
        te = be.tile_energies(y, structure=False)
        est = be.estimate_blur(te, noise_std=0.01)
        out = tracker.update(est, te, dt=1 / 30)
        raw.append(est.sigma_edges)
        smoothed.append(out.sigma_edges)
        assert tracker.cut == (f in (0, 30))
    raw, smoothed = np.array(raw), np.array(smoothed)
    assert np.std(np.diff(smoothed[10:30])) < 0.5 * np.std(np.diff(raw[10:30]))  # less flicker
    assert smoothed[30] == raw[30]  # the cut restarts from the new scene's own estimate
    assert smoothed[30] == pytest.approx(1.6, abs=0.15)
    m = tracker.smooth_map(np.full((3, 4), 2.0), dt=1 / 30)
    assert m.shape == (3, 4) and np.all(m < 2.0 + 1e-12)


def test_tracker_holds_through_frames_without_edges(scene):
    tracker = be.BlurTracker()
    te = be.tile_energies(blur(scene, 1.0), structure=False)
    first = tracker.update(be.estimate_blur(te, noise_std=0.0), te, 1 / 30)
    dark = be.tile_energies(blur(scene, 1.0) * 1e-4, structure=False)  # same layout, nothing above the noise
    est = be.estimate_blur(dark, noise_std=0.001)
    assert est.tiles == 0
    held = tracker.update(est, dark, 1 / 30)
    assert held.sigma == pytest.approx(first.sigma)
    with pytest.raises(ValueError, match="time_constant"):
        be.BlurTracker(time_constant=-1)


# ------------------------------------------------------------------------------------------ the benchmark
@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("skimage")
    from bench_support import loaded_benchmark

    with loaded_benchmark("blur_estimation.py", "bench_blur_estimation") as mod:
        yield mod


def test_peer_reads_a_blurred_disc(bench):
    # a step blurred by a Gaussian has maximum slope 1 / (sqrt(2 pi) sigma): with c = 1/sqrt(2 pi) and b the
    # two pixel apertures (the drawing's and the pixel-integrated blur's, variance 1/12 each), the
    # Polyblur-style peer must return sigma in every direction of a disc's edge
    from peers import polyblur_estimate as peer

    ss = 4
    c = (np.arange(128 * ss) + 0.5) / ss
    yy, xx = np.meshgrid(c, c, indexing="ij")
    x = ((yy - 64) ** 2 + (xx - 64) ** 2 < 40**2).astype(np.float32).reshape(128, ss, 128, ss).mean(axis=(1, 3))
    for s in (1.0, 2.0):
        sigma, rho, _ = peer.estimate(blur(x, s), c=1 / math.sqrt(2 * math.pi), b=math.sqrt(1 / 6))
        assert sigma == pytest.approx(s, rel=0.07) and rho == pytest.approx(s, rel=0.07)
    sig = np.array([0.8, 1.2, 1.6, 2.4])
    m = np.array([peer.max_gradients(blur(x, s)).normal for s in sig])
    cc, b = peer.calibrate(m, sig)
    assert cc == pytest.approx(1 / math.sqrt(2 * math.pi), abs=0.03) and b < 0.6


def test_band_ratio_route_on_a_power_law_field(bench):
    # a true 1/|w|^2 field blurred by 1 px: the natural-image route (kappa = 1) recovers the blur
    from imagegen import power_law_field

    x = power_law_field((256, 256), 1e-3, seed=3)
    e = band_statistics(blur(x, 1.0)).band_energies
    assert bench.band_ratio_sigma(e, 0.0, kappa=(1.0, 1.0, 1.0)) == pytest.approx(1.0, abs=0.1)


def test_radial_blur_of_a_constant_map_is_the_uniform_blur(bench, scene):
    from gpu_deconv.core.sigma_map import SigmaMap

    out = bench.radial_blur(scene, SigmaMap(np.full((2, 2), 0.8), *scene.shape))
    np.testing.assert_allclose(out, blur(scene, 0.8), atol=1e-6)


def test_benchmark_quick_runs(bench, capsys):
    assert bench.main(["--quick", "--size", "128"]) == 0
    text = capsys.readouterr().out
    for part in ("### Goals", "| edges-3b |", "| polyblur-cal |", "### End to end", "### Spatially varying blur"):
        assert part in text
