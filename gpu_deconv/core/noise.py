"""Noise model and noise estimation.

Units: noise is a standard deviation in linear-light units (1.0 = full white). The model's variance
is ``std^2`` plus the quantization noise of integer input, ``Delta^2 / 12`` with
``Delta = 1 / (2^bits - 1)`` one code value (uniform rounding error). For sRGB-encoded input the code
step in linear light varies with brightness; we use the encoded step, which is exact at the sRGB
curve's unit slope (mid-dark greys) and conservative in highlights.

Estimation (:func:`estimate_noise`): the 10th percentile, over 16x16 tiles, of each tile's mean squared
*diagonal* finest à-trous band ``hh`` (taps ``[1, -2, 1]/4`` along both axes, see
:mod:`gpu_deconv.core.stats`), divided by that band's white-noise gain ``(6/16)^2``. The diagonal band
cancels edges along either axis and blurred image content has almost no energy there, and a low
percentile over tiles ignores the textured majority of tiles (Immerkaer 1996; Donoho's MAD of the HH
wavelet band; the weak-texture-patch idea of Liu et al. 2013, done per tile so a GPU reduction can
produce it). On pure noise a tile's energy is ~ chi-square with ``nu = n C / 3.78`` degrees of freedom
(n pixels, C channels; 3.78 = sum of the squared autocorrelation of the HH band), so the percentile
is divided by ``chi2.ppf(0.1, nu) / nu`` to be unbiased (0.787 for gray, 0.875 for RGB; measured
0.791 and 0.868).

Bias, measured on scikit-image photographs (tests/test_noise.py): within +-6 % on pure noise and on
blurred (sigma >= 0.5) textured photographs for noise 0.002-0.05 (worst +14 % at noise 0.002,
sigma 0.5); on sharp, finely textured images at very low noise it over-reads (texture is
indistinguishable from noise there); where noise is clipped at 0 (dark areas) it under-reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .stats import BLOCK, BandStats, band_statistics

#: White-noise variance gain of the diagonal band ``([1, -2, 1]/4)^(x2)``: (1/16 + 1/4 + 1/16)^2.
HH_GAIN = 0.140625
#: Percentile of the tile energies used by the estimator.
QUANTILE = 0.10
#: Sum of squared autocorrelations of the HH band (1D [1,-4,6,-4,1]/6 -> 70/36, squared for 2D).
HH_CORRELATION = (70.0 / 36.0) ** 2


def quantization_variance(bits: int | None) -> float:
    """``Delta^2 / 12`` with ``Delta = 1/(2^bits - 1)``; 0 for float input (``bits`` None or >= 32)."""
    if bits is None or bits >= 32:
        return 0.0
    if int(bits) != bits or bits < 1:
        raise ValueError(f"bit depth must be a positive integer, got {bits!r}")
    delta = 1.0 / (2.0 ** int(bits) - 1.0)
    return delta * delta / 12.0


@dataclass(frozen=True)
class NoiseModel:
    """Noise of a frame: sensor/compression noise plus integer quantization.

    Parameters
    ----------
    std : float
        Standard deviation in linear units, >= 0.
    bits : int or None
        Integer bit depth of the input (adds ``Delta^2/12``); None for float input.
    """

    std: float = 0.0
    bits: int | None = None

    def __post_init__(self) -> None:
        s = float(self.std)
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"noise std must be a finite number >= 0, got {self.std!r}")
        quantization_variance(self.bits)  # validates
        object.__setattr__(self, "std", s)

    @property
    def variance(self) -> float:
        """Total variance ``std^2 + Delta^2/12`` (linear units^2)."""
        return self.std * self.std + quantization_variance(self.bits)


def _lower_gamma_regularized(a: float, x: float) -> float:
    """``P(a, x) = gamma(a, x) / Gamma(a)`` by its power series ``x^a e^-x / Gamma(a+1) sum x^n / (a+1)_n``."""
    if x <= 0.0:
        return 0.0
    term = total = 1.0 / a
    n = 0
    while term > 1e-17 * total:
        n += 1
        term *= x / (a + n)
        total += term
    return total * math.exp(a * math.log(x) - x - math.lgamma(a))


@lru_cache(maxsize=64)
def percentile_bias(pixels: int, channels: int, quantile: float = QUANTILE) -> float:
    """``chi2.ppf(q, nu) / nu``: expected ratio of a tile-energy percentile to the noise energy.

    The chi-square quantile ``x`` solves ``P(nu/2, x/2) = q``: Newton steps on the regularised lower
    incomplete gamma function from the Wilson-Hilferty start. Written out (agrees with scipy's
    ``2 gammaincinv(nu/2, q)`` to 1e-12, tests/test_noise.py) because importing scipy.special or
    scipy.stats costs 0.5-1 s of a one-photo run's start-up (measured) for this one number.
    """
    from statistics import NormalDist  # lazy: a few ms

    nu = max(pixels * channels / HH_CORRELATION, 1.0)
    a = nu / 2.0
    h = 2.0 / (9.0 * nu)
    x = a * max(1.0 - h + NormalDist().inv_cdf(quantile) * math.sqrt(h), 0.1) ** 3  # x/2 of Wilson-Hilferty
    for _ in range(60):
        density = math.exp((a - 1.0) * math.log(x) - x - math.lgamma(a))
        step = (_lower_gamma_regularized(a, x) - quantile) / density
        x = max(x - step, 0.5 * x)
        if abs(step) <= 1e-15 * x:
            break
    return 2.0 * x / nu


def noise_from_stats(stats: BandStats) -> float:
    """Noise standard deviation from band statistics.

    ``sqrt(P10_tiles(E_hh) / (HH_GAIN * percentile_bias))`` over the tiles of the most common (full)
    size; edge tiles that are smaller are left out unless nothing else remains.
    """
    means = stats.hh_block_means.ravel()
    counts = stats.block_counts.ravel()
    if means.size == 0:
        return 0.0
    n = int(counts.max())
    keep = counts == n
    if keep.sum() < 8:  # tiny images: take every tile, assume their mean size
        keep = counts > 0
        n = max(int(np.mean(counts[keep])), 1)
    p = float(np.quantile(means[keep], QUANTILE))
    # tiles averaged over several frames (temporal smoothing) have proportionally more degrees of freedom
    pixels = max(int(round(n * stats.frames)), 1)
    return float(math.sqrt(max(p, 0.0) / (HH_GAIN * percentile_bias(pixels, stats.channels))))


def estimate_noise(image: np.ndarray, block: int = BLOCK) -> float:
    """Estimate the noise standard deviation of a linear image (see the module docstring).

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        Linear-light values; alpha (LA, RGBA) is ignored.
    block : int
        Tile edge in pixels.

    Returns
    -------
    float
        Noise standard deviation in linear units.
    """
    return noise_from_stats(band_statistics(image, block))
