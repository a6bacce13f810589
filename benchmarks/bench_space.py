"""Which ``--space`` to use: a measured example of each case (the README quotes this table).

Run: ``python benchmarks/bench_space.py [--quick]``.

A sharp photograph (scikit-image ``astronaut``, held out of the quality benchmark), 8-bit sRGB, blurred two
ways, then restored by ``gpu-deconv run --sigma 1.0`` (method auto, noise auto) with the default
``--space auto`` (= srgb for 8-bit input: decode to linear light, filter, re-encode) and with
``--space linear`` (filter the 8-bit codes as they are):

* **optical blur** - the blur happened in linear light (a lens, defocus, a camera's anti-aliasing filter):
  Gaussian sigma 1.0 px applied to the linear image, then sRGB-encoded and quantized;
* **blur on sRGB codes** - the blur was applied to the encoded values, as ImageMagick's ``-gaussian-blur``
  and most upscalers and editors do: ``convert in.png -gaussian-blur 0x1.0 out.png`` (the real ImageMagick
  when installed; else the same Gaussian applied to the codes in NumPy, and the table says so).

PSNR is measured on the 8-bit sRGB codes against the sharp original (a 16 px border excluded): what a
person looking at the picture compares. Noise: 8-bit quantization only.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402
from quality import BORDER, blur_image  # noqa: E402

from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear  # noqa: E402

SIGMA = 1.0


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    d = a[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64) - b[BORDER:-BORDER, BORDER:-BORDER]
    return float(10 * np.log10(255.0**2 / np.mean(d * d)))


def to8(lin: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(linear_to_srgb(lin) * 255.0), 0, 255).astype(np.uint8)


def imagemagick_blur(codes: np.ndarray, tmp: Path) -> tuple[np.ndarray, str]:
    """``convert -gaussian-blur 0xSIGMA`` on the codes (the real ImageMagick), else NumPy on the codes."""
    from gpu_deconv.io.images import read_image, write_image

    exe = shutil.which("convert")
    if exe:
        version = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout
        if version.startswith("Version: ImageMagick"):  # not a stand-in
            write_image(tmp / "sharp.png", codes)
            subprocess.run([exe, str(tmp / "sharp.png"), "-gaussian-blur", f"0x{SIGMA:g}", str(tmp / "im.png")],
                           check=True, timeout=120)
            return read_image(tmp / "im.png").pixels[..., :3], version.splitlines()[0].split(" https")[0]
    blurred = blur_image(codes.astype(np.float32) / 255.0, SIGMA)
    return np.clip(np.rint(blurred * 255.0), 0, 255).astype(np.uint8), "NumPy Gaussian on the codes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 96 px crop; no RESULTS.md")
    args = ap.parse_args()
    import skimage.data

    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    size = 96 if args.quick else 512
    sharp8 = np.ascontiguousarray(skimage.data.astronaut()[:size, :size, :3])
    sharp_lin = srgb_to_linear(sharp8.astype(np.float32) / 255.0)
    with tempfile.TemporaryDirectory() as tmp:
        coded, how = imagemagick_blur(sharp8, Path(tmp))
    cases = {"optical blur (linear light)": to8(blur_image(sharp_lin, SIGMA)), "blur on sRGB codes": coded}
    rows = []
    with Deconvolver(params=DeconvParams(sigma=SIGMA)) as dec:
        renderer = dec.ctx.info.get("GL_RENDERER", "?")
        for name, blurred in cases.items():
            row = [name, psnr8(blurred, sharp8)]
            for space in ("auto", "linear"):
                row.append(psnr8(dec.process(blurred, space=space), sharp8))
            rows.append(row)
    lines = [f"Machine: {machine_line(renderer)}", "",
             f"`astronaut` {size}x{size}, 8-bit sRGB, sigma {SIGMA:g} px, method auto, noise auto; PSNR on the 8-bit "
             f"codes vs the sharp original. Blur on codes made by: {how}.", "",
             "| how the blur happened | blurred | --space auto (srgb) | --space linear | use |",
             "|---|---:|---:|---:|---|"]
    for name, b, auto, lin in rows:
        best = "auto (default)" if auto >= lin else "--space linear"
        lines.append(f"| {name} | {b:.2f} dB | {auto:.2f} dB | {lin:.2f} dB | {best} |")
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        update_section("space", "## Which --space (bench_space.py)\n\n" + text)


if __name__ == "__main__":
    main()
