"""Colour encoding of image files: transfer curves from ICC profiles (checked against LittleCMS) and CICP tags,
profiles written back, HDR (PQ/HLG) tags kept."""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np
import pytest

from gpu_deconv.core.colour import TransferCurve, decode_lut, linear_to_srgb, srgb_to_linear
from gpu_deconv.io import metadata as md
from gpu_deconv.io.colour_profile import describe_colour, parse_icc
from gpu_deconv.io.images import Image, read_image, write_image

D65 = (0.3127, 0.3290, 1.0)
PRIMARIES = {  # CIE xy of R, G, B (Y = 1)
    "srgb": (0.64, 0.33, 1.0, 0.30, 0.60, 1.0, 0.15, 0.06, 1.0),
    "adobe": (0.64, 0.33, 1.0, 0.21, 0.71, 1.0, 0.15, 0.06, 1.0),
    "p3": (0.68, 0.32, 1.0, 0.265, 0.69, 1.0, 0.15, 0.06, 1.0),
    "prophoto": (0.7347, 0.2653, 1.0, 0.1596, 0.8404, 1.0, 0.0366, 0.0001, 1.0),
}


# --- minimal ICC profiles, built by hand (Pillow ships none) ----------------------------------------


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def para(ftype: int, *params: float) -> bytes:
    return b"para\x00\x00\x00\x00" + struct.pack(">HH", ftype, 0) + b"".join(_s15(p) for p in params)


def curv(values: np.ndarray | float | None) -> bytes:
    if values is None:
        return b"curv\x00\x00\x00\x00" + struct.pack(">I", 0)
    if np.isscalar(values):
        return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, int(round(float(values) * 256)))
    table = np.clip(np.rint(np.asarray(values) * 65535), 0, 65535).astype(">u2")
    return b"curv\x00\x00\x00\x00" + struct.pack(">I", table.size) + table.tobytes()


def _xyz(x: float, y: float, big_y: float = 1.0) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x * big_y / y) + _s15(big_y) + _s15((1 - x - y) * big_y / y)


def _desc(text: str, version: int) -> bytes:
    if version >= 4:
        s = text.encode("utf-16-be")
        return b"mluc\x00\x00\x00\x00" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(s), 28) + s
    s = text.encode("ascii") + b"\x00"
    return b"desc\x00\x00\x00\x00" + struct.pack(">I", len(s)) + s + bytes(12 + 67)


def build_icc(trc: bytes | tuple[bytes, bytes, bytes], primaries: str = "srgb", version: int = 2,
              name: str = "test profile", gray: bool = False) -> bytes:
    """A minimal display profile (matrix/TRC, D50 PCS): desc, wtpt, colourants, TRC tags."""
    tags: list[tuple[bytes, bytes]] = [(b"desc", _desc(name, version)), (b"wtpt", _xyz(0.3457, 0.3585))]
    if gray:
        tags.append((b"kTRC", trc if isinstance(trc, bytes) else trc[0]))
    else:
        p = PRIMARIES[primaries]
        # Colourants: xy of each primary scaled so they sum to the white point (good enough for a CMM).
        for sig, (x, y) in zip((b"rXYZ", b"gXYZ", b"bXYZ"), ((p[0], p[1]), (p[3], p[4]), (p[6], p[7])), strict=True):
            tags.append((sig, _xyz(x, y, 1 / 3)))
        trcs = (trc, trc, trc) if isinstance(trc, bytes) else trc
        tags += [(b"rTRC", trcs[0]), (b"gTRC", trcs[1]), (b"bTRC", trcs[2])]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    body = b""
    for sig, data in tags:
        data += b"\x00" * (-len(data) % 4)
        table += struct.pack(">4sII", sig, offset + len(body), len(data))
        body += data
    size = 128 + table_size + len(body)
    header = struct.pack(">I4sBBH4s4s4s", size, b"lcms", version, 0x40 if version >= 4 else 0x10, 0, b"mntr",
                         b"GRAY" if gray else b"RGB ", b"XYZ ")
    header += bytes(12) + b"acsp" + bytes(24) + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    header = header.ljust(128, b"\x00")
    return header + table + body


