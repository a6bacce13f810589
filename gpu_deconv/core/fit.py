"""Weighted least-squares fit of ``1 + sum c_k L_k`` to a target, by quadrature.

Minimises

    E(c) = mean_D  w(w) (1 + sum_k c_k L_k(w) - T(w))^2  +  lambda * (tr G / K) * ||c||^2

over the domain D = [0, pi] (``'1d'``) or [0, pi]^2 (``'2d'``, the true separable 2D responses the
shaders apply; neither basis is exactly isotropic there). The normal equations are

    G c = r,   G = Phi^T diag(q w) Phi (+ ridge),   r = Phi^T (q w (T - 1)),

with ``Phi`` the band responses at the quadrature nodes (fixed per basis and domain, so computed once)
and ``q`` the quadrature weights. Weightings:

* ``'uniform'`` (the seed's): ``w = 1``; G is then frame-independent and Cholesky-factorised once.
* ``'output'`` (default): ``w = B^2 S + sigma^2``; then ``E`` is the expected excess squared error of
  the restored image over the target's (see :meth:`gpu_deconv.core.targets.Target.weight`), which is the
  quantity that matters. G is accumulated per frame over the nodes - a few hundred products, which is
  why quadrature (not a dense grid) makes a per-frame solve cost microseconds.

The 2-coefficient case uses the closed-form 2x2 inverse.

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

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .basis import Basis
from .blur import BlurModel
from .plan import MixtureStage
from .quadrature import Nodes, gauss_legendre, uniform_grid
from .targets import Target

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
    _q: np.ndarray = field(repr=False)
    _w: np.ndarray = field(repr=False)
    _phi: np.ndarray = field(repr=False)
    _t: np.ndarray = field(repr=False)

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
    """Reusable solver for one (basis, domain, nodes, weighting): precomputes ``Phi`` (and for uniform
    weighting the Cholesky factor of G); :meth:`solve` is the per-frame call.

    Parameters
    ----------
    basis : Basis
    domain : {'2d', '1d'}
    nodes : int or Nodes or None
        Gauss-Legendre nodes per axis (default 24 per axis in 2D, 96 in 1D), or explicit nodes (e.g.
        :func:`gpu_deconv.core.quadrature.uniform_grid` for the seed's dense reference procedure).
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
        self.basis, self.domain, self.nodes, self.weighting = basis, domain, nodes, weighting
        self.ridge = (0.0 if domain == "2d" else 1e-4) if ridge is None else float(ridge)
        if not np.isfinite(self.ridge) or self.ridge < 0:
            raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
        self._phi = basis.bands_1d(nodes.wx) if domain == "1d" else basis.bands_2d(nodes.wx, nodes.wy)
        self._phi_t = np.ascontiguousarray(self._phi.T)
        self._cos = 2.0 * np.cos(np.multiply.outer(nodes.axis, np.arange(1, _COS_TERMS + 1)))
        self._k = basis.size
        self._shape: dict[float, np.ndarray] = {}
        # d_k (k >= 1) = (D c)_k: rounding penalty sum_k ||g_k||^2 d_k^2 = c^T (D^T N D) c
        dmat = np.eye(self._k, k=1) - np.eye(self._k)
        norms = np.array([float(np.sum(np.square(t))) for t in basis.lowpass_taps])
        self._roundoff = dmat.T @ (norms[:, None] * dmat)
        if weighting == "uniform":
            g = (self._phi_t * nodes.q) @ self._phi
            g[np.diag_indices_from(g)] += self.ridge * np.trace(g) / self._k
            self._chol = cho_factor(g)

    def blur_at_nodes(self, blur: BlurModel) -> np.ndarray:
        """``B`` at the nodes (product of the 1D responses in 2D)."""
        t = blur.taps
        r = t.size // 2
        if r <= _COS_TERMS:
            b1 = t[r] + self._cos[:, :r] @ t[r + 1 :] if r else np.full(self.nodes.axis.size, t[0])
        else:
            b1 = blur.response(self.nodes.axis)
        return b1 if self.domain == "1d" else np.outer(b1, b1).ravel()

    def solve(self, blur: BlurModel, target: Target, roundoff_var: float = 0.0) -> FitResult:
        """Fit the coefficients for one frame's blur and target.

        Parameters
        ----------
        blur : BlurModel
        target : Target
        roundoff_var : float
            Rounding variance of the intermediate textures (see :data:`ROUNDOFF_VAR`); 0 fits the
            response alone.
        """
        nodes = self.nodes
        b = self.blur_at_nodes(blur)
        shape = self._shape.get(target.omega0)
        if shape is None:
            shape = self._shape[target.omega0] = 1.0 / (nodes.r2 + target.omega0**2)
        t, _, w = target.evaluate_weighted(b, nodes.r2, shape)
        if self.weighting != "output":
            w = np.ones_like(t)
        qw = nodes.q * w
        rhs = self._phi_t @ (qw * (t - 1.0))
        if self.weighting == "uniform" and not roundoff_var:
            c = cho_solve(self._chol, rhs)
        else:
            g = (self._phi_t * qw) @ self._phi
            if roundoff_var:
                g += roundoff_var * self._roundoff
            lam = self.ridge * (g.trace() / self._k) if self.ridge else 0.0
            if self._k == 2:
                (a, bb), (_, d) = g.tolist()
                r0, r1 = rhs.tolist()
                a += lam
                d += lam
                det = a * d - bb * bb
                c = np.array([(d * r0 - bb * r1) / det, (a * r1 - bb * r0) / det])
            else:
                if lam:
                    g[np.diag_indices_from(g)] += lam
                c = np.linalg.solve(g, rhs)
        return FitResult(self.basis, c, self.domain, nodes.label, target, blur, nodes.q, w, self._phi, t)


def solve_dense_reference(
    basis: Basis, blur: BlurModel, target: Target, n: int = 512, domain: str = "1d", weighting: str = "output"
) -> FitResult:
    """The seed's procedure: the same least squares sampled on a uniform ``n``-point grid (``freqz``
    style, no quadrature weights). Kept only as a reference for tests and benchmarks."""
    return LaplacianFit(basis, domain, uniform_grid(domain, n), weighting).solve(blur, target)
