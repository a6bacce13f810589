"""JPEG-aware noise: the compression-noise model of gpu_deconv.core.jpeg_noise against the measured error, and
what adding it to the noise model does to deblurring q75 JPEGs.

Part 1 - model accuracy. Each photograph (8-bit sRGB) is JPEG-compressed at q75 and q90 (Pillow/libjpeg,
4:2:0 for colour) and decoded; the measured RMS error against the uncompressed original is compared with
the model from the file's tables and its decoded pixels alone (``jpeg_noise_variance(quant, pixels)``) and
with the plain ``Q^2/12`` bound, in 8-bit code units per channel and in linear light (model: the code-unit
std times the sRGB slope at each decoded pixel, RMS over pixels). The model has no tuned constant; both
scikit-image sets are shown (the quality benchmark's images and the calibration images).

Part 2 - deblurring. Photographs (centre crop) are blurred (pixel-integrated Gaussian, sigma 1.0, linear
light), sRGB-encoded to 8 bits and stored as q75 JPEG; the GL engine deblurs the decoded JPEG with
``noise='auto'`` (default) and with the JPEG-aware noise ``sqrt(auto^2 + jpeg^2)`` (jpeg: the model's
linear-light std, RMS over the image: ``jpeg_noise_rms``). PSNR (linear light, 16 px border excluded) against the sharp
original; a crop of each is written to ``jpeg_noise_crop.png``.

Run: ``python benchmarks/bench_jpeg_noise.py [--size N] [--quick] [--no-write]``
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_line, update_section  # noqa: E402

from gpu_deconv.core.colour import TransferCurve, linear_to_srgb, srgb_to_linear  # noqa: E402
from gpu_deconv.core.jpeg_noise import jpeg_noise_rms, jpeg_noise_std, jpeg_noise_variance  # noqa: E402

BENCHMARK_SET = ("moon", "coins", "page", "immunohistochemistry", "hubble_deep_field", "cell", "retina")
CALIBRATION_SET = ("astronaut", "camera", "coffee", "chelsea", "rocket")
DEBLUR_SET = ("immunohistochemistry", "hubble_deep_field", "retina", "coins", "moon")
SIGMA = 1.0
BORDER = 16


def photo(name: str, size: int) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    img = img[..., :3] if img.ndim == 3 else img
    h, w = img.shape[:2]
    ch, cw = min(h, size), min(w, size)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw]).astype(np.uint8)


def jpeg_round_trip(codes: np.ndarray, quality: int, folder: Path, name: str):
    """Store as a JPEG file, read it back through gpu_deconv's reader (tables, subsampling, pixels)."""
    from PIL import Image as PILImage

    from gpu_deconv.io.images import read_image

    p = folder / f"{name}_q{quality}.jpg"
    buf = io.BytesIO()
    PILImage.fromarray(codes).save(buf, "JPEG", quality=quality)
    p.write_bytes(buf.getvalue())
    return read_image(p)


def model_rows(names: tuple[str, ...], size: int, folder: Path) -> list[dict]:
    rows = []
    srgb = TransferCurve.srgb()
    for name in names:
        img = photo(name, size)
        for q in (75, 90):
            im = jpeg_round_trip(img, q, folder, name)
            dec = im.pixels.astype(np.float64)
            chans = 1 if img.ndim == 2 else 3
            err = (dec - img).reshape(-1, chans)
            measured = np.sqrt((err**2).mean(0))
            model = np.sqrt(jpeg_noise_variance(im.jpeg, im.pixels))
            bound = np.sqrt(jpeg_noise_variance(im.jpeg))
            lin_err = srgb_to_linear(im.pixels / 255.0) - srgb_to_linear(img / 255.0)
            lin_measured = float(np.sqrt(np.mean(lin_err.astype(np.float64) ** 2)))
            levels = (im.pixels / 255.0).reshape(-1, chans)
            lin_model = float(np.sqrt(np.mean(jpeg_noise_std(im.jpeg, levels, srgb, im.pixels).reshape(-1, chans)
                                              .astype(np.float64) ** 2)))
            rows.append({"image": name, "q": q, "est_q": im.quality, "sub": im.jpeg.subsampling or "gray",
                         "measured": measured.mean(), "model": model.mean(), "bound": bound.mean(),
                         "lin_measured": lin_measured, "lin_model": lin_model})
            print(rows[-1], flush=True)
    return rows


def psnr(truth: np.ndarray, out: np.ndarray) -> float:
    d = out[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64) - truth[BORDER:-BORDER, BORDER:-BORDER]
    return 10.0 * math.log10(1.0 / float(np.mean(d * d)))


