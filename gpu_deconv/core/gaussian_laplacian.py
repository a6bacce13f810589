"""The Gaussian-Laplacian basis: differences of small pixel-integrated Gaussians.

``G_0`` is the identity and ``G_k`` the pixel-integrated Gaussian of sigma ``s_k``
(:class:`gpu_deconv.core.blur.Gaussian`, radius ``ceil(4 s_k) + 1``), default ``s = 0.3, 0.6, 0.9, 1.2, 1.5``:
five bands, five coefficients, a 5x5 Gram matrix. Finer than the comb's octaves, so it follows the
Wiener target better for blur sigmas ~0.7-3 px. Fitted in 1D it needs a ridge (the 2D response of
1D-fitted coefficients explodes off the axes); fitted over the true 2D responses it needs none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .basis import Basis
from .blur import Gaussian

DEFAULT_SIGMAS = (0.3, 0.6, 0.9, 1.2, 1.5)


class GaussianLaplacian(Basis):
    """Differences of Gaussians with increasing sigmas (px).

    Parameters
    ----------
    sigmas : sequence of float
        Strictly increasing Gaussian sigmas in [0.1, 3.5] px, 1 to 7 of them.
    """

    name = "laplacian"

    def __init__(self, sigmas: Sequence[float] = DEFAULT_SIGMAS) -> None:
        s = tuple(float(v) for v in sigmas)
        if not 1 <= len(s) <= 7:
            raise ValueError(f"GaussianLaplacian takes 1 to 7 sigmas, got {len(s)}")
        if any(not np.isfinite(v) or not 0.1 <= v <= 3.5 for v in s):
            raise ValueError(f"GaussianLaplacian sigmas must be 0.1..3.5 px, got {s}")
        if any(b <= a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError(f"GaussianLaplacian sigmas must increase strictly, got {s}")
        self.sigmas = s
        self.lowpass_taps = tuple(Gaussian(v).taps for v in s)
        self.sigma_range = (0.1, min(4.0, 2.0 * s[-1]))

    def __repr__(self) -> str:
        return f"GaussianLaplacian(sigmas={self.sigmas})"
