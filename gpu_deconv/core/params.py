"""User-facing deconvolution parameters: one validated object shared by the engine, the batch tool and the
viewer, saved and loaded as JSON (the viewer's "save parameters" file is what ``gpu-deconv run --params``
reads).

Units, stated once for the whole package: ``sigma`` is the blur's standard deviation in pixels;
``noise`` is the noise standard deviation in linear-light units where 1.0 is full white.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

METHODS = ("auto", "comb", "laplacian", "fir", "unsharp", "polyblur", "identity")
TARGETS = ("natural", "flat")
SPACES = ("auto", "srgb", "linear")
BLURS = ("gaussian", "box", "binomial")


def _finite(name: str, v: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if lo is not None and (f <= lo if lo_open else f < lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {f:g}")
    if hi is not None and f > hi:
        raise ValueError(f"{name} must be <= {hi:g}, got {f:g}")
    return f


def parse_noise(text: str) -> float | str:
    """Command-line noise value: a number (linear std) or ``'auto'``; argparse-friendly errors."""
    import argparse

    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"noise must be a number or 'auto', got {text!r}") from None


@dataclass(frozen=True)
class DeconvParams:
    """Everything that decides the filter for a frame.

    Attributes
    ----------
    sigma : float
        Blur size in pixels (Gaussian sigma; box width for ``blur='box'``; ignored for ``binomial``).
    noise : float or 'auto'
        Noise standard deviation, linear units; ``'auto'`` estimates it from each frame.
    method : str
        One of :data:`METHODS`; ``'auto'`` picks by sigma and noise (:func:`gpu_deconv.core.design.auto_method`).
    blur : str
        Blur model family, one of :data:`BLURS`.
    binomial_order : int
        Order n of the binomial blur (even; 2 is [1/4, 1/2, 1/4]).
    target : str
        ``'natural'`` (Wiener with a 1/|w|^2 image spectrum, the default) or ``'flat'`` (signal PSD = 1).
    level : float or None
        Natural-spectrum level A (linear units^2 x rad^2/px^2); None estimates it from each frame.
    min_gain, max_gain : float, float or None
        Clamp of the target response: ``max(T, min_gain)`` keeps the filter from denoising by blurring
        (1.0, the default, makes huge noise give the identity); ``max_gain`` caps amplification.
    strength : float
        Blend between identity (0) and the full filter (1); values above 1 exaggerate.
    comb_levels : int
        2 or 3 à-trous levels for ``method='comb'``.
    fir_taps : int or None
        Odd tap count (<= 31) for ``method='fir'``; None picks from sigma.
    unsharp_radius, unsharp_amount : float or None
        Unsharp-mask Gaussian sigma (px; None = sigma) and amount (None = least-squares fit to the target).
    polyblur_alpha, polyblur_beta : float
        Polyblur polynomial shape; (2, 4) is the order-3 Neumann series.
    space : str
        ``'auto'`` (integer input is sRGB, float is linear), ``'srgb'`` or ``'linear'``.
    precision : int
        16 or 32: storage of intermediate textures.
    """

    sigma: float = 1.0
    noise: float | str = "auto"
    method: str = "auto"
    blur: str = "gaussian"
    binomial_order: int = 2
    target: str = "natural"
    level: float | None = None
    min_gain: float = 1.0
    max_gain: float | None = None
    strength: float = 1.0
    comb_levels: int = 2
    fir_taps: int | None = None
    unsharp_radius: float | None = None
    unsharp_amount: float | None = None
    polyblur_alpha: float = 2.0
    polyblur_beta: float = 4.0
    space: str = "auto"
    precision: int = 16

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.blur not in BLURS:
            raise ValueError(f"blur must be one of {', '.join(BLURS)}; got {self.blur!r}")
        s(self, "sigma", _finite("sigma", self.sigma, 0.0, lo_open=True))
        if isinstance(self.noise, str):
            if self.noise != "auto":
                raise ValueError(f"noise must be a number >= 0 or 'auto', got {self.noise!r}")
        else:
            s(self, "noise", _finite("noise", self.noise, 0.0))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {self.target!r}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}; got {self.space!r}")
        if self.precision not in (16, 32):
            raise ValueError(f"precision must be 16 or 32, got {self.precision!r}")
        if self.comb_levels not in (2, 3):
            raise ValueError(f"comb_levels must be 2 or 3, got {self.comb_levels!r}")
        if self.level is not None:
            s(self, "level", _finite("level", self.level, 0.0, lo_open=True))
        s(self, "min_gain", _finite("min_gain", self.min_gain, 0.0))
        if self.max_gain is not None:
            s(self, "max_gain", _finite("max_gain", self.max_gain, 1.0))
        s(self, "strength", _finite("strength", self.strength, 0.0, 4.0))
        if self.fir_taps is not None and (int(self.fir_taps) != self.fir_taps or not 3 <= self.fir_taps <= 31
                                          or self.fir_taps % 2 == 0):
            raise ValueError(f"fir_taps must be an odd integer in 3..31, got {self.fir_taps!r}")
        if self.unsharp_radius is not None:
            s(self, "unsharp_radius", _finite("unsharp_radius", self.unsharp_radius, 0.1, 4.0))
        if self.unsharp_amount is not None:
            s(self, "unsharp_amount", _finite("unsharp_amount", self.unsharp_amount, 0.0, 20.0))
        s(self, "polyblur_alpha", _finite("polyblur_alpha", self.polyblur_alpha))
        s(self, "polyblur_beta", _finite("polyblur_beta", self.polyblur_beta))
        if int(self.binomial_order) != self.binomial_order or self.binomial_order < 2 or self.binomial_order % 2:
            raise ValueError(f"binomial_order must be an even integer >= 2, got {self.binomial_order!r}")

    @property
    def noise_is_auto(self) -> bool:
        return self.noise == "auto"

    def replace(self, **changes: Any) -> DeconvParams:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps({"gpu_deconv_params": 1, **self.to_dict()}, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeconvParams:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k != "gpu_deconv_params"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> DeconvParams:
        """Read a parameter JSON file; errors name the file and the reason."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{p}: no such parameter file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not a readable JSON parameter file ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a JSON object of parameters")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{p}: {e}") from None
