"""Baseline deconvolvers with the same API as the Laplacian fits: a designed FIR, unsharp mask, Polyblur.

Each baseline returns a :class:`~gpu_deconv.core.plan.Plan`-ready stage list, so the GPU and the reference
apply them with the same passes as the main methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .blur import BlurModel, cos_response
from .fit import FitResult, LaplacianFit
from .gaussian_laplacian import GaussianLaplacian
from .plan import MAX_RADIUS, MixtureStage
from .targets import Target


@dataclass(eq=False)
class FIRResult:
    """A separable FIR ``h (x) h`` designed toward the 1D target ``T(w, 0)``.

    Attributes
    ----------
    taps : ndarray
        Odd-length symmetric taps, normalised to sum 1 (DC preserved).
    """

    taps: np.ndarray
    target: Target
    blur: BlurModel

    def response(self, wx: np.ndarray, wy: np.ndarray | None = None) -> np.ndarray:
        h = cos_response(self.taps, wx)
        return h if wy is None else h * cos_response(self.taps, wy)

    @property
    def peak_gain(self) -> float:
        w = np.linspace(0.0, np.pi, 257)
        return float(np.abs(cos_response(self.taps, w)).max() ** 2)

    def stage(self, strength: float = 1.0) -> MixtureStage:
        # strength blends with the identity: (1 - s) x + s (h (x) h) x
        return MixtureStage(taps=(self.taps,), weights=np.array([1.0 - strength, strength]))

    def __repr__(self) -> str:
        return f"FIRResult(taps={self.taps.size}, peak_gain={self.peak_gain:.3g})"


def default_fir_taps(sigma: float) -> int:
    """Odd tap count for a blur of ``sigma`` px: ``2 ceil(4 sigma) + 3`` clipped to 7..31."""
    return int(min(2 * MAX_RADIUS + 1, max(7, 2 * math.ceil(4.0 * sigma) + 3)))


def design_fir(blur: BlurModel, target: Target, numtaps: int, bands: int = 64) -> FIRResult:
    """Least-squares FIR (``scipy.signal.firls``) toward the 1D target, output-error weighted.

    The target is sampled along the x axis (``T(w, 0)``) on ``bands`` piecewise-linear segments of
    [0, pi], each weighted by ``B^2 S + sigma^2`` at its midpoint; the separable 2D filter ``h (x) h``
    then only follows the target on the axes (the baseline's known weakness). This is the seed post's
    21-tap ``firls`` design when ``numtaps = 21``.

    Parameters
    ----------
    numtaps : int
        Odd, 3..31.
    """
    if int(numtaps) != numtaps or numtaps % 2 == 0 or not 3 <= numtaps <= 2 * MAX_RADIUS + 1:
        raise ValueError(f"FIR tap count must be odd in 3..{2 * MAX_RADIUS + 1}, got {numtaps!r}")
    from scipy.signal import firls  # lazy: importing scipy.signal costs ~0.45 s of start-up

    edges = np.linspace(0.0, np.pi, bands + 1)
    b = blur.response(edges)
    t, _ = target.evaluate(b, edges * edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    bm = blur.response(mid)
    _, sm = target.evaluate(bm, mid * mid)
    w = target.weight(bm, sm)
    w = w / w.max() + 1e-9
    band_edges = np.repeat(edges, 2)[1:-1]
    desired = np.repeat(t, 2)[1:-1]
    h = firls(int(numtaps), band_edges, desired, weight=w, fs=2 * np.pi)
    h = 0.5 * (h + h[::-1])
    return FIRResult(h / h.sum(), target, blur)


@dataclass(eq=False)
class UnsharpResult:
    """``1 + amount (1 - G_radius)``: unsharp mask as a one-band Gaussian-Laplacian filter."""

    radius: float
    amount: float
    fit: FitResult | None = None

    @property
    def basis(self) -> GaussianLaplacian:
        return GaussianLaplacian((self.radius,))

    def stage(self, strength: float = 1.0) -> MixtureStage:
        return self.basis.stage(np.array([self.amount]), strength)

    def response(self, wx: np.ndarray, wy: np.ndarray | None = None) -> np.ndarray:
        b = self.basis.bands_1d(wx) if wy is None else self.basis.bands_2d(wx, wy)
        return 1.0 + self.amount * b[..., 0]

    def __repr__(self) -> str:
        return f"UnsharpResult(radius={self.radius:g}, amount={self.amount:.4g})"


def unsharp_mask(
    blur: BlurModel, target: Target, radius: float, amount: float | None = None, domain: str = "2d",
    roundoff_var: float = 0.0,
) -> UnsharpResult:
    """Unsharp mask ``x + amount (x - G_radius x)``; ``amount=None`` fits it to the target by least
    squares with the output-error weighting (the best a one-band filter can do).

    Parameters
    ----------
    radius : float
        Gaussian sigma of the mask, px (0.1..3.5).
    amount : float or None
        Strength; None fits it.
    """
    if amount is not None:
        return UnsharpResult(float(radius), float(amount))
    fit = LaplacianFit(GaussianLaplacian((float(radius),)), domain).solve(blur, target, roundoff_var)
    return UnsharpResult(float(radius), float(fit.coefficients[0]), fit)


def polyblur_coefficients(alpha: float, beta: float) -> tuple[float, float, float, float]:
    """``(a3, a2, a1, a0)`` of Polyblur's ``p(B) = a3 B^3 + a2 B^2 + a1 B + a0``.

    ``a3 = alpha/2 - beta + 2``, ``a2 = 3 beta - alpha - 6``, ``a1 = 5 - 3 beta + alpha/2``, ``a0 = beta``;
    ``(alpha, beta) = (2, 4)`` gives ``4 - 6B + 4B^2 - B^3``, the order-3 Neumann series of ``1/B``.

    Reference: M. Delbracio, I. Garcia-Dorado, S. Choi, D. Kelly, P. Milanfar, "Polyblur: Removing
    mild blur by polynomial reblurring", IEEE TCI 2021.
    """
    a3 = alpha / 2.0 - beta + 2.0
    a2 = 3.0 * beta - alpha - 6.0
    a1 = 5.0 - 3.0 * beta + alpha / 2.0
    return a3, a2, a1, float(beta)


def polyblur_stages(blur: BlurModel, alpha: float, beta: float, strength: float = 1.0) -> tuple[MixtureStage, ...]:
    """Horner's scheme ``a0 x + B(a1 x + B(a2 x + a3 B x))`` as three GPU stages (six passes)."""
    if blur.radius > MAX_RADIUS:
        raise ValueError(f"polyblur needs a blur of radius <= {MAX_RADIUS} px, got {blur.radius} ({blur!r})")
    a3, a2, a1, a0 = polyblur_coefficients(alpha, beta)
    t = (blur.taps,)
    return (
        MixtureStage(t, np.array([a2, a3]), "input"),
        MixtureStage(t, np.array([a1, 1.0]), "previous"),
        MixtureStage(t, np.array([strength * a0 + 1.0 - strength, strength]), "previous"),
    )


def polyblur_response(blur: BlurModel, alpha: float, beta: float, wx: np.ndarray, wy: np.ndarray | None = None):
    """``p(B)`` on frequencies (1D if ``wy`` is None)."""
    b = blur.response(wx) if wy is None else blur.response2d(wx, wy)
    a3, a2, a1, a0 = polyblur_coefficients(alpha, beta)
    return ((a3 * b + a2) * b + a1) * b + a0
