"""Image formats beyond the round-trip table: JPEG XL, AVIF, lossy WebP, compressed TIFF; the pixel limit read
from headers; lossy in -> lossy out; multi-frame and non-finite input refused in one line."""

from __future__ import annotations

import io
import os
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from gpu_deconv.core.jpeg_noise import STD_LUMINANCE, ZIGZAG, JpegQuantisation, estimate_quality, ijg_table
from gpu_deconv.io import images as imagefile
from gpu_deconv.io.images import ImageError, probe_image, read_image, write_image

RNG = np.random.default_rng(7)


def _photo(shape=(48, 64, 3)) -> np.ndarray:
    """Smooth content (lossy codecs behave as on photos), uint8."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)
    chans = [base + 20 * np.sin((x + 9 * c) / 11.0) for c in range(shape[2])]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def _one_line(excinfo, path) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.startswith(os.fspath(path) + ": "), msg
    return msg


@pytest.mark.parametrize(("dtype", "bits", "channels"), [
    (np.uint8, 8, 1), (np.uint8, 8, 3), (np.uint8, 8, 4), (np.uint16, 16, 3), (np.uint16, 10, 3),
    (np.uint16, 12, 1), (np.float32, 32, 3),
])
def test_jxl_lossless_round_trip(tmp_path, dtype, bits, channels):
    shape = (21, 34) if channels == 1 else (21, 34, channels)
    if dtype == np.float32:
        a = RNG.random(shape, dtype=np.float32)
    else:
        a = RNG.integers(0, 1 << bits, shape, dtype=dtype)
    r = write_image(tmp_path / "a.jxl", a, bits=bits if dtype == np.uint16 else None)
    assert r.lossless
    im = read_image(tmp_path / "a.jxl")
    assert im.format == "jxl" and not im.lossy and im.bits == bits and im.channels == channels
    np.testing.assert_array_equal(im.pixels, a)
    write_image(tmp_path / "b.jxl", im.pixels, like=im)
    np.testing.assert_array_equal(read_image(tmp_path / "b.jxl").pixels, a)


@pytest.mark.parametrize(("bits", "channels"), [(8, 3), (8, 4), (10, 3), (12, 3)])
def test_avif_lossless_round_trip(tmp_path, bits, channels):
    dtype = np.uint8 if bits == 8 else np.uint16
    a = RNG.integers(0, 1 << bits, (20, 30, channels), dtype=dtype)
    r = write_image(tmp_path / "a.avif", a, bits=None if bits == 8 else bits)
    assert r.lossless
    im = read_image(tmp_path / "a.avif")
    assert im.bits == bits and not im.lossy and im.channels == channels
    np.testing.assert_array_equal(im.pixels, a)


def test_lossy_in_lossy_out_lossless_in_lossless_out(tmp_path):
    a = _photo()
    # lossy WebP is detected and stays lossy at a high quality; lossless stays lossless
    lossy = tmp_path / "l.webp"
    lossy.write_bytes(imagecodecs.webp_encode(a, level=60, lossless=False))
    im = read_image(lossy)
    assert im.lossy
    r = write_image(tmp_path / "l_out.webp", im.pixels, like=im)
    assert not r.lossless and r.quality >= imagefile.MIN_REENCODE_QUALITY
    assert read_image(r.path).lossy
    assert os.path.getsize(r.path) < 4 * os.path.getsize(lossy)  # not a many-times-larger lossless file
    write_image(tmp_path / "ll.webp", a)
    im = read_image(tmp_path / "ll.webp")
    assert not im.lossy
    r = write_image(tmp_path / "ll_out.webp", im.pixels, like=im)
    assert r.lossless
    np.testing.assert_array_equal(read_image(r.path).pixels, a)
    # JPEG: quality estimated from the tables (IJG), re-encoded at max(q, 90) with the same subsampling
    for q in (75, 93):
        src = tmp_path / f"q{q}.jpg"
        PILImage.fromarray(a).save(src, quality=q)
        im = read_image(src)
        assert im.quality == q and im.jpeg.subsampling == "4:2:0"
        r = write_image(tmp_path / f"o{q}.jpg", im.pixels, like=im)
        assert r.quality == max(q, 90)
        back = read_image(r.path)
        assert back.quality == max(q, 90) and back.jpeg.subsampling == "4:2:0"
    # explicit quality makes JXL/AVIF lossy
    r = write_image(tmp_path / "q.jxl", a, quality=80)
    assert not r.lossless and read_image(r.path).lossy
    r = write_image(tmp_path / "q.avif", a, quality=80)
    assert not r.lossless and read_image(r.path).lossy


def test_jpeg_quality_estimate_matches_ijg_scaling():
    for q in (10, 50, 75, 90, 100):
        t = ijg_table(STD_LUMINANCE, q)
        zig = t.reshape(-1)[ZIGZAG]
        quant = JpegQuantisation.from_zigzag({0: list(zig.astype(int))}, (0,), ((1, 1),))
        assert estimate_quality(quant) == q


@pytest.mark.parametrize("compression", ["lzw", "zlib", "zstd", "jpeg", "packbits"])
def test_compressed_tiffs_editors_write(tmp_path, compression):
    a = _photo()
    p = tmp_path / "c.tif"
    kw = {"compressionargs": {"level": 90}} if compression == "jpeg" else {"predictor": compression != "packbits"}
    tifffile.imwrite(p, a, photometric="rgb", compression=compression, **kw)
    im = read_image(p)
    assert im.pixels.shape == a.shape and im.encoding["compression"] != "none"
    if compression == "jpeg":
        assert im.lossy and im.quality == 90
        assert np.abs(im.pixels.astype(int) - a).mean() < 3
    else:
        np.testing.assert_array_equal(im.pixels, a)
    r = write_image(tmp_path / "o.tif", im.pixels, like=im)
    back = read_image(r.path)
    assert back.encoding["compression"] == im.encoding["compression"]
    assert back.lossy == im.lossy
    if not im.lossy:
        np.testing.assert_array_equal(back.pixels, a)


def test_tiff_thumbnail_page_is_not_multi_page(tmp_path):
    p = tmp_path / "thumb.tif"
    a = _photo()
    with tifffile.TiffWriter(p) as tw:
        tw.write(a, photometric="rgb")
        tw.write(a[::4, ::4], photometric="rgb", subfiletype=1)  # reduced-resolution copy
    np.testing.assert_array_equal(read_image(p).pixels, a)


# --- the pixel limit -----------------------------------------------------------------------------


def _png_declaring(w: int, h: int, depth: int = 16, colour: int = 2) -> bytes:
    """A tiny PNG whose IHDR declares w x h (its IDAT is a few bytes of a deflate stream)."""
    def chunk(t: bytes, b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(b, zlib.crc32(t)))

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    idat = zlib.compress(bytes(10000), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_pixel_limit_refuses_bombs_from_the_header(tmp_path):
    cases = {}
    cases["bomb.png"] = _png_declaring(16000, 16000)
    p = tmp_path / "bomb.tif"  # a small file whose header declares 40000 x 40000
    tifffile.imwrite(p, _photo((16, 16, 3)), photometric="rgb", compression="zlib")
    with tifffile.TiffFile(p) as tf:
        offsets = [tf.pages[0].tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        dtypes = [tf.pages[0].tags[name].dtype for name in ("ImageWidth", "ImageLength")]
    data = bytearray(p.read_bytes())
    for off, dt in zip(offsets, dtypes, strict=True):
        data[off : off + (2 if dt == 3 else 4)] = struct.pack("<H" if dt == 3 else "<I", 40000)
    p.write_bytes(bytes(data))
    jpeg = bytearray(imagecodecs.jpeg8_encode(_photo((16, 16, 3)), level=90))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    cases["bomb.jpg"] = bytes(jpeg)
    webp = bytearray(imagecodecs.webp_encode(_photo((16, 16, 3)), lossless=True))
    webp[21:25] = struct.pack("<I", 15999 | (15999 << 14))  # VP8L holds 14 bits: 16000 x 16000
    cases["bomb.webp"] = bytes(webp)
    cases["bomb.bmp"] = b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHH", 40, 20000, 20000, 1, 24)
    cases["bomb.bmp"] += bytes(54 - len(cases["bomb.bmp"]) + 16)
    np.lib.format.open_memmap(tmp_path / "bomb.npy", mode="w+", dtype=np.float32, shape=(20000, 20000, 3))
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in [*cases, "bomb.tif", "bomb.npy"]:
        path = tmp_path / name
        assert probe_image(path).pixels >= 256_000_000
        with pytest.raises(ImageError) as ei:
            read_image(path)
        msg = _one_line(ei, path)
        assert "--max-pixels" in msg and "MP" in msg, msg
    # the limit is the caller's: raised, the header passes and decoding is attempted (and fails cleanly)
    with pytest.raises(ImageError) as ei:
        read_image(tmp_path / "bomb.png", max_pixels=300_000_000)
    assert "--max-pixels" not in str(ei.value)


def test_a_200_mp_photo_is_under_the_default_limit():
    assert 16320 * 12240 <= imagefile.DEFAULT_MAX_PIXELS < 16000 * 16000


def test_no_pillow_decompression_bomb_warning(tmp_path, recwarn):
    a = np.zeros((9000, 10000), np.uint8)  # 90 MP: over Pillow's 89.5 MP warning threshold
    p = tmp_path / "big.png"
    p.write_bytes(imagecodecs.png_encode(a, level=1))
    assert read_image(p).pixels.shape == a.shape
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


# --- refused in one line -------------------------------------------------------------------------


def test_multi_frame_files_say_what_they_are(tmp_path):
    frames = [PILImage.fromarray(_photo((16, 16, 3))), PILImage.fromarray(255 - _photo((16, 16, 3)))]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    expected = {"anim.png": "animated PNG", "anim.webp": "animated WebP", "anim.gif": "GIF"}
    for name, what in expected.items():
        with pytest.raises(ImageError) as ei:
            read_image(tmp_path / name)
        msg = _one_line(ei, tmp_path / name)
        assert what in msg and "container" not in msg, msg
    assert "2 frames" in str(pytest.raises(ImageError, read_image, tmp_path / "anim.png").value)


def test_float_input_out_of_range_is_refused(tmp_path):
    for value, words in ((1e30, "beyond"), (np.inf, "infinite"), (np.nan, "NaN")):
        a = np.full((8, 8), 0.5, np.float32)
        a[3, 3] = value
        for name in ("x.npy", "x.tif"):
            p = tmp_path / name
            if name.endswith("npy"):
                np.save(p, a)
            else:
                tifffile.imwrite(p, a)
            with pytest.raises(ImageError) as ei:
                read_image(p)
            assert words in _one_line(ei, p)
            p.unlink()
    # the writer refuses them too (an output that is not finite is never written)
    with pytest.raises(ImageError, match="infinite"):
        write_image(tmp_path / "o.tif", np.full((4, 4), np.inf, np.float32))
    assert not (tmp_path / "o.tif").exists()


def test_truncated_jpeg_is_an_error_not_gray_padding(tmp_path):
    data = imagecodecs.jpeg8_encode(_photo(), level=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match="truncated JPEG"):
        read_image(p)


def test_webp_gray_written_as_rgb_with_a_warning(tmp_path):
    g = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    r = write_image(tmp_path / "g.webp", g)
    assert any("no gray" in w for w in r.warnings)
    back = read_image(tmp_path / "g.webp").pixels
    for c in range(3):
        np.testing.assert_array_equal(back[..., c], g)


def test_write_result_is_path_like(tmp_path):
    r = write_image(tmp_path / "a.png", _photo())
    assert os.fspath(r) == str(tmp_path / "a.png") and r.format == "png" and r.lossless and r.warnings == []
    assert io.BytesIO(open(r, "rb").read()).getvalue()[:4] == b"\x89PNG"


def test_interlaced_png_prints_no_raw_library_warning(tmp_path, capfd):
    import png

    a = RNG.integers(0, 65536, (19, 27, 3), dtype=np.uint16)
    p = tmp_path / "i.png"
    with open(p, "wb") as fh:
        png.Writer(27, 19, greyscale=False, bitdepth=16, interlace=True).write(fh, a.reshape(19, -1))
    np.testing.assert_array_equal(read_image(p).pixels, a)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(("h", "w"), [(64, 64), (48, 64), (750, 1000), (31, 977), (1080, 1920)])
def test_jxl_and_avif_headers_give_the_size(tmp_path, h, w):
    a = np.zeros((h, w, 3), np.uint8)
    (tmp_path / "a.jxl").write_bytes(imagecodecs.jpegxl_encode(a, lossless=True, effort=1))
    header = probe_image(tmp_path / "a.jxl")
    assert (header.width, header.height, header.frames) == (w, h, 1)
    if h * w <= 100_000:
        (tmp_path / "a.avif").write_bytes(imagecodecs.avif_encode(a, level=50, speed=10))
        header = probe_image(tmp_path / "a.avif")
        assert (header.width, header.height, header.frames) == (w, h, 1)


def test_planar_tiff_written_back_planar(tmp_path):
    a = RNG.integers(0, 65536, (3, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", a, photometric="rgb", planarconfig="separate", compression="zlib",
                     predictor=True)
    im = read_image(tmp_path / "p.tif")
    assert im.encoding == {"compression": "adobe_deflate", "predictor": 2, "planar": "separate"}
    write_image(tmp_path / "o.tif", im.pixels, like=im)
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        page = tf.pages[0]
        assert page.planarconfig == 2 and page.compression == 8 and page.predictor == 2
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif").pixels, np.moveaxis(a, 0, -1))


def test_rescale_bits_round_trips_and_avif_reduction_is_reported(tmp_path):
    for b in range(9, 16):
        v = np.arange(1 << b, dtype=np.uint16)
        up = imagefile.rescale_bits(v, b, 16)
        assert up[-1] == 65535 and up[0] == 0
        np.testing.assert_array_equal(imagefile.rescale_bits(up, 16, b), v)
    a = RNG.integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    r = write_image(tmp_path / "a.avif", a)
    assert "16-bit samples reduced to 12 bits" in r.warnings[0]
    back = read_image(tmp_path / "a.avif")
    assert back.bits == 12
    np.testing.assert_array_equal(back.pixels, imagefile.rescale_bits(a, 16, 12))
