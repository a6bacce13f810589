"""The tabulated per-frame solver agrees with the plain normal-equation solve it replaced, to float64
round-off; the batched solves agree with one-at-a-time solves; the caches cannot serve stale data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gpu_deconv.core.blur import Binomial, Box, Gaussian, Taps
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.fit import ROUNDOFF_VAR, LaplacianFit
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.targets import Target, evaluate_many_for_fit, soft_max, wiener_natural

EPS = np.finfo(np.float64).eps
BASES = {"comb2": Comb(2), "comb3": Comb(3), "laplacian5": GaussianLaplacian()}


def plain_soft_max(t: np.ndarray, floor: float, eps: float = 0.2) -> np.ndarray:
    """The clamp as its docstring defines it: ``floor + eps v s((v + 1) / 2)`` on the band, else max."""
    v = (t - floor) / eps
    x = 0.5 * (v + 1.0)
    smooth = floor + eps * v * (x**3 * (x * (6.0 * x - 15.0) + 10.0))
    return np.where(np.abs(v) < 1.0, smooth, np.maximum(t, floor))


def plain_solve(solver: LaplacianFit, blur, target: Target, roundoff_var: float) -> tuple[np.ndarray, float]:
    """The textbook solve the tables replaced: ``G = Phi^T diag(q w) Phi``, ``r = Phi^T (q w (T - 1))``,
    ridge ``lambda tr(G) / K``, ``numpy.linalg.solve``. Returns the coefficients and cond(G)."""
    nodes = solver.nodes
    b = blur.response(nodes.wx) if solver.domain == "1d" else blur.response(nodes.wx) * blur.response(nodes.wy)
    s = 1.0 if target.kind == "flat" else target.level / (nodes.r2 + target.omega0**2)
    w = b * b * s + target.noise_var
    t = b * s / w
    if target.min_gain > 0:
        t = plain_soft_max(t, target.min_gain)
    if target.max_gain is not None:
        t = -plain_soft_max(-t, -target.max_gain)
    if solver.weighting == "uniform":
        w = np.ones_like(t)
    phi = solver.phi
    g = (phi.T * (nodes.q * w)) @ phi + roundoff_var * solver.roundoff_matrix
    g += solver.ridge * np.trace(g) / g.shape[0] * np.eye(g.shape[0])
    r = phi.T @ (nodes.q * w * (t - 1.0))
    return np.linalg.solve(g, r), float(np.linalg.cond(g))


GRID = list(itertools.product(
    ["comb2", "comb3", "laplacian5"], ["1d", "2d"], ["output", "uniform"],
    [Gaussian(0.3), Gaussian(0.8), Gaussian(1.7), Box(2.5), Binomial(4)],
))
TARGETS = [wiener_natural(1e-6, 2e-3), wiener_natural(1e-4, 1e-4), wiener_natural(0.1**2, 5e-2),
           Target("natural", 1e-4, 2e-3, min_gain=0.0), Target("flat", 2.5e-5), Target("natural", 1e-6, 2e-3,
                                                                                      max_gain=3.0)]


@pytest.mark.parametrize("basis_name, domain, weighting, blur", GRID)
def test_tabulated_solve_equals_plain_normal_equations(basis_name, domain, weighting, blur):
    # a reordered float64 sum moves the solution by up to ~cond(G) eps: that is the tolerance, with a floor
    # of 1e-12 relative (met outright by the well-conditioned comb fits)
    solver = LaplacianFit(BASES[basis_name], domain, weighting=weighting)
    for target, roundoff_var in itertools.product(TARGETS, (0.0, ROUNDOFF_VAR[16])):
        got = solver.solve(blur, target, roundoff_var).coefficients
        want, cond = plain_solve(solver, blur, target, roundoff_var)
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err <= 1e-12 + 8 * cond * EPS, (target, roundoff_var, err, cond)


def test_comb_fits_match_to_1e12():
    # the comb Gram matrices are well conditioned (cond < 1000): no slack from conditioning needed
    for basis, domain, sigma in itertools.product((Comb(2), Comb(3)), ("1d", "2d"), (0.3, 0.6, 0.9)):
        solver = LaplacianFit(basis, domain)
        for noise, level in itertools.product((1e-3, 1e-2, 0.1), (1e-4, 2e-3, 5e-2)):
            target = wiener_natural(noise**2, level)
            got = solver.solve(Gaussian(sigma), target, ROUNDOFF_VAR[16]).coefficients
            want, cond = plain_solve(solver, Gaussian(sigma), target, ROUNDOFF_VAR[16])
            assert cond < 1000
            assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


@pytest.mark.parametrize("floor", [0.0, 1.0, 0.3])
def test_mask_free_soft_max_equals_its_definition(floor):
    t = np.concatenate([np.linspace(floor - 1, floor + 1, 4001), [floor - 0.2, floor + 0.2, floor, -50.0, 80.0]])
    got = soft_max(t, floor)
    np.testing.assert_allclose(got, plain_soft_max(t, floor), rtol=0, atol=4 * EPS * max(1.0, abs(floor)))
    outside = np.abs(t - floor) >= 0.2
    np.testing.assert_array_equal(got[outside], floor + np.maximum(t[outside] - floor, 0.0))
    assert got[t == floor][0] == floor
    assert floor - 0.0706 * 0.2 <= got.min() <= floor - 0.0704 * 0.2  # the documented dip
    batch = np.stack([t, t[::-1]])  # any shape
    np.testing.assert_array_equal(soft_max(batch, floor), np.stack([got, got[::-1]]))


@pytest.mark.parametrize("weighting", ["output", "uniform"])
@pytest.mark.parametrize("domain", ["1d", "2d"])
@pytest.mark.parametrize("basis_name", ["comb2", "laplacian5"])
def test_solve_many_rows_equal_single_solves(basis_name, domain, weighting):
    solver = LaplacianFit(BASES[basis_name], domain, weighting=weighting)
    levels = np.geomspace(1e-5, 1e-1, 32)  # an adaptive table over the local level
    targets = [wiener_natural(1e-4, a) for a in levels]
    blur = Gaussian(1.0 if basis_name == "laplacian5" else 0.6)
    table = solver.solve_many(blur, targets, ROUNDOFF_VAR[16])
    assert table.shape == (32, solver.basis.size)
    for row, target in zip(table, targets, strict=True):
        want = solver.solve(blur, target, ROUNDOFF_VAR[16]).coefficients
        g, _ = solver.normal_equations(*target.evaluate_for_fit(solver.blur_at_nodes(blur), solver.nodes.r2),
                                       ROUNDOFF_VAR[16])
        assert np.abs(row - want).max() <= (1e-12 + 8 * np.linalg.cond(g) * EPS) * np.abs(want).max()
    # a sigma map: one blur per row
    sigmas = np.linspace(0.5, 1.2, 8)
    per_blur = solver.solve_many([Gaussian(s) for s in sigmas], [wiener_natural(1e-4, 2e-3)] * 8)
    for row, s in zip(per_blur, sigmas, strict=True):
        want = solver.solve(Gaussian(s), wiener_natural(1e-4, 2e-3)).coefficients
        np.testing.assert_allclose(row, want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


def test_normal_equations_are_symmetric_and_solved_by_coefficients():
    solver = LaplacianFit(GaussianLaplacian(), "1d")
    y, w = wiener_natural(1e-4, 2e-3).evaluate_for_fit(solver.blur_at_nodes(Gaussian(1.0)), solver.nodes.r2)
    g, r = solver.normal_equations(y, w, ROUNDOFF_VAR[32])
    np.testing.assert_array_equal(g, g.T)
    c = solver.coefficients(y, w, ROUNDOFF_VAR[32])
    np.testing.assert_allclose(g @ c, r, rtol=1e-9, atol=1e-12 * np.abs(r).max())
    batch_g, batch_r = solver.normal_equations(np.stack([y, y]), np.stack([w, w]), ROUNDOFF_VAR[32])
    # (a matrix product sums in another order than a vector product: round-off only)
    np.testing.assert_allclose(batch_g[1], g, rtol=1e-14, atol=0)
    np.testing.assert_allclose(batch_r[0], r, rtol=1e-14, atol=1e-14 * np.abs(r).max())


def test_evaluate_many_rows_equal_single_targets():
    solver = LaplacianFit(Comb(2), "2d")
    b = solver.blur_at_nodes(Gaussian(0.7))
    targets = [wiener_natural(n**2, a) for n, a in ((0.01, 1e-3), (0.001, 5e-2), (0.0, 2e-3))]
    y, w = evaluate_many_for_fit(targets, b, solver.nodes.r2)
    for m, target in enumerate(targets):
        ym, wm = target.evaluate_for_fit(b, solver.nodes.r2)
        np.testing.assert_array_equal(y[m], ym)
        np.testing.assert_array_equal(w[m], wm)
        t, _, w_plain = target.evaluate_weighted(b, solver.nodes.r2)
        np.testing.assert_allclose(1.0 + ym, t, rtol=0, atol=4 * EPS * np.abs(t).max())
        np.testing.assert_array_equal(wm, w_plain)
    with pytest.raises(ValueError, match="share kind"):
        evaluate_many_for_fit([targets[0], Target("flat", 1e-4)], b, solver.nodes.r2)
    with pytest.raises(ValueError, match="at least one"):
        evaluate_many_for_fit([], b, solver.nodes.r2)
    with pytest.raises(ValueError, match="2 blurs for 3 targets"):
        solver.solve_many([Gaussian(0.5), Gaussian(0.6)], targets)


def test_blur_cache_serves_only_unchangeable_taps():
    solver = LaplacianFit(Comb(2), "1d")
    first = solver.blur_at_nodes(Gaussian(0.8))
    assert solver.blur_at_nodes(Gaussian(0.8)) is first  # read-only taps shared per sigma: cached
    assert not first.flags.writeable
    np.testing.assert_allclose(first, Gaussian(0.8).response(solver.nodes.wx), rtol=0, atol=1e-15)
    blur = Taps([1.0, 2.0, 1.0])
    before = solver.blur_at_nodes(blur).copy()
    blur.taps[:] = [0.0, 1.0, 0.0]  # writeable taps may change under the solver: never cached
    np.testing.assert_allclose(solver.blur_at_nodes(blur), 1.0)
    assert not np.allclose(before, 1.0)
    for i in range(200):  # the cache stays bounded
        solver.blur_at_nodes(Gaussian(0.1 + i * 0.01))
    assert len(solver._blur_cache) <= 64


def test_singular_normal_equations_raise():
    solver = LaplacianFit(Comb(3), "1d", ridge=0.0)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        solver.coefficients(np.zeros(solver.nodes.size), np.zeros(solver.nodes.size))


def test_symmetric_half_is_the_same_quadrature():
    from gpu_deconv.core.quadrature import gauss_legendre, symmetric_half, uniform_grid

    blur, basis = Gaussian(1.3), GaussianLaplacian()
    symmetric = (lambda wx, wy: blur.response(wx) * blur.response(wy) / (wx**2 + wy**2 + 0.01),
                 lambda wx, wy: basis.bands_2d(wx, wy)[:, 2] ** 2)
    for full in (gauss_legendre("2d", 24), uniform_grid("2d", 16)):
        half = symmetric_half(full)
        n = full.axis.size
        assert half.size == n * (n + 1) // 2 and np.all(half.wy <= half.wx)
        assert half.q.sum() == pytest.approx(1.0, abs=1e-14)
        for f in symmetric:
            assert half.q @ f(half.wx, half.wy) == pytest.approx(full.q @ f(full.wx, full.wy), rel=1e-13)
        np.testing.assert_array_equal(half.wx, full.axis[half.ix])
        np.testing.assert_array_equal(half.wy, full.axis[half.iy])
    with pytest.raises(ValueError, match="full 2D tensor"):
        symmetric_half(gauss_legendre("1d", 8))
    assert LaplacianFit(Comb(2), "2d").nodes.size == 300  # the default 24x24 rule, folded


def test_mixture_weights_of_a_coefficient_table():
    basis = GaussianLaplacian()
    table = np.random.default_rng(0).normal(size=(4, 3, basis.size))
    d = basis.mixture_weights(table, 0.5)
    assert d.shape == (4, 3, basis.size + 1)
    np.testing.assert_array_equal(d[2, 1], basis.mixture_weights(table[2, 1], 0.5))
    np.testing.assert_allclose(d.sum(axis=-1), 1.0, rtol=0, atol=1e-12)  # DC gain 1 in every entry
    with pytest.raises(ValueError, match="takes 5 coefficients"):
        basis.mixture_weights(np.zeros((3, 4)))