def deblur_rows(size: int, folder: Path, crop_path: Path | None) -> list[dict]:
    from gpu_deconv.core.blur import Gaussian
    from gpu_deconv.core.noise import estimate_noise
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.core.reference import convolve_axis
    from gpu_deconv.gl.engine import Deconvolver

    rows, crops = [], []
    taps = Gaussian(SIGMA).taps
    with Deconvolver(params=DeconvParams(sigma=SIGMA, noise="auto")) as d:
        for name in DEBLUR_SET:
            sharp = srgb_to_linear(photo(name, size) / np.float32(255.0))
            x3 = sharp[..., None] if sharp.ndim == 2 else sharp
            blurred = convolve_axis(convolve_axis(x3, taps, axis=1), taps, axis=0)
            blurred = blurred[..., 0] if sharp.ndim == 2 else blurred
            codes = np.clip(np.rint(linear_to_srgb(blurred) * 255.0), 0, 255).astype(np.uint8)
            im = jpeg_round_trip(codes, 75, folder, f"blurred_{name}")
            lin_in = srgb_to_linear(im.pixels / np.float32(255.0))
            auto = estimate_noise(lin_in)
            jpeg = jpeg_noise_rms(im.jpeg, im.pixels, im.transfer)
            outs = {}
            for label, noise in (("default", "auto"), ("jpeg-aware", math.hypot(auto, jpeg))):
                d.set_params(DeconvParams(sigma=SIGMA, noise=noise))
                out = d.process(im.pixels, bits=8)
                outs[label] = srgb_to_linear(out / np.float32(255.0))
            row = {"image": name, "auto_noise": auto, "jpeg_noise": jpeg, "input": psnr(sharp, lin_in),
                   "default": psnr(sharp, outs["default"]), "jpeg_aware": psnr(sharp, outs["jpeg-aware"])}
            rows.append(row)
            print(row, flush=True)
            if crop_path is not None and len(crops) < 2:
                c = 96
                y0, x0 = (sharp.shape[0] - c) // 2, (sharp.shape[1] - c) // 2
                tiles = [sharp, lin_in, outs["default"], outs["jpeg-aware"]]
                tiles = [t[y0 : y0 + c, x0 : x0 + c] for t in tiles]
                tiles = [np.repeat(t[..., None], 3, axis=2) if t.ndim == 2 else t for t in tiles]
                crops.append(np.concatenate(tiles, axis=1))
    if crop_path is not None and crops:
        from gpu_deconv.io.images import write_image

        strip = np.concatenate(crops, axis=0)
        strip = np.repeat(np.repeat(strip, 2, axis=0), 2, axis=1)
        codes = np.clip(np.rint(linear_to_srgb(strip) * 255.0), 0, 255).astype(np.uint8)
        write_image(crop_path, codes, overwrite=True)
    return rows


def render(model: list[dict], deblur: list[dict], size: int) -> str:
    lines = [
        "## JPEG-aware noise (`benchmarks/bench_jpeg_noise.py`)",
        "",
        machine_line(),
        "",
        f"Model accuracy (centre crops {size} px; RMS over channels; code units of 8 bits; linear light x 1000). "
        "`model` uses only the file (tables + decoded pixels); `Q^2/12` is the bound without the "
        "zero-coefficient model. No constant is tuned.",
        "",
        "| image | q | estimated q | chroma | measured | model | Q^2/12 | linear measured | linear model |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in model:
        lines.append(f"| {r['image']} | {r['q']} | {r['est_q']} | {r['sub']} | {r['measured']:.2f} | "
                     f"{r['model']:.2f} | {r['bound']:.2f} | {1e3 * r['lin_measured']:.2f} | "
                     f"{1e3 * r['lin_model']:.2f} |")
    ratio = np.array([r["model"] / r["measured"] for r in model])
    lines += ["", f"model / measured: median {np.median(ratio):.2f}, range {ratio.min():.2f}-{ratio.max():.2f}."]
    if deblur:
        lines += [
            "",
            f"Deblurring q75 JPEGs of blurred photos (Gaussian sigma {SIGMA}, GL engine, linear-light PSNR dB, "
            "16 px border excluded). Noise in linear units.",
            "",
            "| image | auto noise | JPEG noise (model) | input | default (auto) | JPEG-aware |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in deblur:
            lines.append(f"| {r['image']} | {r['auto_noise']:.4f} | {r['jpeg_noise']:.4f} | {r['input']:.2f} | "
                         f"{r['default']:.2f} | {r['jpeg_aware']:.2f} |")
        gain = np.mean([r["jpeg_aware"] - r["default"] for r in deblur])
        lines += ["", f"Mean gain of the JPEG-aware noise: {gain:+.2f} dB. Crops (sharp | q75 input | default | "
                      "JPEG-aware): `jpeg_noise_crop.png`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--quick", action="store_true", help="two images, 64 px, no deblurring, no write")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    size = 64 if args.quick else args.size
    with tempfile.TemporaryDirectory(prefix="gpu_deconv_jpeg_") as tmp:
        if args.quick:
            model = model_rows(("camera", "coffee"), size, Path(tmp))
            deblur: list[dict] = []
        else:
            model = model_rows(BENCHMARK_SET + CALIBRATION_SET, args.size, Path(tmp))
            crop = None if args.no_write else Path(__file__).with_name("jpeg_noise_crop.png")
            deblur = deblur_rows(args.size, Path(tmp), crop)
    text = render(model, deblur, size)
    print(text)
    if not (args.quick or args.no_write):
        update_section("jpeg_noise", text)


if __name__ == "__main__":
    main()
