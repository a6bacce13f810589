"""Image metadata carried from an input file to its output, across formats: EXIF, ICC, XMP, text, TIFF tags.

What is carried (``Metadata`` fields) and where each lives in each container:

==========  ==================  ==================  ===============  ===================  ==================
field       PNG                 JPEG                TIFF             WebP                 JPEG XL / AVIF
==========  ==================  ==================  ===============  ===================  ==================
``icc``     iCCP                APP2 ICC_PROFILE    tag 34675        ICCP (VP8X)          AVIF colr 'prof';
                                                                                          JXL: not written
``exif``    eXIf                APP1 Exif           IFD0 tags +      EXIF (VP8X)          Exif box / item
                                                    Exif/GPS IFDs
``xmp``     iTXt XML:com.       APP1 XMP            tag 700          XMP  (VP8X)          xml box / mime item
            adobe.xmp
``text``    tEXt/zTXt/iTXt      COM ('Comment')     270, 305, 306,   -                    -
                                                    315, 33432, ...
``dpi``     pHYs                JFIF density        282/283/296      -                    -
``cicp``    cICP                -                   -                -                    AVIF colr 'nclx';
                                                                                          JXL colour encoding
==========  ==================  ==================  ===============  ===================  ==================

Anything else a file holds (PNG safe-to-copy chunks, JPEG APP13/IPTC, private TIFF tags) is kept in
``Metadata.extra`` and written back only to the same format. Whatever cannot go into the target format is
named in one line (``carry_warnings``), never dropped silently.

Why our own chunk/marker/box code and not pyexiv2 or Pillow - measured on a camera JPEG (EXIF with an Exif
sub-IFD, ICC, XMP, a comment) converted to PNG:

* Pillow, plain ``open().save()``: ICC only. With ``exif=``/``icc_profile=`` passed on: EXIF and ICC, no XMP,
  no comment - and its encoders cannot write 16-bit RGB PNG or 10/12-bit AVIF at all;
* pyexiv2 2.16 (Exiv2 0.28), copying ``read_exif``/``read_xmp``/``read_icc``/``read_comment`` onto the new
  file: ICC, XMP, comment and the IFD0 tags, but the Exif sub-IFD came back empty (exposure time and focal
  length lost: it re-serialises EXIF from parsed string values), it needs a second pass over the finished
  file, and it refused to open a JPEG whose maker note it could not parse;
* this module: all of them, byte for byte (eXIf, iCCP, iTXt XMP, tEXt Comment), in microseconds, with no
  extra dependency.

Into and out of TIFF, the Exif and GPS directories are re-serialised (TIFF keeps them as directories of the
file, not as one block); a maker note is copied as its bytes, so one that points at absolute offsets (Canon's)
is left pointing at the old positions - as with any tool that does not rewrite maker notes field by field.

EXIF orientation is honoured once: the pixels are never rotated where the target container can say the
orientation itself (the EXIF tag travels with the pixels, so a viewer rotates once). JPEG XL and AVIF keep
orientation in the codestream/container, where a viewer takes it from and ignores EXIF; there the image
module rotates the pixels and :func:`set_exif_orientation` resets the tag to 1.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: PNG text keyword <-> TIFF tag for the descriptive fields both can hold (PNG keywords from PNG 1.2
#: section 11.3.4.2, plus the EXIF/TIFF names where PNG has none).
TEXT_TIFF_TAGS: dict[str, int] = {
    "Title": 269,  # DocumentName
    "Description": 270,  # ImageDescription
    "Make": 271,
    "Model": 272,
    "PageName": 285,
    "Software": 305,
    "Creation Time": 306,  # DateTime
    "Author": 315,  # Artist
    "HostComputer": 316,
    "Copyright": 33432,
}
_TIFF_TAG_TEXT = {v: k for k, v in TEXT_TIFF_TAGS.items()}

#: EXIF IFD0 tags that are not descriptive but structural (image layout, offsets): never copied as tags.
_TIFF_STRUCTURAL = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323, 324,
     325, 330, 338, 339, 340, 341, 347, 513, 514, 529, 530, 531, 532, 282, 283, 296, 34675, 700, 34665, 34853}
)
EXIF_IFD, GPS_IFD, INTEROP_IFD, ORIENTATION = 34665, 34853, 40965, 274

_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


@dataclass
class Metadata:
    """Metadata of one image file, in container-neutral form.

    Attributes
    ----------
    icc : bytes or None
        The embedded ICC profile, byte for byte.
    exif : bytes or None
        The EXIF block as a TIFF structure (starts ``II*\\0`` or ``MM\\0*``; no ``Exif\\0\\0`` prefix).
    xmp : bytes or None
        The XMP packet (UTF-8 XML).
    text : dict of str to str
        Text fields under PNG keywords (``'Description'``, ``'Author'``, ``'Comment'``, ...).
    dpi : (float, float) or None
        Pixels per inch, x and y.
    cicp : (int, int, int, int) or None
        ITU-T H.273 (colour primaries, transfer characteristics, matrix coefficients, full range flag).
    png_colour : dict
        PNG ``sRGB`` (rendering intent), ``gAMA`` (int) and ``cHRM`` (32 raw bytes) chunks, kept for PNG
        output when there is no ICC profile.
    extra : dict
        Format-only payloads, written back only to the same format: ``'png'`` -> list of
        ``(chunk type, body)``; ``'jpeg'`` -> list of ``(marker, payload)``; ``'tiff'`` -> list of
        ``(tag, dtype, count, value)`` for tifffile's ``extratags``.
    """

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)
    dpi: tuple[float, float] | None = None
    cicp: tuple[int, int, int, int] | None = None
    png_colour: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def orientation(self) -> int:
        """EXIF orientation 1..8 (1 when absent or unreadable)."""
        return exif_orientation(self.exif)

    def names(self) -> list[str]:
        """What this holds, for messages (``['ICC', 'EXIF', 'XMP', "text 'Author'"]``)."""
        out = [n for n, v in (("ICC", self.icc), ("EXIF", self.exif), ("XMP", self.xmp)) if v]
        out += [f"text {k!r}" for k in self.text]
        return out


# ---------------------------------------------------------------------------------------------------
# TIFF / EXIF directories


@dataclass
class IfdEntry:
    """One TIFF directory entry: ``raw`` holds the value bytes in the block's byte order."""

    tag: int
    dtype: int
    count: int
    raw: bytes
    sub: list[IfdEntry] | None = None  # the entries of a pointed-to IFD (Exif, GPS, Interop)


