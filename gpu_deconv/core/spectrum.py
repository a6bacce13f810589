"""Level of the natural-image spectrum, estimated from a frame's band energies.

Model: the observed frame is ``y = b * x + n`` with ``S_x(w) = A / (|w|^2 + w0^2)`` and white noise of
variance ``sigma^2``. For a band filter ``L_j`` the expected mean squared band value is

    E_j = A s_j + sigma^2 n_j,
    s_j = mean_{[0,pi]^2} |L_j|^2 B^2 / (|w|^2 + w0^2),      n_j = mean_{[0,pi]^2} |L_j|^2,

(``mean`` = integral / pi^2, by Gauss-Legendre quadrature). The bands are the comb basis' three
isotropic bands measured by :func:`gpu_deconv.core.stats.band_statistics` (on the GPU by reduction). Each
band gives ``A_j = max(E_j - sigma^2 n_j, 0) / s_j``; they are pooled with weights

    w_j = f_j^2 / 4^j,       f_j = (E_j - sigma^2 n_j) / E_j   (the band's signal fraction),

so the finest band in which signal dominates noise decides. That is where the Wiener target turns
over, which is all the level is for. Why not pool all bands or use gradients: real spectra fall
faster than 1/|w|^2 at coarse scales and dark frames clip noise at 0, and such estimators then
under-read the level by up to 100x and restore almost nothing (measured before this project).

Calibration: the pooled level is finally multiplied by :data:`LEVEL_CALIBRATION` (0.35). Measured on
8 held-out scikit-image photographs (astronaut, camera, coffee, chelsea, rocket, brick, grass, gravel;
none of them in benchmarks/quality.py), sigma 0.5-2, noise 0-0.03, float and 8-bit: the raw level is
~3x what maximises PSNR, because real photographs are sparse (edges, flat areas), not the stationary
Gaussian process the Wiener filter assumes, so the linear-MSE-optimal filter sees less usable
detail than the average spectrum suggests. Scale 1 / 0.5 / 0.35: mean gain 3.64 / 3.78 / 3.75 dB,
worst case -1.83 / -0.30 / -0.01 dB against the input. The raw estimator (``calibrated=False``)
recovers the level of a true 1/|w|^2 field to ~1 % (tests/test_noise_spectrum.py).

Units: ``A`` in linear units^2 x rad^2/px^2.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .blur import BlurModel
from .comb import Comb
from .quadrature import gauss_legendre
from .stats import BandStats
from .targets import OMEGA0

#: Level used when no frame statistics exist (``gpu-deconv fit`` without an image); the median of
#: scikit-image's photographs in linear light (benchmarks/quality.py prints the per-image values).
DEFAULT_LEVEL = 2.0e-3
#: Factor applied to the estimated level (see the module docstring for the measurement).
LEVEL_CALIBRATION = 0.35
_NODES = 24


@lru_cache(maxsize=4)
def _band_tables(n: int = _NODES) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    nodes = gauss_legendre("2d", n)
    l2 = Comb(3).bands_2d(nodes.wx, nodes.wy) ** 2  # (N, 3)
    qw = nodes.q / (nodes.r2 + OMEGA0 * OMEGA0)
    noise_gain = nodes.q @ l2
    for a in (l2, qw, noise_gain):
        a.setflags(write=False)
    return nodes.axis, l2, qw, noise_gain


def band_model(blur: BlurModel) -> tuple[np.ndarray, np.ndarray]:
    """``(s_j, n_j)``: signal gain per unit level and noise gain per unit variance of the 3 bands."""
    axis, l2, qw, n_gain = _band_tables()
    b1 = blur.response(axis)
    b2 = np.outer(b1, b1).ravel() ** 2
    s_gain = (qw * b2) @ l2
    return s_gain, n_gain


def estimate_level(stats: BandStats, blur: BlurModel, noise_var: float, calibrated: bool = True) -> float:
    """Estimate the natural-spectrum level ``A`` of a frame.

    Parameters
    ----------
    stats : BandStats
        The frame's band energies (:func:`gpu_deconv.core.stats.band_statistics` or the GPU reduction).
    blur : BlurModel
        The blur the frame suffered.
    noise_var : float
        Noise variance (linear units^2), including quantization.
    calibrated : bool
        Apply :data:`LEVEL_CALIBRATION` (what the deconvolver should use); False gives the raw model fit.

    Returns
    -------
    float
        ``A`` >= 0; 0 means no detectable signal above the noise (the target is then the identity).
    """
    e = np.asarray(stats.band_energies, dtype=np.float64)
    s_gain, n_gain = band_model(blur)
    signal = e - noise_var * n_gain
    frac = np.clip(signal / np.maximum(e, 1e-300), 0.0, 1.0)
    a_j = np.maximum(signal, 0.0) / np.maximum(s_gain, 1e-300)
    w = frac * frac / 4.0 ** np.arange(1, e.size + 1)
    if w.sum() <= 0:
        return 0.0
    level = float((w @ a_j) / w.sum())
    return level * LEVEL_CALIBRATION if calibrated else level
