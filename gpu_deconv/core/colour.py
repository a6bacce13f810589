"""sRGB transfer functions (IEC 61966-2-1) in float32, written once and mirrored by ``shaders/srgb.glsl``.

Deconvolution happens in linear light because that is where optical blur is a convolution. Integer
images (8/16 bit) are assumed sRGB-encoded; float images (.npy, float TIFF) are assumed linear.
"""

from __future__ import annotations

import numpy as np

_A = np.float32(0.055)
_THRESH_ENC = np.float32(0.04045)
_THRESH_LIN = np.float32(0.0031308)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Decode sRGB-encoded values in [0, 1] to linear light (float32).

    ``v <= 0.04045 -> v / 12.92``, else ``((v + 0.055) / 1.055) ** 2.4``. Values outside [0, 1] are
    extended by odd symmetry so overshoot survives a round trip.
    """
    v = np.asarray(v, dtype=np.float32)
    a = np.abs(v)
    lin = np.where(
        a <= _THRESH_ENC,
        a / np.float32(12.92),
        np.power((a + _A) / np.float32(1.055), np.float32(2.4), dtype=np.float32),
    )
    return np.copysign(lin, v).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB (float32), the inverse of :func:`srgb_to_linear`."""
    v = np.asarray(v, dtype=np.float32)
    a = np.abs(v)
    enc = np.where(
        a <= _THRESH_LIN,
        a * np.float32(12.92),
        np.float32(1.055) * np.power(a, np.float32(1.0 / 2.4), dtype=np.float32) - _A,
    )
    return np.copysign(enc, v).astype(np.float32)


def decode_lut(bits: int) -> np.ndarray:
    """Linear value of every code of an unsigned ``bits``-bit sRGB channel, as float32."""
    n = (1 << bits) - 1
    return srgb_to_linear(np.arange(n + 1, dtype=np.float64).astype(np.float32) / np.float32(n))


# --- HDR transfer functions (ITU-R BT.2100) --------------------------------------------------------------------
# Evaluated in float64 (PQ's exponents amplify float32 rounding to ~3e-6) and returned as float32, odd-symmetric so
# that overshoot below 0 survives a round trip.

_PQ_M1 = 2610.0 / 16384.0
_PQ_M2 = 2523.0 / 4096.0 * 128.0
_PQ_C1 = 3424.0 / 4096.0
_PQ_C2 = 2413.0 / 4096.0 * 32.0
_PQ_C3 = 2392.0 / 4096.0 * 32.0
_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * 0.17883277
_HLG_C = 0.5 - 0.17883277 * np.log(4.0 * 0.17883277)