def _byte_order(block: bytes) -> str:
    if block[:4] == b"II*\x00":
        return "<"
    if block[:4] == b"MM\x00*":
        return ">"
    raise ValueError("not a TIFF/EXIF structure")


def read_ifd(read: Callable[[int, int], bytes], offset: int, order: str, subs: tuple[int, ...] = (),
             depth: int = 0) -> tuple[list[IfdEntry], int]:
    """Parse one IFD at ``offset``; ``read(offset, n)`` returns bytes of the file/block.

    Entries whose tag is in ``subs`` are followed into their sub-IFD (``IfdEntry.sub``). Returns the entries
    and the next-IFD offset. Raises ``ValueError`` on a structure that runs out of the data.
    """
    if depth > 4:
        raise ValueError("EXIF directories nest too deep")
    head = read(offset, 2)
    if len(head) != 2:
        raise ValueError("EXIF directory offset out of range")
    (n,) = struct.unpack(order + "H", head)
    body = read(offset + 2, 12 * n + 4)
    if len(body) != 12 * n + 4:
        raise ValueError("EXIF directory runs past the data")
    entries = []
    for i in range(n):
        tag, dtype, count = struct.unpack(order + "HHI", body[12 * i : 12 * i + 8])
        size = _TYPE_SIZE.get(dtype, 1) * count
        if size <= 4:
            raw = body[12 * i + 8 : 12 * i + 8 + size]
        else:
            (voff,) = struct.unpack(order + "I", body[12 * i + 8 : 12 * i + 12])
            raw = read(voff, size)
            if len(raw) != size:
                continue  # a value pointing out of the data is dropped, the rest stays usable
        e = IfdEntry(tag, dtype, count, raw)
        if tag in subs and dtype in (4, 13) and count == 1:
            (sub_off,) = struct.unpack(order + "I", raw[:4])
            e.sub, _ = read_ifd(read, sub_off, order, (INTEROP_IFD,), depth + 1)
        entries.append(e)
    (nxt,) = struct.unpack(order + "I", body[-4:])
    return entries, nxt


def parse_exif(block: bytes) -> tuple[str, list[IfdEntry]]:
    """Byte order and IFD0 entries (with Exif/GPS/Interop sub-IFDs) of an EXIF block."""
    order = _byte_order(block)
    (ifd0,) = struct.unpack(order + "I", block[4:8])

    def read(off: int, n: int) -> bytes:
        return block[off : off + n] if 0 <= off <= len(block) else b""

    entries, _ = read_ifd(read, ifd0, order, (EXIF_IFD, GPS_IFD))
    return order, entries


def serialize_ifd(entries: list[IfdEntry], order: str, base: int) -> bytes:
    """Serialise ``entries`` (and their sub-IFDs, placed after) as an IFD starting at file offset ``base``.

    Values over 4 bytes go after the directory, each on a word boundary; the next-IFD offset is 0.
    """
    entries = sorted(entries, key=lambda e: e.tag)
    n = len(entries)
    head_size = 2 + 12 * n + 4
    data = bytearray()
    slots: list[bytes] = []
    pending_subs: list[tuple[int, IfdEntry]] = []
    for e in entries:
        if e.sub is not None:
            pending_subs.append((len(slots), e))
            slots.append(b"")  # patched below
            continue
        if len(e.raw) <= 4:
            slots.append(e.raw.ljust(4, b"\x00"))
        else:
            if (base + head_size + len(data)) % 2:
                data += b"\x00"
            slots.append(struct.pack(order + "I", base + head_size + len(data)))
            data += e.raw
    for idx, e in pending_subs:
        if (base + head_size + len(data)) % 2:
            data += b"\x00"
        sub_base = base + head_size + len(data)
        slots[idx] = struct.pack(order + "I", sub_base)
        data += serialize_ifd(e.sub or [], order, sub_base)
    out = bytearray(struct.pack(order + "H", n))
    for e, slot in zip(entries, slots, strict=True):
        dtype = 4 if e.sub is not None else e.dtype
        count = 1 if e.sub is not None else e.count
        out += struct.pack(order + "HHI", e.tag, dtype, count) + slot
    out += struct.pack(order + "I", 0)
    return bytes(out + data)


def build_exif(entries: list[IfdEntry], order: str = "<") -> bytes:
    """An EXIF block (TIFF header + IFD0 + sub-IFDs) from IFD0 entries."""
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    return header + serialize_ifd(entries, order, 8)


def exif_orientation(exif: bytes | None) -> int:
    """The orientation tag (274) of an EXIF block, 1..8; 1 when absent or unreadable."""
    if not exif:
        return 1
    try:
        order, entries = parse_exif(exif)
    except (ValueError, struct.error):
        return 1
    for e in entries:
        if e.tag == ORIENTATION and e.dtype == 3 and e.count >= 1:
            (v,) = struct.unpack(order + "H", e.raw[:2])
            return v if 1 <= v <= 8 else 1
    return 1


def set_exif_orientation(exif: bytes, value: int) -> bytes:
    """``exif`` with its orientation tag's value replaced in place (the block is otherwise unchanged)."""
    order = _byte_order(exif)
    (ifd0,) = struct.unpack(order + "I", exif[4:8])
    (n,) = struct.unpack(order + "H", exif[ifd0 : ifd0 + 2])
    for i in range(n):
        pos = ifd0 + 2 + 12 * i
        tag, dtype = struct.unpack(order + "HH", exif[pos : pos + 4])
        if tag == ORIENTATION and dtype == 3:
            return exif[: pos + 8] + struct.pack(order + "H", value) + exif[pos + 10 :]
    return exif


# ---------------------------------------------------------------------------------------------------
# PNG


def png_chunks(data: bytes, on_error: Callable[[str], None]) -> Iterator[tuple[bytes, bytes, int]]:
    """Yield ``(type, body, offset)`` of each PNG chunk up to IEND (``body`` is bytes, a memoryview for IDAT).

    Critical chunks with a bad CRC, a chunk that runs past the end and a missing IEND call
    ``on_error(reason)`` (which raises); an ancillary chunk with a bad CRC is skipped.
    """
    pos, n = len(PNG_SIGNATURE), len(data)
    view = memoryview(data)  # IDAT bodies stay views: no second copy of the compressed image
    first = True
    while True:
        if pos + 8 > n:
            on_error(f"truncated PNG: file ends after {n} bytes without an IEND chunk")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            on_error(f"truncated PNG: the {ctype.decode('latin-1')!r} chunk runs past the end of the file")
        body = view[pos + 8 : pos + 8 + length]
        if ctype != b"IDAT":
            body = bytes(body)
        if first and ctype != b"IHDR":
            on_error("corrupt PNG: first chunk is not IHDR")
        first = False
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(body, zlib.crc32(ctype)) != crc:
            if not ctype[0] & 0x20:  # critical: upper-case first letter
                on_error(f"corrupt PNG: CRC mismatch in the {ctype.decode('latin-1')} chunk")
            pos = end
            continue
        yield ctype, body, pos
        pos = end
        if ctype == b"IEND":
            return


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(ctype)))