def _lcms_linear(profile: bytes, codes16: np.ndarray, primaries: str) -> np.ndarray:
    """LittleCMS: 16-bit codes in ``profile`` -> linear light in a gamma-1 profile with the same colourants."""
    lin = build_icc(para(0, 1.0), primaries, name="linear")
    out = imagecodecs.cms_transform(codes16, profile, lin, colorspace="rgb", outcolorspace="rgb",
                                    outdtype=np.float32)
    return np.asarray(out, dtype=np.float64)


CURVES = {
    "adobe_rgb_curv_gamma": (curv(563 / 256), "adobe", TransferCurve.gamma(563 / 256)),
    "adobe_rgb_para0": (para(0, 563 / 256), "adobe", TransferCurve.gamma(563 / 256)),
    "display_p3_para3": (para(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045), "p3", TransferCurve.srgb()),
    "prophoto_para3": (para(3, 1.8, 1.0, 0.0, 1 / 16, 1 / 32), "prophoto", None),
    "rec709_para4": (para(4, 1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081, 0.0, 0.0), "srgb", None),
    "para1": (para(1, 2.2, 1.05, -0.05), "srgb", None),
    "para2": (para(2, 2.0, 0.95, 0.05, 0.01), "srgb", None),
    "curv_table_gamma2": (curv(np.linspace(0, 1, 4096) ** 2.0), "srgb", TransferCurve.gamma(2.0)),
    "curv_table_srgb": (curv(srgb_to_linear(np.linspace(0, 1, 1024))), "srgb", TransferCurve.srgb()),
    "curv_table_scurve": (curv(0.5 - 0.5 * np.cos(np.linspace(0, np.pi, 257))), "srgb", None),
    "curv_identity": (curv(None), "srgb", TransferCurve.gamma(1.0)),
}


@pytest.mark.parametrize("name", list(CURVES))
@pytest.mark.parametrize("version", [2, 4])
def test_icc_curves_match_littlecms(name, version):
    trc, prim, expected_kind = CURVES[name]
    profile = build_icc(trc, prim, version=version, name=name)
    info = parse_icc(profile)
    assert info.colour_space == "RGB" and info.description == name and len(info.curves) == 3
    if expected_kind is not None:
        assert info.curves[0] == expected_kind, info.curves[0]
    codes = np.arange(0, 65536, 97, dtype=np.uint16)
    rgb = np.stack([codes, codes[::-1], codes], axis=-1)[None]
    ours = info.curves[0].to_linear(rgb[0].astype(np.float64) / 65535).astype(np.float64)
    lcms = _lcms_linear(profile, rgb, prim)[0]
    # LittleCMS evaluates through 16-bit tables: agree to ~2 LSB of 16 bits.
    np.testing.assert_allclose(ours, lcms, atol=6e-5, rtol=0)


def test_real_littlecms_srgb_profile_is_exact_srgb():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    enc, notes = describe_colour(3, icc=icc)
    assert enc.is_srgb and not notes
    # ...and so takes exactly the engine's sRGB LUT
    np.testing.assert_array_equal(enc.decode_lut(8)[:, 1], decode_lut(8))


