"""Still-image I/O: bit-exact round trips for every format x depth x layout, clear one-line errors,
atomic writes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import png
import pytest
import tifffile
from PIL import Image as PILImage

from gpu_deconv.io import atomic
from gpu_deconv.io import images as imagefile
from gpu_deconv.io import metadata as md
from gpu_deconv.io.images import (
    Image,
    ImageError,
    check_not_same_file,
    detect_format,
    read_image,
    sniff_format,
    write_image,
)

RNG = np.random.default_rng(1234)
SHAPE = (19, 27)  # odd, non-square, small


def _random(dtype: type, channels: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    full = shape if channels == 1 else (*shape, channels)
    if np.dtype(dtype).kind == "f":
        return RNG.uniform(-0.25, 1.5, full).astype(dtype)
    info = np.iinfo(dtype)
    a = RNG.integers(0, int(info.max) + 1, full, dtype=dtype)
    a.flat[0], a.flat[-1] = info.max, 0  # extremes present
    return a


def _pypng_read(data: bytes) -> np.ndarray:
    w, h, rows, info = png.Reader(bytes=data).read()
    dtype = np.uint16 if info["bitdepth"] == 16 else np.uint8
    a = np.vstack([np.asarray(r, dtype=dtype) for r in rows]).reshape(h, w, info["planes"])
    return a[..., 0] if info["planes"] == 1 else a


def _no_temp_files(folder: os.PathLike[str]) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def _assert_one_line_error(excinfo: pytest.ExceptionInfo[ImageError], path: os.PathLike[str] | str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert "\n" not in msg
    assert msg.startswith(os.fspath(path) + ": "), msg
    assert "Traceback" not in msg
    return msg


# --- round trips ---------------------------------------------------------------------------------

LOSSLESS = (
    [("png", dt, c) for dt in (np.uint8, np.uint16) for c in (1, 2, 3, 4)]
    + [("tiff", dt, c) for dt in (np.uint8, np.uint16, np.float32) for c in (1, 2, 3, 4)]
    + [("webp", np.uint8, c) for c in (3, 4)]
    + [("bmp", np.uint8, c) for c in (1, 3, 4)]
    + [("npy", np.float32, c) for c in (1, 3, 4)]
)


@pytest.mark.parametrize(("fmt", "dtype", "channels"), LOSSLESS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_round_trip_bit_exact(tmp_path, fmt, dtype, channels):
    a = _random(dtype, channels)
    p1 = tmp_path / f"a{imagefile.DEFAULT_EXTENSION[fmt]}"
    write_image(p1, a)
    im = read_image(p1)
    assert im.format == fmt
    assert im.pixels.dtype == a.dtype and im.pixels.shape == a.shape
    assert im.bits == (32 if a.dtype.kind == "f" else 8 * a.dtype.itemsize)
    assert im.channels == channels
    np.testing.assert_array_equal(im.pixels, a)
    # read -> write (like=) -> read again
    p2 = tmp_path / f"b{imagefile.DEFAULT_EXTENSION[fmt]}"
    write_image(p2, im.pixels, like=im)
    im2 = read_image(p2)
    np.testing.assert_array_equal(im2.pixels, a)
    assert im2.pixels.dtype == a.dtype
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_png_from_independent_encoder(tmp_path, bits, channels):
    """Files written by pypng (a different encoder) are read bit-exactly, and our writes decode bit-exactly
    with pypng (a different decoder)."""
    dtype = np.uint16 if bits == 16 else np.uint8
    a = _random(dtype, channels)
    h, w = SHAPE
    p = tmp_path / "in.png"
    with open(p, "wb") as fh:
        png.Writer(w, h, greyscale=channels <= 2, alpha=channels in (2, 4), bitdepth=bits).write(
            fh, a.reshape(h, w * channels)
        )
    np.testing.assert_array_equal(read_image(p).pixels, a)
    out = tmp_path / "out.png"
    write_image(out, a)
    np.testing.assert_array_equal(_pypng_read(out.read_bytes()), a)


def test_png16_rgb_keeps_16_bits(tmp_path):
    a = (np.arange(SHAPE[0] * SHAPE[1] * 3, dtype=np.uint32).reshape(*SHAPE, 3) * 97 % 65536).astype(np.uint16)
    p = tmp_path / "deep.png"
    write_image(p, a)
    back = read_image(p)
    assert back.bits == 16 and back.pixels.dtype == np.uint16
    assert back.pixels.max() > 255
    assert np.any(back.pixels & 0xFF)  # low bytes are real, not a shifted 8-bit image
    np.testing.assert_array_equal(back.pixels, a)
    # The trap this module exists for: Pillow quietly reads this file as 8-bit.
    with PILImage.open(p) as im:
        assert np.asarray(im).dtype == np.uint8


def test_png16_interlaced_with_colour_key_matches_pypng(tmp_path):
    a = _random(np.uint16, 3)
    h, w = SHAPE
    p = tmp_path / "t.png"
    with open(p, "wb") as fh:  # 16-bit RGB with a tRNS colour key, interlaced
        key = tuple(int(v) for v in a[0, 0])
        png.Writer(w, h, greyscale=False, bitdepth=16, transparent=key, interlace=True).write(fh, a.reshape(h, -1))
    im = read_image(p)
    assert im.channels == 4 and im.bits == 16
    np.testing.assert_array_equal(im.pixels[..., :3], a)
    assert im.pixels[0, 0, 3] == 0 and im.pixels[..., 3].max() == 65535
    assert any("tRNS" in n for n in im.warnings)


def test_png_palette_transparency_and_low_bit_depths(tmp_path):
    rgb = _random(np.uint8, 3)
    p = tmp_path / "pal.png"
    PILImage.fromarray(rgb).quantize(16).save(p)
    im = read_image(p)
    assert im.pixels.shape == (*SHAPE, 3) and im.bits == 8
    expected = np.asarray(PILImage.open(p).convert("RGB"))
    np.testing.assert_array_equal(im.pixels, expected)
    assert any("palette" in n for n in im.warnings)

    p = tmp_path / "pal_t.png"
    q = PILImage.fromarray(rgb).quantize(8)
    q.save(p, transparency=0)
    assert read_image(p).channels == 4

    p = tmp_path / "one.png"
    PILImage.fromarray(_random(np.uint8, 1) > 127).save(p)
    im = read_image(p)
    assert im.pixels.dtype == np.uint8 and set(np.unique(im.pixels)) <= {0, 255}

    p = tmp_path / "gray_trns.png"
    g = _random(np.uint8, 1)
    PILImage.fromarray(g).save(p, transparency=int(g[0, 0]))
    im = read_image(p)
    assert im.channels == 2
    np.testing.assert_array_equal(im.pixels[..., 0], g)
    assert im.pixels[0, 0, 1] == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_keeps_8_bits_and_reads_deterministically(tmp_path, channels):
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    base = (40 + 4 * x + 3 * y).astype(np.uint8)
    a = base if channels == 1 else np.stack([base, base[::-1], 255 - base], axis=-1)
    p = tmp_path / "a.jpg"
    write_image(p, a, quality=95)
    first, second = read_image(p), read_image(p)
    assert first.format == "jpeg" and first.bits == 8 and first.pixels.dtype == np.uint8
    assert first.pixels.shape == a.shape
    np.testing.assert_array_equal(first.pixels, second.pixels)
    assert np.abs(first.pixels.astype(int) - a).mean() < 3.0
    # writing what was read keeps it JPEG 8-bit
    p2 = tmp_path / "b.jpeg"
    write_image(p2, first.pixels, like=first)
    assert read_image(p2).pixels.dtype == np.uint8


def test_independent_encoders_tiff_bmp_webp_npy(tmp_path):
    rgba = _random(np.uint8, 4)
    f32 = _random(np.float32, 3)
    u16 = _random(np.uint16, 1)
    tifffile.imwrite(tmp_path / "f.tif", f32, photometric="rgb", compression="zlib")
    tifffile.imwrite(tmp_path / "planar.tiff", np.moveaxis(_random(np.uint16, 3), -1, 0), photometric="rgb",
                     planarconfig="separate")
    tifffile.imwrite(tmp_path / "g.tif", u16)
    PILImage.fromarray(rgba[..., :3]).save(tmp_path / "p.bmp")
    PILImage.fromarray(rgba).save(tmp_path / "l.webp", lossless=True, exact=True)
    np.save(tmp_path / "d.npy", f32.astype(np.float64))
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif").pixels, f32)
    assert read_image(tmp_path / "f.tif").encoding["compression"] != "none"
    planar = read_image(tmp_path / "planar.tiff")
    assert planar.pixels.shape == (*SHAPE, 3) and planar.bits == 16
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif").pixels, u16)
    np.testing.assert_array_equal(read_image(tmp_path / "p.bmp").pixels, rgba[..., :3])
    np.testing.assert_array_equal(read_image(tmp_path / "l.webp").pixels, rgba)
    d = read_image(tmp_path / "d.npy")
    assert d.pixels.dtype == np.float32 and d.bits == 32
    np.testing.assert_array_equal(d.pixels, f32)
    # compressed TIFF written back stays compressed and exact
    im = read_image(tmp_path / "f.tif")
    write_image(tmp_path / "f2.tif", im.pixels, like=im)
    again = read_image(tmp_path / "f2.tif")
    assert again.encoding["compression"] != "none"
    np.testing.assert_array_equal(again.pixels, f32)


def test_metadata_carried_over(tmp_path):
    icc = b"fake-icc-profile-bytes" * 10
    a = _random(np.uint8, 3)
    src = tmp_path / "src.png"
    write_image(src, a, like=Image(a, "png", 8, 3, md.Metadata(icc=icc, dpi=(300.0, 300.0))))
    im = read_image(src)
    assert im.metadata.icc == icc
    assert im.metadata.dpi == pytest.approx((300.0, 300.0), abs=0.01)
    for name in ("o.png", "o.jpg", "o.tif", "o.webp"):
        write_image(tmp_path / name, im.pixels, like=im)
        assert read_image(tmp_path / name).metadata.icc == icc, name
    assert read_image(tmp_path / "o.tif").metadata.dpi == pytest.approx((300.0, 300.0), abs=0.01)
    assert read_image(tmp_path / "o.jpg").metadata.dpi == pytest.approx((300.0, 300.0), abs=0.01)
    a16 = _random(np.uint16, 4)
    write_image(tmp_path / "o16.png", a16, like=im)
    back = read_image(tmp_path / "o16.png")
    assert back.metadata.icc == icc
    np.testing.assert_array_equal(back.pixels, a16)


def test_gray_alpha_written_to_rgb_only_formats(tmp_path):
    ga = _random(np.uint8, 2)
    for name in ("ga.webp", "ga.bmp"):
        write_image(tmp_path / name, ga)
        back = read_image(tmp_path / name).pixels
        assert back.shape == (*SHAPE, 4)
        for c in range(3):
            np.testing.assert_array_equal(back[..., c], ga[..., 0])
        np.testing.assert_array_equal(back[..., 3], ga[..., 1])


# --- format detection ----------------------------------------------------------------------------


def test_detect_by_content(tmp_path):
    a = _random(np.uint8, 3)
    write_image(tmp_path / "x.png", a)
    os.rename(tmp_path / "x.png", tmp_path / "x.data")
    assert detect_format(tmp_path / "x.data") == "png"
    np.testing.assert_array_equal(read_image(tmp_path / "x.data").pixels, a)
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"II*\x00") == "tiff"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8L") == "webp"
    assert sniff_format(b"GIF89a") == "gif"
    assert sniff_format(b"hello") is None


# --- errors --------------------------------------------------------------------------------------


def _png_bytes(a: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.png_encode(a))


def test_bad_inputs_give_one_line_errors(tmp_path):
    a = _random(np.uint8, 3, (64, 64))
    data = _png_bytes(a)
    jbuf = io.BytesIO()
    PILImage.fromarray(a).save(jbuf, "JPEG", quality=90)
    jdata = jbuf.getvalue()
    (tmp_path / "folder.png").mkdir()
    cases = {
        "missing.png": (None, "no such file"),
        "folder.png": (None, "directory"),
        "empty.png": (b"", "empty"),
        "cut_idat.png": (data[: len(data) // 2], "truncated PNG"),
        "no_iend.png": (data[:-12], "truncated PNG"),
        "cut.jpg": (jdata[: len(jdata) // 2], "truncated JPEG"),
        "text.png": (b"this is not an image\n" * 5, "looks like text"),
        "jpeg_named.png": (jdata, "content is JPEG"),
        "anim.gif": (b"GIF89a" + bytes(40), "GIF"),
        "garbage.bmp": (bytes(range(200)), "not a BMP"),
        "ints.npy": (None, "float"),
        "nan.npy": (None, "NaN"),
        "inf.tif": (None, "infinite"),
        "bad_crc.png": (data[:33] + bytes([data[33] ^ 1]) + data[34:], "CRC"),
        "shape.npy": (None, "shape"),
        "two_pages.tif": (None, "multi-page"),
    }
    np.save(tmp_path / "ints.npy", np.zeros((4, 4), np.uint16))
    bad = np.ones((4, 4), np.float32)
    bad[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    bad[1, 1] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", bad)
    np.save(tmp_path / "shape.npy", np.zeros((4, 4, 7), np.float32))
    with tifffile.TiffWriter(tmp_path / "two_pages.tif") as tw:
        tw.write(np.zeros((4, 4), np.uint8))
        tw.write(np.ones((4, 4), np.uint8))
    for name, (content, _) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    for name, (_, expected) in cases.items():
        p = tmp_path / name
        with pytest.raises(ImageError) as ei:
            read_image(p)
        msg = _assert_one_line_error(ei, p)
        assert expected.lower() in msg.lower(), msg


def test_write_errors(tmp_path):
    a8 = _random(np.uint8, 3)
    cases = [
        (tmp_path / "a.jpg", _random(np.uint16, 3), "uint16"),
        (tmp_path / "a.png", _random(np.float32, 3), "float32"),
        (tmp_path / "a.npy", a8, "uint8"),
        (tmp_path / "a.jpg", _random(np.uint8, 4), "alpha"),
        (tmp_path / "a.xyz", a8, "format"),
        (tmp_path / "nan.tif", np.full((4, 4), np.nan, np.float32), "NaN"),
        (tmp_path / "no_such_dir" / "a.png", a8, "does not exist"),
    ]
    (tmp_path / "file").write_bytes(b"x")
    cases.append((tmp_path / "file" / "a.png", a8, "not a folder"))
    for path, arr, expected in cases:
        with pytest.raises(ImageError) as ei:
            write_image(path, arr)
        msg = _assert_one_line_error(ei, path)
        assert expected.lower() in msg.lower(), msg
    with pytest.raises(ImageError, match="does not match"):
        write_image(tmp_path / "a.png", a8, format="jpeg")
    assert _no_temp_files(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="cannot write") as ei:
            write_image(ro / "a.png", _random(np.uint8, 1))
        _assert_one_line_error(ei, ro / "a.png")
    finally:
        ro.chmod(0o755)


def test_unwritable_folder_simulated(tmp_path, monkeypatch):
    """The same path for root, which can write anywhere: mkstemp refuses as it would in a read-only folder."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    target = tmp_path / "a.png"
    with pytest.raises(ImageError, match="cannot write to folder .*Permission denied") as ei:
        write_image(target, _random(np.uint8, 1))
    _assert_one_line_error(ei, target)
    assert not target.exists()


