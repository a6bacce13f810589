"""The JPEG compression-noise model: tables read from files, the model's maths, and its accuracy on held-out
photographs (measured error of real q75/q90 JPEGs against the uncompressed original)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from gpu_deconv.core.colour import TransferCurve
from gpu_deconv.core.jpeg_noise import (
    _B,
    STD_CHROMINANCE,
    STD_LUMINANCE,
    JpegQuantisation,
    coefficient_error_variance,
    ijg_table,
    jpeg_noise_rms,
    jpeg_noise_std,
    jpeg_noise_variance,
)
from gpu_deconv.io.images import read_image


def _camera(size: int = 256) -> np.ndarray:
    import skimage.data

    img = skimage.data.camera()
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size])


def _coffee(size: int = 256) -> np.ndarray:
    import skimage.data

    img = skimage.data.coffee()
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size])


def test_tables_and_subsampling_read_from_the_file(tmp_path):
    p = tmp_path / "c.jpg"
    PILImage.fromarray(_coffee(64)).save(p, quality=75)
    quant = read_image(p).jpeg
    assert quant.colour == "ycbcr" and quant.subsampling == "4:2:0"
    np.testing.assert_array_equal(quant.tables[0], ijg_table(STD_LUMINANCE, 75))  # zig-zag undone
    np.testing.assert_array_equal(quant.tables[1], ijg_table(STD_CHROMINANCE, 75))
    PILImage.fromarray(_coffee(64)).save(p, quality=90, subsampling=0)
    assert read_image(p).jpeg.subsampling == "4:4:4"


def test_model_maths():
    np.testing.assert_allclose(_B @ _B.T, np.eye(8), atol=1e-12)  # orthonormal DCT
    q = ijg_table(STD_LUMINANCE, 75)
    np.testing.assert_allclose(coefficient_error_variance(q), q * q / 12)
    np.testing.assert_allclose(coefficient_error_variance(q, np.zeros((8, 8))), q * q / 12, rtol=1e-6)
    nearly_all_zero = coefficient_error_variance(q, np.full((8, 8), 0.999))
    some_zero = coefficient_error_variance(q, np.full((8, 8), 0.5))
    assert np.all(nearly_all_zero < some_zero) and np.all(some_zero < q * q / 12)
    flat = JpegQuantisation((np.full((8, 8), 8.0),), ((1, 1),), "gray")
    assert jpeg_noise_variance(flat)[0] == pytest.approx(64 / 12 + 1 / 12)
    per_pos = jpeg_noise_variance(JpegQuantisation((q,), ((1, 1),), "gray"), per_position=True)
    assert per_pos.shape == (8, 8, 1)
    assert per_pos.mean() == pytest.approx(jpeg_noise_variance(JpegQuantisation((q,), ((1, 1),), "gray"))[0])
    # linear light: code std / 255 times the curve's slope at the level
    std = jpeg_noise_std(flat, 0.5)
    h = 1e-4
    slope = float((TransferCurve.srgb().to_linear(np.float32(0.5 + h)) - TransferCurve.srgb().to_linear(
        np.float32(0.5 - h))) / (2 * h))
    assert std[0] == pytest.approx(np.sqrt(65 / 12) / 255 * slope, rel=1e-3)
    assert jpeg_noise_std(flat, np.array([0.1, 0.9])).shape == (2, 1)


@pytest.mark.parametrize("quality", [75, 90])
@pytest.mark.parametrize("which", ["camera", "coffee"])
def test_model_tracks_the_measured_error(tmp_path, which, quality):
    """Held-out photographs: the model from the file alone lands within a factor 1.5 of the measured RMS error;
    the plain Q^2/12 bound is well above it (that is why the zero-coefficient model exists)."""
    img = _camera() if which == "camera" else _coffee()
    p = tmp_path / "x.jpg"
    PILImage.fromarray(img).save(p, quality=quality)
    im = read_image(p)
    measured = np.sqrt(((im.pixels.astype(np.float64) - img) ** 2).mean())
    model = np.sqrt(jpeg_noise_variance(im.jpeg, im.pixels).mean())
    bound = np.sqrt(jpeg_noise_variance(im.jpeg).mean())
    assert measured / 1.5 < model < measured * 1.5, (measured, model)
    assert bound > 1.2 * measured


def test_rms_over_the_image_matches_the_per_pixel_model(tmp_path):
    """jpeg_noise_rms (histogram of code values) equals the RMS of jpeg_noise_std evaluated at every pixel."""
    p = tmp_path / "c.jpg"
    PILImage.fromarray(_coffee()).save(p, quality=75)
    im = read_image(p)
    per_pixel = jpeg_noise_std(im.jpeg, im.pixels.reshape(-1, 3) / 255.0, im.transfer, im.pixels)
    direct = float(np.sqrt(np.mean(per_pixel.astype(np.float64) ** 2)))
    assert jpeg_noise_rms(im.jpeg, im.pixels, im.transfer) == pytest.approx(direct, rel=0.02)
