"""The à-trous comb basis: dilated ``[1/4, 1/2, 1/4]`` lowpasses.

Level j applies ``a_j = [1/4, 0..0, 1/2, 0..0, 1/4]`` with dilation ``2^(j-1)``, whose response is
``cos^2(2^(j-1) w / 2)``. The lowpasses are cumulative: ``G_k = a_1 a_2 ... a_k``, so
``G_k(w) = prod_{j<=k} cos^2(2^(j-1) w / 2)`` and the bands ``L_k = G_{k-1} - G_k`` tile the spectrum
in octaves (the "starlet" / à-trous wavelet of Starck & Murtagh). Two levels suffice for blur sigmas
~0.3-0.7 px, three reach ~2 px. In 1D over [0, pi] the Gram matrix of the bands is rational:
[[3/8, 3/32, 3/128], [3/32, 7/64, 9/256], [3/128, 9/256, 23/512]] (tested).
"""

from __future__ import annotations

import numpy as np

from .basis import Basis


def atrous_lowpass_taps(levels: int) -> tuple[np.ndarray, ...]:
    """1D taps of the cumulative à-trous lowpasses ``G_1..G_levels``."""
    taps = []
    g = np.array([1.0])
    for j in range(levels):
        dil = 2**j
        a = np.zeros(2 * dil + 1)
        a[0], a[dil], a[-1] = 0.25, 0.5, 0.25
        g = np.convolve(g, a)
        taps.append(g.copy())
    return tuple(taps)


class Comb(Basis):
    """À-trous comb basis with 2 or 3 levels (2 or 3 coefficients).

    Parameters
    ----------
    levels : {2, 3}
    """

    name = "comb"

    def __init__(self, levels: int = 2) -> None:
        if levels not in (2, 3):
            raise ValueError(f"comb basis levels must be 2 or 3, got {levels!r}")
        self.levels = levels
        self.lowpass_taps = atrous_lowpass_taps(levels)
        self.sigma_range = (0.1, 1.0) if levels == 2 else (0.1, 2.0)

    def lowpass_response(self, w: np.ndarray) -> np.ndarray:
        """Closed form ``prod cos^2(2^(j-1) w/2)`` (identical to the tap DTFT, cheaper)."""
        w = np.asarray(w, dtype=np.float64)
        a = np.cos(np.multiply.outer(w, 2.0 ** np.arange(self.levels)) * 0.5) ** 2
        return np.concatenate([np.ones(w.shape + (1,)), np.cumprod(a, axis=-1)], axis=-1)

    def __repr__(self) -> str:
        return f"Comb(levels={self.levels})"
