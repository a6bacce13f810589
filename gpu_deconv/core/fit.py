"""Weighted least-squares fit of ``1 + sum c_k L_k`` to a target, by quadrature.

Minimises

    E(c) = mean_D  w(w) (1 + sum_k c_k L_k(w) - T(w))^2  +  lambda * (tr G / K) * ||c||^2

over the domain D = [0, pi] (``'1d'``) or [0, pi]^2 (``'2d'``, the true separable 2D responses the
shaders apply; neither basis is exactly isotropic there). The normal equations are

    G c = r,   G = Phi^T diag(q w) Phi (+ ridge),   r = Phi^T (q w (T - 1)),

with ``Phi`` the band responses at the quadrature nodes (fixed per basis and domain, so computed once)
and ``q`` the quadrature weights. Weightings:

* ``'uniform'`` (the seed's): ``w = 1``; G is then frame-independent and the solve is one product with
  a precomputed ``R G^-1`` table.
* ``'output'`` (default): ``w = B^2 S + noise_var``; then ``E`` is the expected excess squared error of
  the restored image over the target's (see :meth:`gpu_deconv.core.targets.Target.weight`), which is the
  quantity that matters. For the Wiener targets ``w = A (p + rho)`` with ``p = B^2 s0`` fixed per blur
  and one number ``rho = noise_var / A`` per frame (:attr:`gpu_deconv.core.targets.Target.ratio_form`), so
  G is a combination of three matrices tabulated per blur and a frame pays for the right-hand side only
  (see :meth:`LaplacianFit.solve`); quadrature (not a dense grid) keeps even the tabulation cheap.

Systems with 1 or 2 coefficients are solved in closed form, larger ones by LAPACK gesv.

Precision-aware regularisation: the GPU stores the blurred levels ``H_k`` in fp16 or fp32 textures and
mixes them with weights ``d_k`` (:meth:`gpu_deconv.core.basis.Basis.mixture_weights`). The five Gaussians
are nearly collinear, so an unregularised 2D fit at low noise returns ``sum |d_k|`` in the thousands:
exact in float64, but each texture's rounding error is then amplified a thousandfold (measured: fp16
intermediates turn a +8 dB restoration into -8 dB). :meth:`LaplacianFit.solve` therefore adds the
expected output variance caused by rounding, ``sum_k d_k^2 ||g_k||^2 delta^2`` (``delta^2`` the
rounding variance of one stored value, :data:`ROUNDOFF_VAR`), to the objective: a ridge in the
mixture weights with a physical scale, not a tuning knob.

Reference: the seed post (weighted least squares of a Laplacian basis onto a Wiener target).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .basis import Basis
from .blur import BlurModel
from .plan import MixtureStage
from .quadrature import Nodes, gauss_legendre, symmetric_half, uniform_grid
from .targets import OMEGA0, Target, clamped_excess, evaluate_many_for_fit, power_rows

WEIGHTINGS = ("output", "uniform")
#: Default Gauss-Legendre nodes per axis, measured to reproduce a 160x160 (2D) or 600-node (1D) solve
#: to <= 1e-3 relative in the coefficients and ~1e-5 in the fit error with the clamped default target
#: (an unclamped Wiener target needs only 8-16; the gain clamp's rounded corner is what costs nodes).
DEFAULT_NODES = {"1d": 96, "2d": 24}
_COS_TERMS = 20
#: Effective rounding variance of one intermediate texel (linear units^2) per storage precision. fp16
#: has a 10-bit mantissa and llvmpipe rounds toward zero (error variance ulp^2/3); typical linear-light
#: values 0.05-0.3 have ulps 2^-15..2^-12, so 3e-9 sits mid-range; for fp32 1e-10 is far above its
#: round-off and only trims the near-singular directions (measured: never costs more than 0.1 dB).
ROUNDOFF_VAR = {16: 3e-9, 32: 1e-10}
#: Entries kept in each solver's per-blur and per-omega0 node caches (a live viewer's slider revisits values).
_CACHE_SIZE = 64


@dataclass(eq=False)
class FitResult:
    """One solve: basis, coefficients and how well they follow the target.

    Attributes
    ----------
    basis : Basis
    coefficients : ndarray (K,)
        ``c`` of ``1 + sum c_k L_k``.
    domain : str
    nodes_label : str
    target : Target
    blur : BlurModel
    """

    basis: Basis
    coefficients: np.ndarray
    domain: str
    nodes_label: str
    target: Target
    blur: BlurModel
    _solver: LaplacianFit = field(repr=False)

    # The target and weighting at the nodes are evaluated again, on first use, by the straightforward
    # formula (Target.evaluate_for_fit): the per-frame solve never forms them (see LaplacianFit.solve).
    @cached_property
    def _at_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        return self._solver.target_at_nodes(self.blur, self.target)

    @property
    def _t_minus_1(self) -> np.ndarray:
        return self._at_nodes[0]

    @property
    def _w(self) -> np.ndarray:
        return self._at_nodes[1]

    @property
    def _q(self) -> np.ndarray:
        return self._solver.nodes.q

    @property
    def _phi(self) -> np.ndarray:
        return self._solver.phi

    @cached_property
    def _t(self) -> np.ndarray:
        return 1.0 + self._t_minus_1

    @cached_property
    def _f(self) -> np.ndarray:
        return 1.0 + self._phi @ self.coefficients

    @property
    def mixture_weights(self) -> np.ndarray:
        """``d_k`` of the equivalent Gaussian mixture ``sum d_k G_k``."""
        return self.basis.mixture_weights(self.coefficients)

    def stage(self, strength: float = 1.0) -> MixtureStage:
        return self.basis.stage(self.coefficients, strength)

    @cached_property
    def fit_rms(self) -> float:
        """Unweighted RMS of ``F - T`` over the domain."""
        return float(np.sqrt(self._q @ (self._f - self._t) ** 2))

    @cached_property
    def excess_error(self) -> float:
        """``mean w (F - T)^2``: with the output weighting, the excess MSE over the target (linear^2)."""
        return float(self._q @ (self._w * (self._f - self._t) ** 2))

    @cached_property
    def identity_error(self) -> float:
        """``mean w (1 - T)^2``: the same measure for doing nothing."""
        return float(self._q @ (self._w * (1.0 - self._t) ** 2))

    def response(self, wx: np.ndarray, wy: np.ndarray | None = None) -> np.ndarray:
        """Achieved response ``1 + sum c_k L_k`` (1D if ``wy`` is None, else the true 2D response)."""
        bands = self.basis.bands_1d(wx) if wy is None else self.basis.bands_2d(wx, wy)
        return 1.0 + bands @ self.coefficients

    __call__ = response

    @cached_property
    def peak_gain(self) -> float:
        """Largest ``|F|`` over the domain (65 or 65x65 samples, end points included)."""
        w = np.linspace(0.0, np.pi, 65)
        if self.domain == "1d":
            return float(np.abs(self.response(w)).max())
        wy, wx = np.meshgrid(w, w, indexing="ij")
        return float(np.abs(self.response(wx, wy)).max())

    def __repr__(self) -> str:
        c = np.array2string(self.coefficients, precision=4, separator=", ")
        return (
            f"FitResult({self.basis!r}, {self.domain} {self.nodes_label}, c={c}, "
            f"rms={self.fit_rms:.3g}, peak_gain={self.peak_gain:.3g})"
        )


class LaplacianFit:
    """Reusable solver for one (basis, domain, nodes, weighting).

    Everything that does not depend on the frame is tabulated once per node: ``Phi``, the right-hand side
    table ``R[n, k] = q_n Phi_nk`` and the Gram table ``P[n, (i, j)] = q_n Phi_ni Phi_nj`` (both symmetric
    halves filled from one, so G comes out exactly symmetric); for any weights ``w`` the normal equations
    are two vector-matrix products, ``G = w P`` and ``r = (w (T - 1)) R`` (:meth:`coefficients`,
    :meth:`solve_many`: a batch over levels, noise or blur sigmas as ``(M, N)`` arrays). Per blur (cached
    for read-only taps, like :meth:`blur_at_nodes`) :meth:`solve` also tabulates what the target's ratio
    form needs, so a frame costs 11 small array operations and a KxK solve whatever the node count: their
    call overhead, not arithmetic, is the cost. With uniform weighting (and no rounding term) the solve
    ends in one product with the precomputed ``R G^-1``.

    Parameters
    ----------
    basis : Basis
    domain : {'2d', '1d'}
    nodes : int or Nodes or None
        Gauss-Legendre nodes per axis (default 24 per axis in 2D, 96 in 1D), or explicit nodes (e.g.
        :func:`gpu_deconv.core.quadrature.uniform_grid` for the seed's dense reference procedure). A full
        2D tensor rule is folded onto ``wy <= wx`` (:func:`gpu_deconv.core.quadrature.symmetric_half`):
        :attr:`nodes` then holds ``n(n+1)/2`` nodes, the same quadrature.
    weighting : {'output', 'uniform'}
    ridge : float or None
        Relative ridge ``lambda`` (scaled by ``tr G / K``); None picks 0 in 2D and 1e-4 in 1D (1D fits of
        the Gaussian basis are ill-posed without one).
    """

    def __init__(
        self,
        basis: Basis,
        domain: str = "2d",
        nodes: int | Nodes | None = None,
        weighting: str = "output",
        ridge: float | None = None,
    ) -> None:
        if not isinstance(basis, Basis):
            raise ValueError(f"unknown basis {basis!r}: use Comb(levels) or GaussianLaplacian(sigmas)")
        if domain not in ("1d", "2d"):
            raise ValueError(f"domain must be '1d' or '2d', got {domain!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if nodes is None:
            nodes = DEFAULT_NODES[domain]
        if not isinstance(nodes, Nodes):
            nodes = gauss_legendre(domain, int(nodes))
        if nodes.kind != domain:
            raise ValueError(f"nodes are {nodes.kind} but domain is {domain}")
        if domain == "2d" and nodes.size == nodes.axis.size**2:
            nodes = symmetric_half(nodes)  # every integrand here is symmetric in (wx, wy): half the nodes
        self.basis, self.domain, self.nodes, self.weighting = basis, domain, nodes, weighting
        self.ridge = (0.0 if domain == "2d" else 1e-4) if ridge is None else float(ridge)
        if not np.isfinite(self.ridge) or self.ridge < 0:
            raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
        k = self._k = basis.size
        phi = basis.bands_1d(nodes.wx) if domain == "1d" else basis.bands_2d(nodes.wx, nodes.wy)
        self._phi = _frozen(phi)
        self._rhs_table = _frozen(phi * nodes.q[:, None])
        upper_i, upper_j = np.triu_indices(k)
        column = np.empty((k, k), dtype=np.intp)
        column[upper_i, upper_j] = column[upper_j, upper_i] = np.arange(upper_i.size)
        upper = self._rhs_table[:, upper_i] * phi[:, upper_j]
        self._gram_table = _frozen(upper[:, column.ravel()])
        self._cos = 2.0 * np.cos(np.multiply.outer(nodes.axis, np.arange(1, _COS_TERMS + 1)))
        self._ones = _frozen(np.ones(nodes.size))
        # d_k (k >= 1) = (D c)_k: rounding penalty sum_k ||g_k||^2 d_k^2 = c^T (D^T N D) c
        dmat = np.eye(k, k=1) - np.eye(k)
        norms = np.array([float(np.sum(np.square(t))) for t in basis.lowpass_taps])
        self._roundoff = _frozen(dmat.T @ (norms[:, None] * dmat))
        self._blur_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._shape: dict[float, np.ndarray] = {}
        self._tables: dict[tuple[int, float | None], tuple] = {}
        self._work = threading.local()  # clamped_excess' work rows, one set per thread
        # G of the ratio form (see solve) is a combination of three fixed matrices; the ridge, a fixed
        # multiple of the trace, is linear too, so it is folded into each of them
        self._plain_gram = self._ridged(self._ones @ self._gram_table)
        self._ridged_roundoff = self._ridged(self._roundoff.ravel())
        self._uniform_solution = None
        if weighting == "uniform":
            # G is frame-independent: c = G^-1 R^T (T - 1) = (T - 1) @ (R G^-1), one product per solve
            self._uniform_solution = _frozen(np.linalg.solve(self._plain_gram.reshape(k, k), self._rhs_table.T).T)
        if k > 2:
            # LAPACK's gesv without numpy.linalg's per-call set-up (2.5 us instead of 14 us for 5x5)
            from scipy.linalg.lapack import dgesv

            self._gesv = dgesv

    def _ridged(self, g: np.ndarray) -> np.ndarray:
        """Flat ``G`` (K*K,) plus the ridge ``lambda (tr G / K) I`` (a new array)."""
        g = g.copy()
        g[:: self._k + 1] += self.ridge * (g[:: self._k + 1].sum() / self._k)
        return g

    @property
    def phi(self) -> np.ndarray:
        """Band responses ``L_k`` at the nodes, shape ``(N, K)`` (read-only)."""
        return self._phi

    @property
    def roundoff_matrix(self) -> np.ndarray:
        """``D^T diag(||g_k||^2) D``: the rounding penalty is ``roundoff_var * c^T M c`` (read-only, (K, K))."""
        return self._roundoff

    def blur_at_nodes(self, blur: BlurModel) -> np.ndarray:
        """``B`` at the nodes (product of the 1D responses in 2D), read-only.

        Read-only taps (the Gaussian's are cached per sigma, so a frame's new ``Gaussian(sigma)`` shares
        them) are remembered: a per-frame solve for an unchanged blur skips this step.
        """
        t = blur.taps
        hit = self._blur_cache.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        r = t.size // 2
        if r <= _COS_TERMS:
            b1 = t[r] + self._cos[:, :r] @ t[r + 1 :] if r else np.full(self.nodes.axis.size, t[0])
        else:
            b1 = blur.response(self.nodes.axis)
        b = _frozen(b1 if self.domain == "1d" else b1[self.nodes.ix] * b1[self.nodes.iy])
        if not t.flags.writeable:  # the entry holds t, so its id cannot be reused while cached
            if len(self._blur_cache) >= _CACHE_SIZE:
                self._blur_cache.clear()  # (atomic, so safe if threads share a solver; refilling is cheap)
            self._blur_cache[id(t)] = (t, b)
        return b

    def _ratio_tables(self, blur: BlurModel, target: Target) -> tuple:
        """What a target in its ratio form (:attr:`gpu_deconv.core.targets.Target.ratio_form`) needs from the
        blur, cached like :meth:`blur_at_nodes`: ``p = B^2 s0`` and ``q = B s0`` at the nodes (``s0`` the
        spectrum's shape), and the three matrices whose combination is G, ``[Gp, G1, M]`` (ridge folded in):
        ``Gp = sum q_n p_n Phi_n Phi_n^T``, ``G1`` the same with ``p = 1``, ``M`` the rounding matrix. They are
        a (K*K, 3) array, or for K <= 2 (solved in closed form) three flat lists of Python floats."""
        t = blur.taps
        omega0 = None if target.kind == "flat" else target.omega0
        key = (id(t), omega0)
        hit = self._tables.get(key)
        if hit is not None and hit[0] is t:
            return hit[1]
        b = self.blur_at_nodes(blur)
        q = b if omega0 is None else b * self._shape_at_nodes(omega0)
        p = b * q
        grams = (self._ridged(p.dot(self._gram_table)), self._plain_gram, self._ridged_roundoff)
        if self._k <= 2:
            stack = tuple(g.tolist() for g in grams)
        else:
            stack = _frozen(np.stack(grams, axis=-1))  # (K*K, 3): a matrix-vector product (a 3D one costs 2x)
        tables = (_frozen(p), _frozen(q), stack)
        if not t.flags.writeable:  # as in blur_at_nodes: only taps that cannot change under the cache
            if len(self._tables) >= _CACHE_SIZE:
                self._tables.clear()
            self._tables[key] = (t, tables)
        return tables

    def _shape_at_nodes(self, omega0: float) -> np.ndarray:
        """The natural spectrum's ``1 / (|w|^2 + w0^2)`` at the nodes, cached per corner ``w0``."""
        shape = self._shape.get(omega0)
        if shape is None:
            if len(self._shape) >= _CACHE_SIZE:
                self._shape.clear()
            shape = self._shape[omega0] = _frozen(1.0 / (self.nodes.r2 + omega0**2))
        return shape

    def _gram_rhs(
        self, t_minus_1: np.ndarray, w: np.ndarray, roundoff_var: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``G`` flattened to (..., K*K) with the rounding term but no ridge, and ``r`` (..., K)."""
        if self.weighting == "uniform":
            w = self._ones if t_minus_1.ndim == 1 else np.broadcast_to(self._ones, t_minus_1.shape)
        y = t_minus_1 * w
        g = w.dot(self._gram_table)
        r = y.dot(self._rhs_table)
        if roundoff_var:
            g += roundoff_var * self._roundoff.ravel()
        return g, r

    def normal_equations(
        self, t_minus_1: np.ndarray, w: np.ndarray, roundoff_var: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The normal equations ``G c = r`` for targets ``t`` and weights ``w`` at the nodes.

        ``G = sum_n q_n w_n Phi_n Phi_n^T + roundoff_var * M + lambda (tr / K) I`` and
        ``r = sum_n q_n w_n (T_n - 1) Phi_n`` (``M`` = :attr:`roundoff_matrix`, ``lambda`` the ridge).

        Parameters
        ----------
        t_minus_1, w : ndarray (N,) or (M, N)
            Target minus one, ``T - 1``, and weighting (``B^2 S + noise_var`` for the output weighting) at
            :attr:`nodes`, one row per problem (:meth:`gpu_deconv.core.targets.Target.evaluate_for_fit`);
            ``w`` is ignored (taken as 1) with uniform weighting.
        roundoff_var : float
            Rounding variance of the intermediate textures (:data:`ROUNDOFF_VAR`).

        Returns
        -------
        G : ndarray (..., K, K)
        r : ndarray (..., K)
        """
        t_minus_1 = np.asarray(t_minus_1, dtype=np.float64)
        g, r = self._gram_rhs(t_minus_1, np.asarray(w, dtype=np.float64), roundoff_var)
        if self.ridge:
            diagonal = g[..., :: self._k + 1]
            diagonal += (self.ridge / self._k) * diagonal.sum(axis=-1, keepdims=True)
        return g.reshape(g.shape[:-1] + (self._k, self._k)), r

    def coefficients(self, t_minus_1: np.ndarray, w: np.ndarray, roundoff_var: float = 0.0) -> np.ndarray:
        """Least-squares coefficients for targets ``T = 1 + t_minus_1`` and weights ``w`` at the nodes (see
        :meth:`normal_equations`): shape (K,) for one problem, (M, K) for a batch of M."""
        return self._coefficients(np.asarray(t_minus_1, dtype=np.float64), np.asarray(w, dtype=np.float64),
                                  roundoff_var)

    def _coefficients(self, t_minus_1: np.ndarray, w: np.ndarray, roundoff_var: float) -> np.ndarray:
        if self._uniform_solution is not None and not roundoff_var:
            return t_minus_1.dot(self._uniform_solution)
        if t_minus_1.ndim == 1:
            g, r = self._gram_rhs(t_minus_1, w, roundoff_var)
            g = self._ridged(g)
            if self._k > 2:
                return self._solve_lapack(g.reshape(self._k, self._k), r)
            upper = g.tolist()
            return _solve_closed_form(upper[:1] if self._k == 1 else (upper[0], upper[1], upper[3]), r)
        g, r = self.normal_equations(t_minus_1, w, roundoff_var)
        return np.linalg.solve(g, r[..., None])[..., 0]

    def _solve_mixed(self, grams: tuple | np.ndarray, x: float, y: float, z: float, r: np.ndarray) -> np.ndarray:
        """Solve ``(x Gp + y G1 + z M) c = r`` with :meth:`_ratio_tables`' matrices (for K <= 2 combined entry by
        entry in Python floats: building arrays would cost more than the arithmetic)."""
        if self._k > 2:
            return self._solve_lapack(grams.dot(np.array((x, y, z))).reshape(self._k, self._k), r)
        gp, g1, m = grams
        if self._k == 1:
            return _solve_closed_form((x * gp[0] + y * g1[0] + z * m[0],), r)
        return _solve_closed_form((x * gp[0] + y * g1[0] + z * m[0], x * gp[1] + y * g1[1] + z * m[1],
                                   x * gp[3] + y * g1[3] + z * m[3]), r)

    def _solve_lapack(self, g: np.ndarray, r: np.ndarray) -> np.ndarray:
        """``G c = r`` for a C-ordered (K, K) ``g`` (overwritten) by LAPACK gesv, without numpy.linalg's per-call
        set-up (2.5 us instead of 14 us for 5x5)."""
        # G is exactly symmetric, so its transpose is the Fortran-ordered matrix LAPACK takes without a copy
        _, _, c, info = self._gesv(g.T, r, overwrite_a=1, overwrite_b=1)
        if info:
            raise np.linalg.LinAlgError(f"singular normal equations (LAPACK gesv info={info})")
        return c

    def target_at_nodes(self, blur: BlurModel, target: Target) -> tuple[np.ndarray, np.ndarray]:
        """``(T - 1, w)`` at :attr:`nodes` by :meth:`gpu_deconv.core.targets.Target.evaluate_for_fit` (``w`` the
        output weighting ``B^2 S + noise_var``, or ones with uniform weighting)."""
        t_minus_1, w = target.evaluate_for_fit(self.blur_at_nodes(blur), self.nodes.r2,
                                               self._shape_at_nodes(target.omega0))
        return t_minus_1, (self._ones if self.weighting == "uniform" else w)

    def solve(self, blur: BlurModel, target: Target, roundoff_var: float = 0.0) -> FitResult:
        """Fit the coefficients for one frame's blur and target.

        A target in its ratio form (:attr:`gpu_deconv.core.targets.Target.ratio_form`: ``T = q / (p + rho)``
        before the clamp and ``w = A (p + rho)``, with ``p = B^2 s0``, ``q = B s0`` fixed per blur and one
        number ``rho = noise_var / A`` per frame) has normal equations, divided by ``A``,

            G = Gp + rho G1 + (roundoff_var / A) M,     r = R^T ((p + rho) (clamp(T) - 1)),

        ``Gp``, ``G1``, ``M`` tabulated per blur with the ridge folded in (it is linear in G), so a frame
        costs the right-hand side alone: 11 array operations (``p + rho``, the 9 of
        :func:`gpu_deconv.core.targets.clamped_excess`, one product) and the K x K solve. Other targets
        (``max_gain``, no noise or no signal) take the general evaluation and :meth:`coefficients`. Either
        way the result is the plain normal-equations solution up to float64 round-off.

        Parameters
        ----------
        blur : BlurModel
        target : Target
        roundoff_var : float
            Rounding variance of the intermediate textures (see :data:`ROUNDOFF_VAR`); 0 fits the
            response alone.
        """
        form = target.ratio_form
        if form is None:
            c = self._coefficients(*self.target_at_nodes(blur, target), roundoff_var)
        else:
            ratio, scale = form
            p, q, grams = self._ratio_tables(blur, target)
            try:
                work = self._work.rows
            except AttributeError:  # this thread's first solve
                work = self._work.rows = power_rows((self.nodes.size,))
            if self._uniform_solution is None:
                y = clamped_excess(q, p + ratio, target.min_gain, True, work)
                c = self._solve_mixed(grams, 1.0, ratio, roundoff_var / scale, y.dot(self._rhs_table))
            else:
                y = clamped_excess(q, p + ratio, target.min_gain, False, work)
                c = (self._solve_mixed(grams, 0.0, 1.0, roundoff_var, y.dot(self._rhs_table)) if roundoff_var
                     else y.dot(self._uniform_solution))
        return FitResult(self.basis, c, self.domain, self.nodes.label, target, blur, self)

    def solve_many(
        self, blurs: BlurModel | Sequence[BlurModel], targets: Sequence[Target], roundoff_var: float = 0.0
    ) -> np.ndarray:
        """Coefficient table for M problems at once, row m equal to ``solve(blur_m, targets[m])`` up to
        float64 round-off: the batched tables of the adaptive (over local level) and sigma-map (over blur)
        filters. Cost: one set of ~20 array operations on (M, N) arrays plus one batched KxK solve.

        Parameters
        ----------
        blurs : BlurModel or sequence of M BlurModel
            One blur shared by all rows, or one per row.
        targets : sequence of M Target
            Differing in ``noise_var`` and ``level``; sharing kind, omega0 and the gain clamp (see
            :func:`gpu_deconv.core.targets.evaluate_many_for_fit`).
        roundoff_var : float

        Returns
        -------
        ndarray (M, K)
        """
        if isinstance(blurs, BlurModel):
            b = self.blur_at_nodes(blurs)
        else:
            if len(blurs) != len(targets):
                raise ValueError(f"solve_many got {len(blurs)} blurs for {len(targets)} targets")
            b = np.stack([self.blur_at_nodes(blur) for blur in blurs])
        omega0 = targets[0].omega0 if targets else OMEGA0
        t_minus_1, w = evaluate_many_for_fit(targets, b, self.nodes.r2, self._shape_at_nodes(omega0))
        return self._coefficients(t_minus_1, w, roundoff_var)


def _solve_closed_form(upper: tuple[float, ...], r: np.ndarray) -> np.ndarray:
    """Solve a symmetric 1x1 or 2x2 system given its upper triangle ``(G11,)`` or ``(G11, G12, G22)``, in Python
    floats (the closed-form inverse).

    Raises
    ------
    numpy.linalg.LinAlgError
        G is singular.
    """
    if len(upper) == 1:
        (det,), (r0,) = upper, r.tolist()
        if not det:
            raise np.linalg.LinAlgError("singular normal equations (determinant 0)")
        return np.array([r0 / det])
    a, b, d = upper
    r0, r1 = r.tolist()
    det = a * d - b * b
    if not det:
        raise np.linalg.LinAlgError("singular normal equations (determinant 0)")
    return np.array([(d * r0 - b * r1) / det, (a * r1 - b * r0) / det])


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def solve_dense_reference(
    basis: Basis, blur: BlurModel, target: Target, n: int = 512, domain: str = "1d", weighting: str = "output"
) -> FitResult:
    """The seed's procedure: the same least squares sampled on a uniform ``n``-point grid (``freqz``
    style, no quadrature weights). Kept only as a reference for tests and benchmarks."""
    return LaplacianFit(basis, domain, uniform_grid(domain, n), weighting).solve(blur, target)
