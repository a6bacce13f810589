"""A Polyblur-style blind Gaussian-blur estimator: the peer of ``benchmarks/blur_estimation.py``.

Written for this project from the paper's description (Delbracio et al., "Polyblur: Removing mild blur
by polynomial reblurring", IEEE TCI 7, 2021, Sec. III-B), not from its code:

1. the gray image is range-normalised by its ``q`` and ``1 - q`` quantiles (q = 1e-4) and clipped to
   [0, 1], so the strongest edges of a typical photograph span the unit range;
2. its gradient is taken in the Fourier domain (``i w`` times the spectrum; the image is mirror-extended
   first so the periodic transform sees no wrap-around edge);
3. for ``n_angles`` directions ``theta_k = k pi / n_angles`` the maximum over the image of the
   directional derivative ``|cos(theta) g_x - sin(theta) g_y|`` is taken, interpolated over 30 angles
   (periodic cubic spline), and the direction with the *smallest* maximum is the most blurred one
   (``m_n``); ``m_o`` is the value 90 degrees away;
4. a unit step blurred by a Gaussian of sigma ``s`` has a maximum slope ``1 / (sqrt(2 pi) s)``; with the
   intrinsic blur ``b`` of sharp images in quadrature the model is ``m = c / sqrt(sigma^2 + b^2)``, so

       sigma = sqrt(max(c^2 / m^2 - b^2, 0.09)),  clipped to [0.3, 4] px,

   with the paper's constants c = 0.362, b = 0.464 (fitted by its authors on their own sharp images).

:func:`calibrate` refits ``(c, b)`` for the least mean absolute error over held-out photographs, which is
the fair way to run a peer on a different image pipeline (our blur is applied in linear light; the
paper's c, b come from its authors' sRGB images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PAPER_C = 0.362
PAPER_B = 0.464
SIGMA_CLIP = (0.3, 4.0)


def fourier_gradient(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(g_x, g_y)`` of a 2D image by ``i w`` in the Fourier domain, after mirror extension to 2H x 2W."""
    h, w = gray.shape
    ext = np.pad(np.asarray(gray, dtype=np.float64), ((0, h), (0, w)), mode="symmetric")
    spec = np.fft.rfft2(ext)
    wy = 2.0 * np.pi * np.fft.fftfreq(2 * h)[:, None]
    wx = 2.0 * np.pi * np.fft.rfftfreq(2 * w)[None, :]
    gx = np.fft.irfft2(spec * (1j * wx), s=ext.shape)[:h, :w]
    gy = np.fft.irfft2(spec * (1j * wy), s=ext.shape)[:h, :w]
    return gx, gy


@dataclass(frozen=True)
class MaxGradients:
    """Directional gradient maxima of a normalised image."""

    normal: float  #: smallest maximum over directions (the most blurred direction)
    orthogonal: float  #: the maximum 90 degrees away
    theta: float  #: direction of ``normal`` (rad)


def max_gradients(gray: np.ndarray, n_angles: int = 6, n_interp: int = 30, q: float = 1e-4) -> MaxGradients:
    """Steps 1-3 of the module docstring."""
    from scipy.interpolate import CubicSpline

    g = np.asarray(gray, dtype=np.float64)
    lo, hi = np.quantile(g, [q, 1.0 - q])
    g = np.clip((g - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    gx, gy = fourier_gradient(g)
    th = np.linspace(0.0, np.pi, n_angles + 1)
    m = np.array([np.abs(math.cos(t) * gx - math.sin(t) * gy).max() for t in th[:-1]])
    spline = CubicSpline(th, np.r_[m, m[0]], bc_type="periodic")
    ti = np.arange(n_interp) * (np.pi / n_interp)
    mi = spline(ti)
    i = int(np.argmin(mi))
    return MaxGradients(float(mi[i]), float(mi[(i + n_interp // 2) % n_interp]), float(ti[i]))


def sigma_from_gradient(m: float, c: float = PAPER_C, b: float = PAPER_B) -> float:
    """Step 4: ``sqrt(max(c^2/m^2 - b^2, 0.09))`` clipped to [0.3, 4] px."""
    s2 = c * c / max(m * m, 1e-16) - b * b
    return float(np.clip(math.sqrt(max(s2, 0.09)), *SIGMA_CLIP))


def estimate(gray: np.ndarray, c: float = PAPER_C, b: float = PAPER_B) -> tuple[float, float, float]:
    """Polyblur-style ``(sigma, rho, theta)``: blur sigma along the most blurred direction, across it (px),
    and that direction (rad)."""
    mg = max_gradients(gray)
    return sigma_from_gradient(mg.normal, c, b), sigma_from_gradient(mg.orthogonal, c, b), mg.theta


def calibrate(normal_maxima: np.ndarray, sigmas: np.ndarray) -> tuple[float, float]:
    """``(c, b)`` minimising the mean absolute error of :func:`sigma_from_gradient` over held-out cases
    (grid search, c in 0.15..0.6, b in 0..1.5; the peer's best shot, not a least-squares line that large
    sigmas would dominate)."""
    m = np.asarray(normal_maxima, dtype=np.float64)
    s = np.asarray(sigmas, dtype=np.float64)
    best = (math.inf, PAPER_C, PAPER_B)
    for c in np.arange(0.15, 0.6001, 0.005):
        for b in np.arange(0.0, 1.5001, 0.01):
            s2 = c * c / np.maximum(m * m, 1e-16) - b * b
            est = np.clip(np.sqrt(np.maximum(s2, 0.09)), *SIGMA_CLIP)
            err = float(np.mean(np.abs(est - s)))
            if err < best[0]:
                best = (err, float(c), float(b))
    return best[1], best[2]