#: Chunks the PNG decoder or our own fields account for; any other chunk goes to ``extra['png']``.
_PNG_KNOWN = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"pHYs",
              b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"sBIT", b"bKGD", b"tIME", b"hIST", b"acTL", b"fcTL", b"fdAT"}


def read_png_metadata(chunks: list[tuple[bytes, bytes, int]], warn: Callable[[str], None]) -> Metadata:
    """Metadata from a PNG's chunk list (see :func:`png_chunks`); unreadable ancillary chunks are named."""
    m = Metadata()
    for ctype, body, _ in chunks:
        try:
            if ctype == b"iCCP":
                name_end = body.index(b"\x00")
                m.icc = zlib.decompress(body[name_end + 2 :])
            elif ctype == b"sRGB" and len(body) == 1:
                m.png_colour["srgb"] = body[0]
            elif ctype == b"gAMA" and len(body) == 4:
                m.png_colour["gamma"] = struct.unpack(">I", body)[0]
            elif ctype == b"cHRM" and len(body) == 32:
                m.png_colour["chrm"] = bytes(body)
            elif ctype == b"cICP" and len(body) == 4:
                m.cicp = (body[0], body[1], body[2], body[3])
            elif ctype == b"pHYs" and len(body) == 9:
                x, y, unit = struct.unpack(">IIB", body)
                if unit == 1:
                    m.dpi = (x * 0.0254, y * 0.0254)
            elif ctype == b"eXIf":
                m.exif = bytes(body[6:] if body.startswith(b"Exif\x00\x00") else body)
                _byte_order(m.exif)
            elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
                key, value = _png_text(ctype, body)
                if key == "XML:com.adobe.xmp":
                    m.xmp = value.encode("utf-8")
                else:
                    m.text[key] = value
            elif ctype not in _PNG_KNOWN and ctype[3] & 0x20:
                # Safe-to-copy (lower-case 4th letter): valid after the pixels change (PNG 1.2, 14.2).
                m.extra.setdefault("png", []).append((bytes(ctype), bytes(body)))
            elif ctype not in _PNG_KNOWN:
                warn(f"PNG chunk {ctype.decode('latin-1')!r} is not safe to copy after editing; it is dropped")
        except (ValueError, zlib.error, struct.error, UnicodeDecodeError):
            warn(f"unreadable PNG {ctype.decode('latin-1')} chunk dropped")
    return m


def _png_text(ctype: bytes, body: bytes) -> tuple[str, str]:
    key_end = body.index(b"\x00")
    key = body[:key_end].decode("latin-1")
    rest = body[key_end + 1 :]
    if ctype == b"tEXt":
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        return key, zlib.decompress(rest[1:]).decode("latin-1")
    compressed = rest[0]
    lang_end = rest.index(b"\x00", 2)
    trans_end = rest.index(b"\x00", lang_end + 1)
    text = rest[trans_end + 1 :]
    return key, (zlib.decompress(text) if compressed else text).decode("utf-8")


