"""User-facing deconvolution parameters, declared once.

:class:`DeconvParams` is the one validated object shared by the engine, the batch tool, the viewer and the
shader export, saved and loaded as JSON (the viewer's "save parameters" file is what ``--params`` reads).
Each field carries a :class:`ParamSpec` in its metadata - help text, unit, range or choices - and
everything else is generated from it: validation (so every message quotes the same range), the command
line flags of ``run``, ``view``, ``export``, ``fit`` and ``demo`` (:mod:`gpu_deconv.apps.flags`, whose
``--help`` shows each default and range) and the JSON round trip.

Units, stated once for the whole package: ``sigma`` is the blur's size in pixels (the Gaussian's standard
deviation, or the box width); ``noise`` is the noise standard deviation in linear-light units where 1.0 is
full white; frequencies are in rad/pixel.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

METHODS = ("auto", "comb", "laplacian", "fir", "unsharp", "polyblur", "identity")
MODES = ("adaptive", "global")
#: Methods that have an adaptive mode (the Laplacian bases); the others always run globally.
ADAPTIVE_METHODS = ("auto", "comb", "laplacian")
TARGETS = ("natural", "flat")
SPACES = ("auto", "srgb", "linear")
BLURS = ("gaussian", "box", "binomial")
#: Blur-size range per blur family (px): the Gaussian's sigma, the box's width (binomial ignores sigma).
SIGMA_RANGE = {"gaussian": (0.1, 4.0), "box": (1.0, 31.0), "binomial": (0.1, 31.0)}


def _number(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class ParamSpec:
    """What a parameter is: its help text, unit and allowed values.

    Attributes
    ----------
    help : str
        One line for ``--help`` (and the viewer's tooltips).
    kind : type
        ``float``, ``int`` or ``str``.
    unit : str
        Shown after numbers ("px", "linear std"...).
    lo, hi : float or None
        Inclusive range (``lo_open`` makes the lower bound exclusive).
    choices : tuple or None
        Allowed values for choice parameters.
    optional : str or None
        When set, ``None`` is allowed and means this (e.g. "estimated per frame").
    auto : str or None
        When set, the string ``'auto'`` is allowed and means this.
    parity : {'odd', 'even'} or None
        Integer parity constraint.
    channels : int or None
        When set, ``channels`` comma-separated values (a tuple: one per colour channel R, G, B) are
        allowed besides one value, each with the same range.
    """

    help: str
    kind: type = float
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple | None = None
    optional: str | None = None
    auto: str | None = None
    parity: str | None = None
    channels: int | None = None

    def range_text(self) -> str:
        """The allowed values in words, e.g. ``'0.1..4 px'``, ``'one of auto, srgb, linear'``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        parts = []
        if self.lo is not None and self.hi is not None and not self.lo_open:
            parts.append(f"{_number(self.lo)}..{_number(self.hi)}")
        elif self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {_number(self.lo)}")
            if self.hi is not None:
                parts.append(f"<= {_number(self.hi)}")
        text = " and ".join(parts)
        if self.parity:
            text = f"an {self.parity} integer {text}".strip()
        elif self.kind is int:
            text = f"an integer {text}".strip()
        if self.unit:
            text = f"{text} {self.unit}"
        if self.channels:
            text += f" (or {self.channels} comma-separated values, R,G,B)"
        if self.auto:
            text += " or 'auto'"
        return text

    def check(self, name: str, value: Any) -> Any:
        """Validate (and normalise) one value; the ValueError says the name, the allowed values and the value.
        A per-channel value (``channels`` set; a tuple or a JSON list) becomes a tuple of checked numbers."""
        if isinstance(value, (tuple, list)):
            if self.channels is None or len(value) != self.channels or any(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be {self.range_text()}, got {','.join(str(v) for v in value)!r}")
            return tuple(self.check(name, v) for v in value)
        if value is None:
            if self.optional is not None:
                return None
            raise ValueError(f"{name} must be {self.range_text()}, got None")
        if isinstance(value, str) and self.kind is not str:
            if self.auto is not None and value == "auto":
                return value
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
        if self.choices is not None:
            if value not in self.choices or isinstance(value, bool):
                raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
            return value
        if self.kind is str:  # free text (a file name): any non-empty string
            if isinstance(value, str) and value:
                return value
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
        if isinstance(value, bool):
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}") from None
        if not math.isfinite(f):
            raise ValueError(f"{name} must be a finite number, {self.range_text()}, got {value!r}")
        bad = False
        if self.lo is not None:
            bad |= f <= self.lo if self.lo_open else f < self.lo
        if self.hi is not None:
            bad |= f > self.hi
        if self.kind is int:
            bad |= f != int(f) or (self.parity == "odd" and int(f) % 2 == 0) or (self.parity == "even" and int(f) % 2)
        if bad:
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
        return int(f) if self.kind is int else f

    def parse(self, text: str) -> Any:
        """A command-line string as this parameter's type (range checks happen in :class:`DeconvParams`);
        ``'a,b,c'`` is a per-channel tuple where ``channels`` allows it."""
        if self.auto is not None and text == "auto":
            return text
        if self.channels is not None and "," in text:
            # every part as a number where it is one: the count, the words and the range are checked by
            # check() in DeconvParams, so each mistake gets the same one-line usage error quoting the range
            def number(part: str) -> Any:
                try:
                    return self.kind(part)
                except ValueError:
                    return part

            return tuple(number(p) for p in text.split(","))
        if self.choices is not None:
            for c in self.choices:
                if str(c) == text:
                    return c
            raise ValueError(f"must be {self.range_text()}, got {text!r}")
        try:
            return self.kind(text) if self.kind is not int else int(text, 10)
        except ValueError:
            raise ValueError(f"must be {self.range_text()}, got {text!r}") from None


def _param(default: Any, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": ParamSpec(help, **spec)})


@dataclass(frozen=True)
class DeconvParams:
    """Everything that decides the filter for a frame (see each field's :class:`ParamSpec` for its range).

    Attributes
    ----------
    sigma : float, (float, float, float) or 'auto'
        Blur size in px: the Gaussian's sigma (0.1..4), the box's width (1..31); ignored for ``binomial``.
        Three values are one per colour channel (R, G, B: lateral chromatic softness differs per channel;
        adaptive mode only, colour images only; see :class:`gpu_deconv.core.adaptive.ChannelTable`).
        ``'auto'`` estimates a Gaussian blur from each frame's edges (:mod:`gpu_deconv.core.blur_estimation`),
        cautiously: a sharp frame gets the identity.
    noise : float or 'auto'
        Noise standard deviation in linear [0, 1] units; ``'auto'`` estimates it from each frame.
    method : str
        One of :data:`METHODS`; ``'auto'`` picks by sigma (:func:`gpu_deconv.core.design.auto_method`).
    mode : str
        ``'adaptive'`` (default): per-pixel coefficients from the local signal level
        (:mod:`gpu_deconv.core.adaptive`); ``'global'``: one filter per frame. Only the Laplacian bases
        (``comb``, ``laplacian``) have an adaptive mode; the baselines always run globally.
    limiter : float or None
        Halo/overshoot limiter margin (:func:`gpu_deconv.core.adaptive.limit_overshoot`); None = off.
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
        Odd tap count for ``method='fir'``; None picks from sigma.
    unsharp_radius, unsharp_amount : float or None
        Unsharp-mask Gaussian sigma (px; None = sigma) and amount (None = least-squares fit to the target).
    polyblur_alpha, polyblur_beta : float
        Polyblur polynomial shape; (2, 4) is the order-3 Neumann series.
    space : str
        The space the blur happened in: ``'auto'`` (integer input is sRGB-coded and decoded to linear
        light, float input is linear), ``'srgb'`` or ``'linear'``.
    precision : int
        16 or 32: storage of intermediate textures.
    sigma_map : str or None
        A spatially varying blur (adaptive mode only; the map replaces ``sigma``): a map file (see
        :func:`gpu_deconv.core.sigma_map.load_sigma_map`), or ``'radial'`` for the lens model
        ``sigma(r) = sigma_center + (sigma_corner - sigma_center) r^2`` (r = 1 in the corners).
    sigma_center, sigma_corner : float
        The radial model's sigma at the centre and in the corners (px).
    """

    sigma: float | tuple[float, float, float] | str = _param(
        1.0, "blur size: the Gaussian's sigma, or the box width with --blur box (R,G,B: one per colour channel, "
        "adaptive mode)", unit="px", lo=0.1, hi=31.0, channels=3, auto="estimated per frame from its edges "
        "(Gaussian blur)")
    noise: float | str = _param("auto", "noise standard deviation in linear [0,1] units", unit="(linear std)",
                                lo=0.0, hi=1.0, auto="estimated per frame")
    method: str = _param("auto", "filter: auto = comb for sigma <= 0.4 px, else laplacian", kind=str,
                         choices=METHODS)
    mode: str = _param("adaptive", "adaptive = coefficients per pixel from the local signal level (restores edges "
                       "and texture, denoises flat areas); global = one filter per frame (cheaper); for comb and "
                       "laplacian", kind=str, choices=MODES)
    limiter: float | None = _param(None, "halo limiter: keep each output within its input neighbourhood's range "
                                   "widened by this fraction of it (soft knee)", lo=0.0, hi=4.0, optional="off")
    blur: str = _param("gaussian", "blur model the sigma describes", kind=str, choices=BLURS)
    binomial_order: int = _param(2, "order n of --blur binomial (2 = [1/4, 1/2, 1/4])", kind=int, lo=2, hi=30,
                                 parity="even")
    target: str = _param("natural", "Wiener target: natural-image spectrum 1/|w|^2, or flat (signal PSD = 1)",
                         kind=str, choices=TARGETS)
    level: float | None = _param(None, "natural-spectrum level A", unit="(linear^2 rad^2/px^2)", lo=0.0,
                                 lo_open=True, hi=1e3, optional="estimated per frame")
    min_gain: float = _param(1.0, "lowest target gain (1 = never blur to denoise; 0 = textbook Wiener)", lo=0.0,
                             hi=1.0)
    max_gain: float | None = _param(None, "highest target gain", lo=1.0, hi=1000.0, optional="no cap")
    strength: float = _param(1.0, "0 = identity, 1 = full filter, > 1 exaggerates", lo=0.0, hi=4.0)
    comb_levels: int = _param(2, "à-trous levels of --method comb", kind=int, choices=(2, 3))
    fir_taps: int | None = _param(None, "taps of --method fir", kind=int, lo=3, hi=31, parity="odd",
                                  optional="chosen from sigma")
    unsharp_radius: float | None = _param(None, "Gaussian sigma of --method unsharp", unit="px", lo=0.1, hi=3.5,
                                          optional="the blur sigma")
    unsharp_amount: float | None = _param(None, "amount of --method unsharp", lo=0.0, hi=20.0,
                                          optional="fitted to the target")
    polyblur_alpha: float = _param(2.0, "Polyblur alpha (with beta 4: the order-3 Neumann series)", lo=0.0,
                                   hi=10.0)
    polyblur_beta: float = _param(4.0, "Polyblur beta", lo=0.0, hi=10.0)
    space: str = _param("auto", "where the blur happened: srgb = linear light, decoded from sRGB codes (optics: "
                        "lenses, defocus); linear = the stored values themselves (blur applied to sRGB codes, as "
                        "ImageMagick -blur and most upscalers do, or linear float data); auto = srgb for 8/16-bit "
                        "input, linear for float", kind=str, choices=SPACES)
    precision: int = _param(16, "bits of the intermediate textures", kind=int, choices=(16, 32))
    sigma_map: str | None = _param(None, "spatially varying blur (adaptive mode; replaces --sigma): a sigma map "
                                   "file (.npy or float TIFF in px, or 8/16-bit gray: 0..max code = 0..4 px; any grid "
                                   "over the frame, resampled bilinearly), or radial = the lens model from "
                                   "--sigma-center and --sigma-corner", kind=str, unit="(FILE or radial)",
                                   optional="one sigma for the frame")
    sigma_center: float = _param(0.5, "blur sigma at the frame centre for --sigma-map radial", unit="px", lo=0.0,
                                 hi=4.0)
    sigma_corner: float = _param(1.5, "blur sigma in the frame corners for --sigma-map radial (sigma grows with "
                                 "the squared distance from the centre)", unit="px", lo=0.0, hi=4.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, f.metadata["spec"].check(f.name, getattr(self, f.name)))
        if self.sigma_map is not None:
            if self.mode != "adaptive" or self.method not in ADAPTIVE_METHODS:
                raise ValueError("a sigma map needs the adaptive mode (--mode adaptive with method auto, comb or "
                                 f"laplacian), got mode {self.mode!r} with method {self.method!r}")
            if self.blur != "gaussian":
                raise ValueError(f"a sigma map describes a Gaussian blur; blur {self.blur!r} is not one")
            if self.sigma == "auto":
                raise ValueError("a sigma map replaces the sigma; sigma 'auto' and a sigma map exclude each other")
        if self.sigma == "auto":
            if self.blur != "gaussian":
                raise ValueError(f"sigma 'auto' estimates a Gaussian blur; blur {self.blur!r} needs a number")
            return
        if self.sigma_per_channel:
            if self.mode != "adaptive" or self.method not in ADAPTIVE_METHODS:
                raise ValueError("a per-channel sigma needs the adaptive mode (--mode adaptive with method auto, "
                                 f"comb or laplacian), got mode {self.mode!r} with method {self.method!r}")
            if self.sigma_map is not None:
                raise ValueError("a sigma map replaces the sigma; a per-channel sigma and a sigma map exclude "
                                 "each other")
            if self.blur == "binomial":
                raise ValueError("blur 'binomial' has no size, so a per-channel sigma means nothing for it")
        lo, hi = SIGMA_RANGE[self.blur]
        for s in self.sigmas:
            if self.blur != "binomial" and not lo <= s <= hi:
                raise ValueError(f"sigma must be {_number(lo)}..{_number(hi)} px for blur {self.blur!r}, "
                                 f"got {s:g}")

    @property
    def noise_is_auto(self) -> bool:
        return self.noise == "auto"

    @property
    def sigma_is_auto(self) -> bool:
        return self.sigma == "auto"

    @property
    def sigma_per_channel(self) -> bool:
        """True for one sigma per colour channel (a tuple R, G, B)."""
        return isinstance(self.sigma, tuple)

    @property
    def sigmas(self) -> tuple[float, ...]:
        """The numeric sigma(s) in px: ``(R, G, B)`` per channel, else ``(sigma,)`` (empty for 'auto')."""
        if self.sigma_is_auto:
            return ()
        return self.sigma if isinstance(self.sigma, tuple) else (self.sigma,)

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

    def save(self, path: str | Path, *, overwrite: bool = True) -> None:
        """Write :meth:`to_json` to ``path`` atomically (the one atomic writer, :mod:`gpu_deconv.io.atomic`)."""
        from ..io.atomic import write_text_atomic

        write_text_atomic(path, self.to_json() + "\n", overwrite=overwrite)


def param_specs() -> dict[str, tuple[ParamSpec, Any]]:
    """Every :class:`DeconvParams` field: ``name -> (spec, default)``, in declaration order."""
    return {f.name: (f.metadata["spec"], f.default) for f in fields(DeconvParams)}
