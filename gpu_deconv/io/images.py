"""Still images in and out: every format a photographer uses, bit for bit, with metadata and colour profile.

Formats (name: what is read / written):

========  ===============================================  ================================================
format    read                                             write
========  ===============================================  ================================================
``png``   1..16-bit gray, GA, RGB, RGBA, palette (-> RGB/  8/16-bit gray, GA, RGB, RGBA (libpng)
          RGBA), tRNS (-> alpha); APNG refused
``jpeg``  8/12-bit gray and YCbCr/RGB (not CMYK)           8-bit gray and RGB; the input's chroma
                                                           subsampling (4:4:4 otherwise)
``tiff``  8/16-bit, float16/32/64 (-> float32) gray, GA,   the same, with the input's compression (none,
          RGB, RGBA; none/LZW/Deflate/JPEG/ZSTD/PackBits;  LZW, Deflate, ZSTD, JPEG), predictor and planar
          contiguous or planar; one image (thumbnails ok)  layout; tags and EXIF directories kept
``webp``  8-bit RGB, RGBA; lossy or lossless (detected)    lossless, or lossy at ``quality``; gray/GA are
                                                           written as RGB/RGBA
``bmp``   8-bit gray, RGB, RGBA, palette/16-bit expanded   8-bit gray, RGB, RGBA (BITMAPV4 with alpha mask)
``jxl``   8/10/12/16-bit and float, gray/GA/RGB/RGBA       the same, lossless or lossy (``quality``);
          (orientation applied); colour enums (PQ, HLG,    EXIF/XMP boxes; PQ/HLG/P3/BT.2020 labels (then
          P3, ...) read as CICP; embedded ICC not read     lossless); no ICC
``avif``  8/10/12-bit gray/RGB/RGBA (irot/imir applied);   8/10/12-bit, lossless or lossy; CICP (PQ/HLG),
          CICP, ICC, EXIF, XMP read                        ICC, EXIF, XMP written
``npy``   any float dtype -> float32 (linear light)        float32
========  ===============================================  ================================================

Codecs: imagecodecs (libpng, libjpeg-turbo, libwebp, libjxl, libavif, its own BMP codec) and tifffile (which
uses imagecodecs for LZW/JPEG/ZSTD strips). Measured against the implementation they replace (a NumPy/zlib
PNG encoder, ffmpeg/pypng 16-bit PNG readers, Pillow for JPEG/WebP/BMP) in ``benchmarks/bench_codecs.py``.

Integer images are code values of a transfer curve (:attr:`Image.colour`, sRGB unless the file says
otherwise); float images are linear light. Metadata (EXIF, ICC, XMP, text, TIFF tags) is read into
:attr:`Image.metadata` and written back by ``write_image(..., like=image)`` in whatever target format, with
one line naming anything the target cannot hold (:mod:`gpu_deconv.io.metadata`).

Limits, checked from the header before anything is decoded: ``max_pixels`` (width x height,
:data:`DEFAULT_MAX_PIXELS` unless the caller passes another; the CLI's ``--max-pixels``). Float input must
be finite and within +-:data:`MAX_FLOAT_MAGNITUDE` (the engine's half-float range); anything else is an
error naming the file, never processed.

Lossy in -> lossy out, lossless in -> lossless out: ``quality=None`` means "like the input" - a lossy input
(JPEG, lossy WebP/AVIF/JPEG XL, JPEG-compressed TIFF) is re-encoded lossy at its own estimated quality but not
below :data:`MIN_REENCODE_QUALITY` (re-encoding at q75 would add a second generation of q75 loss), a lossless
input losslessly. JPEG quality is estimated from the quantisation tables (IJG scaling,
:func:`gpu_deconv.core.jpeg_noise.estimate_quality`).

Writes are atomic (:func:`gpu_deconv.io.atomic.atomic_write`). Every failure is an :class:`ImageError`
whose ``str`` is the one line ``"<path>: <reason>"``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..core.jpeg_noise import JpegQuantisation
from ..errors import ImageError, one_line
from . import metadata as md
from .atomic import atomic_write
from .colour_profile import ColourEncoding, describe_colour

FORMATS = ("png", "jpeg", "tiff", "webp", "bmp", "jxl", "avif", "npy")

EXTENSIONS: dict[str, str] = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".jfif": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".webp": "webp",
    ".bmp": "bmp",
    ".dib": "bmp",
    ".jxl": "jxl",
    ".avif": "avif",
    ".npy": "npy",
}

#: Preferred extension when a format has to be turned into a file name.
DEFAULT_EXTENSION = {
    "png": ".png", "jpeg": ".jpg", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "jxl": ".jxl", "avif": ".avif",
    "npy": ".npy",
}

#: Default pixel limit (width x height). 250 MP: a 200 MP phone photo (16320 x 12240) and a 150 MP
#: medium-format frame pass; a file declaring 16000 x 16000 (256 MP, 1.5 GB as 16-bit RGB) is refused until
#: the limit is raised. At 250 MP an 8-bit RGB image is 750 MB decoded.
DEFAULT_MAX_PIXELS = 250_000_000

#: Largest magnitude accepted in float (linear light) input: the engine computes in half floats, whose
#: largest finite value is 65504. Larger values (a .npy holding 1e30) would become inf on the GPU.
MAX_FLOAT_MAGNITUDE = 65504.0

#: Floor of the quality a lossy input is re-encoded at when the caller gives none.
MIN_REENCODE_QUALITY = 90
#: Quality for lossy output when neither the caller nor the input says (JPEG output of a lossless input).
DEFAULT_LOSSY_QUALITY = 95

#: zlib level of PNG output. libpng's level 6 default was 3x slower than level 3 on 1080p photos for 2-3 %
#: smaller files (benchmarks/bench_codecs.py); batch throughput on small machines is bound by the encoder.
PNG_LEVEL = 3
#: Encoder speed settings, chosen on a 960x540 photo (2 cores): libavif's default speed (slowest) took 143 s
#: where speed 8 took 0.8 s for a 1 % larger file; libjxl effort 3 took 0.34 s lossless / 0.09 s at q90 where
#: the default (7) took 2.1 s / 0.5 s, for a 1.6 % larger lossless file; WebP lossless effort 50 took 0.8 s
#: where 100 took 2.9 s, for a 0.5 % larger file.
AVIF_SPEED = 8
#: Largest image whose JPEG output gets optimised Huffman tables (a few % smaller): libjpeg keeps every DCT
#: coefficient in memory for the second pass - measured +310 MB for a 12000 x 9000 photo, which took reading
#: and writing it from 0.5 GB to 1.05 GB peak RSS.
JPEG_OPTIMIZE_MAX_PIXELS = 40_000_000
JXL_EFFORT = 3
WEBP_LOSSLESS_EFFORT = 50

# Recognised but unsupported content, for a clear message instead of "not an image".
_OTHER_KINDS = {
    "gif": "a GIF image",
    "jpeg2000": "a JPEG 2000 image",
    "heif": "a HEIF/HEIC image",
    "exr": "an OpenEXR image",
    "psd": "a Photoshop document",
    "pnm": "a PNM/PPM image",
    "qoi": "a QOI image",
    "isobmff": "an MP4/MOV file (ISO media; use the video path)",
    "matroska": "a Matroska/WebM video (use the video path)",
    "avi": "an AVI video (use the video path)",
    "wav": "WAV audio",
    "pdf": "a PDF document",
    "zip": "a ZIP archive (.npz?)",
    "gzip": "a gzip archive",
}


@dataclass
class Image:
    """A decoded still image and everything needed to write it back the same way.

    Attributes
    ----------
    pixels : ndarray
        ``uint8`` or ``uint16`` code values, or ``float32`` linear light; ``(H, W)`` for one channel (``.npy``
        keeps its own shape) or ``(H, W, C)``, C in 2..4 (gray+alpha, RGB, RGBA). Stored orientation: the
        EXIF orientation tag (:attr:`orientation`) travels with the pixels and is not applied - except for
        JPEG XL and AVIF, whose container orientation is applied on reading (their EXIF tag is set to 1).
    format : str
        One of :data:`FORMATS`.
    bits : int
        Significant bits per sample: 1..16 for integers (10 and 12 for HDR AVIF/JPEG XL, whose samples are
        held in ``uint16`` with that many bits; 8 for low-bit PNGs scaled to 8 bits), 32 for float.
    channels : int
        1..4.
    metadata : Metadata
        EXIF, ICC, XMP, text, resolution, CICP and format-only extras (:mod:`gpu_deconv.io.metadata`).
    colour : ColourEncoding
        Transfer curve(s) from code values to linear light: from CICP, the ICC profile, PNG gAMA/sRGB, else
        sRGB (:func:`gpu_deconv.io.colour_profile.describe_colour`). Meaningless for float input.
    lossy : bool
        The file was stored lossily (JPEG, lossy WebP/AVIF/JPEG XL, JPEG-compressed TIFF).
    quality : int or None
        Estimated encoder quality (1..100) of a lossy input: for JPEG from its quantisation tables (IJG
        scaling); None where it cannot be told.
    jpeg : JpegQuantisation or None
        A JPEG's quantisation tables and chroma subsampling (for the compression-noise model,
        :mod:`gpu_deconv.core.jpeg_noise`).
    encoding : dict
        Format details written back by ``like=``: TIFF ``compression``/``predictor``/``planar``/
        ``extrasamples``.
    warnings : list of str
        One-line notes on conversions made while reading (palette expanded, float64 narrowed, metadata
        that could not be read); the caller prints them with the file name.
    path : str or None
        Where it was read from.
    """

    pixels: np.ndarray
    format: str
    bits: int
    channels: int
    metadata: md.Metadata = field(default_factory=md.Metadata)
    colour: ColourEncoding | None = None
    lossy: bool = False
    quality: int | None = None
    jpeg: JpegQuantisation | None = None
    encoding: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    path: str | None = None

    def __post_init__(self) -> None:
        if self.colour is None:
            m = self.metadata
            self.colour, notes = describe_colour(self.channels, icc=m.icc, cicp=m.cicp, png_colour=m.png_colour)
            self.warnings.extend(notes)

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.pixels.shape[1])

    @property
    def has_alpha(self) -> bool:
        """True for gray+alpha and RGBA."""
        return self.channels in (2, 4)

    @property
    def orientation(self) -> int:
        """EXIF orientation 1..8 of the stored pixels (1 = as stored)."""
        return self.metadata.orientation

    @property
    def transfer(self):
        """The transfer curve shared by all colour channels (:class:`~gpu_deconv.core.colour.TransferCurve`),
        or None when the profile gives each channel its own (then use :attr:`colour` ``.curves``)."""
        return self.colour.transfer


@dataclass
class WriteResult:
    """What :func:`write_image` wrote. ``os.fspath(result)`` is the path.

    Attributes
    ----------
    path : str
    format : str
    lossless : bool
    quality : int or None
        The quality a lossy output was encoded at.
    warnings : list of str
        One line per thing that could not be carried into this format (metadata dropped, pixels rotated for
        a container that keeps orientation elsewhere, gray stored as RGB, ...).
    """

    path: str
    format: str
    lossless: bool
    quality: int | None
    warnings: list[str]

    def __fspath__(self) -> str:
        return self.path


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding: :func:`probe_image`."""

    format: str
    width: int
    height: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


