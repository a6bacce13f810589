"""Math core: blur models, targets, bases, quadrature fits, baselines, design (no GL)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imagegen import gaussian_blur, psnr, textured_image
from scipy.special import erf

from gpu_deconv.core.baselines import (
    design_fir,
    polyblur_coefficients,
    polyblur_response,
    polyblur_stages,
    unsharp_mask,
)
from gpu_deconv.core.blur import Binomial, Box, Gaussian, Taps, cos_response
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.design import FilterDesigner, FrameFormat, auto_method
from gpu_deconv.core.fit import LaplacianFit, solve_dense_reference
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import Plan
from gpu_deconv.core.reference import apply_plan
from gpu_deconv.core.stats import band_statistics
from gpu_deconv.core.targets import Target, wiener_flat, wiener_natural

W = np.linspace(0, np.pi, 33)


# --- blur models -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.1, 0.3, 0.7, 1.0, 2.5, 4.0])
def test_gaussian_taps_are_pixel_integrated_symmetric_and_normalised(sigma):
    g = Gaussian(sigma)
    r = math.ceil(4 * sigma) + 1
    assert g.taps.size == 2 * r + 1
    np.testing.assert_array_equal(g.taps, g.taps[::-1])
    assert abs(g.taps.sum() - 1) < 1e-14
    x = np.arange(-r, r + 1)
    raw = 0.5 * (erf((x + 0.5) / (sigma * math.sqrt(2))) - erf((x - 0.5) / (sigma * math.sqrt(2))))
    np.testing.assert_allclose(g.taps, raw / raw.sum(), rtol=1e-12)


@pytest.mark.parametrize("blur", [Gaussian(0.8), Binomial(2), Binomial(6), Box(3), Box(2.5), Taps([1, 4, 6, 4, 1])])
def test_response_is_the_dtft_of_the_taps(blur):
    n = 256
    padded = np.zeros(n)
    r = blur.radius
    padded[: r + 1] = blur.taps[r:]
    padded[n - r :] = blur.taps[:r]
    fft = np.real(np.fft.fft(padded))
    w = 2 * np.pi * np.arange(n // 2 + 1) / n
    np.testing.assert_allclose(blur.response(w), fft[: n // 2 + 1], atol=1e-13)
    assert blur.response(0.0) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(blur.response2d(W[:, None], W[None, :]), np.outer(blur.response(W), blur.response(W)))


def test_binomial_box_taps():
    np.testing.assert_array_equal(Binomial(2).taps, [0.25, 0.5, 0.25])
    np.testing.assert_allclose(Box(3).taps, [1 / 3] * 3)
    np.testing.assert_allclose(Box(2).taps, [0.25, 0.5, 0.25])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Gaussian(0), "sigma"),
        (lambda: Gaussian(-1), "sigma"),
        (lambda: Gaussian(float("nan")), "finite"),
        (lambda: Gaussian(5), r"0\.1\.\.4 px"),
        (lambda: Binomial(3), "even"),
        (lambda: Box(0.5), "width"),
        (lambda: Taps([1, 2]), "odd"),
        (lambda: Taps([1, 2, 3]), "symmetric"),
        (lambda: Taps([1, -3, 1]), "positive"),
        (lambda: LaplacianFit("gauss"), "unknown basis"),
        (lambda: Comb(4), "2 or 3"),
        (lambda: GaussianLaplacian((0.5, 0.4)), "increase"),
        (lambda: wiener_flat(-1.0), "noise_var"),
        (lambda: DeconvParams(sigma=0), "sigma"),
        (lambda: DeconvParams(sigma=float("nan")), "finite"),
        (lambda: DeconvParams(noise=-0.1), "noise"),
        (lambda: DeconvParams(method="magic"), "method must be one of"),
    ],
)
def test_bad_parameters_raise_value_error_saying_what_is_allowed(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sigma_outside_basis_range_raises():
    fd = FilterDesigner()
    with pytest.raises(ValueError, match="useful range"):
        fd.design(DeconvParams(sigma=2.0, noise=0.01, method="comb", level=1e-3))
    with pytest.raises(ValueError, match="noise='auto' needs"):
        fd.design(DeconvParams(sigma=1.0, noise="auto"))


# --- bases ---------------------------------------------------------------------------------------------------
def test_comb_gram_matrix_is_rational():
    from gpu_deconv.core.quadrature import gauss_legendre

    n = gauss_legendre("1d", 24)
    L = Comb(3).bands_1d(n.wx)
    gram = (L.T * n.q) @ L
    exact = np.array([[3 / 8, 3 / 32, 3 / 128], [3 / 32, 7 / 64, 9 / 256], [3 / 128, 9 / 256, 23 / 512]])
    np.testing.assert_allclose(gram, exact, atol=1e-9)


@pytest.mark.parametrize("basis", [Comb(2), Comb(3), GaussianLaplacian()])
def test_closed_form_lowpass_matches_taps_and_dc_is_one(basis):
    g = basis.lowpass_response(W)
    taps = np.stack([np.ones_like(W)] + [cos_response(t, W) for t in basis.lowpass_taps], axis=-1)
    np.testing.assert_allclose(g, taps, atol=1e-14)
    c = np.random.default_rng(0).normal(size=basis.size) * 5
    assert abs(1 + basis.bands_2d(np.array(0.0), np.array(0.0)) @ c - 1) < 1e-12
    assert abs(1 + basis.bands_1d(np.array(0.0)) @ c - 1) < 1e-12
    # the Gaussian-mixture form applies the same filter
    plan = Plan("x", (basis.stage(c),))
    wy, wx = np.meshgrid(W, W, indexing="ij")
    np.testing.assert_allclose(plan.response(wx, wy), 1 + basis.bands_2d(wx, wy) @ c, atol=2e-5 * np.abs(c).sum())


# --- fits -----------------------------------------------------------------------------------------------------
CASES = [(Comb(2), 0.3, 0.002), (Comb(2), 0.5, 0.005), (Comb(2), 0.9, 0.01), (Comb(3), 0.7, 0.03),
         (Comb(3), 1.5, 0.003), (GaussianLaplacian(), 0.5, 0.005), (GaussianLaplacian(), 1.0, 0.01),
         (GaussianLaplacian(), 1.2, 0.001), (GaussianLaplacian(), 2.0, 0.003)]


@pytest.mark.parametrize("domain", ["1d", "2d"])
@pytest.mark.parametrize("basis, sigma, noise", CASES)
def test_quadrature_matches_dense_integral_and_beats_dense_512(basis, sigma, noise, domain):
    target = wiener_natural(noise**2, 2e-3)
    exact_solver = LaplacianFit(basis, domain, 600 if domain == "1d" else 160)
    exact = exact_solver.solve(Gaussian(sigma), target)
    quad = LaplacianFit(basis, domain).solve(Gaussian(sigma), target)
    scale = np.abs(exact.coefficients).max()
    err = np.abs(quad.coefficients - exact.coefficients).max() / scale
    if not (domain == "1d" and isinstance(basis, GaussianLaplacian)):  # 1D Gaussian fit: ridge-regularised
        assert err <= 1e-3
    # the fit error of the quadrature coefficients, measured exactly, is within 1 % of the optimum
    f = 1 + exact_solver._phi @ quad.coefficients
    achieved = exact_solver.nodes.q @ (exact._w * (f - exact._t) ** 2)
    assert achieved <= exact.excess_error * 1.01 + 1e-15
    dense = solve_dense_reference(basis, Gaussian(sigma), target, n=512 if domain == "1d" else 64, domain=domain)
    dense_err = np.abs(dense.coefficients - exact.coefficients).max() / scale
    if domain == "2d":
        assert err < dense_err / 3  # 576 nodes beat 4096 uniform ones
    else:  # in 1D the integrand is periodic, so a uniform grid is spectrally accurate too: both are tiny
        assert err < max(dense_err, 2e-5)


@pytest.mark.parametrize("weighting", ["output", "uniform"])
def test_closed_form_2x2_equals_general_solve(weighting):
    solver = LaplacianFit(Comb(2), "2d", weighting=weighting)
    blur, target = Gaussian(0.6), wiener_natural(1e-4, 3e-3)
    res = solver.solve(blur, target)
    b = solver.blur_at_nodes(blur)
    t, s = target.evaluate(b, solver.nodes.r2)
    w = solver.nodes.q * (target.weight(b, s) if weighting == "output" else 1.0)
    g = (solver._phi.T * w) @ solver._phi
    c = np.linalg.solve(g, solver._phi.T @ (w * (t - 1)))
    np.testing.assert_allclose(res.coefficients, c, rtol=1e-9)


@pytest.mark.parametrize("basis, lo, hi", [(Comb(2), 0.3, 1.0), (GaussianLaplacian(), 0.5, 2.5)])
def test_coefficients_are_continuous_in_sigma_and_noise(basis, lo, hi):
    solver = LaplacianFit(basis, "2d")
    sig = np.linspace(lo, hi, 141)
    cs = np.array([solver.solve(Gaussian(s), wiener_natural(0.01**2, 2e-3)).coefficients for s in sig])
    steps = np.abs(np.diff(cs, axis=0)).max(axis=1)
    assert steps.max() <= 4 * np.median(steps) + 1e-9, "a jump in c(sigma)"
    noise = np.geomspace(1e-4, 0.2, 141)
    cn = np.array([solver.solve(Gaussian(0.8), wiener_natural(n**2, 2e-3)).coefficients for n in noise])
    steps = np.abs(np.diff(cn, axis=0)).max(axis=1)
    assert steps.max() <= 0.05 * np.abs(cn).max() + 1e-9, "a jump in c(noise)"


@pytest.mark.parametrize("basis", [Comb(2), Comb(3), GaussianLaplacian()])
@pytest.mark.parametrize("kind", ["natural", "flat"])
def test_huge_noise_gives_identity(basis, kind):
    target = Target(kind, noise_var=100.0, level=2e-3)
    res = LaplacianFit(basis, "2d").solve(Gaussian(0.5), target)
    np.testing.assert_allclose(res.coefficients, 0, atol=1e-6)
    assert res.peak_gain == pytest.approx(1.0, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(sigma=st.floats(0.2, 0.95), noise=st.floats(0.0, 0.1), level=st.floats(1e-5, 1e-1))
def test_fit_is_finite_dc_exact_and_never_attenuates_much(sigma, noise, level):
    res = LaplacianFit(Comb(2), "2d").solve(Gaussian(sigma), wiener_natural(noise**2 + 1e-8, level))
    assert np.all(np.isfinite(res.coefficients))
    assert res.response(np.array([0.0]), np.array([0.0]))[0] == pytest.approx(1.0, abs=1e-12)
    assert res.fit_rms >= 0 and res.excess_error <= res.identity_error * (1 + 1e-9)


@pytest.mark.parametrize("method, sigma", [("comb", 0.5), ("laplacian", 1.0), ("auto", 0.8), ("unsharp", 0.8)])
def test_fitted_filter_raises_psnr_of_blurred_noisy_textured_image(method, sigma):
    x = textured_image((192, 192), 3, seed=1)
    rng = np.random.default_rng(2)
    y = (gaussian_blur(x, sigma) + rng.normal(0, 0.005, x.shape)).astype(np.float32)
    design = FilterDesigner().design(DeconvParams(sigma=sigma, noise=0.005, method=method), band_statistics(y))
    out = apply_plan(y, design.plan)
    assert psnr(out, x) > psnr(y, x) + 1.0


# --- result object, baselines, design -------------------------------------------------------------------
def test_fit_result_reports_and_repr():
    res = LaplacianFit(GaussianLaplacian(), "2d").solve(Gaussian(1.0), wiener_natural(1e-4, 2e-3))
    assert res.coefficients.shape == (5,)
    assert res.peak_gain > 1
    assert res.response(np.array([0.0]))[0] == pytest.approx(1.0)
    text = repr(res)
    assert "GaussianLaplacian" in text and "peak_gain" in text and "rms" in text
    np.testing.assert_allclose(res.mixture_weights.sum(), 1.0)


def test_polyblur_is_neumann_series_at_2_4():
    assert polyblur_coefficients(2, 4) == (-1.0, 4.0, -6.0, 4.0)
    blur = Gaussian(0.7)
    b = blur.response(W)
    np.testing.assert_allclose(polyblur_response(blur, 2, 4, W), 4 - 6 * b + 4 * b**2 - b**3)
    plan = Plan("polyblur", polyblur_stages(blur, 2, 4))
    wy, wx = np.meshgrid(W, W, indexing="ij")
    np.testing.assert_allclose(plan.response(wx, wy), polyblur_response(blur, 2, 4, wx, wy), atol=1e-5)


def test_fir_and_unsharp_baselines():
    blur, target = Gaussian(0.8), wiener_natural(1e-4, 2e-3)
    fir = design_fir(blur, target, 21)
    assert fir.taps.size == 21 and fir.taps.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fir.taps, fir.taps[::-1])
    assert fir.response(np.array([1.5]))[0] > 1.2  # it sharpens
    us = unsharp_mask(blur, target, 0.8)
    assert us.amount > 0
    with pytest.raises(ValueError, match="odd"):
        design_fir(blur, target, 20)


def test_auto_method_and_needs_stats():
    assert auto_method(0.3)[0] == "comb"
    assert auto_method(1.0)[0] == "laplacian"
    assert FilterDesigner.needs_stats(DeconvParams(noise=0.01))  # level estimated from the frame
    assert not FilterDesigner.needs_stats(DeconvParams(noise=0.01, level=1e-3))
    assert FilterDesigner.needs_stats(DeconvParams(noise="auto", level=1e-3))
    assert not FilterDesigner.needs_stats(DeconvParams(noise=0.01, method="polyblur"))


def test_quantization_noise_is_added_for_integer_input():
    fd = FilterDesigner()
    p = DeconvParams(sigma=0.8, noise=0.0, level=2e-3)
    d8, dfloat = fd.design(p, frame=FrameFormat(bits=8)), fd.design(p)
    assert d8.noise_var == pytest.approx((1 / 255) ** 2 / 12)
    assert d8.noise_var > dfloat.noise_var


def test_params_json_round_trip(tmp_path):
    p = DeconvParams(sigma=0.7, noise=0.004, method="comb", comb_levels=3, strength=0.8)
    f = tmp_path / "p.json"
    p.save(f)
    assert DeconvParams.load(f) == p
    f.write_text("{not json")
    with pytest.raises(ValueError, match="p.json"):
        DeconvParams.load(f)
    f.write_text('{"sigma": 1, "bogus": 2}')
    with pytest.raises(ValueError, match="bogus"):
        DeconvParams.load(f)
