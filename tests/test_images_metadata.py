"""Metadata carried across formats: EXIF (orientation honoured once), ICC, XMP, text chunks, TIFF tags; what
cannot be carried is named in one line. Independent readers (Pillow, tifffile) check what we write."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms

from gpu_deconv.io import metadata as md
from gpu_deconv.io.images import Image, read_image, write_image

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>' \
      b"</x:xmpmeta>"


def _photo(h=24, w=40) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 6) % 256, (y * 9) % 256, (x + y) * 3 % 256], -1).astype(np.uint8)


def _exif(orientation: int = 6) -> bytes:
    """An EXIF block as Pillow writes it into a JPEG (with the ``Exif\\0\\0`` header)."""
    ex = PILImage.Exif()
    ex[274] = orientation
    ex[271] = "Canon"
    ex[272] = "EOS R5"
    ex[0x8769] = {33434: (1, 250), 37386: (50, 1)}  # exposure time, focal length in the Exif IFD
    return ex.tobytes()


@pytest.fixture
def camera_jpeg(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    p = tmp_path / "camera.jpg"
    PILImage.fromarray(_photo()).save(p, quality=92, exif=_exif(6), icc_profile=icc, xmp=XMP, comment=b"shot 1")
    return p, icc


def test_jpeg_to_png_keeps_exif_icc_xmp_in_the_standard_chunks(tmp_path, camera_jpeg):
    src, icc = camera_jpeg
    im = read_image(src)
    assert im.orientation == 6 and im.metadata.icc == icc and im.metadata.xmp == XMP
    r = write_image(tmp_path / "out.png", im.pixels, like=im)
    assert r.warnings == []
    data = (tmp_path / "out.png").read_bytes()
    for chunk in (b"eXIf", b"iCCP", b"iTXt", b"tEXt"):
        assert chunk in data, chunk
    with PILImage.open(tmp_path / "out.png") as pil:  # an independent reader
        assert pil.getexif()[274] == 6 and pil.getexif()[271] == "Canon"
        assert pil.getexif().get_ifd(0x8769)[37386] == (50, 1)
        assert pil.info["icc_profile"] == icc
        assert pil.info["xmp"] == XMP
        assert pil.info["Comment"] == "shot 1"
        # orientation honoured once: the pixels are as stored, the tag travels with them
        assert pil.size == (40, 24)
    np.testing.assert_array_equal(read_image(tmp_path / "out.png").pixels, im.pixels)


def test_orientation_applied_once_for_containers_that_keep_it_elsewhere(tmp_path, camera_jpeg):
    src, _ = camera_jpeg
    im = read_image(src)
    r = write_image(tmp_path / "out.jxl", im.pixels, like=im)
    assert any("orientation 6" in w for w in r.warnings)
    back = read_image(tmp_path / "out.jxl")
    assert back.orientation == 1 and back.pixels.shape[:2] == (40, 24)  # rotated 90 degrees clockwise
    rotated = np.rot90(im.pixels, -1).astype(int)  # lossy in -> lossy out: compare, not bit for bit
    assert np.abs(back.pixels.astype(int) - rotated).mean() < 4 < np.abs(back.pixels[::-1, ::-1] - rotated).mean()
    # and read back into a JPEG, it is not rotated again
    write_image(tmp_path / "again.jpg", back.pixels, like=back)
    with PILImage.open(tmp_path / "again.jpg") as pil:
        assert pil.getexif().get(274, 1) == 1 and pil.size == (24, 40)


def test_jpeg_to_webp_and_tiff_keep_metadata(tmp_path, camera_jpeg):
    src, icc = camera_jpeg
    im = read_image(src)
    write_image(tmp_path / "o.webp", im.pixels, like=im)
    with PILImage.open(tmp_path / "o.webp") as pil:
        assert pil.info["icc_profile"] == icc and pil.getexif()[274] == 6 and pil.info["xmp"] == XMP
    r = write_image(tmp_path / "o.tif", im.pixels, like=im)
    assert any("'Comment'" in w for w in r.warnings)  # TIFF has no comment field: named, not silent
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        tags = tf.pages[0].tags
        assert tags["Make"].value == "Canon" and tags["Model"].value == "EOS R5"
        assert int(tags["Orientation"].value) == 6
        assert tags["ExifTag"].value["FocalLength"] == (50, 1)
        assert tags["InterColorProfile"].value == icc and bytes(tags["XMP"].value) == XMP
    # TIFF -> JPEG again: the EXIF block is rebuilt from the TIFF's tags and Exif IFD
    back = read_image(tmp_path / "o.tif")
    write_image(tmp_path / "back.jpg", back.pixels, like=back)
    with PILImage.open(tmp_path / "back.jpg") as pil:
        ex = pil.getexif()
        assert ex[274] == 6 and ex[271] == "Canon" and ex.get_ifd(0x8769)[33434] == (1, 250)


def test_jpeg_to_avif_keeps_icc_exif_xmp(tmp_path, camera_jpeg):
    src, icc = camera_jpeg
    im = read_image(src)
    r = write_image(tmp_path / "o.avif", im.pixels, like=im)
    assert any("orientation 6" in w for w in r.warnings)  # applied once, to the pixels
    back = read_image(tmp_path / "o.avif")
    assert back.metadata.icc == icc and back.metadata.xmp == XMP and back.orientation == 1
    with PILImage.open(tmp_path / "o.avif") as pil:  # an independent reader (libavif through Pillow)
        pil.load()
        assert pil.info["icc_profile"] == icc and pil.info["xmp"] == XMP
        assert pil.getexif()[271] == "Canon" and pil.size == (24, 40)


def test_tiff_descriptive_tags_and_private_tags(tmp_path):
    a = np.random.default_rng(1).integers(0, 65536, (12, 16, 3), dtype=np.uint16)
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, a, photometric="rgb", description="Grandma, 1962", software="VueScan 9",
                     datetime="2024:01:02 03:04:05", resolution=(600, 600), resolutionunit=2,
                     extratags=[(315, 2, 0, "A. Scanner", True), (33432, 2, 0, "(c) family", True),
                                (65000, 2, 0, "private note", True)], metadata=None)
    im = read_image(src)
    assert im.metadata.text == {"Description": "Grandma, 1962", "Software": "VueScan 9",
                                "Creation Time": "2024:01:02 03:04:05", "Author": "A. Scanner",
                                "Copyright": "(c) family"}
    assert im.metadata.dpi == pytest.approx((600, 600))
    # TIFF -> TIFF keeps everything, the private tag included
    write_image(tmp_path / "o.tif", im.pixels, like=im)
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        tags = tf.pages[0].tags
        assert tags["ImageDescription"].value == "Grandma, 1962" and tags["Artist"].value == "A. Scanner"
        assert tags["Software"].value == "VueScan 9" and tags[65000].value == "private note"
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif").pixels, a)
    # TIFF -> PNG: descriptive tags become text chunks; the private tag is named as dropped
    r = write_image(tmp_path / "o.png", im.pixels, like=im)
    assert len(r.warnings) == 1 and "TIFF tag 65000" in r.warnings[0]
    with PILImage.open(tmp_path / "o.png") as pil:
        assert pil.info["Description"] == "Grandma, 1962" and pil.info["Author"] == "A. Scanner"
        assert pil.info["dpi"] == pytest.approx((600, 600), abs=0.1)
    # PNG -> TIFF brings them back as tags
    png = read_image(tmp_path / "o.png")
    write_image(tmp_path / "again.tif", png.pixels, like=png)
    with tifffile.TiffFile(tmp_path / "again.tif") as tf:
        assert tf.pages[0].tags["Copyright"].value == "(c) family"


def test_png_text_chunks_kept_and_dropped_loudly(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a prompt, steps 30")
    info.add_text("Title", "Sunset")
    info.add_itxt("Description", "Sonnenuntergang über dem Meer")
    info.add(b"tpNg", b"tool private data")  # safe-to-copy ancillary chunk (lower-case 4th letter)
    info.add(b"tpNG", b"depends on the pixels")  # not safe to copy once the pixels change
    src = tmp_path / "t.png"
    PILImage.fromarray(_photo()).save(src, pnginfo=info)
    im = read_image(src)
    assert im.metadata.text["Description"] == "Sonnenuntergang über dem Meer"
    assert any("'tpNG' is not safe to copy" in w for w in im.warnings)
    write_image(tmp_path / "o.png", im.pixels, like=im)
    with PILImage.open(tmp_path / "o.png") as pil:
        assert pil.info["parameters"] == "a prompt, steps 30" and pil.info["Title"] == "Sunset"
        assert pil.info["Description"] == "Sonnenuntergang über dem Meer"
    assert b"tpNg" in (tmp_path / "o.png").read_bytes() and b"tpNG" not in (tmp_path / "o.png").read_bytes()
    r = write_image(tmp_path / "o.jpg", im.pixels, like=im)
    assert len(r.warnings) == 1
    for what in ("'parameters'", "'Title'", "'Description'", "PNG chunk tpNg"):
        assert what in r.warnings[0]


def test_jpeg_app_segments_same_format_only(tmp_path):
    from gpu_deconv.io.metadata import jpeg_insert_metadata

    a = _photo()
    base = tmp_path / "b.jpg"
    PILImage.fromarray(a).save(base, quality=90)
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x05\x1c\x02\x05\x00\x00"
    m = md.Metadata(extra={"jpeg": [(0xED, iptc)]})
    src = tmp_path / "iptc.jpg"
    src.write_bytes(b"".join(jpeg_insert_metadata(base.read_bytes(), m)))
    im = read_image(src)
    assert im.metadata.extra["jpeg"] == [(0xED, iptc)]
    write_image(tmp_path / "o.jpg", im.pixels, like=im)
    assert iptc in (tmp_path / "o.jpg").read_bytes()
    r = write_image(tmp_path / "o.png", im.pixels, like=im)
    assert "APP13" in r.warnings[0]


def test_exif_ifd_serialisation_round_trips():
    block = _exif(3)[6:]
    order, entries = md.parse_exif(block)
    rebuilt = md.build_exif(entries, order)
    _, again = md.parse_exif(rebuilt)
    assert [(e.tag, e.dtype, e.count, e.raw) for e in again if e.sub is None] == \
           [(e.tag, e.dtype, e.count, e.raw) for e in entries if e.sub is None]
    assert md.exif_orientation(rebuilt) == 3
    assert md.exif_orientation(md.set_exif_orientation(rebuilt, 1)) == 1
    big_endian = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">HHHIHH", 1, 274, 3, 1, 8, 0) + bytes(4)
    assert md.exif_orientation(big_endian) == 8


def test_gray_and_16_bit_keep_metadata(tmp_path):
    icc = b"\x00" * 200
    a = np.random.default_rng(2).integers(0, 65536, (9, 11), dtype=np.uint16)
    src = Image(a, "png", 16, 1, md.Metadata(icc=icc, exif=_exif(1)[6:], text={"Author": "me"}))
    write_image(tmp_path / "g.png", a, like=src)
    im = read_image(tmp_path / "g.png")
    assert im.metadata.icc == icc and im.metadata.text == {"Author": "me"} and im.metadata.exif
    assert any("ICC" in w for w in im.warnings)  # an unusable profile is reported, and kept
    np.testing.assert_array_equal(im.pixels, a)
