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
