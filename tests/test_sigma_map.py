"""Sigma maps (gpu_deconv.core.sigma_map): interpolation, the radial lens model and its fit, blind maps from
tiles, user maps with their one-line errors, and the per-pixel application reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_blur_estimation import blur, discs

from gpu_deconv.core import blur_estimation as be
from gpu_deconv.core import sigma_map as sm
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import Plan
from gpu_deconv.core.reference import apply_plan
from gpu_deconv.core.stats import band_statistics


# ------------------------------------------------------------------------------------------ the map
def test_per_pixel_interpolates_cell_centres():
    m = sm.SigmaMap(np.array([[0.0, 1.0], [2.0, 3.0]]), 4, 4)
    p = m.per_pixel()
    assert p.shape == (4, 4) and p.dtype == np.float32
    # pixel centres 0.5..3.5 map to cell coordinates -0.25, 0.25, 0.75, 1.25 -> clamped, then linear
    np.testing.assert_allclose(p[0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(p[:, 0], [0.0, 0.5, 1.5, 2.0])
    np.testing.assert_allclose(sm.SigmaMap(np.full((1, 1), 0.7), 5, 9).per_pixel(), 0.7)


@pytest.mark.parametrize(("values", "match"), [
    (np.array([[np.nan, 1.0]]), "non-finite"),
    (np.array([[-0.1, 1.0]]), ">= 0"),
    (np.array([[5.0]]), "<= 4"),
    (np.zeros((0, 3)), "non-empty"),
    (np.zeros(3), "2D"),
])
def test_sigma_map_rejects_bad_values(values, match):
    with pytest.raises(ValueError, match=match):
        sm.SigmaMap(values, 10, 10)


def test_radial_model_and_center_corner():
    h, w = 90, 160
    m = sm.radial_from_center_corner(h, w, 0.5, 1.5)
    p = m.per_pixel()
    r = sm.normalised_radius(h, w)
    np.testing.assert_allclose(p[1:-1, 1:-1], (0.5 + 1.0 * r * r)[1:-1, 1:-1], atol=2e-3)
    np.testing.assert_allclose(p, 0.5 + 1.0 * r * r, atol=2.0 / 128)  # the outer half cell is clamped
    assert p[h // 2, w // 2] == pytest.approx(0.5, abs=2e-3)
    with pytest.raises(ValueError, match="sigma corner"):
        sm.radial_from_center_corner(h, w, 0.5, 9.0)
    with pytest.raises(ValueError, match="sigma center"):
        sm.radial_from_center_corner(h, w, float("nan"), 1.0)


def test_fit_radial_ignores_soft_outliers():
    rng = np.random.default_rng(0)
    r = rng.random(200)
    s = 0.6 + 0.9 * r * r + 0.02 * rng.standard_normal(200)
    s[:20] += 1.0  # a blurred background reads much softer
    s0, s2 = sm.fit_radial(s, np.ones(200), r)
    assert s0 == pytest.approx(0.6, abs=0.03) and s2 == pytest.approx(0.9, abs=0.06)
    with pytest.raises(ValueError, match="at least 3 cells"):
        sm.fit_radial(s[:2], np.ones(2), r[:2])


# ------------------------------------------------------------------------------------------ blind maps
@pytest.fixture(scope="module")
def radial_scene():
    """Sharp discs blurred with sigma 0.6 at the centre growing to 1.6 in the corners (per-pixel blend of
    uniformly blurred frames, 0.05 px apart)."""
    x = discs(size=256, n=120, seed=4)
    truth = sm.radial_from_center_corner(256, 256, 0.6, 1.6)
    nodes = tuple(np.round(np.arange(0.6, 1.6001, 0.05), 2))
    w = sm.node_weights(truth.per_pixel(), nodes)
    y = sum(w[..., k] * blur(x, s) for k, s in enumerate(nodes))
    return x, y.astype(np.float32), truth


def test_blind_map_follows_a_radial_blur(radial_scene):
    _, y, truth = radial_scene
    te = be.tile_energies(y)
    tm = sm.map_from_tiles(te, 256, 256, noise_std=0.0)
    assert tm.map.values.shape == (4, 4)
    ok = np.isfinite(tm.cell_sigma)
    assert ok.sum() >= 12
    centre, corners = tm.map.values[1:3, 1:3].mean(), tm.map.values[[0, 0, -1, -1], [0, -1, 0, -1]].mean()
    assert corners - centre > 0.25  # the blind map sees the corners softer (truth at the cell centres: 0.5)
    raw = np.sqrt(tm.map.per_pixel() ** 2 + be.INTRINSIC_SIGMA ** 2)  # synthetic edges: no intrinsic blur
    assert np.median(np.abs(raw - truth.per_pixel())) < 0.15
    dec = sm.map_from_tiles(te, 256, 256, noise_std=0.0, deconvolve=True).map.values
    assert np.all(dec <= tm.map.values + 1e-9)  # the deconvolution map is the cautious one
    rad = sm.map_from_tiles(te, 256, 256, noise_std=0.0, radial=True)
    s0, s2 = rad.radial
    raw0, raw1 = math.hypot(s0, be.INTRINSIC_SIGMA), math.hypot(s0 + s2, be.INTRINSIC_SIGMA)
    assert raw0 == pytest.approx(0.6, abs=0.15) and raw1 == pytest.approx(1.6, abs=0.25)


def test_blind_map_without_edges_is_the_identity():
    te = be.tile_energies(np.full((128, 96), 0.3, np.float32))
    tm = sm.map_from_tiles(te, 128, 96)
    assert np.all(tm.map.values == 0.0) and not np.isfinite(tm.cell_sigma).any()
    with pytest.raises(ValueError, match="multiple of the statistics block"):
        sm.map_from_tiles(te, 128, 96, cell=40)


# ------------------------------------------------------------------------------------------ user maps
def test_map_from_array_accepts_and_resamples():
    m = sm.map_from_array(np.array([[0.5, 1.0], [1.0, 1.5]], dtype=np.float32), 1080, 1920)
    assert m.per_pixel().shape == (1080, 1920)
    m = sm.map_from_array(np.full((9, 16, 1), 0.8), 1080, 1920)  # one trailing channel, right aspect
    assert m.values.shape == (9, 16)
    assert sm.map_from_array(np.full((3, 3), 7, dtype=np.uint8) // 7, 10, 10).range == (1.0, 1.0)


@pytest.mark.parametrize(("array", "match"), [
    (np.zeros((16, 9)), "aspect"),  # transposed for a 1920x1080 frame
    (np.zeros((9, 16, 3)), "one channel"),
    (np.array([["a"]]), "numbers"),
    (np.full((9, 16), np.nan), "non-finite"),
    (np.full((9, 16), -1.0), ">= 0"),
])
def test_map_from_array_errors(array, match):
    with pytest.raises(ValueError, match=match) as e:
        sm.map_from_array(array, 1080, 1920)
    assert "\n" not in str(e.value)


def test_load_sigma_map_files(tmp_path):
    from gpu_deconv.errors import ImageError
    from gpu_deconv.io.images import write_image

    npy = tmp_path / "map.npy"
    np.save(npy, np.full((9, 16), 1.25, np.float32))
    assert sm.load_sigma_map(npy, 1080, 1920).range == (1.25, 1.25)
    png = tmp_path / "map.png"
    write_image(png, np.full((9, 16), 255, np.uint8))  # 8-bit codes map onto 0..4 px
    assert sm.load_sigma_map(png, 1080, 1920).range == pytest.approx((4.0, 4.0))
    bad = tmp_path / "neg.npy"
    np.save(bad, np.full((9, 16), -2.0, np.float32))
    with pytest.raises(ImageError, match=r"neg\.npy: sigma map values must be >= 0"):
        sm.load_sigma_map(bad, 1080, 1920)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    with pytest.raises(ImageError, match=r"notes\.png") as e:
        sm.load_sigma_map(text, 1080, 1920)
    assert "\n" not in str(e.value)
    rgb = tmp_path / "rgb.png"
    write_image(rgb, np.zeros((9, 16, 3), np.uint8))
    with pytest.raises(ImageError, match=r"rgb\.png: sigma map must be one channel"):
        sm.load_sigma_map(rgb, 1080, 1920)


# ------------------------------------------------------------------------------------------ application
def test_node_weights():
    w = sm.node_weights(np.array([0.0, 0.25, 0.5, 0.75, 2.0]), (0.0, 0.5, 1.0))
    np.testing.assert_allclose(w.sum(axis=-1), 1.0)
    np.testing.assert_allclose(w[1], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(w[4], [0.0, 0.0, 1.0])  # clamped to the last node
    assert sm.default_nodes(sm.SigmaMap(np.array([[0.43, 1.21]]), 4, 4)) == (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
                                                                                1.1, 1.2, 1.3)
    with pytest.raises(ValueError, match="increasing"):
        sm.node_weights(np.zeros(2), (1.0, 0.5))


def _plan_for(y, bits=None):
    designer = FilterDesigner()
    stats = band_statistics(y)

    def plan_for(s: float) -> Plan:
        if s < 0.1:
            return Plan("identity")
        return designer.design(DeconvParams(sigma=s, noise="auto", method="laplacian"), stats, bits).plan

    return plan_for


def test_constant_map_equals_the_global_filter(radial_scene):
    _, y, _ = radial_scene
    plan_for = _plan_for(y)
    m = sm.SigmaMap(np.full((3, 3), 0.9), 256, 256)
    np.testing.assert_allclose(sm.apply_sigma_map(y, m, plan_for), apply_plan(y, plan_for(0.9)), atol=2e-6)


def test_blend_equals_interpolated_coefficients():
    # the module docstring's identity: blending node outputs == one filter with per-pixel interpolated c
    x = discs(size=64, n=30, seed=5)
    y = blur(x, 1.0)
    designer = FilterDesigner()
    stats = band_statistics(y)
    fits = {s: designer.design(DeconvParams(sigma=s, noise=0.003, method="laplacian", precision=32), stats)
            for s in (0.8, 1.2)}
    sig = np.linspace(0.8, 1.2, 64, dtype=np.float32)[None, :].repeat(64, axis=0)
    m = sm.SigmaMap(sig, 64, 64)  # one cell per pixel: per_pixel() returns sig itself
    out = sm.apply_sigma_map(y, m, lambda s: fits[round(s, 1)].plan, nodes=(0.8, 1.2))
    t = (sig - 0.8) / 0.4
    c = (1 - t)[..., None] * fits[0.8].result.coefficients + t[..., None] * fits[1.2].result.coefficients
    basis = fits[0.8].result.basis
    lows = [y] + [blur_taps(y, g) for g in basis.lowpass_taps]
    bands = np.stack([lows[k] - lows[k + 1] for k in range(basis.size)], axis=-1)
    direct = y + np.sum(c * bands, axis=-1)
    # float32 round-off of the mixture form (large, alternating weights) is the only difference: bound it by
    # the same comparison for one node's own filter
    float32_noise = max(np.abs(apply_plan(y, f.plan) - (y + np.sum(f.result.coefficients * bands, axis=-1))).max()
                        for f in fits.values())
    assert float32_noise < 1e-4
    np.testing.assert_allclose(out, direct, atol=2 * float32_noise + 1e-6)


def blur_taps(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    from gpu_deconv.core.reference import convolve_axis

    return convolve_axis(convolve_axis(x[:, :, None], taps, axis=1), taps, axis=0)[:, :, 0]


def test_true_map_beats_any_global_sigma(radial_scene):
    x, y, truth = radial_scene
    plan_for = _plan_for(y)

    def err(out):
        d = (out - x)[16:-16, 16:-16]
        return float(np.mean(d * d))

    mapped = err(sm.apply_sigma_map(y, truth, plan_for))
    best_global = min(err(apply_plan(y, plan_for(s))) for s in (0.6, 0.8, 1.0, 1.2, 1.4, 1.6))
    assert 10 * math.log10(best_global / mapped) > 1.0  # >1 dB: the point of a sigma map
    with pytest.raises(ValueError, match="sigma map is for"):
        sm.apply_sigma_map(y[:-1], truth, plan_for)