def png_metadata_chunks(m: Metadata) -> list[bytes]:
    """The chunks (with length and CRC) that carry ``m`` in a PNG, in the order they go after IHDR."""
    out = []
    if m.cicp is not None:
        out.append(png_chunk(b"cICP", bytes(m.cicp)))
    if m.icc:
        out.append(png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(m.icc, 9)))
    else:
        if "srgb" in m.png_colour:
            out.append(png_chunk(b"sRGB", bytes([int(m.png_colour["srgb"]) & 0xFF])))
        if "gamma" in m.png_colour:
            out.append(png_chunk(b"gAMA", struct.pack(">I", int(m.png_colour["gamma"]))))
        if "chrm" in m.png_colour:
            out.append(png_chunk(b"cHRM", m.png_colour["chrm"]))
    if m.dpi:
        ppm = [int(round(d / 0.0254)) for d in m.dpi]
        out.append(png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if m.exif:
        out.append(png_chunk(b"eXIf", m.exif))
    if m.xmp:
        out.append(png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + m.xmp))
    for key, value in m.text.items():
        k = key.encode("latin-1", "replace")[:79] or b"Comment"
        try:
            v = value.encode("latin-1")
            out.append(png_chunk(b"tEXt", k + b"\x00" + v) if len(v) < 1024
                       else png_chunk(b"zTXt", k + b"\x00\x00" + zlib.compress(v, 9)))
        except UnicodeEncodeError:
            out.append(png_chunk(b"iTXt", k + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    for ctype, body in m.extra.get("png", []):
        out.append(png_chunk(ctype, body))
    return out


def png_insert_metadata(png: bytes, m: Metadata) -> list[bytes]:
    """The pieces of ``png`` (a bare encoder output) with ``m``'s chunks right after IHDR."""
    ihdr_end = len(PNG_SIGNATURE) + 25
    return [png[:ihdr_end], *png_metadata_chunks(m), png[ihdr_end:]]


# ---------------------------------------------------------------------------------------------------
# JPEG

_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_ID = b"ICC_PROFILE\x00"


@dataclass
class JpegSegments:
    """What the marker walk of a JPEG found: metadata, tables and frame layout."""

    metadata: Metadata
    width: int = 0
    height: int = 0
    components: int = 0
    precision: int = 8
    sampling: tuple[tuple[int, int], ...] = ()
    quant_tables: dict[int, list[int]] = field(default_factory=dict)  # id -> 64 values in zig-zag order
    component_tables: tuple[int, ...] = ()  # quantisation table id of each component
    adobe_transform: int | None = None
    frames: int = 0


def read_jpeg_segments(data: bytes, warn: Callable[[str], None]) -> JpegSegments:
    """Walk the markers of a JPEG up to its first scan (metadata lives before it). Raises ``ValueError``."""
    m = Metadata()
    js = JpegSegments(m)
    icc_parts: dict[int, bytes] = {}
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:  # end of image (a tables-only stream, e.g. a TIFF's JPEGTables)
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        payload = data[pos + 4 : pos + 2 + length]
        if len(payload) != length - 2:
            raise ValueError("truncated JPEG: a marker segment runs past the end of the file")
        pos += 2 + length
        if marker == 0xDA:  # start of scan: everything after is entropy-coded data
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            js.frames += 1
            js.precision, js.height, js.width, nc = struct.unpack(">BHHB", payload[:6])
            js.components = nc
            comps = [payload[6 + 3 * i : 9 + 3 * i] for i in range(nc)]
            js.sampling = tuple((c[1] >> 4, c[1] & 15) for c in comps)
            js.component_tables = tuple(c[2] for c in comps)
        elif marker == 0xDB:
            _read_dqt(payload, js.quant_tables)
        elif marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 12:
            unit, xd, yd = struct.unpack(">BHH", payload[7:12])
            if unit in (1, 2) and xd and yd:
                scale = 1.0 if unit == 1 else 2.54
                m.dpi = (xd * scale, yd * scale)
        elif marker == 0xE1 and payload.startswith(b"Exif\x00\x00") and m.exif is None:
            m.exif = bytes(payload[6:])
        elif marker == 0xE1 and payload.startswith(_XMP_ID):
            m.xmp = bytes(payload[len(_XMP_ID) :])
        elif marker == 0xE2 and payload.startswith(_ICC_ID) and len(payload) > 14:
            icc_parts[payload[12]] = bytes(payload[14:])
        elif marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
            js.adobe_transform = payload[11]
        elif marker == 0xFE:
            m.text["Comment"] = payload.decode("utf-8", "replace").rstrip("\x00")
        elif 0xE1 <= marker <= 0xEF and not (marker == 0xE2 and payload.startswith(b"MPF\x00")):
            # APP13 (Photoshop IRB / IPTC), extended XMP, FlashPix...: same-format only. MPF (the index of
            # secondary images) is left out: its offsets point at data we do not write.
            m.extra.setdefault("jpeg", []).append((marker, bytes(payload)))
        elif marker == 0xE2:
            warn("JPEG multi-picture (MPF) index dropped: secondary images are not copied")
    if icc_parts:
        m.icc = b"".join(icc_parts[k] for k in sorted(icc_parts))
    return js


def _read_dqt(payload: bytes, tables: dict[int, list[int]]) -> None:
    pos = 0
    while pos < len(payload):
        pq, tq = payload[pos] >> 4, payload[pos] & 15
        if pq:
            tables[tq] = list(struct.unpack(">64H", payload[pos + 1 : pos + 129]))
            pos += 129
        else:
            tables[tq] = list(payload[pos + 1 : pos + 65])
            pos += 65


def jpeg_metadata_segments(m: Metadata) -> list[bytes]:
    """The marker segments (with marker and length) that carry ``m`` in a JPEG, to go after SOI/JFIF."""

    def seg(marker: int, payload: bytes) -> bytes:
        if len(payload) > 65533:
            raise ValueError(f"metadata segment of {len(payload)} bytes exceeds JPEG's 64 KiB limit")
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    out = []
    if m.exif:
        out.append(seg(0xE1, b"Exif\x00\x00" + m.exif))
    if m.xmp:
        out.append(seg(0xE1, _XMP_ID + m.xmp))
    if m.icc:
        size = 65519
        parts = [m.icc[i : i + size] for i in range(0, len(m.icc), size)]
        for i, part in enumerate(parts):
            out.append(seg(0xE2, _ICC_ID + bytes([i + 1, len(parts)]) + part))
    for marker, payload in m.extra.get("jpeg", []):
        out.append(seg(marker, payload))
    if "Comment" in m.text:
        out.append(seg(0xFE, m.text["Comment"].encode("utf-8")))
    return out


def jpeg_insert_metadata(jpeg: bytes, m: Metadata) -> list[bytes]:
    """The pieces of ``jpeg`` (a bare encoder output) with ``m``'s segments after SOI and JFIF APP0.

    The JFIF density is set from ``m.dpi``.
    """
    pos = 2
    head = bytearray(jpeg[:2])
    if jpeg[2:4] == b"\xff\xe0":
        (length,) = struct.unpack(">H", jpeg[4:6])
        app0 = bytearray(jpeg[2 : 4 + length])
        if m.dpi and app0[4:9] == b"JFIF\x00":
            app0[11:16] = struct.pack(">BHH", 1, *(min(65535, int(round(d))) for d in m.dpi))
        head += app0
        pos = 4 + length
    return [bytes(head), *jpeg_metadata_segments(m), jpeg[pos:]]


# ---------------------------------------------------------------------------------------------------
# WebP (RIFF)


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of a WebP RIFF file. Raises ``ValueError`` on a broken structure."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP RIFF file")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    out, pos = [], 12
    while pos + 8 <= end:
        ctype = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if len(body) != size:
            raise ValueError(f"truncated WebP: the {ctype.decode('latin-1')!r} chunk runs past the end")
        out.append((ctype, body))
        pos += 8 + size + (size & 1)
    return out


def read_webp_metadata(chunks: list[tuple[bytes, bytes]]) -> Metadata:
    m = Metadata()
    for ctype, body in chunks:
        if ctype == b"ICCP":
            m.icc = bytes(body)
        elif ctype == b"EXIF":
            m.exif = bytes(body[6:] if body.startswith(b"Exif\x00\x00") else body)
        elif ctype == b"XMP ":
            m.xmp = bytes(body)
    return m


def webp_with_metadata(webp: bytes, m: Metadata, width: int, height: int, alpha: bool) -> bytes:
    """Rewrap an encoder's WebP as an extended (VP8X) file holding ``m``'s ICC, EXIF and XMP."""
    if not (m.icc or m.exif or m.xmp):
        return webp
    image = [(c, b) for c, b in riff_chunks(webp) if c in (b"ALPH", b"VP8 ", b"VP8L")]
    flags = (0x20 if m.icc else 0) | (0x10 if alpha else 0) | (0x08 if m.exif else 0) | (0x04 if m.xmp else 0)
    vp8x = struct.pack("<I", flags) + struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    chunks = [(b"VP8X", vp8x)]
    if m.icc:
        chunks.append((b"ICCP", m.icc))
    chunks += image
    if m.exif:
        chunks.append((b"EXIF", m.exif))
    if m.xmp:
        chunks.append((b"XMP ", m.xmp))
    body = b"".join(c + struct.pack("<I", len(b)) + b + (b"\x00" if len(b) & 1 else b"") for c, b in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


# ---------------------------------------------------------------------------------------------------
# ISO base media boxes (AVIF, JPEG XL container)


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload start, payload end)`` of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, btype = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError("truncated box header")
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise ValueError(f"box {btype.decode('latin-1')!r} runs past the end of the file")
        yield btype, pos + head, pos + size
        pos += size


def read_jxl_container(data: bytes) -> tuple[Metadata, bytes]:
    """Metadata boxes of a JPEG XL container and the start of its codestream (for the header probe).

    ``Exif`` boxes start with a 4-byte offset to the TIFF header; ``brob`` boxes (Brotli-compressed
    metadata) are unpacked.
    """
    m = Metadata()
    codestream = b""
    for btype, a, b in iter_boxes(data):
        body = data[a:b]
        if btype == b"brob" and len(body) >= 4:
            import imagecodecs

            btype, body = body[:4], imagecodecs.brotli_decode(body[4:])
        if btype == b"Exif" and len(body) > 4:
            (off,) = struct.unpack(">I", body[:4])
            m.exif = bytes(body[4 + off :])
        elif btype == b"xml ":
            m.xmp = bytes(body)
        elif btype == b"jxlc":
            codestream = body[:4096]
        elif btype == b"jxlp" and not codestream:
            codestream = body[4:4100]
    return m, codestream


def jxl_with_metadata(jxl: bytes, m: Metadata) -> bytes:
    """Append Exif and xml boxes to a JPEG XL container file (the encoder wrote it with ``usecontainer``)."""
    out = bytearray(jxl)
    if m.exif:
        body = b"\x00\x00\x00\x00" + m.exif
        out += struct.pack(">I", 8 + len(body)) + b"Exif" + body
    if m.xmp:
        out += struct.pack(">I", 8 + len(m.xmp)) + b"xml " + m.xmp
    return bytes(out)


@dataclass
class HeifInfo:
    """What the AVIF (HEIF) boxes say about the primary image."""

    metadata: Metadata
    width: int = 0
    height: int = 0
    bits: int = 0
    transforms: list[tuple[str, int]] = field(default_factory=list)  # ('irot', quarter turns) / ('imir', axis)
    sequence: bool = False


def read_heif(data: bytes) -> HeifInfo:
    """Parse ftyp/meta of an AVIF file: primary item size, bit depth, colour, transforms, Exif and XMP items."""
    info = HeifInfo(Metadata())
    boxes = {t: (a, b) for t, a, b in iter_boxes(data)}
    if b"ftyp" in boxes:
        a, b = boxes[b"ftyp"]
        brands = {data[i : i + 4] for i in range(a, b, 4)}
        info.sequence = b"avis" in brands and b"avif" not in {data[a : a + 4]}
    if b"meta" not in boxes:
        raise ValueError("AVIF has no meta box")
    ma, mb = boxes[b"meta"]
    meta = {t: (a, b) for t, a, b in iter_boxes(data, ma + 4, mb)}  # meta is a FullBox
    primary = 1
    if b"pitm" in meta:
        a, _ = meta[b"pitm"]
        primary = struct.unpack(">H", data[a + 4 : a + 6])[0] if data[a] == 0 else struct.unpack(
            ">I", data[a + 4 : a + 8])[0]
    items = _heif_items(data, meta)
    locations = _heif_locations(data, meta)
    props: list[tuple[bytes, int, int]] = []
    assoc: dict[int, list[int]] = {}
    if b"iprp" in meta:
        a, b = meta[b"iprp"]
        for t, pa, pb in iter_boxes(data, a, b):
            if t == b"ipco":
                props = list(iter_boxes(data, pa, pb))
            elif t == b"ipma":
                assoc = _heif_ipma(data, pa, pb)
    for idx in assoc.get(primary, []):
        if not 1 <= idx <= len(props):
            continue
        t, a, b = props[idx - 1]
        if t == b"ispe":
            info.width, info.height = struct.unpack(">II", data[a + 4 : a + 12])
        elif t == b"pixi" and b > a + 5:
            info.bits = data[a + 5]
        elif t == b"colr":
            kind = data[a : a + 4]
            if kind == b"nclx":
                cp, tc, mc = struct.unpack(">HHH", data[a + 4 : a + 10])
                info.metadata.cicp = (cp, tc, mc, data[a + 10] >> 7)
            elif kind in (b"prof", b"rICC"):
                info.metadata.icc = bytes(data[a + 4 : b])
        elif t == b"irot":
            info.transforms.append(("irot", data[a] & 3))
        elif t == b"imir":
            info.transforms.append(("imir", data[a] & 1))
    for item_id, (item_type, content_type) in items.items():
        if item_id not in locations:
            continue
        off, length = locations[item_id]
        body = data[off : off + length]
        if item_type == b"Exif" and len(body) > 4:
            (skip,) = struct.unpack(">I", body[:4])
            info.metadata.exif = bytes(body[4 + skip :])
        elif item_type == b"mime" and content_type == "application/rdf+xml":
            info.metadata.xmp = bytes(body)
    return info


def _box(btype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), btype) + payload


