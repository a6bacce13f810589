"""What an image file's code values mean in linear light: its ICC profile's tone curves, or its CICP tags.

Deconvolution happens in linear light, so a file's code values must be decoded with the curve they were
encoded with. :func:`describe_colour` decides that curve, per colour channel, from what the file says, in
the order of precedence PNG (3rd edition) and HEIF use:

1. CICP tags (AVIF ``colr nclx``, PNG ``cICP``, JPEG XL colour encoding) - this is how PQ and HLG HDR
   files say what they are;
2. an embedded ICC profile's ``rTRC``/``gTRC``/``bTRC`` (RGB) or ``kTRC`` (gray) tags;
3. PNG ``sRGB`` / ``gAMA`` chunks;
4. sRGB (IEC 61966-2-1), the default everywhere else.

The primaries are left alone on purpose: blur acts on each channel's light separately whatever the
primaries are, and the output is tagged with the same profile (the writer copies the ICC bytes back), so
no gamut conversion is needed - only the tone curves matter.

Why the TRC tags are parsed here and not sampled through LittleCMS (Pillow's ImageCms): the two curve
types ICC allows there (``para``: 5 function types; ``curv``: a gamma or a table) are exactly what
:class:`~gpu_deconv.core.colour.TransferCurve` models, so parsing gives the exact curve - and a
parametric curve the engine's last pass can evaluate in GLSL - where a LittleCMS round trip would give a
sampled approximation of it and pull Pillow's CMS module into every batch. LittleCMS is the independent
check in the tests (tests/test_images_colour.py): decoding with our curves matches ImageCms transforms of
the same profiles to a linear profile. Profiles without TRC tags (LUT-based ``A2B0`` profiles, CMYK, Lab)
cannot be described by per-channel curves: they are reported and sRGB is assumed.

Reference: ICC.1:2010 (profile version 4.3.0.0) sections 7.2 (header), 7.3 (tag table), 10.6 curveType,
10.18 parametricCurveType, 10.15 multiLocalizedUnicodeType; ICC.1:2001-04 (v2) textDescriptionType.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..core.colour import TransferCurve

#: Largest deviation (in linear units, at the table's own samples) for which a sampled ``curv`` table is
#: taken as the sRGB curve or as a pure power law. 16-bit tables of sRGB (e.g. the common 1024-entry
#: "sRGB IEC61966-2.1" profile) differ from the formula by rounding only, ~1e-5.
CURVE_MATCH_TOLERANCE = 2e-4


@dataclass(frozen=True)
class IccInfo:
    """The parts of an ICC profile we use.

    Attributes
    ----------
    version : str
        ``'2.1'``, ``'4.3'``, ...
    device_class : str
        ``'mntr'``, ``'scnr'``, ``'prtr'``, ``'spac'``, ...
    colour_space : str
        Data colour space without padding: ``'RGB'``, ``'GRAY'``, ``'CMYK'``, ``'Lab'``, ...
    description : str
        The ``desc`` tag's text ('' when absent).
    curves : tuple of TransferCurve
        ``(r, g, b)`` or ``(k,)`` from the TRC tags; empty when the profile has none.
    lut_based : bool
        True when the profile has an ``A2B0`` transform (which, when present, takes precedence over the
        TRC tags in a CMM).
    """

    version: str
    device_class: str
    colour_space: str
    description: str
    curves: tuple[TransferCurve, ...]
    lut_based: bool


def parse_icc(data: bytes) -> IccInfo:
    """Read an ICC profile's header, description and tone curves.

    Raises
    ------
    ValueError
        Not an ICC profile (no ``acsp`` signature, truncated tag table or tag data).
    """
    if len(data) < 132 or data[36:40] != b"acsp":
        raise ValueError("not an ICC profile (no 'acsp' signature)")
    version = f"{data[8]}.{data[9] >> 4}"
    device_class = data[12:16].decode("latin-1")
    colour_space = data[16:20].decode("latin-1").strip()
    (count,) = struct.unpack(">I", data[128:132])
    if 132 + 12 * count > len(data):
        raise ValueError("truncated ICC tag table")
    tags: dict[bytes, bytes] = {}
    for i in range(count):
        sig, off, size = struct.unpack(">4sII", data[132 + 12 * i : 144 + 12 * i])
        if off + size > len(data):
            raise ValueError(f"ICC tag {sig.decode('latin-1')!r} runs past the end of the profile")
        tags[sig] = data[off : off + size]
    names = (b"rTRC", b"gTRC", b"bTRC") if colour_space == "RGB" else (b"kTRC",) if colour_space == "GRAY" else ()
    curves: tuple[TransferCurve, ...] = ()
    if names and all(n in tags for n in names):
        curves = tuple(_curve(tags[n]) for n in names)
    desc = _text(tags[b"desc"]) if b"desc" in tags else ""
    return IccInfo(version, device_class, colour_space, desc, curves, b"A2B0" in tags)


def _curve(tag: bytes) -> TransferCurve:
    kind = tag[:4]
    if kind == b"curv":
        (n,) = struct.unpack(">I", tag[8:12])
        if n == 0:
            return TransferCurve.gamma(1.0)
        if n == 1:
            (g,) = struct.unpack(">H", tag[12:14])
            return TransferCurve.gamma(g / 256.0)
        if len(tag) < 12 + 2 * n:
            raise ValueError("truncated ICC curv table")
        table = np.frombuffer(tag[12 : 12 + 2 * n], dtype=">u2").astype(np.float64) / 65535.0
        return _simplify(table)
    if kind == b"para":
        (ftype,) = struct.unpack(">H", tag[8:10])
        nparams = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(ftype)
        if nparams is None or len(tag) < 12 + 4 * nparams:
            raise ValueError(f"unsupported ICC parametric curve type {ftype}")
        p = [v / 65536.0 for v in struct.unpack(f">{nparams}i", tag[12 : 12 + 4 * nparams])]
        g = p[0]
        if ftype == 0:
            return TransferCurve.gamma(g)
        a, b = p[1], p[2]
        if a == 0:
            raise ValueError("ICC parametric curve with a = 0")
        if ftype == 1:  # (aX+b)^g for X >= -b/a, else 0
            return TransferCurve.parametric(g, a, b, 0.0, -b / a, 0.0, 0.0)
        if ftype == 2:  # (aX+b)^g + c for X >= -b/a, else c
            return TransferCurve.parametric(g, a, b, 0.0, -b / a, p[3], p[3])
        if ftype == 3:  # (aX+b)^g for X >= d, else cX
            return TransferCurve.parametric(g, a, b, p[3], p[4], 0.0, 0.0)
        return TransferCurve.parametric(g, a, b, p[3], p[4], p[5], p[6])
    raise ValueError(f"unsupported ICC curve type {kind.decode('latin-1')!r}")


def _simplify(table: np.ndarray) -> TransferCurve:
    """A sampled curve, or sRGB / a pure gamma when the table is one of those to within rounding."""
    x = np.linspace(0.0, 1.0, table.size)
    srgb = TransferCurve.srgb()
    if np.abs(srgb.to_linear(x).astype(np.float64) - table).max() <= CURVE_MATCH_TOLERANCE:
        return srgb
    inner = (x > 0.05) & (x < 1) & (table > 0)
    if inner.sum() >= 2:
        g = float(np.median(np.log(table[inner]) / np.log(x[inner])))
        if np.abs(np.power(x, g) - table).max() <= CURVE_MATCH_TOLERANCE:
            return TransferCurve.gamma(round(g, 4))
    return TransferCurve.sampled(table, name=f"{table.size}-point curve")


def _text(tag: bytes) -> str:
    kind = tag[:4]
    try:
        if kind == b"desc":  # v2 textDescriptionType: ASCII count then string
            (n,) = struct.unpack(">I", tag[8:12])
            return tag[12 : 12 + n].split(b"\x00", 1)[0].decode("latin-1")
        if kind == b"mluc":  # v4: first record (English where present)
            (nrec, recsize) = struct.unpack(">II", tag[8:16])
            best = None
            for i in range(nrec):
                lang, _country, length, off = struct.unpack(">2s2sII", tag[16 + recsize * i : 28 + recsize * i])
                if best is None or lang == b"en":
                    best = (length, off)
            if best:
                return tag[best[1] : best[1] + best[0]].decode("utf-16-be").rstrip("\x00")
        if kind == b"text":
            return tag[8:].split(b"\x00", 1)[0].decode("latin-1")
    except (struct.error, UnicodeDecodeError):
        pass
    return ""


# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourEncoding:
    """How an image's code values map to linear light, per colour channel.

    Attributes
    ----------
    curves : tuple of TransferCurve
        One per colour channel (1 for gray, 3 for RGB). Alpha is never curve-encoded.
    source : str
        Where the curves came from: ``'CICP'``, ``'ICC profile "<description>"'``, ``'PNG gAMA'``,
        ``'PNG sRGB'`` or ``'default sRGB'``.
    """

    curves: tuple[TransferCurve, ...]
    source: str

    @property
    def transfer(self) -> TransferCurve | None:
        """The curve all colour channels share (the usual case), or None when they differ."""
        first = self.curves[0]
        return first if all(c == first for c in self.curves[1:]) else None

    @property
    def is_srgb(self) -> bool:
        return all(c.is_srgb for c in self.curves)

    @property
    def is_hdr(self) -> bool:
        """PQ or HLG."""
        return any(c.kind in ("pq", "hlg") for c in self.curves)

    def _per_channel(self, a: np.ndarray, fn_name: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        colour = 1 if a.ndim == 2 else (3 if a.shape[-1] >= 3 else 1)
        out = np.array(a, dtype=np.float32, copy=True)
        if a.ndim == 2:
            return getattr(self.curves[0], fn_name)(a)
        for ch in range(colour):
            curve = self.curves[min(ch, len(self.curves) - 1)]
            out[..., ch] = getattr(curve, fn_name)(a[..., ch])
        return out

    def to_linear(self, codes: np.ndarray) -> np.ndarray:
        """Normalised code values (float, [0, 1]; ``(H, W)`` or ``(H, W, C)``) to linear light, per channel.

        Alpha (the last channel of GA/RGBA) is passed through.
        """
        return self._per_channel(codes, "to_linear")

    def from_linear(self, linear: np.ndarray) -> np.ndarray:
        """Linear light to normalised code values, per channel (alpha passed through)."""
        return self._per_channel(linear, "from_linear")

    def decode_lut(self, bits: int) -> np.ndarray:
        """``(2**bits, len(curves))`` float32 table: linear value of every code, per colour channel."""
        return np.stack([c.decode_lut(bits) for c in self.curves], axis=1)


def describe_colour(channels: int, *, icc: bytes | None = None, cicp: tuple[int, int, int, int] | None = None,
                    png_colour: dict | None = None) -> tuple[ColourEncoding, list[str]]:
    """Decide an image's transfer curves from what its file says (see the module docstring's order).

    Parameters
    ----------
    channels : int
        1..4 (gray, GA, RGB, RGBA): 1 or 3 colour channels.
    icc : bytes, optional
        The embedded ICC profile.
    cicp : (int, int, int, int), optional
        H.273 (primaries, transfer, matrix, full range).
    png_colour : dict, optional
        PNG ``'srgb'`` / ``'gamma'`` (gAMA's integer, 100000 x the encoding exponent) chunks.

    Returns
    -------
    ColourEncoding, list of str
        The curves, and one-line notes on what could not be used (an unreadable or LUT-only profile, an
        unknown CICP code) - the caller adds the file name.
    """
    n_colour = 1 if channels <= 2 else 3
    notes: list[str] = []
    if cicp is not None:
        curve = TransferCurve.from_cicp(cicp[1])
        if curve is not None:
            return ColourEncoding((curve,) * n_colour, f"CICP transfer {cicp[1]} ({curve.name})"), notes
        if cicp[1] not in (0, 2):  # 0 reserved, 2 unspecified: fall through silently
            notes.append(f"CICP transfer characteristics {cicp[1]} not modelled; ignored")
    if icc:
        try:
            info = parse_icc(icc)
        except (ValueError, struct.error) as e:
            notes.append(f"unreadable ICC profile ({e}); decoded as sRGB")
        else:
            name = f'ICC profile "{info.description}"' if info.description else "ICC profile"
            want = "GRAY" if n_colour == 1 else "RGB"
            if info.colour_space != want:
                notes.append(f"{name} is for {info.colour_space} data but the image is {want}; decoded as sRGB")
            elif not info.curves:
                notes.append(f"{name} has no tone curves (LUT-based); decoded as sRGB")
            else:
                if info.lut_based:
                    notes.append(f"{name} also has an A2B0 table; its tone curves are used")
                return ColourEncoding(info.curves, name), notes
    png_colour = png_colour or {}
    if "srgb" in png_colour:
        return ColourEncoding((TransferCurve.srgb(),) * n_colour, "PNG sRGB"), notes
    if png_colour.get("gamma"):
        gamma = int(png_colour["gamma"])
        # 45455 is what writers put next to an sRGB chunk as its fallback: read it as sRGB.
        curve = TransferCurve.srgb() if abs(gamma - 45455) <= 1 else TransferCurve.gamma(round(100000 / gamma, 4))
        return ColourEncoding((curve,) * n_colour, "PNG gAMA"), notes
    return ColourEncoding((TransferCurve.srgb(),) * n_colour, "default sRGB"), notes