def test_transfer_curves_invert_and_decode_exactly():
    v = np.linspace(-0.25, 1.4, 2001).astype(np.float32)
    for curve in (TransferCurve.srgb(), TransferCurve.gamma(563 / 256), TransferCurve.from_cicp(1),
                  TransferCurve.parametric(1.8, 1.0, 0.0, 1 / 16, 1 / 32), TransferCurve.pq(), TransferCurve.hlg(),
                  TransferCurve.sampled(0.5 - 0.5 * np.cos(np.linspace(0, np.pi, 257)))):
        back = curve.from_linear(curve.to_linear(v))
        inside = (v >= 0) & (v <= 1)
        # float32 linear values: where a curve is flat (the S-curve's ends) one ulp of L is more of V
        tol = 1e-5 if curve.kind == "sampled" else 2e-6
        np.testing.assert_allclose(back[inside], v[inside], atol=tol, err_msg=curve.name)
        lut = curve.decode_lut(10)
        assert lut.dtype == np.float32 and lut.shape == (1024,)
        np.testing.assert_array_equal(lut, curve.to_linear(np.arange(1024) / 1023.0))
    # sRGB goes through the bit-identity-tested functions
    np.testing.assert_array_equal(TransferCurve.srgb().to_linear(v), srgb_to_linear(v))
    np.testing.assert_array_equal(TransferCurve.srgb().from_linear(v), linear_to_srgb(v))
    # PQ: code 0.5081 is 100 cd/m^2 (1.0 = 10000); HLG is continuous at 0.5 (1/12)
    assert TransferCurve.pq().to_linear(np.float32(0.50808))[()] == pytest.approx(0.01, rel=2e-3)
    hlg = TransferCurve.hlg().to_linear(np.array([0.5 - 1e-6, 0.5 + 1e-6], np.float32))
    assert hlg[0] == pytest.approx(1 / 12, rel=1e-4) and hlg[1] == pytest.approx(1 / 12, rel=1e-4)


def test_describe_colour_precedence_and_notes():
    adobe = build_icc(curv(563 / 256), "adobe", name="Adobe RGB (1998)")
    enc, notes = describe_colour(3, icc=adobe, cicp=(9, 16, 9, 1))
    assert enc.transfer.kind == "pq" and enc.is_hdr  # CICP first
    enc, notes = describe_colour(4, icc=adobe, png_colour={"srgb": 0})
    assert enc.transfer == TransferCurve.gamma(563 / 256) and "Adobe RGB (1998)" in enc.source
    enc, notes = describe_colour(1, icc=adobe)
    assert enc.is_srgb and "GRAY" in notes[0] and "RGB" in notes[0]
    enc, notes = describe_colour(3, icc=b"not a profile" * 20)
    assert enc.is_srgb and "unreadable ICC" in notes[0]
    enc, _ = describe_colour(3, png_colour={"gamma": 55556})
    assert enc.transfer == TransferCurve.gamma(1.8)
    enc, _ = describe_colour(3, png_colour={"gamma": 45455})
    assert enc.is_srgb
    per_channel = build_icc((curv(2.2), curv(1.8), curv(2.2)), name="odd")
    enc, _ = describe_colour(3, icc=per_channel)
    assert enc.transfer is None and enc.curves[1] == TransferCurve.gamma(461 / 256)  # u8Fixed8 of 1.8
    lut = enc.decode_lut(8)
    assert lut.shape == (256, 3) and lut[128, 1] > lut[128, 0]


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "webp"])
@pytest.mark.parametrize("which", ["adobe", "p3", "prophoto"])
def test_embedded_profile_read_used_and_written_back(tmp_path, ext, which):
    trc = {"adobe": curv(563 / 256), "p3": para(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045),
           "prophoto": para(3, 1.8, 1.0, 0.0, 1 / 16, 1 / 32)}[which]
    icc = build_icc(trc, which, version=4, name=f"{which} test")
    a = np.random.default_rng(3).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    src = tmp_path / f"src.{ext}"
    write_image(src, a, like=Image(a, "png", 8, 3, md.Metadata(icc=icc)))
    im = read_image(src)
    assert im.metadata.icc == icc
    assert f"{which} test" in im.colour.source
    assert im.transfer == parse_icc(icc).curves[0]
    linear = im.colour.to_linear(im.pixels / 255.0)
    np.testing.assert_allclose(linear, im.transfer.to_linear(im.pixels / 255.0))
    # written back, in another format too
    out = tmp_path / "out.png"
    write_image(out, im.pixels, like=im)
    assert read_image(out).metadata.icc == icc


