"""Lossless still-image reading and atomic writing for the batch tool.

Formats (name: what is read / written):

========  ==========================================  ===========================================
format    read                                        write
========  ==========================================  ===========================================
``png``   1/2/4/8/16-bit gray, GA, RGB, RGBA,         8/16-bit gray, GA, RGB, RGBA (own encoder,
          palette (expanded to RGB/RGBA), tRNS        adaptive filters; bit-exact)
          (expanded to an alpha channel)
``jpeg``  8-bit gray and RGB (no CMYK, no 12-bit)     8-bit gray and RGB, 4:4:4, ``quality``
``tiff``  8/16-bit and float (16/32/64 -> float32)    8/16-bit and float32 gray, GA, RGB, RGBA
          gray, GA, RGB, RGBA; one page only
``webp``  8-bit RGB, RGBA (still)                     lossless and ``exact`` (identity round-trips
                                                      bit for bit); gray/GA are written as RGB/RGBA
``bmp``   8-bit gray, RGB, RGBA (bit fields),         8-bit gray, RGB, RGBA (BITMAPV4 header with
          palette/16-bit expanded to 8-bit RGB        an alpha mask, which Pillow reads back)
``npy``   any float dtype -> float32 (linear light)   float32
========  ==========================================  ===========================================

Integer images are sRGB-encoded and float images are linear light (see :mod:`gpu_deconv.core.colour`).

Why not Pillow for everything: Pillow (and so imageio's default plugin) reads a 16-bit RGB PNG as 8-bit
without any error and cannot write one. 16-bit PNGs are therefore decoded by the ffmpeg binary that
imageio-ffmpeg bundles (native sample format, bit-exact; pypng is the fallback when that binary is
missing) and every PNG is encoded here with NumPy + zlib.

Format detection: the format comes from the file's first bytes (:func:`sniff_format`). When the
extension names a known image format too, the two must agree, so a text file or a JPEG named ``.png``
is an :class:`ImageError`, not a confusing decoder traceback. A file with an unknown extension is read
by its content.

Writes are atomic: the bytes go to ``.NAME.XXXX.tmp`` in the target folder, are fsync'ed and renamed
over the target (a no-clobber hard link when ``overwrite=False``), and the temp file is removed on any
error or ``KeyboardInterrupt``. Every failure is an :class:`ImageError` whose ``str`` is the one line
``"<path>: <reason>"``.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ImageError, one_line
from .atomic import atomic_write

FORMATS = ("png", "jpeg", "tiff", "webp", "bmp", "npy")

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
    ".npy": "npy",
}

#: Preferred extension when a format has to be turned into a file name.
DEFAULT_EXTENSION = {
    "png": ".png", "jpeg": ".jpg", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "npy": ".npy"
}

# Recognised but unsupported content, for a clear message instead of "not an image".
_OTHER_KINDS = {
    "gif": "a GIF image",
    "jpeg2000": "a JPEG 2000 image",
    "jpegxl": "a JPEG XL image",
    "heif": "a HEIF/AVIF image",
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

_PNG_SIG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Image:
    """A decoded still image and what is needed to write it back the same way.

    Attributes
    ----------
    pixels : ndarray
        ``uint8`` or ``uint16`` (sRGB-encoded) or ``float32`` (linear), shape ``(H, W)`` for one
        channel from an image format (``.npy`` keeps its own shape) or ``(H, W, C)``, C in 2..4
        (gray+alpha, RGB, RGBA).
    format : str
        One of :data:`FORMATS`.
    bits : int
        Bits per sample: 8, 16, or 32 for float.
    channels : int
        1..4.
    meta : dict
        Format details carried to :func:`write_image` via ``like=``: ``'icc'`` (bytes), ``'exif'``
        (bytes), ``'dpi'`` ((x, y) floats), ``'png'`` (sRGB/gAMA/cHRM chunks), ``'tiff'``
        (compression, extra samples, ...), ``'source_bits'`` and ``'notes'`` (conversions made while
        reading, e.g. a palette expanded to RGB).
    path : str or None
        Where it was read from.
    """

    pixels: np.ndarray
    format: str
    bits: int
    channels: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

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


# ---------------------------------------------------------------------------------------------------
# format detection


def format_from_extension(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's extension names (case-insensitive), or None when it names none."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def sniff_format(head: bytes) -> str | None:
    """Name the content from a file's first bytes (32 are enough).

    Returns
    -------
    str or None
        One of :data:`FORMATS` for supported content, a key of the recognised-but-unsupported kinds
        (``'gif'``, ``'heif'``, ``'isobmff'``, ...), or None when unrecognised.
    """
    if head.startswith(_PNG_SIG):
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
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "jpeg2000"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jpegxl"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"):
            return "heif"
        return "isobmff"
    if head.startswith(b"\x76\x2f\x31\x01"):
        return "exr"
    if head.startswith(b"8BPS"):
        return "psd"
    if head.startswith(b"qoif"):
        return "qoi"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n":
        return "pnm"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return None


def looks_like_text(head: bytes) -> bool:
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
        raise ImageError(
            p, f"unsupported format: content is {_OTHER_KINDS[kind]} (supported: {', '.join(FORMATS)})"
        )
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
# reading


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read a still image with its native sample type, bit for bit.

    Parameters
    ----------
    path : str or path-like
        A PNG, JPEG, TIFF, WebP, BMP or ``.npy`` file (see the module docstring).

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
        if fmt == "png":
            img = _read_png(p)
        elif fmt == "tiff":
            img = _read_tiff(p)
        elif fmt == "npy":
            img = _read_npy(p)
        else:
            img = _read_pillow(p, fmt)
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
        bad = ~np.isfinite(a)
        if bad.any():
            n_nan = int(np.isnan(a).sum())
            raise ImageError(
                p, f"float data holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values"
            )


def _channels(a: np.ndarray) -> int:
    return 1 if a.ndim == 2 else int(a.shape[2])


# --- PNG ------------------------------------------------------------------------------------------

_PNG_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


def _png_chunks(p: str, data: bytes) -> list[tuple[bytes, bytes]]:
    """Walk the chunk list, checking lengths and the CRCs of critical chunks; stop at IEND."""
    pos = len(_PNG_SIG)
    n = len(data)
    chunks: list[tuple[bytes, bytes]] = []
    while True:
        if pos + 8 > n:
            raise ImageError(p, f"truncated PNG: file ends after {n} bytes without an IEND chunk")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length + 4
        if length > 0x7FFFFFFF or end > n:
            name = ctype.decode("latin-1")
            raise ImageError(p, f"truncated PNG: the {name!r} chunk runs past the end of the file")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(body, zlib.crc32(ctype)) != crc:
            if ctype in _PNG_CRITICAL:
                raise ImageError(p, f"corrupt PNG: CRC mismatch in the {ctype.decode('latin-1')} chunk")
            pos = end
            continue  # a damaged ancillary chunk is dropped
        if not chunks and ctype != b"IHDR":
            raise ImageError(p, "corrupt PNG: first chunk is not IHDR")
        chunks.append((ctype, body))
        pos = end
        if ctype == b"IEND":
            return chunks


def _png_meta(chunks: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    png: dict[str, Any] = {}
    for ctype, body in chunks:
        try:
            if ctype == b"iCCP":
                name_end = body.index(b"\x00")
                meta["icc"] = zlib.decompress(body[name_end + 2 :])
            elif ctype == b"sRGB" and len(body) == 1:
                png["srgb"] = body[0]
            elif ctype == b"gAMA" and len(body) == 4:
                png["gamma"] = struct.unpack(">I", body)[0]
            elif ctype == b"cHRM" and len(body) == 32:
                png["chrm"] = body
            elif ctype == b"pHYs" and len(body) == 9:
                x, y, unit = struct.unpack(">IIB", body)
                png["phys"] = (x, y, unit)
                if unit == 1:
                    meta["dpi"] = (x * 0.0254, y * 0.0254)
            elif ctype == b"eXIf":
                meta["exif"] = body
        except (ValueError, zlib.error, struct.error):
            continue  # unusable ancillary data is dropped, the pixels are what matter
    if png:
        meta["png"] = png
    return meta


def _read_png(p: str) -> Image:
    with open(p, "rb") as fh:
        data = fh.read()
    chunks = _png_chunks(p, data)
    ihdr = chunks[0][1]
    if len(ihdr) != 13:
        raise ImageError(p, "corrupt PNG: bad IHDR length")
    width, height, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", ihdr)
    if not any(c == b"IDAT" for c, _ in chunks):
        raise ImageError(p, "corrupt PNG: no image data (IDAT)")
    if width == 0 or height == 0:
        raise ImageError(p, "corrupt PNG: zero width or height")
    meta = _png_meta(chunks)
    meta["source_bits"] = depth
    meta["png_interlaced"] = bool(interlace)
    has_trns = any(c == b"tRNS" for c, _ in chunks)
    if depth == 16:
        if ctype not in (0, 2, 4, 6):
            raise ImageError(p, f"corrupt PNG: colour type {ctype} cannot have 16-bit samples")
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        if has_trns and ctype in (0, 2):
            channels += 1
            meta.setdefault("notes", []).append("tRNS transparency expanded to an alpha channel")
        pixels = _decode_png16(p, data, width, height, channels, ctype)
        return Image(pixels, "png", 16, channels, meta)
    img = _read_pillow(p, "png", data=data)
    img.meta.update(meta)
    if ctype == 3:
        target = "RGBA" if img.channels == 4 else "RGB"
        img.meta.setdefault("notes", []).append(f"palette expanded to {target}")
    elif depth < 8:
        img.meta.setdefault("notes", []).append(f"{depth}-bit gray scaled to 8 bits")
    return img


def _decode_png16(p: str, data: bytes, width: int, height: int, channels: int, ctype: int) -> np.ndarray:
    ff = _ffmpeg_exe()
    if ff is not None:
        pix_fmt = {1: "gray16le", 2: "ya16le", 3: "rgb48le", 4: "rgba64le"}[channels]
        cmd = [ff, "-hide_banner", "-v", "error", "-nostdin", "-f", "png_pipe", "-i", "pipe:0"]
        cmd += ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
        r = subprocess.run(cmd, input=data, capture_output=True, check=False)
        expected = width * height * channels * 2
        if r.returncode == 0 and len(r.stdout) == expected:
            a = np.frombuffer(r.stdout, dtype="<u2").reshape(height, width, channels)
            return _squeeze_gray(a.astype(np.uint16))
        if r.returncode != 0:
            err = r.stderr.decode("utf-8", "replace").strip().splitlines()
            why = err[-1] if err else f"ffmpeg exit status {r.returncode}"
            raise ImageError(p, f"cannot decode 16-bit PNG: {why}")
    return _decode_png16_pypng(p, data, channels, ctype)


def _decode_png16_pypng(p: str, data: bytes, channels: int, ctype: int) -> np.ndarray:
    import png  # pypng; pure Python, slower, used only without the ffmpeg binary

    reader = png.Reader(bytes=data)
    width, height, rows, info = reader.read()  # raw samples: no sBIT rescaling, no tRNS
    planes = info["planes"]
    a = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)
    if channels == planes + 1:  # tRNS on gray or RGB: the given colour is fully transparent
        key = np.asarray(reader.transparent, dtype=np.uint16).reshape(-1)[:planes]
        alpha = np.where(np.all(a == key, axis=2), 0, 65535).astype(np.uint16)
        a = np.concatenate([a, alpha[..., None]], axis=2)
    return _squeeze_gray(a)


def _squeeze_gray(a: np.ndarray) -> np.ndarray:
    return a[..., 0].copy() if a.ndim == 3 and a.shape[2] == 1 else np.ascontiguousarray(a)


_FFMPEG: list[str | None] = []


def _ffmpeg_exe() -> str | None:
    if not _FFMPEG:
        try:
            import imageio_ffmpeg

            _FFMPEG.append(imageio_ffmpeg.get_ffmpeg_exe())
        except Exception:
            _FFMPEG.append(None)
    return _FFMPEG[0]


# --- Pillow: JPEG, WebP, BMP, 8-bit PNG -------------------------------------------------------------


def _read_pillow(p: str, fmt: str, data: bytes | None = None) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageFile

    src: Any = io.BytesIO(data) if data is not None else p
    pil_format = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP"}[fmt]
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global someone else set; we never pad silently
        raise ImageError(p, "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to read padded data")
    try:
        im = PILImage.open(src, formats=[pil_format])
        im.load()
    except OSError as e:
        msg = one_line(e)
        if "truncat" in msg.lower():
            raise ImageError(p, f"truncated {fmt.upper()}: {msg}") from None
        raise ImageError(p, f"cannot decode {fmt.upper()}: {msg}") from None
    except PILImage.DecompressionBombError as e:
        raise ImageError(p, f"image too large: {one_line(e)}") from None
    if getattr(im, "n_frames", 1) > 1:
        raise ImageError(p, f"animated {fmt.upper()} ({im.n_frames} frames) is not supported")
    meta: dict[str, Any] = {"source_mode": im.mode}
    for key in ("icc_profile", "exif", "dpi"):
        v = im.info.get(key)
        if v:
            meta["icc" if key == "icc_profile" else key] = tuple(float(x) for x in v) if key == "dpi" else v
    if fmt == "jpeg" and im.mode in ("CMYK", "YCbCr", "LAB"):
        raise ImageError(p, f"{im.mode} JPEG is not supported (gray and RGB only)")
    mode = im.mode
    notes: list[str] = []
    if mode == "P" or mode == "PA":
        target = "RGBA" if ("transparency" in im.info or mode == "PA") else "RGB"
        im = im.convert(target)
    elif mode == "1":
        im = im.convert("L")
        notes.append("1-bit expanded to 8-bit gray (0/255)")
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
        notes.append("tRNS transparency expanded to an alpha channel")
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
        notes.append("tRNS transparency expanded to an alpha channel")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(p, f"unsupported {fmt.upper()} pixel mode {mode!r}")
    a = np.asarray(im)
    if a.dtype != np.uint8:
        raise ImageError(p, f"unsupported {fmt.upper()} sample type {a.dtype}")
    if notes:
        meta["notes"] = notes
    return Image(np.ascontiguousarray(a), fmt, 8, _channels(a), meta)


# --- TIFF -----------------------------------------------------------------------------------------


def _read_tiff(p: str) -> Image:
    import tifffile

    with tifffile.TiffFile(p) as tf:
        pages = len(tf.pages)
        if pages != 1:
            raise ImageError(p, f"multi-page TIFF ({pages} pages) is not supported; split it first")
        page = tf.pages[0]
        photometric = page.photometric.name if page.photometric is not None else "NONE"
        if photometric not in ("MINISBLACK", "RGB"):
            raise ImageError(p, f"TIFF photometric {photometric} is not supported (gray and RGB only)")
        a = page.asarray()
        axes = page.axes
        meta: dict[str, Any] = {}
        tiff: dict[str, Any] = {"compression": page.compression.name.lower()}
        if page.extrasamples:
            tiff["extrasamples"] = tuple(int(x) for x in page.extrasamples)
        icc = page.tags.get(34675)
        if icc is not None and isinstance(icc.value, (bytes, bytearray)):
            meta["icc"] = bytes(icc.value)
        xr, yr, unit = page.tags.get(282), page.tags.get(283), page.tags.get(296)
        if xr is not None and yr is not None:
            u = int(unit.value) if unit is not None else 2
            tiff["resolution"] = (_rational(xr.value), _rational(yr.value), u)
            if u == 2:
                meta["dpi"] = tiff["resolution"][:2]
            elif u == 3:
                meta["dpi"] = (tiff["resolution"][0] * 2.54, tiff["resolution"][1] * 2.54)
        meta["tiff"] = tiff
    # page.axes is e.g. 'YX', 'YXS' or 'SYX' (planar); bring samples last.
    axes = axes.replace("I", "").replace("Q", "")
    if "S" in axes and a.ndim == len(axes) and axes.index("S") == 0:
        a = np.moveaxis(a, 0, -1)
    a = np.squeeze(a) if a.ndim > 3 else a
    if a.dtype == np.bool_:
        raise ImageError(p, "1-bit TIFF is not supported")
    if a.dtype.kind == "f":
        if a.dtype != np.float32:
            meta.setdefault("notes", []).append(f"{a.dtype} converted to float32")
            with np.errstate(over="ignore", invalid="ignore"):
                a = a.astype(np.float32)
        bits = 32
    elif a.dtype in (np.uint8, np.uint16):
        bits = a.dtype.itemsize * 8
    else:
        raise ImageError(p, f"TIFF sample type {a.dtype} is not supported (uint8, uint16 or float)")
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="), copy=False))
    meta["source_bits"] = a.dtype.itemsize * 8 if a.dtype.kind != "f" else bits
    return Image(a, "tiff", bits, _channels(a), meta)


def _rational(v: Any) -> float:
    if isinstance(v, tuple) and len(v) == 2:
        return v[0] / v[1] if v[1] else 0.0
    return float(v)


# --- NPY ------------------------------------------------------------------------------------------


def _read_npy(p: str) -> Image:
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
    meta: dict[str, Any] = {"source_dtype": str(a.dtype)}
    if a.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
        meta["notes"] = [f"{meta['source_dtype']} converted to float32"]
    a = np.ascontiguousarray(a)
    _check_pixels(p, a)
    return Image(a, "npy", 32, _channels(a), meta)


# ---------------------------------------------------------------------------------------------------
# writing

_WRITE_DTYPES = {
    "png": ("uint8", "uint16"),
    "jpeg": ("uint8",),
    "tiff": ("uint8", "uint16", "float32"),
    "webp": ("uint8",),
    "bmp": ("uint8",),
    "npy": ("float32",),
}


def _resolve_format(p: str, format: str | None, like: Image | None) -> str:
    ext_fmt = format_from_extension(p)
    if format is not None:
        fmt = format.lower()
        fmt = {"jpg": "jpeg", "tif": "tiff"}.get(fmt, fmt)
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
    if a.dtype.kind == "f" and fmt in ("tiff", "npy") and a.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
    _check_pixels(p, a)
    if a.dtype.name not in _WRITE_DTYPES[fmt]:
        allowed = " or ".join(_WRITE_DTYPES[fmt])
        hint = ""
        if a.dtype.kind == "f":
            hint = "; encode to uint8/uint16 sRGB first, or write TIFF/.npy for float"
        elif fmt in ("jpeg", "webp", "bmp") and a.dtype == np.uint16:
            hint = "; write PNG or TIFF to keep 16 bits, or convert to 8 bits first"
        elif fmt == "npy":
            hint = "; .npy output holds float32 linear light"
        raise ImageError(p, f"{fmt.upper()} cannot store {a.dtype} pixels (needs {allowed}){hint}")
    c = _channels(a)
    if fmt == "jpeg" and c not in (1, 3):
        raise ImageError(p, f"JPEG stores gray or RGB, not {c} channels (no alpha); use PNG, TIFF or WebP")
    return np.ascontiguousarray(a)


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    format: str | None = None,
    *,
    like: Image | None = None,
    overwrite: bool = False,
    quality: int = 95,
) -> str:
    """Write pixels atomically, keeping their sample type and channel layout.

    Parameters
    ----------
    path : str or path-like
        Target file. Its folder must exist.
    pixels : ndarray
        ``uint8``/``uint16`` (sRGB-encoded) or ``float32`` (linear, TIFF and ``.npy`` only), shape
        ``(H, W)`` or ``(H, W, C)`` with C in 1..4. Nothing is converted silently: a sample type the
        format can't hold is an error (see the module table).
    format : str, optional
        One of :data:`FORMATS` (``'jpg'``/``'tif'`` accepted). Default: from the extension, else
        ``like.format``. An extension naming another format is an error.
    like : Image, optional
        The image this one was made from: its ICC profile, EXIF, resolution, PNG colour chunks and
        TIFF compression are written back where the target format supports them.
    overwrite : bool
        Replace an existing file. Without it an existing target is never touched.
    quality : int
        JPEG quality 1..100 (4:4:4 chroma is always used). WebP is always lossless.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ImageError
        Unsupported format/sample type, existing target without ``overwrite``, missing or unwritable
        folder, or an encoder failure. The target is left as it was and no temp file remains.
    """
    p = os.fspath(path)
    fmt = _resolve_format(p, format, like)
    a = _prepare_pixels(p, pixels, fmt)
    if not 1 <= int(quality) <= 100:
        raise ImageError(p, f"quality must be in 1..100, got {quality}")
    meta = like.meta if like is not None else {}
    folder = os.path.dirname(os.path.abspath(p))
    if os.path.isdir(p):
        raise ImageError(p, "is a directory")
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ImageError(p, f"output folder {folder} {what}")
    if os.path.lexists(p) and not overwrite:
        raise ImageError(p, "output exists; pass --overwrite to replace it")

    def encode(fh: BinaryIO) -> None:
        _encode(fh, a, fmt, meta, int(quality))

    atomic_write(p, encode, overwrite=overwrite, error=ImageError)
    return p


def _encode(fh: BinaryIO, a: np.ndarray, fmt: str, meta: dict[str, Any], quality: int) -> None:
    if fmt == "png":
        encode_png(fh, a, meta=meta)
    elif fmt == "tiff":
        _encode_tiff(fh, a, meta)
    elif fmt == "npy":
        np.save(fh, a, allow_pickle=False)
    elif fmt == "bmp" and _channels(a) in (2, 4):
        _encode_bmp_rgba(fh, _gray_alpha_to_rgba(a), meta)
    else:
        _encode_pillow(fh, a, fmt, meta, quality)


def _gray_alpha_to_rgba(a: np.ndarray) -> np.ndarray:
    if _channels(a) == 2:
        return np.ascontiguousarray(np.stack([a[..., 0]] * 3 + [a[..., 1]], axis=-1))
    return a


def _encode_pillow(fh: BinaryIO, a: np.ndarray, fmt: str, meta: dict[str, Any], quality: int) -> None:
    from PIL import Image as PILImage

    c = _channels(a)
    if a.ndim == 3 and c == 1:
        a = a[..., 0]
    if fmt == "webp":
        # WebP has no gray: replicate, which keeps every value.
        if c == 1:
            a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
        elif c == 2:
            a = _gray_alpha_to_rgba(a)
    im = PILImage.fromarray(np.ascontiguousarray(a))
    kw: dict[str, Any] = {}
    if meta.get("icc"):
        kw["icc_profile"] = meta["icc"]
    if meta.get("exif") and fmt in ("jpeg", "webp"):
        kw["exif"] = meta["exif"]
    if meta.get("dpi") and fmt in ("jpeg", "bmp"):
        kw["dpi"] = tuple(int(round(v)) for v in meta["dpi"])
    if fmt == "jpeg":
        im.save(fh, "JPEG", quality=quality, subsampling=0, optimize=True, **kw)
    elif fmt == "webp":
        im.save(fh, "WEBP", lossless=True, exact=True, quality=100, method=4, **kw)
    elif fmt == "bmp":
        kw.pop("icc_profile", None)
        im.save(fh, "BMP", **kw)
    else:  # pragma: no cover - PNG is encoded by encode_png
        raise AssertionError(fmt)


def _encode_bmp_rgba(fh: BinaryIO, a: np.ndarray, meta: dict[str, Any]) -> None:
    """32-bit BMP with a BITMAPV4HEADER and bit-field masks, so the alpha channel survives."""
    h, w = a.shape[:2]
    size = w * h * 4
    dpi = meta.get("dpi") or (72.0, 72.0)
    ppm = [int(round(d / 0.0254)) for d in dpi]
    header = struct.pack("<2sIHHI", b"BM", 14 + 108 + size, 0, 0, 14 + 108)
    info = struct.pack(
        "<IiiHHIIiiII",
        108, w, h, 1, 32, 3, size, ppm[0], ppm[1], 0, 0,  # BI_BITFIELDS, bottom-up
    )
    info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    info += b"BGRs" + bytes(36) + bytes(12)  # LCS_sRGB, unused endpoints and gammas
    fh.write(header + info)
    bgra = a[::-1, :, [2, 1, 0, 3]]
    fh.write(np.ascontiguousarray(bgra).tobytes())


def _encode_tiff(fh: BinaryIO, a: np.ndarray, meta: dict[str, Any]) -> None:
    import tifffile

    c = _channels(a)
    if a.ndim == 3 and c == 1:
        a = a[..., 0]
        c = 1
    tiff = meta.get("tiff", {})
    kw: dict[str, Any] = {"photometric": "rgb" if c >= 3 else "minisblack", "metadata": None}
    if c in (2, 4):
        extra = tiff.get("extrasamples") or (2,)
        kw["extrasamples"] = [extra[0] if extra[0] in (1, 2) else 2]
    if c > 1:
        kw["planarconfig"] = "contig"
    compression = tiff.get("compression", "none")
    if compression not in ("none", "1"):
        kw["compression"] = "zlib"  # lossless, needs only the standard library
    if meta.get("icc"):
        kw["iccprofile"] = meta["icc"]
    res = tiff.get("resolution")
    if res is not None:
        kw["resolution"] = (res[0], res[1])
        kw["resolutionunit"] = res[2]
    elif meta.get("dpi"):
        kw["resolution"] = tuple(meta["dpi"])
        kw["resolutionunit"] = 2
    tifffile.imwrite(fh, a, **kw)


# --- PNG encoder -----------------------------------------------------------------------------------


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(ctype))
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def _png_filter_block(cur: np.ndarray, prev: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Filter rows ``cur`` (uint8, rows x bytes) given the row above each (``prev``); return filtered rows
    with the filter-type byte in front. ``filter_type=None`` picks per row by the minimum sum of absolute
    differences heuristic (PNG spec, section 12.8)."""
    x = cur.astype(np.int16)
    b = prev.astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(b)
    c[:, bpp:] = b[:, :-bpp]
    types = range(5) if filter_type is None else (filter_type,)
    best: np.ndarray | None = None
    best_cost: np.ndarray | None = None
    chosen = np.zeros(x.shape[0], dtype=np.uint8)
    for t in types:
        if t == 0:
            f = x
        elif t == 1:
            f = x - a
        elif t == 2:
            f = x - b
        elif t == 3:
            f = x - ((a + b) >> 1)
        else:
            pa = np.abs(b - c)
            pb = np.abs(a - c)
            pc = np.abs(a + b - 2 * c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
            f = x - pred
        fb = (f & 0xFF).astype(np.uint8)
        if filter_type is not None:
            best, chosen[:] = fb, t
            break
        cost = np.abs(fb.view(np.int8).astype(np.int32)).sum(axis=1)
        if best is None:
            best, best_cost = fb, cost
            chosen[:] = t
        else:
            better = cost < best_cost
            best[better] = fb[better]
            best_cost = np.where(better, cost, best_cost)
            chosen[better] = t
    assert best is not None
    return np.concatenate([chosen[:, None], best], axis=1)


def encode_png(
    fh: BinaryIO,
    pixels: np.ndarray,
    *,
    meta: dict[str, Any] | None = None,
    level: int = 3,
    filter_type: int | None = None,
) -> None:
    """Encode an 8- or 16-bit gray/GA/RGB/RGBA PNG with NumPy and zlib (bit-exact, non-interlaced).

    Parameters
    ----------
    fh : binary file
        Destination.
    pixels : ndarray, uint8 or uint16, (H, W) or (H, W, C) with C in 1..4
        Samples to store.
    meta : dict, optional
        :attr:`Image.meta`: ``'icc'`` becomes iCCP (else the ``'png'`` sRGB/gAMA/cHRM chunks are
        copied), ``'dpi'`` or the source pHYs becomes pHYs, ``'exif'`` becomes eXIf.
    level : int
        zlib level. 3 by default: measured on a noisy 1080p photo, 2.2x faster than 6 for 3 % more
        bytes - batch throughput on small machines is bound by the encoder.
    filter_type : int, optional
        Force one PNG filter (0..4) for every row; default adaptive per row.
    """
    a = np.asarray(pixels)
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG samples must be uint8 or uint16, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    h, w, c = a.shape
    if not 1 <= c <= 4:
        raise ValueError(f"PNG needs 1..4 channels, got {c}")
    depth = 8 * a.dtype.itemsize
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    meta = meta or {}
    out = [_PNG_SIG, _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))]
    pngm = meta.get("png", {})
    if meta.get("icc"):
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta["icc"], 9)))
    else:
        if "srgb" in pngm:
            out.append(_png_chunk(b"sRGB", bytes([int(pngm["srgb"]) & 0xFF])))
        if "gamma" in pngm:
            out.append(_png_chunk(b"gAMA", struct.pack(">I", int(pngm["gamma"]))))
        if "chrm" in pngm:
            out.append(_png_chunk(b"cHRM", bytes(pngm["chrm"])))
    if "phys" in pngm:
        out.append(_png_chunk(b"pHYs", struct.pack(">IIB", *pngm["phys"])))
    elif meta.get("dpi"):
        dx, dy = meta["dpi"]
        ppm = (int(round(dx / 0.0254)), int(round(dy / 0.0254)))
        out.append(_png_chunk(b"pHYs", struct.pack(">IIB", *ppm, 1)))
    if meta.get("exif"):
        out.append(_png_chunk(b"eXIf", bytes(meta["exif"])))
    fh.write(b"".join(out))

    rows = a.astype(a.dtype.newbyteorder(">"), copy=False).reshape(h, w * c)
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(h, -1)
    bpp = c * a.dtype.itemsize
    comp = zlib.compressobj(level)
    block = max(1, (4 << 20) // max(raw.shape[1], 1))  # ~4 MiB of samples per block
    prev_row = np.zeros((1, raw.shape[1]), dtype=np.uint8)
    pending = bytearray()
    for y0 in range(0, h, block):
        cur = raw[y0 : y0 + block]
        prev = np.concatenate([prev_row, cur[:-1]], axis=0)
        filtered = _png_filter_block(cur, prev, bpp, filter_type)
        pending += comp.compress(filtered.tobytes())
        prev_row = cur[-1:]
        while len(pending) >= (1 << 20):
            fh.write(_png_chunk(b"IDAT", bytes(pending[: 1 << 20])))
            del pending[: 1 << 20]
    pending += comp.flush()
    for i in range(0, len(pending), 1 << 20):
        fh.write(_png_chunk(b"IDAT", bytes(pending[i : i + (1 << 20)])))
    fh.write(_png_chunk(b"IEND", b""))
