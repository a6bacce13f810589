"""Blur models: exact 1D taps and their exact frequency response.

Every model is a symmetric, odd-length, normalised 1D kernel ``t[-r..r]`` applied separably, so its
2D response is the product ``B(wx) * B(wy)`` and its 1D response is the DTFT of the taps, a cosine sum:

    B(w) = t_0 + 2 * sum_{k=1}^{r} t_k cos(k w),        w in rad/pixel.

Units: sigma and widths in pixels.

References
----------
The pixel-area-integrated Gaussian follows the seed post ("GPU deconvolution with a Laplacian basis")
with its off-by-one, asymmetric ``np.arange(-5, 5)`` support corrected to a symmetric radius
``ceil(4 sigma) + 1``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .plan import MAX_RADIUS

#: Valid Gaussian sigma range in pixels.
GAUSSIAN_SIGMA_RANGE = (0.1, 4.0)


def cos_response(taps: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """DTFT of symmetric odd-length ``taps`` at frequencies ``w`` (rad/pixel), vectorised over ``w``."""
    t = np.asarray(taps, dtype=np.float64)
    r = t.size // 2
    w = np.asarray(w, dtype=np.float64)
    if r == 0:
        return np.full(w.shape, t[0])
    return t[r] + 2.0 * (np.cos(np.multiply.outer(w, np.arange(1, r + 1))) @ t[r + 1 :])


class BlurModel:
    """A separable symmetric blur; subclasses set ``taps`` (float64, odd length, sum 1)."""

    taps: np.ndarray

    @property
    def radius(self) -> int:
        return self.taps.size // 2

    def response(self, w: np.ndarray | float) -> np.ndarray:
        """1D frequency response ``B(w)``, w in rad/pixel."""
        return cos_response(self.taps, w)

    def response2d(self, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """2D response ``B(wx) B(wy)`` of the separable blur (broadcast over wx, wy)."""
        return self.response(wx) * self.response(wy)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and np.array_equal(self.taps, other.taps)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.taps.tobytes()))


def _check_number(name: str, v: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return f


@lru_cache(maxsize=512)
def _gaussian_taps(sigma: float) -> np.ndarray:
    # math.erf over the few edges, not scipy.special.erf: importing scipy.special costs ~0.5 s of a
    # one-photo run's start-up, and both agree to 1 ulp.
    r = math.ceil(4.0 * sigma) + 1
    s = sigma * math.sqrt(2.0)
    edges = np.array([math.erf((x + 0.5) / s) for x in range(-r - 1, r + 1)])  # erf at x + 1/2, x = -r-1..r
    t = 0.5 * (edges[1:] - edges[:-1])
    t = 0.5 * (t + t[::-1])
    t /= t.sum()
    t.setflags(write=False)
    return t


class Gaussian(BlurModel):
    """Pixel-area-integrated Gaussian blur.

    ``t_x = 1/2 [erf((x + 1/2) / (sigma sqrt 2)) - erf((x - 1/2) / (sigma sqrt 2))]`` for
    ``|x| <= ceil(4 sigma) + 1``, normalised to sum 1: the blur a sensor pixel of unit area sees from a
    continuous Gaussian PSF.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, 0.1 <= sigma <= 4.
    """

    def __init__(self, sigma: float) -> None:
        s = _check_number("sigma", sigma)
        lo, hi = GAUSSIAN_SIGMA_RANGE
        if not lo <= s <= hi:
            raise ValueError(f"Gaussian sigma must be {lo:g}..{hi:g} px, got {s:g}")
        self.sigma = s
        self.taps = _gaussian_taps(s)

    def __repr__(self) -> str:
        return f"Gaussian(sigma={self.sigma:g}, radius={self.radius})"


class Binomial(BlurModel):
    """Binomial blur of even order ``n``: taps ``C(n, k) / 2^n`` (n = 2 gives [1/4, 1/2, 1/4])."""

    def __init__(self, n: int = 2) -> None:
        if int(n) != n or n < 2 or n % 2 or n // 2 > MAX_RADIUS:
            raise ValueError(f"Binomial order must be an even integer in 2..{2 * MAX_RADIUS}, got {n!r}")
        self.n = int(n)
        t = np.array([math.comb(self.n, k) for k in range(self.n + 1)], dtype=np.float64)
        self.taps = t / t.sum()

    @property
    def sigma(self) -> float:
        """Standard deviation sqrt(n)/2 px."""
        return math.sqrt(self.n) / 2.0

    def __repr__(self) -> str:
        return f"Binomial(n={self.n})"


class Box(BlurModel):
    """Box blur of real ``width`` >= 1 px, pixel-integrated: each tap is the overlap of the pixel
    ``[x - 1/2, x + 1/2]`` with ``[-width/2, width/2]``, divided by ``width`` (symmetric for any width)."""

    def __init__(self, width: float) -> None:
        w = _check_number("box width", width)
        if not 1.0 <= w <= 2 * MAX_RADIUS + 1:
            raise ValueError(f"box width must be 1..{2 * MAX_RADIUS + 1} px, got {w:g}")
        self.width = w
        r = math.ceil(w / 2.0 - 0.5)
        x = np.arange(-r, r + 1, dtype=np.float64)
        overlap = np.clip(np.minimum(x + 0.5, w / 2) - np.maximum(x - 0.5, -w / 2), 0.0, None)
        self.taps = overlap / overlap.sum()

    @property
    def sigma(self) -> float:
        return float(np.sqrt(np.sum(self.taps * (np.arange(self.taps.size) - self.radius) ** 2)))

    def __repr__(self) -> str:
        return f"Box(width={self.width:g})"


class Taps(BlurModel):
    """Any user-given symmetric 1D kernel (odd length; normalised to sum 1, which must be positive)."""

    def __init__(self, taps: np.ndarray) -> None:
        t = np.asarray(taps, dtype=np.float64).ravel()
        if t.size == 0 or t.size % 2 == 0:
            raise ValueError(f"blur taps need an odd length, got {t.size}")
        if t.size // 2 > MAX_RADIUS:
            raise ValueError(f"blur taps may have at most {2 * MAX_RADIUS + 1} entries, got {t.size}")
        if not np.all(np.isfinite(t)):
            raise ValueError("blur taps must be finite")
        if not np.allclose(t, t[::-1], rtol=1e-9, atol=1e-12):
            raise ValueError("blur taps must be symmetric (t[i] == t[-1 - i])")
        s = t.sum()
        if s <= 0:
            raise ValueError(f"blur taps must have a positive sum, got {s:g}")
        self.taps = 0.5 * (t + t[::-1]) / s

    @property
    def sigma(self) -> float:
        return float(np.sqrt(np.sum(self.taps * (np.arange(self.taps.size) - self.radius) ** 2)))

    def __repr__(self) -> str:
        return f"Taps({np.array2string(self.taps, precision=4)})"


def make_blur(kind: str, sigma: float, binomial_order: int = 2) -> BlurModel:
    """Blur model from a family name: ``'gaussian'`` (sigma), ``'box'`` (width = sigma), ``'binomial'``."""
    if kind == "gaussian":
        return Gaussian(sigma)
    if kind == "box":
        return Box(sigma)
    if kind == "binomial":
        return Binomial(binomial_order)
    raise ValueError(f"blur must be 'gaussian', 'box' or 'binomial', got {kind!r}")