def avif_with_metadata(avif: bytes, m: Metadata) -> bytes:
    """Add ``m``'s ICC profile (a ``colr``/``prof`` property of the primary item) and its EXIF and XMP (items
    described by the primary item, ``cdsc`` references) to an encoder's AVIF file.

    The new items' data go in a second ``mdat`` box at the end; the ``iloc`` box is rewritten with every
    existing file offset moved by the growth of ``meta``. Raises ``ValueError`` on a layout not handled
    (extent indices, offsets that are not absolute).
    """
    if not (m.icc or m.exif or m.xmp):
        return avif
    top = list(iter_boxes(avif))
    meta_at = next(i for i, (t, _, _) in enumerate(top) if t == b"meta")
    _, ma, mb = top[meta_at]
    meta_start = ma - 8
    children = [(t, avif[a:b]) for t, a, b in iter_boxes(avif, ma + 4, mb)]
    kinds = [t for t, _ in children]
    body = dict(children)
    (primary,) = struct.unpack(">H", body[b"pitm"][4:6]) if body[b"pitm"][0] == 0 else struct.unpack(
        ">I", body[b"pitm"][4:8])
    items = _iloc_parse(body[b"iloc"])
    next_id = max([primary, *(i[0] for i in items)]) + 1
    new_items: list[tuple[int, bytes, bytes]] = []  # (id, infe payload, data)
    if m.exif:
        new_items.append((next_id, b"Exif\x00", b"\x00\x00\x00\x00" + m.exif))
    if m.xmp:
        new_items.append((next_id + len(new_items), b"mime\x00application/rdf+xml\x00", m.xmp))
    # iinf: version 0 counts in 16 bits
    iinf = body[b"iinf"]
    version = iinf[0]
    head = 6 if version == 0 else 8
    count = int.from_bytes(iinf[4:head], "big") + len(new_items)
    infes = iinf[head:] + b"".join(_box(b"infe", bytes([2, 0, 0, 0]) + struct.pack(">HH", item_id, 0) + payload)
                                   for item_id, payload, _ in new_items)
    body[b"iinf"] = iinf[:4] + count.to_bytes(head - 4, "big") + infes
    # iref: cdsc from each metadata item to the primary image
    refs = b"".join(_box(b"cdsc", struct.pack(">HHH", item_id, 1, primary)) for item_id, _, _ in new_items)
    if refs:
        if b"iref" in body:
            if body[b"iref"][0] != 0:
                raise ValueError("iref version 1 not handled")
            body[b"iref"] += refs
        else:
            body[b"iref"] = bytes(4) + refs
            kinds.insert(kinds.index(b"iinf") + 1, b"iref")
    # ICC: a colr 'prof' property associated with the primary item
    if m.icc:
        parts = [(t, body[b"iprp"][a:b]) for t, a, b in iter_boxes(body[b"iprp"])]
        ipco = next(v for t, v in parts if t == b"ipco")
        ipma = next(v for t, v in parts if t == b"ipma")
        n_props = len(list(iter_boxes(ipco)))
        ipco += _box(b"colr", b"prof" + m.icc)
        ipma = _ipma_add(ipma, primary, n_props + 1)
        body[b"iprp"] = _box(b"ipco", ipco) + _box(b"ipma", ipma)
    # iloc: existing items + new ones; offsets fixed once the size of meta is known
    tail_len = len(avif)

    def build(delta: int) -> bytes:
        entries = [(item_id, method, [(off + delta if method == 0 else off, length) for off, length in extents])
                   for item_id, method, extents in items]
        pos = tail_len + delta + 8  # the new mdat's payload
        for item_id, _, data in new_items:
            entries.append((item_id, 0, [(pos, len(data))]))
            pos += len(data)
        body[b"iloc"] = _iloc_build(entries)
        return _box(b"meta", avif[ma : ma + 4] + b"".join(_box(t, body[t]) for t in kinds))

    old_meta_len = mb - meta_start
    meta = build(0)
    delta = len(meta) - old_meta_len
    meta = build(delta)
    out = bytearray(avif[:meta_start]) + meta + avif[mb:]
    if new_items:
        out += _box(b"mdat", b"".join(data for _, _, data in new_items))
    return bytes(out)


