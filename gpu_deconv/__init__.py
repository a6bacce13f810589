"""gpu_deconv: real-time GPU deconvolution of mild, known blur.

The math core (blur models, targets, bases, quadrature fits, baselines; numpy + scipy only) lives in
small modules named for what they hold; the OpenGL engine (:class:`Deconvolver`) is imported lazily so
the math works on machines without OpenGL.

Units, everywhere: sigma in pixels; noise as a standard deviation in linear-light units (1.0 = white).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.blur import Binomial, Box, Gaussian, Taps
from .core.comb import Comb
from .core.design import Design, FilterDesigner, auto_method
from .core.fit import FitResult, LaplacianFit
from .core.gaussian_laplacian import GaussianLaplacian
from .core.noise import NoiseModel, estimate_noise
from .core.params import DeconvParams
from .core.plan import MixtureStage, Plan
from .core.targets import Target, wiener_flat, wiener_natural

if TYPE_CHECKING:
    from .gl.engine import Deconvolver

__version__ = "0.1.0"

__all__ = [
    "Binomial", "Box", "Comb", "DeconvParams", "Deconvolver", "Design", "FilterDesigner", "FitResult", "Gaussian",
    "GaussianLaplacian", "LaplacianFit", "MixtureStage", "NoiseModel", "Plan", "Taps", "Target", "auto_method",
    "estimate_noise", "wiener_flat", "wiener_natural",
]


def __getattr__(name: str) -> Any:
    if name == "Deconvolver":
        from .gl.engine import Deconvolver

        return Deconvolver
    raise AttributeError(f"module 'gpu_deconv' has no attribute {name!r}")