# ---------------------------------------------------------------------------------------------------
# format detection


def format_from_extension(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's extension names (case-insensitive), or None when it names none."""
    return EXTENSIONS.get(Path(path).suffix.lower())


#: Recognised-but-unsupported content, by its leading bytes (named in the error instead of "unknown").
_OTHER_MAGIC = (
    ("gif", (b"GIF87a", b"GIF89a")),
    ("jpeg2000", (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")),
    ("exr", (b"\x76\x2f\x31\x01",)),
    ("psd", (b"8BPS",)),
    ("qoi", (b"qoif",)),
    ("matroska", (b"\x1a\x45\xdf\xa3",)),
    ("pdf", (b"%PDF",)),
    ("zip", (b"PK\x03\x04",)),
    ("gzip", (b"\x1f\x8b",)),
)


def sniff_format(head: bytes) -> str | None:
    """Name the content from a file's first bytes (32 are enough).

    Returns
    -------
    str or None
        One of :data:`FORMATS` for supported content, a key of the recognised-but-unsupported kinds
        (``'gif'``, ``'heif'``, ``'isobmff'``, ...), or None when unrecognised.
    """
    if head.startswith(md.PNG_SIGNATURE):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib,) = struct.unpack("<I", head[14:18])
        if dib in (12, 16, 40, 52, 56, 64, 108, 124):
            return "bmp"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jxl"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            # mif1 is also AVIF's generic brand: look at the compatible brands.
            return "avif" if b"avif" in head[16:32] else "heif"
        return "isobmff"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n":
        return "pnm"
    if head[:4] == b"RIFF":
        return {b"AVI ": "avi", b"WAVE": "wav"}.get(head[8:12])
    return next((kind for kind, magics in _OTHER_MAGIC if head.startswith(magics)), None)


def looks_like_text(head: bytes) -> bool:
    """True when ``head`` decodes as (mostly printable) UTF-8."""
    if not head:
        return False
    try:
        s = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            s = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in s)
    return printable >= 0.95 * max(len(s), 1)


def _describe_unknown(head: bytes) -> str:
    if looks_like_text(head):
        return "content looks like text"
    return f"unrecognised content (starts with {head[:8].hex(' ')})"


def detect_format(path: str | os.PathLike[str]) -> str:
    """Check that ``path`` is a readable, non-empty file of a supported image format and name the format.

    The content decides; when the extension also names a known format the two must agree.

    Raises
    ------
    ImageError
        Missing file, directory, empty file, unreadable, unrecognised or unsupported content, or a
        content/extension mismatch.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise ImageError(p, "no such file")
    if os.path.isdir(p):
        raise ImageError(p, "is a directory, not an image file")
    if not os.path.isfile(p):
        raise ImageError(p, "is not a regular file")
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as fh:
            head = fh.read(32)
    except OSError as e:
        raise ImageError(p, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise ImageError(p, "empty file (0 bytes)")
    kind = sniff_format(head)
    ext_fmt = format_from_extension(p)
    ext = Path(p).suffix.lower()
    if kind is None:
        what = f"not a {ext_fmt.upper()} image" if ext_fmt else "not an image file"
        raise ImageError(p, f"{what}: {_describe_unknown(head)}")
    if kind not in FORMATS:
        what = _OTHER_KINDS[kind]
        if kind == "gif":
            what += " (convert it to PNG; animated GIFs are videos: convert to MP4)"
        raise ImageError(p, f"unsupported format: content is {what} (supported: {', '.join(FORMATS)})")
    if ext_fmt is not None and ext_fmt != kind:
        raise ImageError(
            p, f"content is {kind.upper()} but the extension {ext!r} says {ext_fmt.upper()}; rename the file"
        )
    return kind


def check_not_same_file(inp: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Raise :class:`ImageError` when writing ``out`` would replace the input file ``inp``.

    Uses :func:`os.path.samefile` when both exist (catches hard links and symlinks), else compares
    fully resolved paths.
    """
    a, b = os.fspath(inp), os.fspath(out)
    same = False
    try:
        if os.path.exists(a) and os.path.exists(b):
            same = os.path.samefile(a, b)
        else:
            same = os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
    except OSError:
        same = os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
    if same:
        raise ImageError(b, f"output is the same file as the input {a}; choose another output path")


# ---------------------------------------------------------------------------------------------------
# headers: size before decoding


class _Bits:
    """LSB-first bit reader (JPEG XL headers)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("JPEG XL header runs past the data")
            v |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return v

    def u32(self, *dist: tuple[int, int]) -> int:
        """U32 with four (bits, offset) distributions (bits 0 = the constant offset)."""
        bits, offset = dist[self.u(2)]
        return offset + (self.u(bits) if bits else 0)

    def enum(self) -> int:
        return self.u32((0, 0), (0, 1), (4, 2), (6, 18))

    def f16(self) -> None:
        self.u(16)


def _jxl_size(b: _Bits) -> tuple[int, int]:
    small = b.u(1)
    dist = ((9, 1), (13, 1), (18, 1), (30, 1))
    height = (b.u(5) + 1) * 8 if small else b.u32(*dist)
    ratio = b.u(3)
    if ratio:
        num, den = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))[ratio - 1]
        return height * num // den, height
    width = (b.u(5) + 1) * 8 if small else b.u32(*dist)
    return width, height


def _jxl_bit_depth(b: _Bits) -> tuple[int, bool]:
    if b.u(1):  # float
        bits = b.u32((0, 32), (0, 16), (0, 24), (6, 1))
        b.u(4)
        return bits, True
    return b.u32((0, 8), (0, 10), (0, 12), (6, 1)), False


def jxl_header(codestream: bytes) -> dict[str, Any]:
    """Size, orientation, animation, bit depth and colour encoding from a JPEG XL codestream's headers.

    ``'_pos'`` holds the bit positions (after the 2-byte signature) :func:`jxl_set_colour_encoding` splices
    at. Reference: ISO/IEC 18181-1 sections D.2 (SizeHeader), D.3 (ImageMetadata), E.2 (ColourEncoding).
    """
    if codestream[:2] != b"\xff\x0a":
        raise ValueError("no JPEG XL codestream signature")
    b = _Bits(codestream[2:])
    width, height = _jxl_size(b)
    pos: dict[str, Any] = {"meta": b.pos, "plain": True}
    out: dict[str, Any] = {"width": width, "height": height, "orientation": 1, "animation": False,
                           "bits": 8, "float": False, "xyb": True, "want_icc": False, "transfer": 13,
                           "primaries": 1, "gamma": None, "_pos": pos}
    if b.u(1):  # all_default
        pos["all_default"] = True
        return out
    pos["extra_fields"] = bool(b.u(1))
    if pos["extra_fields"]:
        out["orientation"] = 1 + b.u(3)
        if b.u(1):  # have_intr_size
            pos["plain"] = False
            _jxl_size(b)
        if b.u(1):  # have_preview
            pos["plain"] = False
            if b.u(1):
                b.u32((0, 16), (0, 32), (5, 1), (9, 33))
            else:
                b.u32((6, 1), (8, 65), (10, 321), (12, 1345))
            if b.u(3) == 0:
                if b.u(1):
                    b.u32((0, 16), (0, 32), (5, 1), (9, 33))
                else:
                    b.u32((6, 1), (8, 65), (10, 321), (12, 1345))
        if b.u(1):  # have_animation
            out["animation"] = True
            return out
    pos["depth"] = b.pos
    out["bits"], out["float"] = _jxl_bit_depth(b)
    b.u(1)  # modular_16_bit_buffer_sufficient
    for _ in range(b.u32((0, 0), (0, 1), (4, 2), (12, 1))):  # extra channels
        if not b.u(1):  # not d_alpha
            kind = b.enum()
            _jxl_bit_depth(b)
            b.u32((0, 0), (0, 3), (0, 4), (3, 1))
            for _ in range(b.u32((0, 0), (4, 0), (5, 16), (10, 48))):
                b.u(8)
            if kind == 0:
                b.u(1)
            elif kind == 2:
                for _ in range(4):
                    b.f16()
            elif kind == 5:
                b.u32((0, 1), (2, 0), (4, 3), (8, 19))
    out["xyb"] = bool(b.u(1))
    pos["colour"] = b.pos
    if not b.u(1):  # colour encoding not all_default (sRGB)
        out["want_icc"] = bool(b.u(1))
        space = b.enum()
        out["gray"] = space == 1
        if not out["want_icc"]:

            def custom_xy() -> None:
                for _ in range(2):
                    b.u32((19, 0), (19, 524288), (20, 1048576), (21, 2097152))

            if space != 2:  # not XYB
                if b.enum() == 2:  # custom white point
                    custom_xy()
                if space != 1:  # has primaries (not gray)
                    out["primaries"] = b.enum()
                    if out["primaries"] == 2:
                        for _ in range(3):
                            custom_xy()
                if b.u(1):  # have_gamma
                    out["gamma"] = b.u(24) / 1e7
                    out["transfer"] = None
                else:
                    out["transfer"] = b.enum()
            b.enum()  # rendering intent
    pos["colour_end"] = b.pos
    pos["bits"] = b
    return out


def _jxl_header_end(hdr: dict[str, Any]) -> tuple[int, int]:
    """Bit positions (after the signature) of CustomTransformData's start and the headers' end."""
    pos = hdr["_pos"]
    b: _Bits = pos["bits"]
    b.pos = pos["colour_end"]
    if pos["extra_fields"] and not b.u(1):  # tone mapping not all_default
        b.f16()
        b.f16()
        b.u(1)
        b.f16()
    if b.u(2) != 0:  # ImageMetadata extensions
        raise ValueError("JPEG XL header extensions not handled")
    start = b.pos
    if not b.u(1):  # CustomTransformData not all_default
        if hdr["xyb"] and not b.u(1):
            for _ in range(16):
                b.f16()
        mask = b.u(3)
        for bit, n in ((1, 15), (2, 55), (4, 210)):
            if mask & bit:
                for _ in range(n):
                    b.f16()
    return start, b.pos


class _BitWriter:
    """LSB-first bit writer, the counterpart of :class:`_Bits`."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits.extend((v >> i) & 1 for i in range(n))

    def copy(self, reader: _Bits, start: int, end: int) -> None:
        reader.pos = start
        self.bits.extend(reader.u(1) for _ in range(end - start))

    def enum(self, v: int) -> None:
        if v in (0, 1):
            self.u(2, v)
        elif v < 18:
            self.u(2, 2)
            self.u(4, v - 2)
        else:
            self.u(2, 3)
            self.u(6, v - 18)

    def f16(self, v: float) -> None:
        self.u(16, int(np.array(v, np.float16).view(np.uint16)))

    def tobytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(sum(bits[i + k] << k for k in range(8)) for i in range(0, len(bits), 8))


def jxl_set_colour_encoding(codestream: bytes, cicp: tuple[int, int, int, int]) -> bytes:
    """A lossless (non-XYB) JPEG XL codestream relabelled with CICP primaries and transfer characteristics.

    Only the headers change: the colour encoding is rewritten (white D65; primaries sRGB/BT.709 (1),
    BT.2020 (9) or P3 (11); any JPEG XL transfer enum: BT.709 1, linear 8, sRGB 13, PQ 16, DCI 17, HLG 18) and,
    for PQ and HLG, the tone-mapping intensity target (10000 and 1000 cd/m^2, as libjxl sets them). The
    samples of a lossless codestream are stored as given, so the label is all that makes them PQ/HLG; a
    lossy (XYB) codestream would need the encoder to know the space, and is refused. Frames start on a
    byte boundary after the headers (18181-1 section 9.1), so the rest of the codestream is copied as is.

    Raises
    ------
    ValueError
        The codestream is XYB-encoded, has an ICC profile, preview, animation or header extensions, or the
        CICP codes have no JPEG XL equivalent.
    """
    primaries, transfer = int(cicp[0]), int(cicp[1])
    if primaries not in (1, 9, 11) or transfer not in (1, 8, 13, 16, 17, 18):
        raise ValueError(f"CICP primaries {primaries} / transfer {transfer} have no JPEG XL colour enum")
    hdr = jxl_header(codestream)
    pos = hdr["_pos"]
    if pos.get("all_default") or hdr["xyb"] or hdr["want_icc"] or not pos["plain"] or hdr["animation"]:
        raise ValueError("only a lossless still JPEG XL codestream without ICC can be relabelled")
    ctd_start, end = _jxl_header_end(hdr)
    reader: _Bits = pos["bits"]
    reader.pos = end
    if any(reader.u(1) for _ in range(-(end + 16) % 8)):
        raise ValueError("JPEG XL headers are not followed by byte padding")
    w = _BitWriter()
    w.copy(reader, 0, pos["meta"])  # SizeHeader
    w.u(1, 0)  # ImageMetadata.all_default
    w.u(1, 1)  # extra_fields (for the tone mapping)
    w.u(3, hdr["orientation"] - 1)
    w.u(3, 0)  # no intrinsic size, preview, animation
    w.copy(reader, pos["depth"], pos["colour"])  # bit depth .. xyb_encoded
    w.u(1, 0)  # ColourEncoding.all_default
    w.u(1, 0)  # want_icc
    w.enum(1 if hdr.get("gray") else 0)
    w.enum(1)  # D65
    if not hdr.get("gray"):
        w.enum(primaries)
    w.u(1, 0)  # have_gamma
    w.enum(transfer)
    w.enum(1)  # relative rendering intent
    target = {16: 10000.0, 18: 1000.0}.get(transfer)
    if target is None:
        w.u(1, 1)  # ToneMapping.all_default
    else:
        w.u(1, 0)
        w.f16(target)
        w.f16(0.0)
        w.u(1, 0)
        w.f16(0.0)
    w.u(2, 0)  # extensions
    w.copy(reader, ctd_start, end)  # CustomTransformData
    rest = 2 + (end + 7) // 8
    return b"\xff\x0a" + w.tobytes() + codestream[rest:]


def _png_size(data: bytes) -> tuple[int, int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError("corrupt PNG: first chunk is not IHDR")
    w, h = struct.unpack(">II", data[16:24])
    frames = 1
    pos = 8
    while pos + 8 <= len(data):  # an APNG says so in acTL before the first IDAT
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if ctype == b"acTL":
            frames = struct.unpack(">I", data[pos + 8 : pos + 12])[0]
            break
        if ctype == b"IDAT":
            break
        pos += 12 + length
    return w, h, frames


def _webp_size(data: bytes) -> tuple[int, int, int]:
    chunks = md.riff_chunks(data)
    if not chunks:
        raise ValueError("WebP holds no chunks")
    ctype, body = chunks[0]
    if ctype == b"VP8X":
        flags = body[0]
        w = int.from_bytes(body[4:7], "little") + 1
        h = int.from_bytes(body[7:10], "little") + 1
        frames = sum(c == b"ANMF" for c, _ in chunks) if flags & 0x02 else 1
        return w, h, max(frames, 1)
    if ctype == b"VP8 ":
        w, h = struct.unpack("<HH", body[6:10])
        return w & 0x3FFF, h & 0x3FFF, 1
    if ctype == b"VP8L":
        (bits,) = struct.unpack("<I", body[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1
    raise ValueError(f"unexpected first WebP chunk {ctype!r}")


def _bmp_size(data: bytes) -> tuple[int, int, int]:
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return abs(w), abs(h), 1


def probe_image(path: str | os.PathLike[str]) -> ImageHeader:
    """Format, size and frame count from a file's header, without decoding pixels.

    Raises
    ------
    ImageError
        As :func:`detect_format`, or when the header cannot be parsed.
    """
    p = os.fspath(path)
    fmt = detect_format(p)
    try:
        if fmt == "tiff":
            import tifffile

            with tifffile.TiffFile(p) as tf:
                return _tiff_header(tf)
        if fmt == "npy":
            with open(p, "rb") as fh:
                return _npy_header(p, fh)
        with open(p, "rb") as fh:
            data = fh.read()
        return _header_from_bytes(fmt, data)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(p, f"cannot read the {fmt.upper()} header: {one_line(e)}") from None


def _header_from_bytes(fmt: str, data: bytes) -> ImageHeader:
    if fmt == "png":
        w, h, frames = _png_size(data)
    elif fmt == "jpeg":
        js = md.read_jpeg_segments(data, lambda _: None)
        if not js.frames:
            raise ValueError("no frame header (SOF) before the image data")
        w, h, frames = js.width, js.height, 1
    elif fmt == "webp":
        w, h, frames = _webp_size(data)
    elif fmt == "bmp":
        w, h, frames = _bmp_size(data)
    elif fmt == "jxl":
        codestream = data if data[:2] == b"\xff\x0a" else md.read_jxl_container(data)[1]
        hdr = jxl_header(codestream)
        w, h, frames = hdr["width"], hdr["height"], 2 if hdr["animation"] else 1
    else:  # avif
        info = md.read_heif(data)
        w, h, frames = info.width, info.height, 2 if info.sequence else 1
    return ImageHeader(fmt, int(w), int(h), int(frames))


def _tiff_main_pages(tf: Any) -> list[Any]:
    """The pages of a TIFF that are images (reduced-resolution thumbnails and masks left out)."""
    pages = []
    for page in tf.pages:
        subfile = int(getattr(page, "subfiletype", 0) or 0)
        if subfile & 0b101:  # reduced-resolution or transparency mask
            continue
        pages.append(page)
    return pages


def _tiff_header(tf: Any) -> ImageHeader:
    pages = _tiff_main_pages(tf)
    page = pages[0] if pages else tf.pages[0]
    return ImageHeader("tiff", int(page.imagewidth), int(page.imagelength), len(pages))


def _npy_header(p: str, fh: BinaryIO) -> ImageHeader:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _fortran, _dtype = read_header(fh)
    if len(shape) < 2:
        raise ImageError(p, f"unsupported array shape {shape}: expected (H, W) or (H, W, C) with C in 1..4")
    return ImageHeader("npy", int(shape[1]), int(shape[0]))


def _check_limit(p: str, header: ImageHeader, max_pixels: int | None) -> None:
    if header.width <= 0 or header.height <= 0:
        raise ImageError(p, f"header declares {header.width}x{header.height} pixels: no image")
    if max_pixels is not None and header.pixels > max_pixels:
        raise ImageError(
            p, f"{header.width}x{header.height} is {header.pixels / 1e6:.0f} MP, over the limit of "
               f"{max_pixels / 1e6:.0f} MP (nothing decoded); raise it with --max-pixels")


def _multi_frame_error(p: str, fmt: str, frames: int) -> ImageError:
    what = {"png": "animated PNG (APNG)", "webp": "animated WebP", "jxl": "animated JPEG XL",
            "avif": "AVIF image sequence", "tiff": "multi-page TIFF"}[fmt]
    count = f" ({frames} frames)" if fmt != "tiff" and frames > 1 and fmt in ("png", "webp") else (
        f" ({frames} pages)" if fmt == "tiff" else "")
    advice = "split it into single images first" if fmt == "tiff" else "convert it to a video (e.g. MP4) first"
    return ImageError(p, f"{what}{count} is not a still image; {advice}")


# ---------------------------------------------------------------------------------------------------
# reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Read a still image with its native sample type, bit for bit, with its metadata and colour encoding.

    Parameters
    ----------
    path : str or path-like
        A PNG, JPEG, TIFF, WebP, BMP, JPEG XL, AVIF or ``.npy`` file (see the module docstring).
    max_pixels : int or None
        Refuse, before decoding, an image whose header declares more than this many pixels (width x
        height). None: no limit.

    Returns
    -------
    Image
        ``pixels`` is ``(H, W)`` for one channel (``.npy`` keeps its stored shape) or ``(H, W, C)``.

    Raises
    ------
    ImageError
        For any file that cannot be read losslessly as a supported image, with a one-line reason.
    """
    p = os.fspath(path)
    fmt = detect_format(p)
    try:
        if fmt == "tiff":
            img = _read_tiff(p, max_pixels)
        elif fmt == "npy":
            img = _read_npy(p, max_pixels)
        else:
            with open(p, "rb") as fh:
                data = fh.read()
            header = _header_from_bytes(fmt, data)
            _check_limit(p, header, max_pixels)
            if header.frames > 1:
                raise _multi_frame_error(p, fmt, header.frames)
            img = _DECODERS[fmt](p, data)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(p, "not enough memory to decode this image") from None
    except Exception as e:  # decoder libraries raise all sorts; turn them into one line
        raise ImageError(p, f"cannot decode {fmt.upper()}: {one_line(e)}") from None
    img.path = p
    _check_pixels(p, img.pixels)
    return img


def _check_pixels(p: str, a: np.ndarray) -> None:
    if a.ndim not in (2, 3) or (a.ndim == 3 and not 1 <= a.shape[2] <= 4):
        raise ImageError(p, f"unsupported array shape {a.shape}: expected (H, W) or (H, W, C) with C in 1..4")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(p, f"image has no pixels (shape {a.shape})")
    if a.dtype.kind == "f":
        # max and min propagate NaN and inf, and (unlike max(|a|)) need no full-size temporary.
        with np.errstate(invalid="ignore"):
            peak = max(abs(float(a.max())), abs(float(a.min())))
        if not np.isfinite(peak):
            n_nan = int(np.isnan(a).sum())
            n_inf = int(np.isinf(a).sum())
            raise ImageError(p, f"float data holds {n_nan} NaN and {n_inf} infinite values")
        if peak > MAX_FLOAT_MAGNITUDE:
            raise ImageError(
                p, f"float data reaches {peak:.3g}, beyond +-{MAX_FLOAT_MAGNITUDE:g} (half-float range of the "
                   "engine); linear light is expected in about [0, 1]")


def _channels(a: np.ndarray) -> int:
    return 1 if a.ndim == 2 else int(a.shape[2])


# --- PNG ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for the duration (a C library's raw warning); anything else written to
    stderr meanwhile by another thread is lost, so keep the block short."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_png(p: str, data: bytes) -> Image:
    import imagecodecs

    warnings: list[str] = []

    def fail(reason: str) -> None:
        raise ImageError(p, reason)

    chunks = list(md.png_chunks(data, fail))
    ihdr = chunks[0][1]
    if len(ihdr) != 13:
        raise ImageError(p, "corrupt PNG: bad IHDR length")
    _w, _h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", ihdr)
    if not any(c == b"IDAT" for c, _, _ in chunks):
        raise ImageError(p, "corrupt PNG: no image data (IDAT)")
    meta = md.read_png_metadata(chunks, warnings.append)
    if interlace:
        with _quiet_stderr():  # libpng prints "Interlace handling should be turned on" (harmless) to fd 2
            a = imagecodecs.png_decode(data)
    else:
        a = imagecodecs.png_decode(data)
    has_trns = any(c == b"tRNS" for c, _, _ in chunks)
    if ctype == 3:
        warnings.append(f"palette expanded to {'RGBA' if _channels(a) == 4 else 'RGB'}")
    elif depth < 8:
        warnings.append(f"{depth}-bit gray scaled to 8 bits")
    if has_trns and ctype in (0, 2):
        warnings.append("tRNS transparency expanded to an alpha channel")
    bits = 16 if a.dtype == np.uint16 else 8
    return Image(a, "png", bits, _channels(a), meta, warnings=warnings)


# --- JPEG -----------------------------------------------------------------------------------------


def _read_jpeg(p: str, data: bytes) -> Image:
    import imagecodecs

    warnings: list[str] = []
    js = md.read_jpeg_segments(data, warnings.append)
    if js.components not in (1, 3):
        kind = "CMYK/YCCK" if js.components == 4 else f"{js.components}-component"
        raise ImageError(p, f"{kind} JPEG is not supported (gray and RGB only)")
    sos = data.find(b"\xff\xda")
    if data.find(b"\xff\xd9", sos) < 0:  # entropy-coded data never holds FF D9 (FF is stuffed)
        raise ImageError(p, "truncated JPEG: the image data ends without an end-of-image marker")
    a = imagecodecs.jpeg8_decode(data)
    quant = None
    quality = None
    if js.quant_tables and all(t in js.quant_tables for t in js.component_tables):
        quant = JpegQuantisation.from_zigzag(js.quant_tables, js.component_tables, js.sampling, js.adobe_transform)
        quality = quant.quality
    bits = 8 if a.dtype == np.uint8 else js.precision
    return Image(a, "jpeg", bits, _channels(a), js.metadata, lossy=True, quality=quality, jpeg=quant,
                 warnings=warnings)


# --- WebP -----------------------------------------------------------------------------------------


def _read_webp(p: str, data: bytes) -> Image:
    import imagecodecs

    chunks = md.riff_chunks(data)
    kinds = {c for c, _ in chunks}
    lossy = b"VP8 " in kinds
    alpha = b"ALPH" in kinds
    if not alpha and b"VP8L" in kinds:
        body = dict(chunks)[b"VP8L"]
        alpha = bool((struct.unpack("<I", body[1:5])[0] >> 28) & 1)
    if chunks[0][0] == b"VP8X":
        alpha = alpha or bool(chunks[0][1][0] & 0x10)
    a = imagecodecs.webp_decode(data, hasalpha=alpha)
    return Image(a, "webp", 8, _channels(a), md.read_webp_metadata(chunks), lossy=lossy)


# --- BMP ------------------------------------------------------------------------------------------


def _read_bmp(p: str, data: bytes) -> Image:
    import imagecodecs

    (dib,) = struct.unpack("<I", data[14:18])
    depth = struct.unpack("<H", data[28:30])[0] if dib >= 40 else struct.unpack("<H", data[24:26])[0]
    a = imagecodecs.bmp_decode(data)
    meta = md.Metadata()
    if dib >= 40:
        xppm, yppm = struct.unpack("<ii", data[38:46])
        if xppm > 0 and yppm > 0:
            meta.dpi = (xppm * 0.0254, yppm * 0.0254)
    warnings = [f"{depth}-bit BMP expanded to 8 bits per sample"] if depth in (1, 4, 16) else []
    if depth == 8 and a.ndim == 3:
        warnings.append("palette expanded to RGB")
    return Image(np.ascontiguousarray(a), "bmp", 8, _channels(a), meta, warnings=warnings)


# --- JPEG XL --------------------------------------------------------------------------------------


def _read_jxl(p: str, data: bytes) -> Image:
    import imagecodecs

    if data[:2] == b"\xff\x0a":
        meta, codestream = md.Metadata(), data
    else:
        meta, codestream = md.read_jxl_container(data)
    hdr = jxl_header(codestream)
    warnings: list[str] = []
    a = imagecodecs.jpegxl_decode(data)  # the codestream's orientation is applied: pixels come upright
    if a.ndim == 4:  # a single frame still comes with a frame axis
        a = a[0]
    if meta.exif and meta.orientation != 1:
        meta.exif = md.set_exif_orientation(meta.exif, 1)
    if hdr["want_icc"]:
        warnings.append("JPEG XL's embedded ICC profile cannot be read here; code values decoded as sRGB")
    elif hdr["gamma"]:
        meta.png_colour = {"gamma": int(round(hdr["gamma"] * 100000))}
    elif hdr["transfer"] not in (None, 13) or hdr["primaries"] != 1:
        meta.cicp = (hdr["primaries"], hdr["transfer"], 0, 1)
    if a.dtype == np.float16 or a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype.kind == "f":
        bits = 32
    else:
        bits = hdr["bits"] if a.dtype == np.uint16 and hdr["bits"] <= 16 else 8 * a.dtype.itemsize
    return Image(a, "jxl", bits, _channels(a), meta, lossy=bool(hdr["xyb"]), warnings=warnings)


# --- AVIF -----------------------------------------------------------------------------------------


def _read_avif(p: str, data: bytes) -> Image:
    import imagecodecs

    info = md.read_heif(data)
    a = imagecodecs.avif_decode(data)
    # HEIF viewers orient by the irot/imir properties and ignore EXIF: apply them, and reset the EXIF tag.
    for kind, value in info.transforms:
        a = np.rot90(a, value) if kind == "irot" else (a[::-1] if value == 0 else a[:, ::-1])
    if info.transforms:
        a = np.ascontiguousarray(a)
    meta = info.metadata
    if meta.exif and meta.orientation != 1:
        meta.exif = md.set_exif_orientation(meta.exif, 1)
    bits = info.bits or 8 * a.dtype.itemsize
    # libavif's lossless mode is 4:4:4 with identity matrix (matrix coefficients 0); anything else is lossy.
    lossy = not (meta.cicp is not None and meta.cicp[2] == 0)
    return Image(a, "avif", bits, _channels(a), meta, lossy=lossy)


# --- TIFF -----------------------------------------------------------------------------------------


def _read_tiff(p: str, max_pixels: int | None) -> Image:
    import tifffile

    warnings: list[str] = []
    with tifffile.TiffFile(p) as tf:
        header = _tiff_header(tf)
        _check_limit(p, header, max_pixels)
        if header.frames != 1:
            raise _multi_frame_error(p, "tiff", header.frames)
        page = _tiff_main_pages(tf)[0]
        photometric = page.photometric.name if page.photometric is not None else "NONE"
        compression = page.compression.name.lower()
        # JPEG-compressed colour TIFFs store YCbCr; the JPEG codec returns RGB.
        if photometric not in ("MINISBLACK", "RGB") and not (photometric == "YCBCR" and compression == "jpeg"):
            raise ImageError(p, f"TIFF photometric {photometric} is not supported (gray and RGB only)")
        if page.bitspersample == 1:
            raise ImageError(p, "1-bit TIFF is not supported")
        meta = md.read_tiff_metadata(tf, p, warnings.append)
        encoding: dict[str, Any] = {
            "compression": compression,
            "predictor": int(page.predictor),
            "planar": "separate" if page.planarconfig == 2 else "contig",
        }
        if page.extrasamples:
            encoding["extrasamples"] = tuple(int(x) for x in page.extrasamples)
        lossy = compression in ("jpeg", "ojpeg", "webp", "jpegxl", "jpeg_2000")
        quality = None
        if compression == "jpeg":
            # The quantisation tables are in JPEGTables, or else in each strip's own JPEG header.
            tables = page.tags.get(347)
            if tables is not None:
                head = bytes(tables.value)
            else:
                tf.filehandle.seek(page.dataoffsets[0])
                head = tf.filehandle.read(min(int(page.databytecounts[0]), 65536))
            js = md.read_jpeg_segments(head, lambda _: None)
            if js.quant_tables:
                tids = tuple(sorted(js.quant_tables))
                if len(tids) > 1:
                    tids = (tids[0], tids[1], tids[1])
                samples = ((1, 1),) * len(tids)
                quality = JpegQuantisation.from_zigzag(js.quant_tables, tids, samples).quality
        a = page.asarray()
        axes = page.axes
    # page.axes is e.g. 'YX', 'YXS' or 'SYX' (planar); bring samples last.
    axes = axes.replace("I", "").replace("Q", "")
    if "S" in axes and a.ndim == len(axes) and axes.index("S") == 0:
        a = np.moveaxis(a, 0, -1)
    a = np.squeeze(a) if a.ndim > 3 else a
    if a.dtype.kind == "f":
        if a.dtype != np.float32:
            warnings.append(f"{a.dtype} samples converted to float32")
            with np.errstate(over="ignore", invalid="ignore"):
                a = a.astype(np.float32)
        bits = 32
    elif a.dtype in (np.uint8, np.uint16):
        bits = a.dtype.itemsize * 8
    else:
        raise ImageError(p, f"TIFF sample type {a.dtype} is not supported (uint8, uint16 or float)")
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="), copy=False))
    return Image(a, "tiff", bits, _channels(a), meta, lossy=lossy, quality=quality, encoding=encoding,
                 warnings=warnings)


# --- NPY ------------------------------------------------------------------------------------------


def _read_npy(p: str, max_pixels: int | None) -> Image:
    try:
        with open(p, "rb") as fh:
            header = _npy_header(p, fh)
    except ImageError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise ImageError(p, f"truncated or corrupt .npy: {one_line(e)}") from None
    _check_limit(p, header, max_pixels)
    try:
        a = np.load(p, allow_pickle=False)
    except ValueError as e:
        msg = one_line(e)
        if "pickle" in msg:
            raise ImageError(p, ".npy holds Python objects (pickled), not image data") from None
        raise ImageError(p, f"truncated or corrupt .npy: {msg}") from None
    except (OSError, EOFError) as e:
        raise ImageError(p, f"truncated or corrupt .npy: {one_line(e)}") from None
    if not isinstance(a, np.ndarray):
        raise ImageError(p, "not a single .npy array")
    if a.dtype.kind != "f":
        raise ImageError(
            p,
            f".npy holds {a.dtype} data; .npy input must be float linear light "
            "(save integer images as PNG or TIFF, or convert to float32 in [0, 1])",
        )
    warnings = []
    if a.dtype != np.float32:
        warnings.append(f"{a.dtype} converted to float32")
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
    a = np.ascontiguousarray(a)
    _check_pixels(p, a)
    return Image(a, "npy", 32, _channels(a), warnings=warnings)


_DECODERS = {"png": _read_png, "jpeg": _read_jpeg, "webp": _read_webp, "bmp": _read_bmp, "jxl": _read_jxl,
             "avif": _read_avif}


# ---------------------------------------------------------------------------------------------------
# writing

_WRITE_DTYPES = {
    "png": ("uint8", "uint16"),
    "jpeg": ("uint8",),
    "tiff": ("uint8", "uint16", "float32"),
    "webp": ("uint8",),
    "bmp": ("uint8",),
    "jxl": ("uint8", "uint16", "float32"),
    "avif": ("uint8", "uint16"),
    "npy": ("float32",),
}


@dataclass
class _Plan:
    """How one output is encoded (decided by :func:`write_image`, carried out by :func:`_encode`)."""

    fmt: str
    metadata: md.Metadata
    lossless: bool
    quality: int | None
    bits: int
    subsampling: str = "4:4:4"
    tiff: dict[str, Any] = field(default_factory=dict)


def _resolve_format(p: str, format: str | None, like: Image | None) -> str:
    ext_fmt = format_from_extension(p)
    if format is not None:
        fmt = format.lower()
        fmt = {"jpg": "jpeg", "tif": "tiff", "jpegxl": "jxl"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise ImageError(p, f"unsupported output format {format!r} (supported: {', '.join(FORMATS)})")
        if ext_fmt is not None and ext_fmt != fmt:
            raise ImageError(p, f"extension {Path(p).suffix!r} does not match the format {fmt.upper()}")
        return fmt
    if ext_fmt is not None:
        return ext_fmt
    if like is not None:
        return like.format
    raise ImageError(p, f"cannot tell the output format from the extension {Path(p).suffix!r}; pass format=")


def _prepare_pixels(p: str, pixels: np.ndarray, fmt: str) -> np.ndarray:
    a = np.asarray(pixels)
    if a.dtype.kind == "f" and fmt in ("tiff", "npy", "jxl") and a.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
    _check_pixels(p, a)
    if a.dtype.name not in _WRITE_DTYPES[fmt]:
        allowed = " or ".join(_WRITE_DTYPES[fmt])
        hint = ""
        if a.dtype.kind == "f":
            hint = "; encode to uint8/uint16 first, or write TIFF/JPEG XL/.npy for float"
        elif fmt in ("jpeg", "webp", "bmp") and a.dtype == np.uint16:
            hint = "; write PNG, TIFF, AVIF or JPEG XL to keep more than 8 bits, or convert to 8 bits first"
        elif fmt == "npy":
            hint = "; .npy output holds float32 linear light"
        raise ImageError(p, f"{fmt.upper()} cannot store {a.dtype} pixels (needs {allowed}){hint}")
    c = _channels(a)
    if fmt == "jpeg" and c not in (1, 3):
        raise ImageError(p, f"JPEG stores gray or RGB, not {c} channels (no alpha); use PNG, TIFF or WebP")
    return a


def rescale_bits(a: np.ndarray, from_bits: int, to_bits: int) -> np.ndarray:
    """Integer code values from ``from_bits`` to ``to_bits`` significant bits: ``round(v * (2^to - 1) /
    (2^from - 1))`` exactly (so 10 -> 16 -> 10 bits returns every value)."""
    src, dst = (1 << from_bits) - 1, (1 << to_bits) - 1
    return ((a.astype(np.uint64) * dst + src // 2) // src).astype(np.uint16)


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as displayed for an EXIF orientation (TIFF 6.0 / EXIF 2.3 tag 274 values 1..8)."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    format: str | None = None,
    *,
    like: Image | None = None,
    overwrite: bool = False,
    quality: int | None = None,
    bits: int | None = None,
    metadata: md.Metadata | None = None,
) -> WriteResult:
    """Write pixels atomically, keeping their sample type, channel layout, metadata and colour profile.

    Parameters
    ----------
    path : str or path-like
        Target file. Its folder must exist.
    pixels : ndarray
        ``uint8``/``uint16`` code values or ``float32`` linear light (TIFF, JPEG XL, ``.npy``), shape
        ``(H, W)`` or ``(H, W, C)`` with C in 1..4. Nothing is converted silently: a sample type the format
        can't hold is an error (see the module table).
    format : str, optional
        One of :data:`FORMATS` (``'jpg'``/``'tif'`` accepted). Default: from the extension, else
        ``like.format``. An extension naming another format is an error.
    like : Image, optional
        The image this one was made from: its metadata (EXIF, ICC, XMP, text, TIFF tags, resolution, CICP),
        lossy/lossless kind and quality, JPEG subsampling and TIFF compression/predictor/layout are carried
        over where the target format can hold them (one warning line names what it cannot).
    overwrite : bool
        Replace an existing file. Without it an existing target is never touched.
    quality : int, optional
        1..100: lossy output at this quality (JPEG, WebP, AVIF, JPEG XL, JPEG-compressed TIFF). None: like
        the input - lossy at the input's estimated quality but at least :data:`MIN_REENCODE_QUALITY` when
        ``like`` was lossy, lossless otherwise (JPEG, always lossy: :data:`DEFAULT_LOSSY_QUALITY`).
    bits : int, optional
        Significant bits (9..16) of ``uint16`` pixels: values run to ``2**bits - 1``. Default ``like.bits``
        (10 for a 10-bit AVIF input), else 16. JPEG XL stores them as they are; PNG and TIFF scale them to the
        16-bit range (exactly, :func:`rescale_bits`); AVIF stores 10 or 12 bits (more are reduced to 12,
        with a warning).
    metadata : Metadata, optional
        Metadata to write instead of ``like.metadata``.

    Returns
    -------
    WriteResult
        The path, the encoding used, and warnings about anything not carried over.

    Raises
    ------
    ImageError
        Unsupported format/sample type, non-finite pixels, existing target without ``overwrite``, missing
        or unwritable folder, or an encoder failure. The target is left as it was and no temp file remains.
    """
    p = os.fspath(path)
    fmt = _resolve_format(p, format, like)
    a = _prepare_pixels(p, pixels, fmt)
    if quality is not None and not 1 <= int(quality) <= 100:
        raise ImageError(p, f"quality must be in 1..100, got {quality}")
    folder = os.path.dirname(os.path.abspath(p))
    if os.path.isdir(p):
        raise ImageError(p, "is a directory")
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ImageError(p, f"output folder {folder} {what}")
    if os.path.lexists(p) and not overwrite:
        raise ImageError(p, "output exists; pass --overwrite to replace it")
    plan, a, warnings = _plan(p, a, fmt, like, quality, bits, metadata)

    def encode(fh: BinaryIO) -> None:
        _encode(fh, a, plan)

    atomic_write(p, encode, overwrite=overwrite, error=ImageError)
    return WriteResult(p, fmt, plan.lossless, None if plan.lossless else plan.quality, warnings)


def _plan(p: str, a: np.ndarray, fmt: str, like: Image | None, quality: int | None, bits: int | None,
          metadata: md.Metadata | None) -> tuple[_Plan, np.ndarray, list[str]]:
    source = metadata if metadata is not None else (like.metadata if like is not None else md.Metadata())
    meta, warnings = md.fit_to_format(source, fmt, like.format if like is not None else None)
    # lossless or lossy, and at what quality
    like_lossy = like is not None and like.lossy
    if fmt == "jpeg":
        lossless = False
    elif fmt in ("webp", "avif", "jxl"):
        lossless = quality is None and not like_lossy
    elif fmt == "tiff":
        lossless = not (quality is not None or (like is not None and like.format == "tiff" and like_lossy))
    else:
        lossless = True
    if lossless:
        q = None
    elif quality is not None:
        q = int(quality)
    elif like_lossy:
        q = max(like.quality or MIN_REENCODE_QUALITY, MIN_REENCODE_QUALITY)
    else:
        q = DEFAULT_LOSSY_QUALITY
    # significant bits: uint16 pixels hold `bits` of them (default: as many as the input had)
    nbits = 8 * a.dtype.itemsize if a.dtype.kind != "f" else 32
    if a.dtype == np.uint16:
        source = bits if bits is not None else (like.bits if like is not None and 9 <= like.bits <= 16 else 16)
        if not 9 <= source <= 16:
            raise ImageError(p, f"bits must be in 9..16 for uint16 pixels, got {source}")
        if fmt == "avif":
            nbits = source if source in (10, 12) else (10 if source < 10 else 12)
        elif fmt == "jxl":
            nbits = source
        else:
            nbits = 16  # PNG and TIFF samples use the full 16-bit range
        if nbits != source:
            a = rescale_bits(a, source, nbits)
            if nbits < source:
                warnings.append(f"{source}-bit samples reduced to {nbits} bits ({fmt.upper()} holds at most 12)")
    # orientation: JPEG XL and AVIF viewers take it from the codestream/container, which we cannot write
    if fmt in ("jxl", "avif") and meta.exif and md.exif_orientation(meta.exif) != 1:
        o = md.exif_orientation(meta.exif)
        a = _apply_orientation(a, o)
        meta.exif = md.set_exif_orientation(meta.exif, 1)
        warnings.append(f"EXIF orientation {o} applied to the pixels ({fmt.upper()} viewers orient by the file's "
                        "own orientation field, not by EXIF)")
    # colour: a curve the target cannot label is a conversion the user must hear about
    colour = like.colour if like is not None else None
    labelled = fmt == "jxl" and _jxl_labels(meta.cicp)
    if colour is not None and a.dtype.kind != "f" and not colour.is_srgb and fmt in ("jxl", "bmp") and not labelled:
        warnings.append(f"{fmt.upper()} output cannot say its code values are {colour.source}; viewers will "
                        "assume sRGB")
    if labelled and not lossless:
        # The label goes into the headers of a lossless codestream; a lossy (XYB) one would need the encoder
        # to know the colour space.
        lossless, q = True, None
        warnings.append("JPEG XL with PQ/HLG/wide-gamut tags is written lossless (the lossy encoder here "
                        "only knows sRGB)")
    if fmt in ("webp",) and _channels(a) in (1, 2):
        warnings.append("WebP has no gray: stored as RGB" + ("A" if _channels(a) == 2 else ""))
    if fmt == "bmp" and _channels(a) == 2:
        warnings.append("BMP has no gray+alpha: stored as RGBA")
    subsampling = "4:4:4"
    if fmt == "jpeg" and like is not None and like.jpeg is not None and like.jpeg.subsampling:
        subsampling = like.jpeg.subsampling
    tiff: dict[str, Any] = {}
    if fmt == "tiff":
        tiff = _tiff_plan(like, a, lossless, warnings)
    return _Plan(fmt, meta, lossless, q, nbits, subsampling, tiff), a, warnings


_TIFF_LOSSLESS = {"none": None, "lzw": "lzw", "adobe_deflate": "zlib", "deflate": "zlib", "zstd": "zstd",
                  "packbits": "packbits", "lzma": "lzma"}


def _tiff_plan(like: Image | None, a: np.ndarray, lossless: bool, warnings: list[str]) -> dict[str, Any]:
    enc = like.encoding if like is not None and like.format == "tiff" else {}
    source = enc.get("compression", "none")
    plan: dict[str, Any] = {"planar": enc.get("planar", "contig"), "extrasamples": enc.get("extrasamples")}
    if not lossless:
        if a.dtype != np.uint8:
            warnings.append("JPEG compression needs 8-bit samples: TIFF written with Deflate (lossless)")
            plan["compression"] = "zlib"
        else:
            plan["compression"] = "jpeg"
    elif source in _TIFF_LOSSLESS:
        plan["compression"] = _TIFF_LOSSLESS[source]
    else:
        warnings.append(f"TIFF compression {source!r} not written; Deflate (lossless) used")
        plan["compression"] = "zlib"
    if plan["compression"] in ("lzw", "zlib", "zstd", "lzma") and enc.get("predictor", 1) > 1:
        plan["predictor"] = True
    return plan


def _encode(fh: BinaryIO, a: np.ndarray, plan: _Plan) -> None:
    """Encode ``a`` as ``plan`` says and write it to ``fh`` (the temp file :func:`atomic_write` gives)."""
    import imagecodecs

    fmt, meta = plan.fmt, plan.metadata
    c = _channels(a)
    if a.ndim == 3 and c == 1:
        a = a[..., 0]
    if fmt == "png":
        data = imagecodecs.png_encode(np.ascontiguousarray(a), level=PNG_LEVEL)
        fh.writelines(md.png_insert_metadata(data, meta))
    elif fmt == "jpeg":
        sub = {"4:4:4": "444", "4:2:2": "422", "4:2:0": "420", "4:4:0": "440", "4:1:1": "411"}.get(
            plan.subsampling, "444")
        data = imagecodecs.jpeg8_encode(np.ascontiguousarray(a), level=plan.quality, subsampling=sub,
                                        optimize=a.shape[0] * a.shape[1] <= JPEG_OPTIMIZE_MAX_PIXELS)
        fh.writelines(md.jpeg_insert_metadata(data, meta))
    elif fmt == "webp":
        rgb = _gray_to_rgb(a)
        if plan.lossless:
            data = imagecodecs.webp_encode(rgb, lossless=True, level=WEBP_LOSSLESS_EFFORT, method=4)
        else:
            data = imagecodecs.webp_encode(rgb, level=plan.quality, lossless=False, method=4)
        fh.write(md.webp_with_metadata(bytes(data), meta, a.shape[1], a.shape[0], c in (2, 4)))
    elif fmt == "bmp":
        data = bytearray(imagecodecs.bmp_encode(_gray_to_rgb(a) if c == 2 else np.ascontiguousarray(a)))
        if meta.dpi:
            data[38:46] = struct.pack("<ii", *(int(round(d / 0.0254)) for d in meta.dpi))
        fh.write(data)
    elif fmt == "jxl":
        container = bool(meta.exif or meta.xmp)
        kw: dict[str, Any] = {"lossless": True} if plan.lossless else {"distance": _jxl_distance(plan.quality)}
        if a.dtype == np.uint16:
            kw["bitspersample"] = plan.bits
        data = bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(a), usecontainer=container, effort=JXL_EFFORT,
                                               **kw))
        if _jxl_labels(meta.cicp):
            data = _jxl_relabel(data, meta.cicp)
        fh.write(md.jxl_with_metadata(data, meta) if container else data)
    elif fmt == "avif":
        kw = {"bitspersample": plan.bits, "speed": AVIF_SPEED}
        if meta.cicp is not None:
            kw.update(primaries=meta.cicp[0], transfer=meta.cicp[1])
        if plan.lossless:
            # libavif's lossless mode: identity matrix (RGB stored as is), 4:4:4, quality 100.
            kw.update(level=100, matrix=0, pixelformat=1)
        else:
            kw["level"] = plan.quality
            if meta.cicp is not None:
                kw["matrix"] = meta.cicp[2] or 9
        data = bytes(imagecodecs.avif_encode(np.ascontiguousarray(a), **kw))
        fh.write(md.avif_with_metadata(data, meta))
    elif fmt == "tiff":
        _encode_tiff(fh, a, plan)
    else:
        np.save(fh, np.ascontiguousarray(a), allow_pickle=False)


def _jxl_labels(cicp: tuple[int, int, int, int] | None) -> bool:
    """True when CICP tags say something other than sRGB and JPEG XL's colour enums can say it."""
    return cicp is not None and (cicp[0], cicp[1]) != (1, 13) and cicp[0] in (1, 9, 11) and \
        cicp[1] in (1, 8, 13, 16, 17, 18)


def _jxl_relabel(data: bytes, cicp: tuple[int, int, int, int]) -> bytes:
    """:func:`jxl_set_colour_encoding` on a bare codestream or on the ``jxlc`` box of a container."""
    if data[:2] == b"\xff\x0a":
        return jxl_set_colour_encoding(data, cicp)
    out = bytearray()
    start = 0  # boxes follow each other: each starts where the previous ended
    for btype, a, b in md.iter_boxes(data):
        if btype == b"jxlp":
            raise ValueError("JPEG XL codestream split in jxlp boxes cannot be relabelled")
        if btype == b"jxlc":
            body = jxl_set_colour_encoding(data[a:b], cicp)
            out += struct.pack(">I4s", 8 + len(body), b"jxlc") + body
        else:
            out += data[start:b]
        start = b
    return bytes(out)


def _jxl_distance(quality: int | None) -> float:
    """Butteraugli distance for a quality, as libjxl's cjxl maps them (q >= 30: 0.1 + (100 - q) * 0.09,
    else 6.4 + 2.5^((30 - q) / 5) / 6.25)."""
    q = 90 if quality is None else quality
    return 0.1 + (100 - q) * 0.09 if q >= 30 else 6.4 + 2.5 ** ((30 - q) / 5.0) / 6.25


def _gray_to_rgb(a: np.ndarray) -> np.ndarray:
    """Gray -> RGB and gray+alpha -> RGBA by repeating the gray sample (keeps every value)."""
    c = _channels(a)
    if c == 1:
        return np.ascontiguousarray(np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2))
    if c == 2:
        return np.ascontiguousarray(np.stack([a[..., 0]] * 3 + [a[..., 1]], axis=-1))
    return np.ascontiguousarray(a)


def _encode_tiff(fh: BinaryIO, a: np.ndarray, plan: _Plan) -> None:
    import tifffile

    c = _channels(a)
    kw, extratags, subifds = md.tiff_write_args(plan.metadata)
    kw["photometric"] = "rgb" if c >= 3 else "minisblack"
    t = plan.tiff
    if c in (2, 4):
        extra = t.get("extrasamples") or (2,)
        kw["extrasamples"] = [extra[0] if extra[0] in (1, 2) else 2]
    if c > 1 and t.get("planar") == "separate":
        a = np.moveaxis(a, -1, 0)
        kw["planarconfig"] = "separate"
    elif c > 1:
        kw["planarconfig"] = "contig"
    if t.get("compression"):
        kw["compression"] = t["compression"]
        if t["compression"] == "jpeg":
            kw["compressionargs"] = {"level": plan.quality}
    if t.get("predictor"):
        kw["predictor"] = True
    tifffile.imwrite(fh, a, extratags=extratags, **kw)
    if subifds:
        # tifffile cannot write the Exif/GPS directories: append them to the finished file and point
        # IFD0's placeholder tags at them.
        fh.flush()
        with open(fh.name, "r+b") as rw:
            md.tiff_append_subifds(rw, subifds)