def pq_to_linear(v: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 (PQ) EOTF: signal E' in [0, 1] -> display luminance / 10000 cd/m2 in [0, 1] (float32).

    ``Y = (max(E'^(1/m2) - c1, 0) / (c2 - c3 E'^(1/m2)))^(1/m1)`` with m1 = 2610/16384, m2 = 2523/4096 * 128,
    c1 = 3424/4096, c2 = 2413/4096 * 32, c3 = 2392/4096 * 32. Negative values by odd symmetry.

    References
    ----------
    SMPTE ST 2084:2014; ITU-R BT.2100-2, Table 4.
    """
    def eotf(e: np.ndarray) -> np.ndarray:
        p = np.power(e, 1.0 / _PQ_M2)
        return np.power(np.maximum(p - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * p), 1.0 / _PQ_M1)

    return _odd(eotf, v)


def linear_to_pq(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pq_to_linear`: ``E' = ((c1 + c2 Y^m1) / (1 + c3 Y^m1))^m2`` (float32).

    ``Y`` is luminance / 10000 cd/m2; values above 1 give E' above 1 (the caller's integer encode clips them).
    """
    def oetf(x: np.ndarray) -> np.ndarray:
        p = np.power(x, _PQ_M1)
        return np.power((_PQ_C1 + _PQ_C2 * p) / (1.0 + _PQ_C3 * p), _PQ_M2)

    return _odd(oetf, y)


def hlg_to_linear(v: np.ndarray) -> np.ndarray:
    """ARIB STD-B67 (HLG) inverse OETF: signal E' in [0, 1] -> normalised scene light E in [0, 1] (float32).

    ``E = E'^2 / 3`` for ``E' <= 1/2``, else ``(exp((E' - c) / a) + b) / 12`` with a = 0.17883277,
    b = 1 - 4a, c = 0.5 - a ln(4a). Negative values by odd symmetry.

    References
    ----------
    ARIB STD-B67; ITU-R BT.2100-2, Table 5.
    """
    return _odd(lambda a: np.where(a <= 0.5, a * a / 3.0,
                                     (np.exp((np.maximum(a, 0.5) - _HLG_C) / _HLG_A) + _HLG_B) / 12.0), v)


def linear_to_hlg(e: np.ndarray) -> np.ndarray:
    """HLG OETF, the inverse of :func:`hlg_to_linear`: ``sqrt(3 E)`` for ``E <= 1/12``, else ``a ln(12 E - b) + c``."""
    return _odd(lambda a: np.where(a <= 1.0 / 12.0, np.sqrt(3.0 * a),
                                     _HLG_A * np.log(np.maximum(12.0 * a - _HLG_B, 1e-300)) + _HLG_C), e)


# ---------------------------------------------------------------------------------------------------
# Other transfer curves: what an image file's colour profile or CICP tags say about its code values.
#
# The engine works in linear light whatever the file's encoding. A file's encoding is described by one of
# five curve kinds, each with NumPy decode (code value -> linear) and encode (linear -> code value):
#
# * ``srgb``        - IEC 61966-2-1, evaluated by :func:`srgb_to_linear` / :func:`linear_to_srgb` above so an
#                     sRGB file gives bit-identical numbers whichever path it takes;
# * ``parametric``  - the ICC parametric curve (ICC.1:2010 section 10.18, function type 4; types 0-3 are
#                     special cases) ``L = (a V + b)^g + e`` for ``V >= d``, else ``L = c V + f``. Adobe RGB
#                     (g = 563/256), Display P3 (sRGB's curve), ProPhoto (g = 1.8 with a linear toe), Rec. 709
#                     and plain gammas are all of this form, and so is the GLSL encode of the engine's last pass;
# * ``sampled``     - an ICC ``curv`` table of n >= 2 samples on ``V = i / (n - 1)``, linearly interpolated (as
#                     ICC.1 says); encode inverts the interpolation;
# * ``pq``          - SMPTE ST 2084 (HDR10): linear light is relative to 10000 cd/m^2 (1.0 = 10000 nits);
# * ``hlg``         - ARIB STD-B67 / ITU-R BT.2100 HLG inverse OETF: relative scene light in [0, 1].
#
# Values outside [0, 1] are extended by odd symmetry (as the sRGB functions do), so overshoot survives.


def _odd(fn, v: np.ndarray) -> np.ndarray:
    """Apply ``fn`` to |v| and give the result v's sign, in float32."""
    v = np.asarray(v, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = fn(np.abs(v).astype(np.float64))
    return np.copysign(out.astype(np.float32), v)


class TransferCurve:
    """A transfer curve between encoded code values ``V`` (in [0, 1]) and linear light ``L``.

    Build one with :meth:`srgb`, :meth:`parametric`, :meth:`gamma`, :meth:`sampled`, :meth:`pq`, :meth:`hlg`
    or :meth:`from_cicp`; :mod:`gpu_deconv.io.colour_profile` builds them from ICC profiles. Two curves that
    compute the same function compare equal (``kind`` and parameters), so a per-channel list can be collapsed.

    Attributes
    ----------
    kind : str
        ``'srgb'``, ``'parametric'``, ``'sampled'``, ``'pq'`` or ``'hlg'`` (see the section comment above).
    params : tuple of 7 floats
        ``(g, a, b, c, d, e, f)`` of the ICC type-4 form, for ``'srgb'`` (its exact constants) and
        ``'parametric'``; empty otherwise.
    table : ndarray or None
        The ``'sampled'`` curve's linear values (float64, non-decreasing) on ``V = i / (n - 1)``.
    name : str
        What it is, for messages (``'sRGB'``, ``'gamma 2.2'``, ``'PQ (SMPTE ST 2084)'``, ...).

    References
    ----------
    ICC.1:2010 (profile version 4.3), sections 10.6 (curveType) and 10.18 (parametricCurveType).
    SMPTE ST 2084:2014; ITU-R BT.2100-2 (PQ and HLG); ITU-T H.273 (CICP transfer characteristics).
    """

    __slots__ = ("kind", "params", "table", "name")

    def __init__(self, kind: str, params: tuple[float, ...] = (), table: np.ndarray | None = None,
                 name: str = "") -> None:
        if kind not in ("srgb", "parametric", "sampled", "pq", "hlg"):
            raise ValueError(f"unknown transfer curve kind {kind!r}")
        if kind == "parametric":
            if len(params) != 7 or not all(np.isfinite(params)) or params[0] <= 0:
                raise ValueError(f"parametric curve needs 7 finite parameters with g > 0, got {params}")
        if kind == "sampled":
            t = np.asarray(table, dtype=np.float64).reshape(-1)
            if t.size < 2 or not np.all(np.isfinite(t)):
                raise ValueError("sampled curve needs at least 2 finite samples")
            # Encoding inverts the table, which needs it monotonic; real profiles' tables are, up to
            # rounding noise, and a flat run is kept flat.
            table = np.maximum.accumulate(t)
        self.kind = kind
        self.params = tuple(float(p) for p in params)
        self.table = table if kind == "sampled" else None
        self.name = name or kind

    # -- constructors ------------------------------------------------------------------------------------
    @classmethod
    def srgb(cls) -> TransferCurve:
        """IEC 61966-2-1 sRGB (also Display P3's curve)."""
        return cls("srgb", (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045, 0.0, 0.0), name="sRGB")

    @classmethod
    def parametric(cls, g: float, a: float = 1.0, b: float = 0.0, c: float = 0.0, d: float = 0.0,
                   e: float = 0.0, f: float = 0.0, name: str = "") -> TransferCurve:
        """ICC type-4 parametric curve ``L = (a V + b)^g + e`` for ``V >= d``, else ``c V + f``.

        A curve with exactly sRGB's constants (as ICC profiles store them, to 1/65536) is returned as
        :meth:`srgb`, so an sRGB-profiled file takes the exact sRGB path.
        """
        p = (float(g), float(a), float(b), float(c), float(d), float(e), float(f))
        if np.allclose(p, cls.srgb().params, rtol=0, atol=2.0 / 65536):
            return cls.srgb()
        if not name:
            name = f"gamma {g:.4g}" if p[1:] == (1.0, 0.0, 0.0, 0.0, 0.0, 0.0) else f"parametric gamma {g:.4g}"
        return cls("parametric", p, name=name)

    @classmethod
    def gamma(cls, g: float) -> TransferCurve:
        """Pure power law ``L = V^g`` (``g = 1`` is linear)."""
        return cls.parametric(g, name="linear" if g == 1 else f"gamma {g:.4g}")

    @classmethod
    def sampled(cls, table: np.ndarray, name: str = "sampled curve") -> TransferCurve:
        """Linear values on ``V = i / (n - 1)``, interpolated linearly."""
        return cls("sampled", table=np.asarray(table, dtype=np.float64), name=name)

    @classmethod
    def pq(cls) -> TransferCurve:
        """SMPTE ST 2084 perceptual quantiser; 1.0 linear = 10000 cd/m^2."""
        return cls("pq", name="PQ (SMPTE ST 2084)")

    @classmethod
    def hlg(cls) -> TransferCurve:
        """BT.2100 hybrid log-gamma (inverse OETF, scene light in [0, 1])."""
        return cls("hlg", name="HLG (BT.2100)")

    @classmethod
    def from_cicp(cls, transfer_characteristics: int) -> TransferCurve | None:
        """The curve an ITU-T H.273 transfer-characteristics code names, or None for codes not modelled.

        1, 6, 14, 15 (BT.709/601/2020 OETF) decode with the inverse OETF; 4 and 5 are gamma 2.2 and 2.8;
        8 is linear; 13 is sRGB; 16 is PQ; 18 is HLG.
        """
        tc = int(transfer_characteristics)
        if tc in (1, 6, 14, 15):
            return cls.parametric(1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081, name="Rec. 709")
        table = {4: (2.2, "gamma 2.2"), 5: (2.8, "gamma 2.8"), 8: (1.0, "linear")}
        if tc in table:
            g, name = table[tc]
            return cls.parametric(g, name=name)
        return {13: cls.srgb, 16: cls.pq, 18: cls.hlg}.get(tc, lambda: None)()

    # -- evaluation --------------------------------------------------------------------------------------
    def to_linear(self, v: np.ndarray) -> np.ndarray:
        """Decode code values ``v`` (float, nominally [0, 1]) to linear light, float32."""
        if self.kind == "srgb":
            return srgb_to_linear(v)
        if self.kind == "parametric":
            g, a, b, c, d, e, f = self.params
            return _odd(lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0.0), g) + e, c * x + f), v)
        if self.kind == "sampled":
            t = self.table
            n = t.size - 1

            def interp(x: np.ndarray) -> np.ndarray:
                # Beyond 1 the last segment's slope continues (overshoot survives a round trip).
                slope = (t[-1] - t[-2]) * n
                return np.where(x <= 1.0, np.interp(x, np.linspace(0.0, 1.0, t.size), t), t[-1] + (x - 1.0) * slope)

            return _odd(interp, v)
        if self.kind == "pq":
            return pq_to_linear(v)
        return hlg_to_linear(v)

    def from_linear(self, v: np.ndarray) -> np.ndarray:
        """Encode linear light ``v`` to code values in [0, 1] (float32), the inverse of :meth:`to_linear`."""
        if self.kind == "srgb":
            return linear_to_srgb(v)
        if self.kind == "parametric":
            g, a, b, c, d, e, f = self.params

            def enc(x: np.ndarray) -> np.ndarray:
                power = (np.power(np.maximum(x - e, 0.0), 1 / g) - b) / a
                if c == 0:
                    return power
                # The inverse of whichever branch decodes there: the toe below V = d. Stored curves (e.g.
                # Rec. 709 rounded to 1/65536) are not exactly continuous at d, so test V, not L.
                toe = (x - f) / c
                return np.where(toe < d, toe, power)

            return _odd(enc, v)
        if self.kind == "sampled":
            t = self.table
            n = t.size - 1
            grid = np.linspace(0.0, 1.0, t.size)

            def inv(x: np.ndarray) -> np.ndarray:
                slope = (t[-1] - t[-2]) * n
                beyond = 1.0 + (x - t[-1]) / slope if slope > 0 else np.ones_like(x)
                # np.interp needs increasing x: a flat run maps to its first code value.
                keep = np.concatenate([[True], np.diff(t) > 0])
                return np.where(x <= t[-1], np.interp(x, t[keep], grid[keep]), beyond)

            return _odd(inv, v)
        if self.kind == "pq":
            return linear_to_pq(v)
        return linear_to_hlg(v)

    def decode_lut(self, bits: int) -> np.ndarray:
        """Linear value of every code of an unsigned ``bits``-bit channel (float32, ``2**bits`` entries).

        Exact for any curve kind, so integer input decodes through a LUT texture on the GPU whatever its
        profile; for sRGB this is :func:`decode_lut` itself.
        """
        if self.kind == "srgb":
            return decode_lut(bits)
        n = (1 << bits) - 1
        return self.to_linear(np.arange(n + 1, dtype=np.float64) / n)

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def is_srgb(self) -> bool:
        return self.kind == "srgb"

    def _key(self) -> tuple:
        return (self.kind, self.params, None if self.table is None else self.table.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransferCurve) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"TransferCurve({self.name})"
