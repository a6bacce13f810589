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
# Written in float32 like the sRGB pair, odd-symmetric so that overshoot below 0 survives a round trip.

_PQ_M1 = np.float32(2610.0 / 16384.0)
_PQ_M2 = np.float32(2523.0 / 4096.0 * 128.0)
_PQ_C1 = np.float32(3424.0 / 4096.0)
_PQ_C2 = np.float32(2413.0 / 4096.0 * 32.0)
_PQ_C3 = np.float32(2392.0 / 4096.0 * 32.0)
_HLG_A = np.float32(0.17883277)
_HLG_B = np.float32(1.0 - 4.0 * 0.17883277)
_HLG_C = np.float32(0.5 - 0.17883277 * np.log(4.0 * 0.17883277))


def pq_to_linear(v: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 (PQ) EOTF: signal E' in [0, 1] -> display luminance / 10000 cd/m2 in [0, 1] (float32).

    ``Y = (max(E'^(1/m2) - c1, 0) / (c2 - c3 E'^(1/m2)))^(1/m1)`` with m1 = 2610/16384, m2 = 2523/4096 * 128,
    c1 = 3424/4096, c2 = 2413/4096 * 32, c3 = 2392/4096 * 32. Negative values by odd symmetry.

    References
    ----------
    SMPTE ST 2084:2014; ITU-R BT.2100-2, Table 4.
    """
    v = np.asarray(v, dtype=np.float32)
    p = np.power(np.abs(v), np.float32(1.0) / _PQ_M2, dtype=np.float32)
    y = np.power(np.maximum(p - _PQ_C1, np.float32(0.0)) / (_PQ_C2 - _PQ_C3 * p), np.float32(1.0) / _PQ_M1,
                 dtype=np.float32)
    return np.copysign(y, v).astype(np.float32)


def linear_to_pq(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pq_to_linear`: ``E' = ((c1 + c2 Y^m1) / (1 + c3 Y^m1))^m2`` (float32).

    ``Y`` is luminance / 10000 cd/m2; values above 1 give E' above 1 (the caller's integer encode clips them).
    """
    y = np.asarray(y, dtype=np.float32)
    p = np.power(np.abs(y), _PQ_M1, dtype=np.float32)
    e = np.power((_PQ_C1 + _PQ_C2 * p) / (np.float32(1.0) + _PQ_C3 * p), _PQ_M2, dtype=np.float32)
    return np.copysign(e, y).astype(np.float32)


def hlg_to_linear(v: np.ndarray) -> np.ndarray:
    """ARIB STD-B67 (HLG) inverse OETF: signal E' in [0, 1] -> normalised scene light E in [0, 1] (float32).

    ``E = E'^2 / 3`` for ``E' <= 1/2``, else ``(exp((E' - c) / a) + b) / 12`` with a = 0.17883277,
    b = 1 - 4a, c = 0.5 - a ln(4a). Negative values by odd symmetry.

    References
    ----------
    ARIB STD-B67; ITU-R BT.2100-2, Table 5.
    """
    v = np.asarray(v, dtype=np.float32)
    a = np.abs(v)
    e = np.where(a <= np.float32(0.5), a * a / np.float32(3.0),
                 (np.exp((np.maximum(a, np.float32(0.5)) - _HLG_C) / _HLG_A) + _HLG_B) / np.float32(12.0))
    return np.copysign(e, v).astype(np.float32)


def linear_to_hlg(e: np.ndarray) -> np.ndarray:
    """HLG OETF, the inverse of :func:`hlg_to_linear`: ``sqrt(3 E)`` for ``E <= 1/12``, else ``a ln(12 E - b) + c``."""
    e = np.asarray(e, dtype=np.float32)
    a = np.abs(e)
    v = np.where(a <= np.float32(1.0 / 12.0), np.sqrt(np.float32(3.0) * a),
                 _HLG_A * np.log(np.maximum(np.float32(12.0) * a - _HLG_B, np.float32(1e-6))) + _HLG_C)
    return np.copysign(v, e).astype(np.float32)
