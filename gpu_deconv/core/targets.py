"""Targets: the frequency response the deconvolver should have.

With blur response ``B(w)``, signal power spectrum ``S(w)`` and noise variance ``sigma^2`` (white, so
its spectrum is flat at ``sigma^2``), the linear filter minimising the expected squared error is the
Wiener filter

    T(w) = B(w) S(w) / (B(w)^2 S(w) + sigma^2).

* :func:`wiener_flat` takes ``S = 1`` (the seed post's simplification). On real photographs with
  noise 0.005 at blur sigma 0.7 it makes images ~10 dB *worse* than doing nothing: a flat spectrum
  claims far more fine detail than photographs have, so it amplifies noise where there is no signal.
* :func:`wiener_natural` (the default) takes the natural-image spectrum ``S = A / (|w|^2 + w0^2)``
  (van der Schaaf & van Hateren 1996; Field 1987) with level ``A`` estimated per frame by
  :func:`gpu_deconv.core.spectrum.estimate_level`.

Both are then clamped: ``T <- min(max(T, min_gain), max_gain)`` (corners rounded, :func:`soft_max`).
``min_gain = 1`` (default) keeps the filter from *denoising by blurring* - a deconvolver only
restores lost contrast - and makes huge noise give exactly the identity; ``min_gain = 0`` is the textbook Wiener filter.

Units: ``w`` in rad/pixel; ``sigma^2`` in linear units^2 (per-pixel variance, equal to the white
spectrum's level); ``A`` in linear units^2 x rad^2/px^2, normalised like ``sigma^2`` (the mean of S
over [-pi, pi]^2 is the signal variance).

Reference: N. Wiener (1949); the seed post "GPU deconvolution with a Laplacian basis".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Low-frequency corner of the natural spectrum (rad/px): keeps S finite at DC; far below any band here.
OMEGA0 = 0.02


#: Half-width of the rounded corner of the gain clamp (see :func:`soft_max`).
CLAMP_SOFTNESS = 0.2


def soft_max(t: np.ndarray, floor: float, eps: float = CLAMP_SOFTNESS) -> np.ndarray:
    """A smooth ``max(t, floor)``, exact at ``t == floor`` and outside ``|t - floor| < eps``:

        floor + eps * g(v),   v = (t - floor) / eps,   g(v) = v * s((v + 1) / 2) on [-1, 1],

    with ``s`` the quintic smoothstep ``6x^5 - 15x^4 + 10x^3`` (``g = 0`` below -1, ``g = v`` above 1; C2).
    Why: a kinked target costs the Gauss-Legendre fit two orders of accuracy, a plain softplus lifts
    the DC region (where the Wiener target is 1 - tiny) to ``1 + eps log 2`` so the fit boosts all low
    frequencies, and a softplus never reaches the floor, so huge noise would not give the identity.
    This one dips at most ``0.052 eps`` below the floor near ``v = -0.5``.
    """
    u = t - floor
    out = np.maximum(t, floor)  # exact outside the rounded band
    band = np.abs(u) < eps
    if band.any():  # only the few nodes near the corner pay for the polynomial
        v = u[band] * (1.0 / eps)
        x = 0.5 * (v + 1.0)
        out[band] = floor + eps * v * (x * x * x * (x * (6.0 * x - 15.0) + 10.0))
    return out


@dataclass(frozen=True)
class Target:
    """A (clamped) Wiener target.

    Attributes
    ----------
    kind : {'natural', 'flat'}
    noise_var : float
        ``sigma^2``, linear units^2 (noise plus quantization).
    level : float
        Natural-spectrum level ``A`` (ignored for 'flat').
    omega0 : float
        Spectrum corner in rad/px.
    min_gain, max_gain : float, float or None
        Clamp of ``T``.
    """

    kind: str = "natural"
    noise_var: float = 0.0
    level: float = 1.0
    omega0: float = OMEGA0
    min_gain: float = 1.0
    max_gain: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("natural", "flat"):
            raise ValueError(f"target kind must be 'natural' or 'flat', got {self.kind!r}")
        for name in ("noise_var", "level", "omega0", "min_gain"):
            v = getattr(self, name)
            try:
                ok = 0.0 <= v < math.inf and not isinstance(v, bool)
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(f"target {name} must be a finite number >= 0, got {v!r}")
        if self.max_gain is not None and not (math.isfinite(self.max_gain) and self.max_gain >= 1):
            raise ValueError(f"target max_gain must be a finite number >= 1, got {self.max_gain!r}")

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
        """``(T, S, B^2 S + sigma^2)``: the target with its output-error weighting, sharing the work."""
        s = self.spectrum(r2, shape)
        bs = b * s
        den = b * bs
        den += self.noise_var
        t = bs / (den if self.noise_var > 0 else np.maximum(den, 1e-300))
        if self.min_gain > 0:
            t = soft_max(t, self.min_gain)
        if self.max_gain is not None:
            t = -soft_max(-t, -self.max_gain)
        return t, s, den

    def weight(self, b: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        """Output-error weighting ``B^2 S + sigma^2``: with it the fit error is the excess mean squared error
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


def wiener_flat(noise_var: float, *, min_gain: float = 1.0, max_gain: float | None = None) -> Target:
    """Wiener target with a flat signal spectrum, ``T = B / (B^2 + sigma^2)`` (the seed's; not the default).

    Parameters
    ----------
    noise_var : float
        Noise variance ``sigma^2`` in linear units^2 (see :class:`gpu_deconv.core.noise.NoiseModel`).
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

    ``T = B S / (B^2 S + sigma^2)``, clamped to ``[min_gain, max_gain]``.

    Parameters
    ----------
    noise_var : float
        Noise variance ``sigma^2`` in linear units^2.
    level : float
        Spectrum level ``A`` (linear units^2 rad^2/px^2), from :func:`gpu_deconv.core.spectrum.estimate_level`.
    omega0 : float
        Low-frequency corner, rad/px.
    """
    return Target("natural", float(noise_var), float(level), float(omega0), min_gain, max_gain)
