"""Shared machinery of the Laplacian bases (sign convention, mixture conversion, responses).

Sign convention, stated once for the package: the deconvolution filter is

    F = 1 + sum_{k=1}^{K} c_k L_k,        L_k = G_{k-1} - G_k,      G_0 = identity,

where the ``G_k`` are lowpass filters of growing width. Every ``L_k`` has zero DC gain, so ``F`` preserves
DC exactly whatever the coefficients; ``c_k > 0`` sharpens band k.

The same filter is a Gaussian mixture ``F = sum_{k=0}^{K} d_k G_k`` with ``d_0 = 1 + c_1``,
``d_k = c_{k+1} - c_k`` and ``d_K = -c_K``: one blur per level instead of one per band, which is how
the GPU applies it (see :mod:`gpu_deconv.core.plan`).
"""

from __future__ import annotations

import numpy as np

from .blur import cos_response
from .plan import MixtureStage


class Basis:
    """A family of lowpasses ``G_1..G_K`` (1D symmetric taps, applied separably in 2D)."""

    name = "basis"
    lowpass_taps: tuple[np.ndarray, ...]
    #: Useful blur-sigma range (px) where the basis can follow the Wiener target.
    sigma_range: tuple[float, float] = (0.1, 4.0)

    @property
    def size(self) -> int:
        """Number of coefficients K."""
        return len(self.lowpass_taps)

    def lowpass_response(self, w: np.ndarray) -> np.ndarray:
        """``G_k(w)`` for k = 0..K as columns (column 0 is the identity), shape ``w.shape + (K+1,)``."""
        w = np.asarray(w, dtype=np.float64)
        cols = [np.ones(w.shape)] + [cos_response(t, w) for t in self.lowpass_taps]
        return np.stack(cols, axis=-1)

    def bands_1d(self, w: np.ndarray) -> np.ndarray:
        """1D band responses ``L_k(w) = G_{k-1}(w) - G_k(w)``, shape ``w.shape + (K,)``."""
        g = self.lowpass_response(w)
        return g[..., :-1] - g[..., 1:]

    def bands_2d(self, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """True 2D band responses of the separable lowpasses, ``G_{k-1}(wx)G_{k-1}(wy) - G_k(wx)G_k(wy)``."""
        g = self.lowpass_response(wx) * self.lowpass_response(wy)
        return g[..., :-1] - g[..., 1:]

    def mixture_weights(self, c: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Gaussian-mixture weights ``d`` of ``1 + strength * sum c_k L_k`` (see the module docstring).

        ``c`` has shape ``(K,)`` or ``(..., K)`` (a coefficient table, e.g. from
        :meth:`gpu_deconv.core.fit.LaplacianFit.solve_many`); ``d`` has shape ``(..., K + 1)``.
        """
        c = np.asarray(c, dtype=np.float64) * strength
        if c.ndim == 0 or c.shape[-1] != self.size:
            raise ValueError(f"{self} takes {self.size} coefficients, got shape {c.shape}")
        d = np.empty(c.shape[:-1] + (self.size + 1,))
        d[..., 0] = 1.0 + c[..., 0]
        d[..., 1:-1] = c[..., 1:] - c[..., :-1]
        d[..., -1] = -c[..., -1]
        return d

    def stage(self, c: np.ndarray, strength: float = 1.0) -> MixtureStage:
        """The GPU stage applying ``1 + strength * sum c_k L_k``."""
        return MixtureStage(taps=self.lowpass_taps, weights=self.mixture_weights(c, strength))

    def check_sigma(self, sigma: float) -> None:
        lo, hi = self.sigma_range
        if not lo <= sigma <= hi:
            raise ValueError(
                f"blur sigma {sigma:g} px is outside the useful range of {self!r}: {lo:g}..{hi:g} px"
            )

    def key(self) -> tuple:
        return (type(self).__name__, tuple(t.tobytes() for t in self.lowpass_taps))
