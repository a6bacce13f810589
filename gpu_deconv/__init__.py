"""gpu_deconv: real-time GPU deconvolution of mild blur.

Sub-packages show the architecture: :mod:`gpu_deconv.core` (the maths: blur models, targets, bases,
quadrature fits, design, statistics, the NumPy reference of every pass; numpy + scipy only),
:mod:`gpu_deconv.gl` (the OpenGL engine, :class:`Deconvolver`), :mod:`gpu_deconv.io` (image and video files,
atomic writes, the batch runner) and :mod:`gpu_deconv.apps` (command line, viewer, shader export, demo).

The names below are imported on first use, so ``import gpu_deconv`` loads neither scipy, moderngl nor any
codec: start-up stays fast for the command line and for hosts that embed the engine.

Units, everywhere: sigma in pixels; noise as a standard deviation in linear-light units (1.0 = white).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.blur import Binomial, Box, Gaussian, Taps
    from .core.comb import Comb
    from .core.design import Design, FilterDesigner, FrameFormat, auto_method
    from .core.fit import FitResult, LaplacianFit
    from .core.gaussian_laplacian import GaussianLaplacian
    from .core.noise import NoiseModel, estimate_noise
    from .core.params import DeconvParams
    from .core.plan import MixtureStage, Plan
    from .core.targets import Target, wiener_flat, wiener_natural
    from .gl.engine import Deconvolver

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_WHERE = {
    "Binomial": "core.blur", "Box": "core.blur", "Gaussian": "core.blur", "Taps": "core.blur",
    "Comb": "core.comb", "Design": "core.design", "FilterDesigner": "core.design", "FrameFormat": "core.design",
    "auto_method": "core.design", "FitResult": "core.fit", "LaplacianFit": "core.fit",
    "GaussianLaplacian": "core.gaussian_laplacian", "NoiseModel": "core.noise", "estimate_noise": "core.noise",
    "DeconvParams": "core.params", "MixtureStage": "core.plan", "Plan": "core.plan", "Target": "core.targets",
    "wiener_flat": "core.targets", "wiener_natural": "core.targets", "Deconvolver": "gl.engine",
}

__all__ = [
    "Binomial", "Box", "Comb", "DeconvParams", "Deconvolver", "Design", "FilterDesigner", "FitResult", "FrameFormat",
    "Gaussian", "GaussianLaplacian", "LaplacianFit", "MixtureStage", "NoiseModel", "Plan", "Taps", "Target",
    "auto_method", "estimate_noise", "wiener_flat", "wiener_natural",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'gpu_deconv' has no attribute {name!r}")
    value = getattr(import_module(f".{where}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