def _iloc_parse(iloc: bytes) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(item id, construction method, [(absolute offset, length)]) of every item in an iloc payload."""
    version = iloc[0]
    p = 4
    off_size, len_size = iloc[p] >> 4, iloc[p] & 15
    base_size = iloc[p + 1] >> 4
    idx_size = iloc[p + 1] & 15 if version in (1, 2) else 0
    if idx_size:
        raise ValueError("iloc extent indices not handled")
    p += 2
    id_size = 2 if version < 2 else 4
    count = int.from_bytes(iloc[p : p + id_size], "big")
    p += id_size
    out = []

    def uint(size: int) -> int:
        nonlocal p
        v = int.from_bytes(iloc[p : p + size], "big") if size else 0
        p += size
        return v

    for _ in range(count):
        item_id = uint(id_size)
        method = uint(2) & 15 if version in (1, 2) else 0
        uint(2)
        base = uint(base_size)
        extents = [(base + uint(off_size), uint(len_size)) for _ in range(uint(2))]
        out.append((item_id, method, extents))
    return out


def _iloc_build(entries: list[tuple[int, int, list[tuple[int, int]]]]) -> bytes:
    """An iloc payload (version 1: 4-byte offsets and lengths, no base offset, construction methods)."""
    out = bytearray([1, 0, 0, 0, 0x44, 0x00]) + struct.pack(">H", len(entries))
    for item_id, method, extents in entries:
        out += struct.pack(">HHHH", item_id, method, 0, len(extents))
        for off, length in extents:
            out += struct.pack(">II", off, length)
    return bytes(out)


def _ipma_add(ipma: bytes, item_id: int, prop_index: int) -> bytes:
    """An ipma payload with ``prop_index`` (1-based, not essential) added to ``item_id``'s associations."""
    version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
    assoc = _heif_ipma(ipma, 0, len(ipma))
    # keep the essential bits: re-read them raw
    essential: dict[int, list[bool]] = {}
    p = 8
    for _ in range(struct.unpack(">I", ipma[4:8])[0]):
        iid = struct.unpack(">H", ipma[p : p + 2])[0] if version < 1 else struct.unpack(">I", ipma[p : p + 4])[0]
        p += 2 if version < 1 else 4
        n = ipma[p]
        p += 1
        bits = []
        for _ in range(n):
            bits.append(bool(ipma[p] & 0x80))
            p += 2 if flags & 1 else 1
        essential[iid] = bits
    assoc.setdefault(item_id, []).append(prop_index)
    essential.setdefault(item_id, []).append(False)
    wide = bool(flags & 1) or prop_index > 127
    out = bytearray([version]) + (1 if wide else 0).to_bytes(3, "big") + struct.pack(">I", len(assoc))
    for iid, idx in assoc.items():
        out += struct.pack(">H", iid) if version < 1 else struct.pack(">I", iid)
        out.append(len(idx))
        for i, ess in zip(idx, essential[iid], strict=True):
            out += struct.pack(">H", (0x8000 if ess else 0) | i) if wide else bytes([(0x80 if ess else 0) | i])
    return bytes(out)


def _heif_items(data: bytes, meta: dict[bytes, tuple[int, int]]) -> dict[int, tuple[bytes, str]]:
    items: dict[int, tuple[bytes, str]] = {}
    if b"iinf" not in meta:
        return items
    a, b = meta[b"iinf"]
    version = data[a]
    start = a + (6 if version == 0 else 8)
    for t, ea, eb in iter_boxes(data, start, b):
        if t != b"infe" or data[ea] < 2:
            continue
        v = data[ea]
        if v == 2:
            item_id = struct.unpack(">H", data[ea + 4 : ea + 6])[0]
            p = ea + 8
        else:
            item_id = struct.unpack(">I", data[ea + 4 : ea + 8])[0]
            p = ea + 10
        item_type = data[p : p + 4]
        p += 4
        name_end = data.index(b"\x00", p, eb)
        content_type = ""
        if item_type == b"mime":
            ct_end = data.index(b"\x00", name_end + 1, eb) if b"\x00" in data[name_end + 1 : eb] else eb
            content_type = data[name_end + 1 : ct_end].decode("latin-1")
        items[item_id] = (item_type, content_type)
    return items


