"""Targets: the frequency response the deconvolver should have.

With blur response ``B(w)``, signal power spectrum ``S(w)`` and noise variance ``noise_var`` (white, so
its spectrum is flat at ``noise_var``), the linear filter minimising the expected squared error is the
Wiener filter

    T(w) = B(w) S(w) / (B(w)^2 S(w) + noise_var).

* :func:`wiener_flat` takes ``S = 1`` (the seed post's simplification). On real photographs with
  noise 0.005 at blur sigma 0.7 it makes images ~10 dB *worse* than doing nothing: a flat spectrum
  claims far more fine detail than photographs have, so it amplifies noise where there is no signal.
* :func:`wiener_natural` (the default) takes the natural-image spectrum ``S = A / (|w|^2 + w0^2)``
  (van der Schaaf & van Hateren 1996; Field 1987) with level ``A`` estimated per frame by
  :func:`gpu_deconv.core.spectrum.estimate_level`.

Both are then clamped: ``T <- min(max(T, min_gain), max_gain)`` (corners rounded, :func:`soft_max`).
``min_gain = 1`` (default) keeps the filter from *denoising by blurring* - a deconvolver only
restores lost contrast - and makes huge noise give exactly the identity; ``min_gain = 0`` is the textbook Wiener filter.

Units: ``w`` in rad/pixel; ``noise_var`` in linear units^2 (the square of the noise standard deviation
``noise_std``, per pixel, equal to the white spectrum's level); ``A`` in linear units^2 x rad^2/px^2,
normalised like ``noise_var`` (the mean of S over [-pi, pi]^2 is the signal variance). The only "sigma"
in the package is the blur's size in pixels.

:func:`evaluate_many_for_fit` evaluates many targets at once (one row per target), for the batched solves
of :meth:`gpu_deconv.core.fit.LaplacianFit.solve_many`; :func:`clamped_excess` evaluates a target in its
ratio form (:attr:`Target.ratio_form`) for the per-frame solve of :meth:`gpu_deconv.core.fit.LaplacianFit.solve`.

Reference: N. Wiener (1949); the seed post "GPU deconvolution with a Laplacian basis".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Low-frequency corner of the natural spectrum (rad/px): keeps S finite at DC; far below any band here.
OMEGA0 = 0.02


#: Half-width of the rounded corner of the gain clamp (see :func:`soft_max`).
CLAMP_SOFTNESS = 0.2

# A per-frame solve is a few dozen small array operations, so their call overhead is the cost (measured:
# an operation with a Python float operand costs ~1.6x one with an array operand, a comparison 3x, and a
# reduction such as ``.any()`` 4x). Hence 0-d array constants, and no boolean masks.
_ONE = np.array(1.0)
_ZERO = np.array(0.0)
_INF = math.inf  # (a module constant: Target validates per frame)


@lru_cache(maxsize=64)
def _scalar(x: float) -> np.ndarray:
    """``x`` as a read-only 0-d array (see above), cached: clamp floors and softness repeat every frame."""
    a = np.array(x, dtype=np.float64)
    a.setflags(write=False)
    return a


@lru_cache(maxsize=8)
def _soft_max_constants(eps: float) -> tuple[np.ndarray, ...]:
    e2 = eps * eps
    return tuple(_scalar(c) for c in (5.0 / 3.0 * e2, 20.0 / 9.0 * e2 * e2, 3.0 / (16.0 * e2 * e2 * eps), 0.5))


def soft_max(t: np.ndarray, floor: float, eps: float = CLAMP_SOFTNESS) -> np.ndarray:
    """A smooth ``max(t, floor)``, exact at ``t == floor`` and outside ``|t - floor| < eps``:

        floor + eps * g(v),   v = (t - floor) / eps,   g(v) = v * s((v + 1) / 2) on [-1, 1],

    with ``s`` the quintic smoothstep ``6x^5 - 15x^4 + 10x^3`` (``g = 0`` below -1, ``g = v`` above 1; C2).
    Why: a kinked target costs the Gauss-Legendre fit two orders of accuracy, a plain softplus lifts
    the DC region (where the Wiener target is 1 - tiny) to ``1 + eps log 2`` so the fit boosts all low
    frequencies, and a softplus never reaches the floor, so huge noise would not give the identity.
    This one dips at most ``0.0705 eps`` below the floor, near ``v = -0.3``.

    Evaluated without masks (they cost more than arithmetic on a few hundred values): with ``u = t - floor``,
    ``g(v) = v/2 + E(v)``, ``E(v) = 15v^2/16 - 5v^4/8 + 3v^6/16`` even, and ``E(a) <= a/2`` exactly for
    ``a <= 1`` (equality at 0 and 1, reversed beyond), so

        soft_max = floor + u/2 + min(eps E(|u|/eps), |u|/2),

    with ``eps E = 3/(16 eps^5) z ((z - 5 eps^2/3)^2 + 20 eps^4/9)``, ``z = u^2``. Outside the band this is
    ``floor + (u/2 + |u|/2)``, i.e. exactly ``floor + max(u, 0)``. ``t`` may have any shape (a batch of targets is
    clamped in one call); a new array is returned.
    """
    c1, c2, c3, half = _soft_max_constants(eps)
    u = t - _scalar(floor) if floor else t  # the fit clamps T - 1 at min_gain - 1 = 0, saving two operations
    z = u * u
    corner = z - c1
    corner *= corner
    corner += c2
    corner *= z
    corner *= c3  # eps E(|v|), E(v) = g(v) - v/2 (even)
    ramp = abs(u)
    ramp *= half  # eps |v| / 2 = max(u, 0) - u/2
    np.minimum(corner, ramp, out=corner)  # E(a) <= a/2 exactly where a = |v| <= 1: selects the band
    out = u * half
    out += corner
    if floor:
        out += _scalar(floor)
    return out


@lru_cache(maxsize=8)
def _soft_max_monomials(eps: float) -> np.ndarray:
    """``[1/2, a1, a2, a3]`` with ``u/2 + eps E(|u|/eps) = u/2 + a1 u^2 + a2 u^4 + a3 u^6`` (see :func:`soft_max`):
    the expansion of ``3/(16 eps^5) z ((z - 5 eps^2/3)^2 + 20 eps^4/9)``, ``z = u^2``. Read-only."""
    c1, c2, c3, _ = (float(c) for c in _soft_max_constants(eps))
    a = np.array([0.5, c3 * (c1 * c1 + c2), -2.0 * c1 * c3, c3])
    a.setflags(write=False)
    return a


_DEFAULT_MONOMIALS = _soft_max_monomials(CLAMP_SOFTNESS)


def power_rows(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Work space of :func:`clamped_excess`: a ``(4, *shape)`` array and its four rows (binding the row views
    once saves ~15% of the function's cost). Reuse it across calls, within one thread."""
    stack = np.empty((4, *shape))
    return (stack, *stack)