def test_output_equal_to_input(tmp_path):
    p = tmp_path / "in.png"
    write_image(p, _random(np.uint8, 1))
    for other in (p, tmp_path / "." / "in.png", str(p)):
        with pytest.raises(ImageError, match="same file") as ei:
            check_not_same_file(p, other)
        assert "\n" not in str(ei.value)
    link = tmp_path / "link.png"
    os.link(p, link)
    with pytest.raises(ImageError, match="same file"):
        check_not_same_file(p, link)
    sym = tmp_path / "sym.png"
    os.symlink(p, sym)
    with pytest.raises(ImageError, match="same file"):
        check_not_same_file(p, sym)
    check_not_same_file(p, tmp_path / "out.png")  # different, not existing: fine


# --- atomic writes -------------------------------------------------------------------------------


def test_atomic_write_refuses_existing_and_overwrites_on_request(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(b"precious")
    with pytest.raises(ImageError, match="exists"):
        write_image(p, _random(np.uint8, 3))
    assert p.read_bytes() == b"precious"
    a = _random(np.uint8, 3)
    write_image(p, a, overwrite=True)
    np.testing.assert_array_equal(read_image(p).pixels, a)
    assert _no_temp_files(tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert (os.stat(p).st_mode & 0o777) == 0o666 & ~mask  # not mkstemp's 0600


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_atomic_write_cleans_up_on_interrupt(tmp_path, monkeypatch, exc):
    p = tmp_path / "a.tif"
    p.write_bytes(b"old")

    def boom(fh, *args, **kwargs):
        fh.write(b"partial data")
        raise exc("stop")

    monkeypatch.setattr(imagefile, "_encode", boom)
    with pytest.raises(exc if exc is KeyboardInterrupt else ImageError):
        write_image(p, _random(np.uint8, 3), overwrite=True)
    assert p.read_bytes() == b"old"
    assert _no_temp_files(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["a.tif"]


def test_error_pickles_and_is_value_error():
    import pickle

    e = ImageError("/x/y.png", "something\nbroke")
    assert str(e) == "/x/y.png: something broke"
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.path, e2.reason) == (e.path, e.reason)
    assert isinstance(e2, ValueError)


def test_png_chunk_crc_helper_is_standard():
    chunk = md.png_chunk(b"IEND", b"")
    assert chunk == struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