def _heif_locations(data: bytes, meta: dict[bytes, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Item id -> (file offset, length) for single-extent items stored in the file (construction method 0)."""
    if b"iloc" not in meta:
        return {}
    a, _ = meta[b"iloc"]
    version = data[a]
    p = a + 4
    off_size, len_size = data[p] >> 4, data[p] & 15
    base_size = data[p + 1] >> 4
    idx_size = data[p + 1] & 15 if version in (1, 2) else 0
    p += 2
    if version < 2:
        count = struct.unpack(">H", data[p : p + 2])[0]
        p += 2
    else:
        count = struct.unpack(">I", data[p : p + 4])[0]
        p += 4

    def uint(size: int) -> int:
        nonlocal p
        v = int.from_bytes(data[p : p + size], "big") if size else 0
        p += size
        return v

    out = {}
    for _ in range(count):
        item_id = uint(2 if version < 2 else 4)
        method = uint(2) & 15 if version in (1, 2) else 0
        uint(2)  # data reference index
        base = uint(base_size)
        extents = uint(2)
        spans = []
        for _ in range(extents):
            uint(idx_size)
            spans.append((base + uint(off_size), uint(len_size)))
        if method == 0 and len(spans) == 1:
            out[item_id] = spans[0]
    return out


def _heif_ipma(data: bytes, a: int, b: int) -> dict[int, list[int]]:
    version, flags = data[a], int.from_bytes(data[a + 1 : a + 4], "big")
    p = a + 4
    (count,) = struct.unpack(">I", data[p : p + 4])
    p += 4
    out: dict[int, list[int]] = {}
    for _ in range(count):
        if version < 1:
            item_id = struct.unpack(">H", data[p : p + 2])[0]
            p += 2
        else:
            item_id = struct.unpack(">I", data[p : p + 4])[0]
            p += 4
        n = data[p]
        p += 1
        idx = []
        for _ in range(n):
            if flags & 1:
                idx.append(struct.unpack(">H", data[p : p + 2])[0] & 0x7FFF)
                p += 2
            else:
                idx.append(data[p] & 0x7F)
                p += 1
        out[item_id] = idx
    return out


# ---------------------------------------------------------------------------------------------------
# TIFF


def read_tiff_metadata(tf: Any, path: str, warn: Callable[[str], None]) -> Metadata:
    """Metadata of a TIFF's first page (``tf`` is an open ``tifffile.TiffFile``).

    Descriptive IFD0 tags become ``text``; they, the orientation and the Exif/GPS IFDs also form the
    ``exif`` block so a JPEG/PNG/WebP output keeps them; private tags go to ``extra['tiff']``.
    """
    page = tf.pages[0]
    m = Metadata()
    tags = page.tags
    icc = tags.get(34675)
    if icc is not None and isinstance(icc.value, (bytes, bytearray)):
        m.icc = bytes(icc.value)
    xmp = tags.get(700)
    if xmp is not None:
        m.xmp = bytes(xmp.value) if isinstance(xmp.value, (bytes, bytearray)) else str(xmp.value).encode()
    xr, yr, unit = tags.get(282), tags.get(283), tags.get(296)
    if xr is not None and yr is not None:
        u = int(unit.value) if unit is not None else 2
        x, y = _rational(xr.value), _rational(yr.value)
        if u in (2, 3) and x > 0 and y > 0:
            m.dpi = (x, y) if u == 2 else (x * 2.54, y * 2.54)
    for code, key in _TIFF_TAG_TEXT.items():
        t = tags.get(code)
        if t is not None and isinstance(t.value, str) and t.value.strip("\x00 "):
            m.text[key] = t.value
    extra = []
    for t in tags.values():
        if t.code in _TIFF_STRUCTURAL or t.code in _TIFF_TAG_TEXT or t.code in (ORIENTATION, 305, 306):
            continue
        if t.code >= 32768 or t.code in (33723, 34377, 37724):  # private, IPTC, Photoshop
            extra.append((t.code, int(t.dtype), int(t.count), t.value))
    if extra:
        m.extra["tiff"] = extra
    # The EXIF block: IFD0's descriptive tags and orientation plus the Exif/GPS IFDs, read raw.
    try:
        fh = tf.filehandle
        order = "<" if tf.byteorder == "<" else ">"

        def read(off: int, n: int) -> bytes:
            fh.seek(off)
            return fh.read(n)

        if not tf.is_bigtiff:
            entries, _ = read_ifd(read, page.offset, order, (EXIF_IFD, GPS_IFD))
            keep = [e for e in entries if e.tag in _TIFF_TAG_TEXT or e.tag in (ORIENTATION, EXIF_IFD, GPS_IFD)]
            if any(e.tag in (EXIF_IFD, GPS_IFD, ORIENTATION) for e in keep):
                m.exif = build_exif(keep, order)
        elif EXIF_IFD in tags:
            warn("EXIF of a BigTIFF is not carried")
    except (ValueError, struct.error, OSError):
        warn("unreadable TIFF EXIF directory dropped")
    return m


def _rational(v: Any) -> float:
    if isinstance(v, tuple) and len(v) == 2:
        return v[0] / v[1] if v[1] else 0.0
    return float(v)


def tiff_write_args(m: Metadata) -> tuple[dict[str, Any], list[tuple[int, int, int, Any, bool]], list[IfdEntry]]:
    """tifffile ``write`` arguments for ``m``: keyword arguments, ``extratags`` and the EXIF sub-IFDs.

    The sub-IFDs (Exif, GPS) cannot be written by tifffile; their pointer tags go in ``extratags`` as
    placeholders and :func:`tiff_append_subifds` fills them in after the file is written.
    """
    kw: dict[str, Any] = {"software": False, "metadata": None}
    extratags: list[tuple[int, int, int, Any, bool]] = []
    subifds: list[IfdEntry] = []
    tag_values: dict[int, IfdEntry] = {}
    order = "<"
    if m.exif:
        try:
            order, entries = parse_exif(m.exif)
        except (ValueError, struct.error):
            entries = []
        for e in entries:
            if e.sub is not None and e.tag in (EXIF_IFD, GPS_IFD):
                subifds.append(e)
            elif e.tag not in _TIFF_STRUCTURAL or e.tag == ORIENTATION:
                tag_values[e.tag] = e
    text_tags = {TEXT_TIFF_TAGS[k]: v for k, v in m.text.items() if k in TEXT_TIFF_TAGS}
    for code, e in sorted(tag_values.items()):
        if code in text_tags or code == ORIENTATION and e.dtype != 3:
            continue
        value = _decode_entry(e, order)
        if value is not None:
            extratags.append((code, e.dtype, e.count if e.dtype != 2 else 0, value, True))
    for code, value in sorted(text_tags.items()):
        if code == 270:
            kw["description"] = value
        else:
            extratags.append((code, 2, 0, value, True))
    for code, dtype, count, value in m.extra.get("tiff", []):
        extratags.append((code, dtype, count, value, True))
    if m.icc:
        kw["iccprofile"] = m.icc
    if m.xmp:
        extratags.append((700, 1, len(m.xmp), m.xmp, True))
    if m.dpi:
        kw["resolution"] = tuple(m.dpi)
        kw["resolutionunit"] = 2
    for e in subifds:
        extratags.append((_SUBIFD_PLACEHOLDER[e.tag], 4, 1, 0, True))
    return kw, extratags, [IfdEntry(e.tag, 4, 1, b"", _reorder(e.sub or [], order)) for e in subifds]


def _decode_entry(e: IfdEntry, order: str) -> Any:
    """A directory entry's value in the form tifffile's ``extratags`` takes, or None if not representable."""
    if e.dtype == 2:
        return e.raw.split(b"\x00", 1)[0].decode("latin-1")
    if e.dtype in (1, 7):
        return e.raw
    fmt = {3: "H", 4: "I", 8: "h", 9: "i", 11: "f", 12: "d", 5: "II", 10: "ii"}.get(e.dtype)
    if fmt is None:
        return None
    values = struct.unpack(order + fmt[0] * (len(fmt) * e.count), e.raw)
    return values[0] if e.count == 1 and len(fmt) == 1 else values


def _reorder(entries: list[IfdEntry], order: str) -> list[IfdEntry]:
    """Entries converted to little-endian (tifffile writes little-endian files)."""
    if order == "<":
        return entries
    out = []
    for e in entries:
        size = _TYPE_SIZE.get(e.dtype, 1)
        if e.dtype in (5, 10):
            size = 4
        raw = e.raw
        if size > 1:
            raw = b"".join(raw[i : i + size][::-1] for i in range(0, len(raw), size))
        out.append(IfdEntry(e.tag, e.dtype, e.count, raw, _reorder(e.sub, order) if e.sub is not None else None))
    return out


#: tifffile refuses to write the Exif/GPS pointer tags; it writes these unused codes, which sort at the same
#: place in IFD0, and :func:`tiff_append_subifds` turns them into the real pointers.
_SUBIFD_PLACEHOLDER = {EXIF_IFD: EXIF_IFD - 1, GPS_IFD: GPS_IFD - 1}


def tiff_append_subifds(fh: Any, subifds: list[IfdEntry]) -> None:
    """Append the Exif/GPS IFDs to the little-endian classic TIFF open in ``fh`` (``r+b``) and turn IFD0's
    placeholder tags into pointers to them. Only IFD0 is read; the image data is not touched."""
    if not subifds:
        return
    fh.seek(4)
    (ifd0,) = struct.unpack("<I", fh.read(4))
    fh.seek(ifd0)
    (n,) = struct.unpack("<H", fh.read(2))
    table = fh.read(12 * n)
    slots = {struct.unpack("<H", table[12 * i : 12 * i + 2])[0]: ifd0 + 2 + 12 * i + 8 for i in range(n)}
    end = fh.seek(0, 2)
    for e in subifds:
        if end % 2:
            fh.write(b"\x00")
            end += 1
        block = serialize_ifd(e.sub or [], "<", end)
        fh.write(block)
        entry = slots[_SUBIFD_PLACEHOLDER[e.tag]] - 8
        fh.seek(entry)
        fh.write(struct.pack("<HHII", e.tag, 4, 1, end))
        end = fh.seek(0, 2)


# ---------------------------------------------------------------------------------------------------
# What a target format can hold

#: Fields each output format stores.
_CAN_HOLD = {
    "png": {"icc", "exif", "xmp", "text", "dpi", "cicp"},
    "jpeg": {"icc", "exif", "xmp", "dpi", "comment"},
    "tiff": {"icc", "exif", "xmp", "text", "dpi"},
    "webp": {"icc", "exif", "xmp"},
    "jxl": {"exif", "xmp", "cicp"},
    "avif": {"icc", "exif", "xmp", "cicp"},
    "bmp": set(),
    "npy": set(),
}


def fit_to_format(m: Metadata, fmt: str, source_format: str | None) -> tuple[Metadata, list[str]]:
    """The part of ``m`` that ``fmt`` can hold, and one line naming what had to be dropped (if anything)."""
    can = _CAN_HOLD[fmt]
    out = Metadata()
    dropped: list[str] = []
    for name in ("icc", "exif", "xmp"):
        v = getattr(m, name)
        if v:
            if name in can:
                setattr(out, name, v)
            else:
                dropped.append(name.upper() if name != "icc" else "ICC profile")
    if m.dpi and "dpi" in can:
        out.dpi = m.dpi
    if m.cicp and "cicp" in can:
        out.cicp = m.cicp
    elif m.cicp and fmt not in ("npy",):
        dropped.append("CICP colour tags")
    for key, value in m.text.items():
        if "text" in can and (fmt != "tiff" or key in TEXT_TIFF_TAGS):
            out.text[key] = value
        elif key == "Comment" and "comment" in can:
            out.text[key] = value
        else:
            dropped.append(f"text {key!r}")
    if fmt == "png":
        out.png_colour = dict(m.png_colour)
    if source_format == fmt:
        out.extra = {k: list(v) for k, v in m.extra.items() if k == fmt}
    else:
        for k, items in m.extra.items():
            names = {"png": "PNG chunk", "jpeg": "JPEG APP segment", "tiff": "TIFF tag"}[k]
            for item in items:
                label = item[0].decode("latin-1") if k == "png" else (
                    f"APP{item[0] - 0xE0}" if k == "jpeg" else str(item[0]))
                dropped.append(f"{names} {label}")
    if not dropped:
        return out, []
    return out, [f"{fmt.upper()} output cannot hold {', '.join(dropped)}; dropped"]