def clamped_excess(q: np.ndarray, den: np.ndarray, min_gain: float, weighted: bool,
                   work: tuple[np.ndarray, ...] | None = None, eps: float = CLAMP_SOFTNESS) -> np.ndarray:
    """``den^j (soft_max(T, min_gain) - 1)`` for ``T = q / den``, ``j = 1`` if ``weighted`` else 0 (``min_gain = 0``:
    no clamp, ``den^j (T - 1)``): the right-hand side terms of the fit for a target in the ratio form of
    :attr:`Target.ratio_form` (``den`` is then the output weighting up to a constant factor).

    Evaluated in 9 array operations (the per-frame solve's cost is their call overhead, not arithmetic):
    with ``u = T - min_gain = num / den``, ``num = q - min_gain den``, :func:`soft_max`'s form
    ``min_gain + min(Q(u), max(u, 0))`` holds with the even-plus-linear polynomial ``Q(u) = u/2 + eps E(|u|/eps)``,
    evaluated as one product of its 4 monomial coefficients with the stacked powers ``u, u^2, u^4, u^6``;
    weighted, ``den min(Q, max(u, 0)) = min(den Q, max(num, 0))`` needs no second division. Agrees with
    :func:`soft_max` to float64 round-off (not bit for bit: monomials instead of the factored corner).

    Parameters
    ----------
    q, den : ndarray (..., N)
        ``den > 0``.
    min_gain : float
        Floor of ``T`` (>= 0).
    weighted : bool
    work : tuple of ndarray, optional
        ``power_rows(q.shape)``, reused; by default allocated per call.
    eps : float
        Half-width of the clamp's rounded corner.
    """
    if min_gain == 0:  # no clamp
        return q - den if weighted else q / den - _ONE
    num = q - den if min_gain == 1 else q - den * min_gain
    powers, u, z, z2, z3 = work or power_rows(num.shape)
    np.divide(num, den, u)
    np.multiply(u, u, z)
    np.multiply(z, z, z2)
    np.multiply(z2, z, z3)
    monomials = _DEFAULT_MONOMIALS if eps == CLAMP_SOFTNESS else _soft_max_monomials(eps)
    if num.ndim == 1:
        corner = monomials.dot(powers)  # Q(u)
    else:
        corner = monomials.dot(powers.reshape(4, -1)).reshape(num.shape)
    if weighted:
        corner *= den
        np.minimum(corner, np.maximum(num, _ZERO, out=num), out=corner)
    else:
        np.minimum(corner, np.maximum(u, _ZERO, out=u), out=corner)
    if min_gain != 1:
        corner += den * (min_gain - 1.0) if weighted else min_gain - 1.0
    return corner