def test_hdr_pq_avif_and_png_keep_their_tags(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1024, (24, 32, 3), dtype=np.uint16)
    pq = md.Metadata(cicp=(9, 16, 9, 1))
    r = write_image(tmp_path / "hdr.avif", a, bits=10, metadata=pq)
    assert r.lossless
    im = read_image(tmp_path / "hdr.avif")
    assert im.bits == 10 and im.pixels.dtype == np.uint16 and im.metadata.cicp[:2] == (9, 16)
    assert im.transfer.kind == "pq" and im.colour.is_hdr
    np.testing.assert_array_equal(im.pixels, a)
    # AVIF (10-bit PQ) -> 16-bit PNG keeps the CICP tags in cICP, samples scaled exactly to 16 bits
    write_image(tmp_path / "hdr.png", im.pixels, like=im)
    png = read_image(tmp_path / "hdr.png")
    assert png.metadata.cicp[:2] == (9, 16) and png.transfer.kind == "pq" and png.bits == 16
    np.testing.assert_array_equal(png.pixels, np.rint(a * (65535 / 1023)).astype(np.uint16))
    write_image(tmp_path / "from_png.avif", png.pixels, like=png, bits=16)
    assert read_image(tmp_path / "from_png.avif").bits == 12  # AVIF holds at most 12
    write_image(tmp_path / "back.avif", im.pixels, like=im)
    again = read_image(tmp_path / "back.avif")
    assert again.bits == 10 and again.transfer.kind == "pq"
    np.testing.assert_array_equal(again.pixels, a)
    # HLG
    write_image(tmp_path / "hlg.avif", a, bits=10, metadata=md.Metadata(cicp=(9, 18, 9, 1)))
    assert read_image(tmp_path / "hlg.avif").transfer.kind == "hlg"


@pytest.mark.parametrize(("bits", "cicp"), [(10, (9, 16, 9, 1)), (16, (9, 16, 9, 1)), (12, (9, 18, 9, 1)),
                                            (8, (11, 13, 0, 1))])
def test_jxl_carries_pq_hlg_and_p3_labels(tmp_path, bits, cicp):
    dtype = np.uint8 if bits == 8 else np.uint16
    a = np.random.default_rng(bits).integers(0, 1 << bits, (18, 26, 3), dtype=dtype)
    r = write_image(tmp_path / "hdr.jxl", a, bits=bits if bits > 8 else None, metadata=md.Metadata(cicp=cicp))
    assert r.lossless and not r.warnings
    im = read_image(tmp_path / "hdr.jxl")
    assert im.metadata.cicp[:2] == cicp[:2] and im.bits == bits
    expected = {16: "pq", 18: "hlg", 13: "srgb"}[cicp[1]]
    assert im.transfer.kind == expected
    np.testing.assert_array_equal(im.pixels, a)  # relabelling the headers left the samples alone
    # a lossy request is turned lossless, with one line saying so
    r = write_image(tmp_path / "lossy.jxl", a, quality=80, bits=bits if bits > 8 else None,
                    metadata=md.Metadata(cicp=cicp))
    assert r.lossless and "written lossless" in r.warnings[0]


def test_pq_avif_to_jxl_and_back(tmp_path):
    a = np.random.default_rng(9).integers(0, 1024, (16, 20, 3), dtype=np.uint16)
    write_image(tmp_path / "a.avif", a, bits=10, metadata=md.Metadata(cicp=(9, 16, 9, 1)))
    im = read_image(tmp_path / "a.avif")
    write_image(tmp_path / "b.jxl", im.pixels, like=im)
    jxl = read_image(tmp_path / "b.jxl")
    assert jxl.transfer.kind == "pq" and jxl.bits == 10
    write_image(tmp_path / "c.avif", jxl.pixels, like=jxl)
    back = read_image(tmp_path / "c.avif")
    assert back.transfer.kind == "pq" and back.bits == 10
    np.testing.assert_array_equal(back.pixels, a)
