"""Compression noise of a JPEG, from its quantisation tables: what the batch adds to its noise model.

A JPEG stores each 8x8 block's DCT coefficients ``F_k`` as integers ``round(F_k / Q_k)``. The error each
coefficient carries is modelled as:

* coefficients kept (non-zero index): uniform on ``[-Q_k/2, Q_k/2]``, variance ``Q_k^2 / 12``;
* coefficients quantised to zero: the error is the coefficient itself. Its distribution is taken as
  Laplacian (the usual model of AC coefficients, Lam & Goodman 2000) whose scale is fixed by the fraction
  ``p0`` of blocks in which that coefficient was zeroed: ``P(|F| < Q/2) = 1 - exp(-lambda Q/2) = p0``. The
  error variance is then the Laplacian's second moment truncated to ``|F| < Q/2``:
  ``E[F^2 | |F| < T] = (2/lambda^2 - exp(-lambda T) (T^2 + 2T/lambda + 2/lambda^2)) / (1 - exp(-lambda T))``.
  Without this (``Q^2/12`` everywhere) high-frequency coefficients, almost always zero in a q75 photo,
  would be charged their full quantiser step and the noise overestimated several-fold.

``p0`` is measured on the decoded image itself (forward DCT of its blocks, ``|F_k| < Q_k/2``), so the
estimate needs nothing but the file. JPEG's 8x8 DCT is orthonormal, so a pixel's error variance is
``sum_k var_k B_k(x, y)^2`` - position dependent inside the block (larger at block edges, which is where
sharpening would amplify blocking) - and its mean over the block is ``sum_k var_k / 64``.

Colour: Y, Cb and Cr errors are independent; they reach R, G, B through the JFIF YCbCr -> RGB matrix,
chroma errors of subsampled planes pass libjpeg's "fancy" triangular upsampling (variance gain
``(3/4)^2 + (1/4)^2 = 0.625`` per subsampled axis), and the decoder's final rounding to integers adds
``1/12`` code^2. Code-unit variance becomes linear light through the slope of the transfer curve at the
local code value: ``sigma_lin = sigma_code / 255 * dL/dV``.

References: ITU-T T.81 (JPEG) Annex A.3.3 (DCT) and Annex K (example tables, zig-zag order); JFIF 1.02
(YCbCr); IJG libjpeg ``jcparam.c`` (quality scaling); E. Y. Lam and J. W. Goodman, "A mathematical analysis
of the DCT coefficient distributions for images", IEEE TIP 9(10), 2000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Natural (row-major) index of the k-th coefficient in zig-zag order (T.81 figure A.6).
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
    60, 61, 54, 47, 55, 62, 63,
])

#: T.81 Annex K.1 example tables (natural order) - what IJG libjpeg scales by its quality setting.
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64).reshape(8, 8)
STD_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32),
], dtype=np.float64).reshape(8, 8)

#: JFIF YCbCr -> RGB: rows R, G, B; columns Y, Cb, Cr.
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
#: Variance gain of libjpeg's triangular (3/4, 1/4) chroma upsampling, per subsampled axis.
_UPSAMPLE_GAIN = 0.75**2 + 0.25**2


def _dct_basis() -> np.ndarray:
    """B[u, x]: the orthonormal 8-point DCT-II basis (T.81 A.3.3)."""
    u = np.arange(8)[:, None]
    x = np.arange(8)[None, :]
    c = np.where(u == 0, np.sqrt(0.5), 1.0)
    return c / 2.0 * np.cos((2 * x + 1) * u * np.pi / 16)


_B = _dct_basis()


@dataclass(frozen=True)
class JpegQuantisation:
    """The quantisation a JPEG was stored with.

    Attributes
    ----------
    tables : tuple of ndarray
        One ``(8, 8)`` float64 table per component, natural (row-major) order, in the frame's component
        order (Y, Cb, Cr for colour JPEGs).
    sampling : tuple of (int, int)
        Each component's (horizontal, vertical) sampling factor.
    colour : str
        ``'gray'`` (1 component), ``'ycbcr'`` or ``'rgb'`` (3 components stored without a colour transform).
    """

    tables: tuple[np.ndarray, ...]
    sampling: tuple[tuple[int, int], ...]
    colour: str

    @classmethod
    def from_zigzag(cls, tables: dict[int, list[int]], component_tables: tuple[int, ...],
                    sampling: tuple[tuple[int, int], ...], adobe_transform: int | None = None) -> JpegQuantisation:
        """Build from DQT tables as stored (zig-zag order, by table id) and the frame's component list."""
        out = []
        for tid in component_tables:
            natural = np.zeros(64)
            natural[ZIGZAG] = np.asarray(tables[tid], dtype=np.float64)
            out.append(natural.reshape(8, 8))
        n = len(component_tables)
        colour = "gray" if n == 1 else ("rgb" if adobe_transform == 0 else "ycbcr")
        return cls(tuple(out), tuple(sampling), colour)

    @property
    def subsampling(self) -> str:
        """``'4:4:4'``, ``'4:2:2'``, ``'4:2:0'``, ``'4:4:0'`` or ``'4:1:1'`` (``''`` for gray)."""
        if len(self.sampling) == 1:
            return ""
        (h, v), (hc, vc) = self.sampling[0], self.sampling[1]
        return {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}.get(
            (h // hc, v // vc), f"{h}x{v}/{hc}x{vc}")

    @property
    def quality(self) -> int:
        """IJG quality 1..100 whose scaled Annex K tables are nearest to these (see :func:`estimate_quality`)."""
        return estimate_quality(self)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """IJG libjpeg's table for ``quality`` (``jpeg_quality_scaling`` + ``jpeg_add_quant_table``, baseline)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


def estimate_quality(quant: JpegQuantisation) -> int:
    """The IJG quality (1..100) that best reproduces the file's tables.

    Every IJG-derived encoder (libjpeg, libjpeg-turbo, Pillow, ImageMagick, most cameras' "fine" setting is
    near 92-97) writes ``ijg_table(Annex K table, q)``; the estimate is the q minimising the summed absolute
    log-ratio of all stored tables to the scaled Annex K tables (luminance for the first, chrominance for
    the others). For IJG files it is exact; for other encoders it is the IJG quality of equal coarseness.
    """
    bases = [STD_LUMINANCE] + [STD_CHROMINANCE] * (len(quant.tables) - 1)
    if quant.colour == "rgb":
        bases = [STD_LUMINANCE] * len(quant.tables)
    logs = [np.log(t) for t in quant.tables]
    best_q, best_err = 100, np.inf
    for q in range(1, 101):
        err = sum(float(np.abs(lt - np.log(ijg_table(b, q))).sum()) for lt, b in zip(logs, bases, strict=True))
        if err < best_err - 1e-12:
            best_q, best_err = q, err
    return best_q


def coefficient_error_variance(table: np.ndarray, zero_fraction: np.ndarray | None = None) -> np.ndarray:
    """Error variance of each DCT coefficient (8x8, in code units^2 of the 8-bit samples).

    Parameters
    ----------
    table : (8, 8) array
        Quantiser steps ``Q``.
    zero_fraction : (8, 8) array, optional
        Fraction of blocks in which each coefficient was quantised to zero. Without it every coefficient is
        charged ``Q^2 / 12`` (an upper bound).
    """
    q = np.asarray(table, dtype=np.float64)
    uniform = q * q / 12.0
    if zero_fraction is None:
        return uniform
    p0 = np.clip(np.asarray(zero_fraction, dtype=np.float64), 1e-9, 1 - 1e-9)
    t = q / 2.0
    x = -np.log1p(-p0)  # lambda * T, from P(|F| < T) = 1 - exp(-lambda T) = p0
    # E[F^2 | |F| < T] / T^2 = (2 - e^-x (x^2 + 2x + 2)) / (x^2 (1 - e^-x)); -> 1/3 - x/12 as x -> 0
    # (uniform), where the closed form cancels catastrophically.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        closed = (2 - np.exp(-x) * (x * x + 2 * x + 2)) / (x * x * -np.expm1(-x))
    ratio = np.clip(np.where(x < 1e-3, 1 / 3 - x / 12, closed), 0.0, 1 / 3)
    return (1 - p0) * uniform + p0 * ratio * t * t


#: Blocks sampled (evenly strided) to measure the zero fractions: the standard error of a fraction is then
#: below 0.01, and a 1080p image costs ~60 ms instead of 2 s for all 32400 luma blocks.
MAX_SAMPLED_BLOCKS = 4096


def _block_dct_zero_fraction(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fraction of 8x8 blocks of ``plane`` (level-shifted samples) whose DCT coefficient is below Q/2."""
    h, w = (plane.shape[0] // 8) * 8, (plane.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return np.ones((8, 8))
    blocks = plane[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    blocks = blocks[:: max(1, -(-blocks.shape[0] // MAX_SAMPLED_BLOCKS))]
    coef = _B @ (blocks - 128.0) @ _B.T
    return (np.abs(coef) < table / 2.0).mean(axis=0)


def _component_planes(pixels: np.ndarray, quant: JpegQuantisation) -> list[np.ndarray]:
    """The decoded image's component planes (Y/Cb/Cr as the encoder saw them, chroma box-downsampled)."""
    a = np.asarray(pixels)
    # Keep every k-th row of MCUs (16 px for 4:2:0): blocks are coded independently, so a subset of MCU rows
    # measures the same zero fractions, and the colour conversion below then touches only that subset.
    mcu = 8 * max(v for _, v in quant.sampling)
    rows = a.shape[0] // mcu
    k = max(1, -(-rows * (a.shape[1] // 8) * (mcu // 8) // MAX_SAMPLED_BLOCKS))
    if k > 1:
        keep = a[: rows * mcu].reshape(rows, mcu, *a.shape[1:])[::k]
        a = keep.reshape(-1, *a.shape[1:])
    a = a.astype(np.float64)
    if quant.colour == "gray":
        return [a if a.ndim == 2 else a[..., 0]]
    rgb = a[..., :3]
    if quant.colour == "rgb":
        return [rgb[..., i] for i in range(3)]
    y = rgb @ np.array([0.299, 0.587, 0.114])
    cb = rgb @ np.array([-0.168736, -0.331264, 0.5]) + 128.0
    cr = rgb @ np.array([0.5, -0.418688, -0.081312]) + 128.0
    hmax = max(s[0] for s in quant.sampling)
    vmax = max(s[1] for s in quant.sampling)
    planes = [y]
    for plane, (h, v) in zip((cb, cr), quant.sampling[1:], strict=True):
        fy, fx = vmax // v, hmax // h
        hh, ww = (plane.shape[0] // fy) * fy, (plane.shape[1] // fx) * fx
        planes.append(plane[:hh, :ww].reshape(hh // fy, fy, ww // fx, fx).mean(axis=(1, 3)))
    return planes


def jpeg_noise_variance(quant: JpegQuantisation, pixels: np.ndarray | None = None, *,
                        per_position: bool = False) -> np.ndarray:
    """Compression-noise variance of each output channel, in 8-bit code units squared.

    Parameters
    ----------
    quant : JpegQuantisation
        The file's tables and sampling.
    pixels : ndarray, optional
        The decoded image (uint8, ``(H, W)`` or ``(H, W, 3)``). When given, each coefficient's zero
        fraction is measured on it (the Laplacian model in the module docstring); without it every
        coefficient is charged ``Q^2/12``, an upper bound.
    per_position : bool
        Return the variance at each of the 8x8 positions of a luma block, ``(8, 8, C)``, instead of the
        block mean ``(C,)``.

    Returns
    -------
    ndarray
        ``(C,)`` or ``(8, 8, C)``; C = 1 for gray, 3 for R, G, B.
    """
    planes = _component_planes(pixels, quant) if pixels is not None else None
    comp_var = []  # per component: (8, 8) variance at each pixel position of its block
    for i, table in enumerate(quant.tables):
        p0 = _block_dct_zero_fraction(planes[i], table) if planes is not None else None
        var_k = coefficient_error_variance(table, p0)
        comp_var.append(np.einsum("uv,ux,vy->xy", var_k, _B**2, _B**2))
    if quant.colour == "ycbcr":
        hmax = max(s[0] for s in quant.sampling)
        vmax = max(s[1] for s in quant.sampling)
        for i in (1, 2):
            h, v = quant.sampling[i]
            gain = _UPSAMPLE_GAIN ** ((hmax // h > 1) + (vmax // v > 1))
            # A chroma sample spans several luma positions: its block profile averages out.
            comp_var[i] = np.full((8, 8), comp_var[i].mean() * gain) if (hmax // h > 1 or vmax // v > 1) \
                else comp_var[i] * gain
        m = _YCC_TO_RGB**2
        out = np.einsum("ck,kxy->xyc", m, np.stack(comp_var))
    else:
        out = np.stack(comp_var, axis=-1)
    out = out + 1.0 / 12.0  # the decoder rounds its output to integers
    return out if per_position else out.mean(axis=(0, 1))


def jpeg_noise_std(quant: JpegQuantisation, level: float | np.ndarray = 0.5, curve=None,
                   pixels: np.ndarray | None = None) -> np.ndarray:
    """Compression-noise standard deviation in linear light ([0, 1] units), per channel.

    Parameters
    ----------
    quant : JpegQuantisation
    level : float or ndarray
        Encoded code value (0..1) at which the noise is wanted; the transfer curve's slope there converts
        code noise to linear noise. An array gives one value per level (broadcast against channels).
    curve : TransferCurve, optional
        The file's transfer curve (default sRGB).
    pixels : ndarray, optional
        The decoded image, for the zero-fraction model (see :func:`jpeg_noise_variance`).

    Returns
    -------
    ndarray
        ``sigma_code / 255 * dL/dV(level)``, shape ``(C,)`` or ``level.shape + (C,)``.
    """
    from .colour import TransferCurve

    curve = curve or TransferCurve.srgb()
    sigma_code = np.sqrt(jpeg_noise_variance(quant, pixels)) / 255.0
    v = np.asarray(level, dtype=np.float64)
    h = 1.0 / 1024
    lo, hi = np.clip(v - h, 0.0, 1.0), np.clip(v + h, 0.0, 1.0)
    slope = (curve.to_linear(hi).astype(np.float64) - curve.to_linear(lo).astype(np.float64)) / np.maximum(hi - lo,
                                                                                                            1e-12)
    return np.multiply.outer(slope, sigma_code) if v.ndim else slope * sigma_code


def jpeg_noise_rms(quant: JpegQuantisation, pixels: np.ndarray, curve=None) -> float:
    """Compression-noise standard deviation in linear light, RMS over the image's pixels and channels.

    What the batch adds (in quadrature) to the estimated noise of a JPEG input: the code-unit variance of
    :func:`jpeg_noise_variance` (zero fractions measured on ``pixels``) times the mean of the squared
    transfer-curve slope over the image's own code values (from their histogram, so the cost does not
    grow with the pixel count beyond one ``bincount``).

    Parameters
    ----------
    quant : JpegQuantisation
    pixels : ndarray, uint8
        The decoded JPEG, ``(H, W)`` or ``(H, W, 3)``.
    curve : TransferCurve, optional
        The file's transfer curve (default sRGB).

    Returns
    -------
    float
        Linear-light standard deviation ([0, 1] units).
    """
    from .colour import TransferCurve

    curve = curve or TransferCurve.srgb()
    var_code = jpeg_noise_variance(quant, pixels) / 255.0**2
    codes = np.arange(256, dtype=np.float64) / 255.0
    h = 1.0 / 1024
    lo, hi = np.clip(codes - h, 0.0, 1.0), np.clip(codes + h, 0.0, 1.0)
    slope2 = ((curve.to_linear(hi).astype(np.float64) - curve.to_linear(lo).astype(np.float64)) / (hi - lo)) ** 2
    a = np.asarray(pixels).reshape(pixels.shape[0], pixels.shape[1], -1)
    a = a[:: max(1, a.shape[0] * a.shape[1] // 1_000_000)]  # a histogram of 1 MP of rows is as good as all
    total = 0.0
    for ch in range(var_code.size):
        hist = np.bincount(a[..., ch].ravel(), minlength=256)[:256]
        total += var_code[ch] * float(hist @ slope2) / max(int(hist.sum()), 1)
    return float(np.sqrt(total / var_code.size))