def _wiener(
    b: np.ndarray, s: np.ndarray | float, noise_var, noisy: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, B^2 S + noise_var)`` before the gain clamp; ``noise_var`` a number or a column of them, ``noisy``
    whether every one is > 0 (else the denominator is kept off zero)."""
    bs = b * s
    den = b * bs
    den += noise_var
    return bs / (den if noisy else np.maximum(den, 1e-300)), den


def _clamp_minus_one(t: np.ndarray, min_gain: float, max_gain: float | None) -> np.ndarray:
    """``clamp(T) - 1``, clamping ``T - 1`` (soft_max commutes with a shift) so the fit gets it directly."""
    y = t - _ONE
    if min_gain > 0:
        y = soft_max(y, min_gain - 1.0)
    if max_gain is not None:
        y = -soft_max(-y, 1.0 - max_gain)
    return y


@dataclass(frozen=True, init=False)
class Target:
    """A (clamped) Wiener target.

    Attributes
    ----------
    kind : {'natural', 'flat'}
    noise_var : float
        Noise variance, linear units^2 (noise plus quantization).
    level : float
        Natural-spectrum level ``A`` (ignored for 'flat').
    omega0 : float
        Spectrum corner in rad/px.
    min_gain, max_gain : float, float or None
        Clamp of ``T``.
    ratio_form : (float, float) or None
        Derived, not a field: ``(ratio, scale)`` with ``T = B s0 / (B^2 s0 + ratio)`` before the clamp and
        ``B^2 S + noise_var = scale (B^2 s0 + ratio)``, ``s0`` the spectrum's shape (``1 / (|w|^2 + w0^2)``,
        or 1 for 'flat'): ``ratio = noise_var / level``, ``scale = level`` (``noise_var`` and 1 for 'flat').
        In this form a frame's target at the fit's nodes depends on one number, so everything that depends on
        the blur alone is tabulated once (:meth:`gpu_deconv.core.fit.LaplacianFit.solve`). None where the form
        does not exist or is not used: no noise (``T = 1/B`` needs the guarded division), no signal, or a
        ``max_gain`` clamp (evaluated by :meth:`evaluate_for_fit`).
    """

    kind: str = "natural"
    noise_var: float = 0.0
    level: float = 1.0
    omega0: float = OMEGA0
    min_gain: float = 1.0
    max_gain: float | None = None

    def __init__(self, kind: str = "natural", noise_var: float = 0.0, level: float = 1.0, omega0: float = OMEGA0,
                 min_gain: float = 1.0, max_gain: float | None = None) -> None:
        # A Target is built per frame: the fields go straight into the instance dict (frozen dataclasses
        # otherwise set each through object.__setattr__, twice the cost of this whole constructor).
        d = self.__dict__
        d["kind"], d["noise_var"], d["level"], d["omega0"] = kind, noise_var, level, omega0
        d["min_gain"], d["max_gain"] = min_gain, max_gain
        # one chained test on the common path; the loop below says what is wrong
        try:
            ok = (0.0 <= noise_var < _INF and 0.0 <= level < _INF and 0.0 <= omega0 < _INF and 0.0 <= min_gain < _INF
                  and bool not in (type(noise_var), type(level), type(omega0), type(min_gain)))
        except TypeError:
            ok = False
        if not ok:
            for name in ("noise_var", "level", "omega0", "min_gain"):
                v = getattr(self, name)
                try:
                    good = 0.0 <= v < math.inf and not isinstance(v, bool)
                except TypeError:
                    good = False
                if not good:
                    raise ValueError(f"target {name} must be a finite number >= 0, got {v!r}")
        if kind not in ("natural", "flat"):
            raise ValueError(f"target kind must be 'natural' or 'flat', got {kind!r}")
        if max_gain is not None:
            if not (math.isfinite(max_gain) and max_gain >= 1):
                raise ValueError(f"target max_gain must be a finite number >= 1, got {max_gain!r}")
            d["ratio_form"] = None
        elif kind == "flat":
            d["ratio_form"] = (noise_var, 1.0) if noise_var > 0 else None
        else:
            d["ratio_form"] = (noise_var / level, level) if noise_var > 0 and level > 0 else None

    def spectrum(self, r2: np.ndarray, shape: np.ndarray | None = None) -> np.ndarray | float:
        """Signal spectrum ``S`` at squared radial frequency ``r2 = |w|^2``.

        ``shape`` may carry a precomputed ``1 / (r2 + w0^2)`` (the fit caches it per node set).
        """
        if self.kind == "flat":
            return 1.0
        if shape is None:
            shape = 1.0 / (r2 + self.omega0 * self.omega0)
        return self.level * shape

    def evaluate(
        self, b: np.ndarray, r2: np.ndarray, shape: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | float]:
        """``(T, S)`` for blur response ``b`` at the nodes with squared radius ``r2``."""
        t, s, _ = self.evaluate_weighted(b, r2, shape)
        return t, s

    def evaluate_weighted(
        self, b: np.ndarray, r2: np.ndarray, shape: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | float, np.ndarray]:
        """``(T, S, B^2 S + noise_var)``: the target with its output-error weighting, sharing the work."""
        s = self.spectrum(r2, shape)
        t, w = _wiener(b, s, self.noise_var, self.noise_var > 0)
        if self.min_gain > 0:
            t = soft_max(t, self.min_gain)
        if self.max_gain is not None:
            t = -soft_max(-t, -self.max_gain)
        return t, s, w

    def evaluate_for_fit(
        self, b: np.ndarray, r2: np.ndarray, shape: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(T - 1, B^2 S + noise_var)``: what the least-squares fit uses (its right-hand side is
        ``w (T - 1)``), equal to :meth:`evaluate_weighted`'s ``T - 1`` up to float64 round-off."""
        t, w = _wiener(b, self.spectrum(r2, shape), self.noise_var, self.noise_var > 0)
        return _clamp_minus_one(t, self.min_gain, self.max_gain), w

    def weight(self, b: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        """Output-error weighting ``B^2 S + noise_var``: with it the fit error is the excess mean squared error
        of the restored image over the target's."""
        return b * b * s + self.noise_var

    def response(self, blur, wx: np.ndarray, wy: np.ndarray | None = None) -> np.ndarray:
        """``T`` on arbitrary frequencies (1D if ``wy`` is None)."""
        wx = np.asarray(wx, dtype=np.float64)
        if wy is None:
            b, r2 = blur.response(wx), wx * wx
        else:
            wy = np.asarray(wy, dtype=np.float64)
            b, r2 = blur.response2d(wx, wy), wx * wx + wy * wy
        return self.evaluate(b, r2)[0]


def evaluate_many_for_fit(
    targets: Sequence[Target], b: np.ndarray, r2: np.ndarray, shape: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Target.evaluate_for_fit` of M targets at once: ``(T - 1, B^2 S + noise_var)``, one row each
    (shape ``(M, N)``), row m equal to ``targets[m].evaluate_for_fit(b[m], r2, shape)``.

    The targets may differ in ``noise_var`` and ``level`` (and ``b`` may hold one blur response per
    row, shape ``(M, N)``, or one shared, ``(N,)``); ``kind``, ``omega0`` and the gain clamp must be shared,
    which is what lets one set of array operations serve the whole batch.

    Raises
    ------
    ValueError
        No targets, or targets differing in kind, omega0, min_gain or max_gain.
    """
    if not targets:
        raise ValueError("evaluate_many_for_fit needs at least one target")
    first = targets[0]
    shared = (first.kind, first.omega0, first.min_gain, first.max_gain)
    if any((t.kind, t.omega0, t.min_gain, t.max_gain) != shared for t in targets):
        raise ValueError("targets evaluated together must share kind, omega0, min_gain and max_gain")
    noise_var = np.array([t.noise_var for t in targets])[:, None]
    if first.kind == "flat":
        s = 1.0
    else:
        if shape is None:
            shape = 1.0 / (r2 + first.omega0 * first.omega0)
        s = np.array([t.level for t in targets])[:, None] * shape
    b = np.broadcast_to(b, (len(targets), r2.size))
    t, w = _wiener(b, s, noise_var, bool(noise_var.all()))
    return _clamp_minus_one(t, first.min_gain, first.max_gain), w


def wiener_flat(noise_var: float, *, min_gain: float = 1.0, max_gain: float | None = None) -> Target:
    """Wiener target with a flat signal spectrum, ``T = B / (B^2 + noise_var)`` (the seed's; not the default).

    Parameters
    ----------
    noise_var : float
        Noise variance in linear units^2, the square of the noise standard deviation ``noise_std`` (see
        :class:`gpu_deconv.core.noise.NoiseModel`).
    min_gain, max_gain : float, float or None
        Clamp of the response.
    """
    return Target("flat", float(noise_var), 1.0, OMEGA0, min_gain, max_gain)


def wiener_natural(
    noise_var: float,
    level: float,
    *,
    omega0: float = OMEGA0,
    min_gain: float = 1.0,
    max_gain: float | None = None,
) -> Target:
    """Wiener target with the natural-image spectrum ``S = A / (|w|^2 + w0^2)`` (the default).

    ``T = B S / (B^2 S + noise_var)``, clamped to ``[min_gain, max_gain]``.

    Parameters
    ----------
    noise_var : float
        Noise variance in linear units^2 (the square of the noise standard deviation ``noise_std``).
    level : float
        Spectrum level ``A`` (linear units^2 rad^2/px^2), from :func:`gpu_deconv.core.spectrum.estimate_level`.
    omega0 : float
        Low-frequency corner, rad/px.
    """
    return Target("natural", float(noise_var), float(level), float(omega0), min_gain, max_gain)
