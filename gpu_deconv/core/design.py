"""From parameters (and a frame's statistics) to a Plan: the per-frame CPU side of the engine.

``FilterDesigner.design(params, stats, frame)`` resolves the noise (given or estimated), the spectrum
level (given or estimated), the method (``auto`` picks by sigma), builds the target, solves the fit and
returns a :class:`Design` whose ``plan`` the GPU (or :mod:`gpu_deconv.core.reference`) applies. What the
designer must know about the frame's samples (bit depth, coding) travels in an explicit
:class:`FrameFormat`. Solvers are cached per basis inside the designer object (no module-level state), and
so is the last design that needed no statistics - the one design cache - so a per-frame call costs at most
the target evaluation and a tiny solve, and nothing when nothing changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .baselines import default_fir_taps, design_fir, polyblur_stages, unsharp_mask
from .basis import Basis
from .blur import GAUSSIAN_SIGMA_RANGE, BlurModel, make_blur
from .comb import Comb
from .fit import ROUNDOFF_VAR, LaplacianFit
from .gaussian_laplacian import GaussianLaplacian
from .noise import noise_from_stats, quantization_variance
from .params import ADAPTIVE_METHODS, DeconvParams
from .plan import Plan
from .spectrum import DEFAULT_LEVEL, estimate_level
from .stats import BandStats
from .targets import Target

#: Blur sigma (px) up to which ``auto`` uses the 2-level comb. Measured (benchmarks/quality.py, GL engine,
#: 7 photographs): at sigma 0.5 the 5-Gaussian basis already beats the comb by 0.1-0.8 dB at noise
#: 0.003-0.03 (and by 6 dB without noise), and by 0.5-0.9 dB at sigma 0.8; the comb's 2-3x lower cost
#: is only worth it below that.
AUTO_COMB_MAX_SIGMA = 0.4
#: Noise floor (linear std) always assumed: float32 input through fp16 intermediates still carries
#: round-off of ~2^-11 relative, and a zero-noise target (1/B) is unbounded for wide blurs.
NOISE_FLOOR = 5e-5


def auto_method(sigma: float, noise: float = 0.0) -> tuple[str, dict[str, Any]]:
    """Method chosen by ``method='auto'``: the cheapest one that follows the target for this blur.

    Returns ``(method, options)``: ``('comb', {'comb_levels': 2})`` for sigma <= 0.4 px, else
    ``('laplacian', {})``. Noise does not change the choice today: with the noise-aware target both
    bases degrade gracefully, and the comb's advantage is speed, which matters at any noise.
    """
    if sigma <= AUTO_COMB_MAX_SIGMA:
        return "comb", {"comb_levels": 2}
    return "laplacian", {}


@dataclass(frozen=True)
class FrameFormat:
    """What the designer must know about a frame's samples besides their statistics.

    Attributes
    ----------
    bits : int or None
        Integer code depth of the source (8, 10, 16...): its quantization noise ``Delta^2/12`` joins the
        noise model. None for float input.
    transfer : {'linear', 'srgb'}
        How the codes relate to linear light (the engine decodes 'srgb' before filtering). The design does
        not depend on it yet: the quantization noise uses the code step, exact at the sRGB curve's unit
        slope and conservative in highlights (see :mod:`gpu_deconv.core.noise`).
    extra_noise : float
        Noise the source's coding added that the frame statistics cannot see as white noise - a JPEG's
        compression noise (:func:`gpu_deconv.core.jpeg_noise.jpeg_noise_rms`) - as a linear std; added in
        quadrature to the estimated or given noise.
    """

    bits: int | None = None
    transfer: str = "linear"
    extra_noise: float = 0.0

    def __post_init__(self) -> None:
        quantization_variance(self.bits)  # validates the depth
        if self.transfer not in ("linear", "srgb"):
            raise ValueError(f"transfer must be 'linear' or 'srgb', got {self.transfer!r}")
        if not (math.isfinite(self.extra_noise) and self.extra_noise >= 0):
            raise ValueError(f"extra_noise must be a finite std >= 0, got {self.extra_noise!r}")


@dataclass(eq=False)
class Design:
    """Everything decided for one frame."""

    params: DeconvParams
    method: str
    plan: Plan
    blur: BlurModel
    noise_std: float
    noise_var: float
    level: float | None
    target: Target | None
    result: Any = None
    #: With ``sigma='auto'``: the frame's :class:`~gpu_deconv.core.blur_estimation.BlurEstimate` (``params``
    #: then hold the sigma actually used).
    blur_estimate: Any = None
    #: Adaptive mode: the coefficient table over the local level (:class:`~gpu_deconv.core.adaptive.AdaptiveTable`)
    #: that the passes apply per pixel; ``plan`` then holds no stage (there is no single filter).
    table: Any = None

    @property
    def adaptive(self) -> bool:
        return self.table is not None

    def response(self, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
        """The 2D response the GPU applies (exactly the plan's, float32 taps included)."""
        return self.plan.response(wx, wy)

    def summary(self) -> str:
        lvl = "-" if self.level is None else f"{self.level:.3g}"
        how = "mode=adaptive passes=5" if self.adaptive else f"passes={self.plan.passes}"
        return f"method={self.method} sigma={self.params.sigma:g} noise={self.noise_std:.4g} level={lvl} {how}"


class FilterDesigner:
    """Turns :class:`~gpu_deconv.core.params.DeconvParams` into a :class:`Design`, caching solvers.

    Parameters
    ----------
    domain : {'2d', '1d'}
        Fit domain (2D is what the shaders apply; 1D is the seed's).
    weighting : {'output', 'uniform'}
    """

    def __init__(self, domain: str = "2d", weighting: str = "output") -> None:
        self.domain = domain
        self.weighting = weighting
        self._solvers: dict[tuple, LaplacianFit] = {}
        # the last design that needed no frame statistics, and what it was designed for
        self._cached: tuple[tuple, Design] | None = None
        self._adaptive_solvers: dict[tuple, Any] = {}
        self._table: tuple[tuple, Any] | None = None  # the last adaptive table and what it was solved for

    @staticmethod
    def needs_stats(params: DeconvParams) -> bool:
        """True when the frame's statistics are needed (noise 'auto', or a level to estimate)."""
        if params.method == "identity":
            return False
        if params.noise_is_auto or params.sigma_is_auto:
            return True
        uses_target = not (
            params.method == "polyblur" or (params.method == "unsharp" and params.unsharp_amount is not None)
        )
        return uses_target and params.target == "natural" and params.level is None

    def solver(self, basis: Basis) -> LaplacianFit:
        key = (basis.key(), self.domain, self.weighting)
        s = self._solvers.get(key)
        if s is None:
            s = self._solvers[key] = LaplacianFit(basis, self.domain, weighting=self.weighting)
        return s

    @staticmethod
    def uses_adaptive(params: DeconvParams) -> bool:
        """True when ``params`` run in the adaptive mode (a Laplacian basis and ``mode='adaptive'``)."""
        return params.mode == "adaptive" and params.method in ADAPTIVE_METHODS

    def adaptive_basis(self, params: DeconvParams) -> Basis:
        """The basis of the adaptive mode for numeric-sigma ``params`` (``method='auto'`` picks by sigma)."""
        blur = make_blur(params.blur, params.sigma, params.binomial_order)
        sigma_eff = getattr(blur, "sigma", params.sigma)
        method, opts = (params.method, {}) if params.method != "auto" else auto_method(sigma_eff)
        basis: Basis = Comb(opts.get("comb_levels", params.comb_levels)) if method == "comb" else GaussianLaplacian()
        basis.check_sigma(sigma_eff)
        return basis

    def adaptive_solver(self, basis: Basis):
        """The (cached) :class:`~gpu_deconv.core.adaptive.AdaptiveSolver` of ``basis``."""
        from .adaptive import AdaptiveSolver

        key = basis.key()
        s = self._adaptive_solvers.get(key)
        if s is None:
            s = self._adaptive_solvers[key] = AdaptiveSolver(basis)
        return s

    def adaptive(self, params: DeconvParams, frame: FrameFormat | None = None,
                 measured_noise: float | None = None) -> Design:
        """The adaptive design: the coefficient table for the blur and the noise (given, or ``measured_noise``
        with ``noise='auto'``), re-solved only when one of them changes (~0.1 ms when it does).

        ``params.sigma`` must be a number here (the engine resolves ``'auto'`` first, :meth:`resolve_sigma`).
        """
        from .adaptive import noise_variance

        frame = frame or FrameFormat()
        basis = self.adaptive_basis(params)
        method = "comb" if basis.name == "comb" else "laplacian"
        blur = make_blur(params.blur, params.sigma, params.binomial_order)
        noise_var = noise_variance(None if params.noise_is_auto else float(params.noise), frame.bits,
                                   measured_noise) + frame.extra_noise ** 2
        noise_std = float(measured_noise) if params.noise_is_auto else float(params.noise)
        key = (basis.key(), blur, noise_var)
        if self._table is None or self._table[0] != key:
            self._table = (key, self.adaptive_solver(basis).solve(blur, noise_var))
        return Design(params, method, Plan(method), blur, noise_std, noise_var, None, None, table=self._table[1])

    def resolve_sigma(self, params: DeconvParams, stats: BandStats | None, bits: int | None
                      ) -> tuple[DeconvParams, Any]:
        """``params`` with ``sigma='auto'`` replaced by the frame's cautious estimate (identity when there is
        no blur worth restoring), and the :class:`~gpu_deconv.core.blur_estimation.BlurEstimate`; numeric
        sigmas pass through with None."""
        if not params.sigma_is_auto:
            return params, None
        return self._blind_sigma(params, stats, bits)

    def validate(self, params: DeconvParams) -> None:
        """Check ``params`` against what its method supports, before any frame exists.

        Raises
        ------
        ValueError
            E.g. a sigma outside the basis' useful range; the message says what is allowed.
        """
        if params.sigma_is_auto:  # the frame decides; whatever it finds is clipped to the method's range
            return
        if params.sigma_per_channel:  # each channel's sigma as if alone (the adaptive basis covers them all)
            for sigma in sorted(set(params.sigma)):
                self.validate(params.replace(sigma=sigma))
            return
        blur = make_blur(params.blur, params.sigma, params.binomial_order)
        sigma_eff = getattr(blur, "sigma", params.sigma)
        method, opts = (params.method, {}) if params.method != "auto" else auto_method(sigma_eff)
        if method == "comb":
            Comb(opts.get("comb_levels", params.comb_levels)).check_sigma(sigma_eff)
        elif method == "laplacian":
            GaussianLaplacian().check_sigma(sigma_eff)
        elif method == "polyblur":
            polyblur_stages(blur, params.polyblur_alpha, params.polyblur_beta, params.strength)

    def design(self, params: DeconvParams, stats: BandStats | None = None,
               frame: FrameFormat | None = None) -> Design:
        """Design the filter for one frame.

        Parameters
        ----------
        params : DeconvParams
        stats : BandStats or None
            The frame's band statistics; needed when :meth:`needs_stats` (else a default level is used
            and ``noise='auto'`` raises).
        frame : FrameFormat, optional
            The frame's sample format (default: float, linear).

        Raises
        ------
        ValueError
            Parameters outside what the method supports (the message says what is allowed).
        """
        frame = frame or FrameFormat()
        key = (params, frame.bits, frame.extra_noise)  # all of the frame format the design depends on
        if not self.needs_stats(params):
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            d = self._design(params, None, frame.bits, frame.extra_noise)
            self._cached = (key, d)
            return d
        return self._design(params, stats, frame.bits, frame.extra_noise)

    def _design(self, params: DeconvParams, stats: BandStats | None, bits: int | None,
                extra_noise: float = 0.0) -> Design:
        estimate = None
        if params.sigma_per_channel:  # DeconvParams allows it in the adaptive mode only, which has no global design
            raise ValueError("a per-channel sigma (R,G,B) has no global design: the adaptive mode solves its tables "
                             "per frame")
        if params.sigma_is_auto:
            params, estimate = self._blind_sigma(params, stats, bits)
            if params.method == "identity":
                d = self._design(params, None, bits, extra_noise)
                d.blur_estimate = estimate
                return d
        p = params
        blur = make_blur(p.blur, p.sigma, p.binomial_order)
        if p.method == "identity":  # needs neither a noise estimate nor statistics
            noise_std = 0.0 if p.noise_is_auto else float(p.noise)
            noise_var = noise_std * noise_std + quantization_variance(bits)
            return Design(p, "identity", Plan("identity"), blur, noise_std, noise_var, None, None)
        if p.noise_is_auto:
            if stats is None:
                raise ValueError("noise='auto' needs the frame's statistics; give a number or an image")
            noise_std = noise_from_stats(stats)  # measured noise already contains the quantization ...
            # ... but reads it low: sRGB codes are finer than Delta in linear light for dark pixels, and
            # quantization is structured contouring the diagonal band half-sees. Never assume less than
            # the code step's Delta^2/12 (measured: 8-bit noise-free photos went from -4.5 dB to >= 0).
            noise_var = max(noise_std * noise_std, quantization_variance(bits))
        else:
            noise_std = float(p.noise)
            noise_var = noise_std * noise_std + quantization_variance(bits)
        noise_var = max(noise_var + extra_noise * extra_noise, NOISE_FLOOR * NOISE_FLOOR)
        method, opts = p.method, {}
        sigma_eff = getattr(blur, "sigma", p.sigma)
        if method == "auto":
            method, opts = auto_method(sigma_eff, math.sqrt(noise_var))
        if method == "polyblur":
            stages = polyblur_stages(blur, p.polyblur_alpha, p.polyblur_beta, p.strength)
            return Design(p, method, Plan(method, stages), blur, noise_std, noise_var, None, None)
        level = None
        if p.target == "natural":
            if p.level is not None:
                level = p.level
            elif stats is not None:
                level = estimate_level(stats, blur, noise_var)
            else:
                level = DEFAULT_LEVEL
        target = Target(p.target, noise_var, 1.0 if level is None else level, min_gain=p.min_gain,
                        max_gain=p.max_gain)
        if method in ("comb", "laplacian"):
            basis: Basis = Comb(opts.get("comb_levels", p.comb_levels)) if method == "comb" else GaussianLaplacian()
            basis.check_sigma(sigma_eff)
            result = self.solver(basis).solve(blur, target, ROUNDOFF_VAR[p.precision])
            stage = result.stage(p.strength)
        elif method == "fir":
            result = design_fir(blur, target, p.fir_taps or default_fir_taps(sigma_eff))
            stage = result.stage(p.strength)
        elif method == "unsharp":
            radius = p.unsharp_radius if p.unsharp_radius is not None else min(max(sigma_eff, 0.3), 3.5)
            result = unsharp_mask(blur, target, radius, p.unsharp_amount, self.domain, ROUNDOFF_VAR[p.precision])
            stage = result.stage(p.strength)
        else:  # pragma: no cover - DeconvParams validates the method
            raise ValueError(f"unknown method {method!r}")
        return Design(p, method, Plan(method, (stage,)), blur, noise_std, noise_var, level, target, result,
                      blur_estimate=estimate)

    @staticmethod
    def _blind_sigma(params: DeconvParams, stats: BandStats | None, bits: int | None) -> tuple[DeconvParams, Any]:
        """``params`` with the sigma estimated from the frame (:mod:`gpu_deconv.core.blur_estimation`).

        The deconvolution sigma is the estimator's cautious one (:func:`deconvolution_sigma`): a frame that
        shows no blur worth restoring gets the identity method; anything else is clipped to what the chosen
        (or auto-chosen) basis can follow.
        """
        from .blur_estimation import TileEnergies, deconvolution_sigma, estimate_blur

        if stats is None or stats.band_block_sums is None:
            raise ValueError("sigma='auto' needs the frame's per-tile statistics; give a number or an image")
        tiles = TileEnergies(stats.band_block_sums, stats.hh_block_sums, stats.block_counts, None, stats.block,
                             stats.channels)
        estimate = estimate_blur(tiles, None if params.noise_is_auto else float(params.noise), bits)
        sigma = deconvolution_sigma(estimate)
        if sigma <= 0.0:
            return params.replace(sigma=GAUSSIAN_SIGMA_RANGE[0], method="identity"), estimate
        method, opts = (params.method, {}) if params.method != "auto" else auto_method(sigma)
        basis = (Comb(opts.get("comb_levels", params.comb_levels)) if method == "comb"
                 else GaussianLaplacian() if method == "laplacian" else None)
        hi = basis.sigma_range[1] if basis is not None else GAUSSIAN_SIGMA_RANGE[1]
        return params.replace(sigma=float(min(max(sigma, GAUSSIAN_SIGMA_RANGE[0]), hi))), estimate
