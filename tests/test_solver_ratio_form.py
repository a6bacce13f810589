"""The per-frame solve in the target's ratio form (LaplacianFit.solve, clamped_excess) against the textbook
normal equations, on random bases (K = 1..5), blurs, targets, weightings and rounding terms, 1D and 2D."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_deconv.core.blur import Gaussian, Taps
from gpu_deconv.core.comb import Comb
from gpu_deconv.core.fit import ROUNDOFF_VAR, LaplacianFit
from gpu_deconv.core.gaussian_laplacian import GaussianLaplacian
from gpu_deconv.core.targets import Target, clamped_excess, soft_max

EPS = np.finfo(np.float64).eps


def random_basis(rng: np.random.Generator, k: int):
    if k in (2, 3) and rng.random() < 0.5:
        return Comb(k)
    return GaussianLaplacian(np.sort(rng.choice(np.linspace(0.5, 3.0, 26), k, replace=False)))


def random_blur(rng: np.random.Generator):
    if rng.random() < 0.5:  # read-only taps: served from the solver's per-blur cache
        return Gaussian(float(rng.uniform(0.3, 2.0)))
    half = rng.uniform(0.05, 1.0, int(rng.integers(1, 5)))  # writeable taps: tabulated per call
    return Taps(np.concatenate([half, [rng.uniform(1.0, 2.0)], half[::-1]]))


def random_target(rng: np.random.Generator) -> Target:
    kind = "flat" if rng.random() < 0.2 else "natural"
    min_gain = float(rng.choice([1.0, 1.0, 0.0, rng.uniform(0.2, 0.9)]))
    return Target(kind, float(10 ** rng.uniform(-7, -2)), float(10 ** rng.uniform(-5, -1)), min_gain=min_gain)


def textbook_solve(solver: LaplacianFit, blur, target: Target, roundoff_var: float) -> tuple[np.ndarray, float]:
    """``G = Phi^T diag(q w) Phi + roundoff_var M + lambda (tr G / K) I``, ``r = Phi^T (q w (clamp(T) - 1))``, with
    ``T = B S / (B^2 S + noise_var)`` and ``w = B^2 S + noise_var`` (1 if uniform) computed as written;
    ``numpy.linalg.solve``. Returns the coefficients and cond(G)."""
    nodes, phi = solver.nodes, solver.phi
    b = blur.response(nodes.wx) if solver.domain == "1d" else blur.response(nodes.wx) * blur.response(nodes.wy)
    s = 1.0 if target.kind == "flat" else target.level / (nodes.r2 + target.omega0**2)
    w = b * b * s + target.noise_var
    t = b * s / w
    if target.min_gain > 0:
        t = soft_max(t, target.min_gain)
    if solver.weighting == "uniform":
        w = np.ones_like(t)
    g = (phi.T * (nodes.q * w)) @ phi + roundoff_var * solver.roundoff_matrix
    g += solver.ridge * np.trace(g) / g.shape[0] * np.eye(g.shape[0])
    return np.linalg.solve(g, phi.T @ (nodes.q * w * (t - 1.0))), float(np.linalg.cond(g))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("domain", ["1d", "2d"])
def test_ratio_form_solve_equals_textbook_normal_equations(k, domain):
    # Reordered float64 sums move a solution by up to ~cond(G) eps: the tolerance, floored at 1e-12 relative.
    rng = np.random.default_rng(100 * k + (domain == "2d"))
    worst = 0.0
    for _ in range(6):
        basis = random_basis(rng, k)
        for weighting in ("output", "uniform"):
            solver = LaplacianFit(basis, domain, weighting=weighting)
            for _ in range(4):
                blur, target = random_blur(rng), random_target(rng)
                assert target.ratio_form is not None  # this test is about the ratio form's path
                roundoff_var = float(rng.choice([0.0, ROUNDOFF_VAR[16], ROUNDOFF_VAR[32]]))
                got = solver.solve(blur, target, roundoff_var).coefficients
                want, cond = textbook_solve(solver, blur, target, roundoff_var)
                err = np.abs(got - want).max() / np.abs(want).max()
                assert err <= 1e-12 + 8 * cond * EPS, (basis, weighting, blur, target, roundoff_var, err, cond)
                worst = max(worst, err / (1 + cond))
    assert worst > 0  # (the comparison is not vacuous: the two computations differ in round-off)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("domain", ["1d", "2d"])
def test_coefficients_of_random_weights_equal_textbook_normal_equations(k, domain):
    rng = np.random.default_rng(7 * k)
    solver = LaplacianFit(random_basis(rng, k), domain)
    phi, q = solver.phi, solver.nodes.q
    for _ in range(5):
        y = rng.normal(size=q.size)
        w = rng.uniform(0.01, 2.0, q.size)
        roundoff_var = float(rng.choice([0.0, 1e-3]))
        g = (phi.T * (q * w)) @ phi + roundoff_var * solver.roundoff_matrix
        g += solver.ridge * np.trace(g) / k * np.eye(k)
        want = np.linalg.solve(g, phi.T @ (q * w * y))
        got = solver.coefficients(y, w, roundoff_var)
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err <= 1e-12 + 8 * np.linalg.cond(g) * EPS


def test_targets_outside_the_ratio_form_take_the_general_path():
    # max_gain, no noise or no signal: ratio_form is None, and solve still equals the textbook solve
    solver = LaplacianFit(GaussianLaplacian(), "1d")
    for target in (Target("natural", 1e-5, 2e-3, max_gain=3.0), Target("natural", 0.0, 2e-3),
                   Target("natural", 1e-4, 0.0), Target("flat", 0.0)):
        assert target.ratio_form is None
        got = solver.solve(Gaussian(0.9), target, ROUNDOFF_VAR[16]).coefficients
        nodes, phi = solver.nodes, solver.phi
        t_minus_1, w = target.evaluate_for_fit(Gaussian(0.9).response(nodes.wx), nodes.r2)
        g = (phi.T * (nodes.q * w)) @ phi + ROUNDOFF_VAR[16] * solver.roundoff_matrix
        g += solver.ridge * np.trace(g) / 5 * np.eye(5)
        want = np.linalg.solve(g, phi.T @ (nodes.q * w * t_minus_1))
        assert np.abs(got - want).max() <= (1e-12 + 8 * np.linalg.cond(g) * EPS) * np.abs(want).max()


def test_ratio_form_reproduces_the_target_and_weight():
    b = np.linspace(-0.1, 1.0, 23)
    shape = 1.0 / (np.linspace(0.0, 2 * np.pi**2, 23) + 0.02**2)
    for target in (Target("natural", 1e-4, 2e-3), Target("flat", 3e-5)):
        ratio, scale = target.ratio_form
        s0 = shape if target.kind == "natural" else 1.0
        t, _, w = target.evaluate_weighted(b, np.zeros(23), shape)
        np.testing.assert_allclose(w, scale * (b * b * s0 + ratio), rtol=1e-14)
        t_plain = b * target.spectrum(np.zeros(23), shape) / w
        np.testing.assert_allclose(b * s0 / (b * b * s0 + ratio), t_plain, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(t, soft_max(t_plain, 1.0), rtol=1e-15)


@pytest.mark.parametrize("min_gain", [1.0, 0.0, 0.35])
@pytest.mark.parametrize("weighted", [True, False])
def test_clamped_excess_equals_soft_max_of_the_ratio(min_gain, weighted):
    rng = np.random.default_rng(3)
    den = rng.uniform(0.05, 3.0, 600)
    # T = q / den spread over the clamp's corner (|T - min_gain| < 0.2), below it and far above it
    t = np.concatenate([min_gain + rng.uniform(-0.25, 0.25, 400), rng.uniform(-2.0, 50.0, 197),
                        [min_gain, min_gain - 0.2, min_gain + 0.2]])
    q = t * den
    want = (soft_max(q / den, min_gain) if min_gain > 0 else q / den) - 1.0
    scale = den if weighted else 1.0
    got = clamped_excess(q, den, min_gain, weighted)
    # monomials instead of the factored corner: a few ulps of the largest term (|T| up to 50)
    np.testing.assert_allclose(got, want * scale, rtol=0, atol=16 * EPS * np.abs(t).max() * np.max(scale))
    batch = clamped_excess(np.stack([q, q[::-1]]), np.stack([den, den[::-1]]), min_gain, weighted)
    np.testing.assert_array_equal(batch[0], got)  # any leading shape, row by row the same numbers
    np.testing.assert_array_equal(batch[1], clamped_excess(q[::-1], den[::-1], min_gain, weighted))


def test_ratio_tables_cache_only_unchangeable_taps():
    solver = LaplacianFit(Comb(2), "1d")
    target = Target("natural", 1e-4, 2e-3)
    first = solver.solve(Gaussian(0.8), target).coefficients
    assert len(solver._tables) == 1
    solver.solve(Gaussian(0.8), Target("natural", 1e-3, 5e-3))  # same blur and spectrum shape: one entry
    solver.solve(Gaussian(0.8), Target("flat", 1e-3))  # another shape: another entry
    assert len(solver._tables) == 2
    blur = Taps([1.0, 2.0, 1.0])
    before = solver.solve(blur, target).coefficients
    blur.taps[:] = [0.0, 1.0, 0.0]  # writeable taps may change under the solver: never cached
    after = solver.solve(blur, target).coefficients
    assert np.abs(after - before).max() > 0.1 * np.abs(before).max() and len(solver._tables) == 2
    np.testing.assert_array_equal(after, LaplacianFit(Comb(2), "1d").solve(Taps([0.0, 1.0, 0.0]), target).coefficients)
    np.testing.assert_array_equal(solver.solve(Gaussian(0.8), target).coefficients, first)
    for sigma in np.linspace(0.3, 3.0, 100):  # the cache stays bounded
        solver.solve(Gaussian(float(sigma)), target)
    assert len(solver._tables) <= 64
