"""Image codecs: encode/decode ms and file size per format, the rewrite (imagecodecs) side by side with the
implementation it replaced (NumPy/zlib PNG encoder, ffmpeg/pypng 16-bit PNG reader, Pillow JPEG/WebP/BMP),
interleaved in one run; and the peak RSS of reading + writing a 1080p and a 108 MP (12000 x 9000) RGB image.

The "before" implementation is gpu_deconv/io/images.py as of commit ``BEFORE`` (loaded from git history, so
no old code is kept in the package); without git it is left out and only "after" is timed.

Image: scikit-image's ``astronaut`` upscaled (bicubic) to the size measured - a photo upscaled to 1080p is
what the batch tool is for. 16-bit cases use the same content at 16 bits.

Run: ``python benchmarks/bench_codecs.py [--reps N] [--quick] [--no-write]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_line, update_section  # noqa: E402

from gpu_deconv.io import images as after  # noqa: E402

BEFORE = "acaa7cd"
ROOT = Path(__file__).resolve().parents[1]


def load_before() -> types.ModuleType | None:
    """images.py as it was at commit BEFORE, imported as gpu_deconv.io._images_before (None without git)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE}:gpu_deconv/io/images.py"],
                             capture_output=True, check=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    name = "gpu_deconv.io._images_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "gpu_deconv.io"
    sys.modules[name] = mod
    exec(compile(src, f"{BEFORE}:gpu_deconv/io/images.py", "exec"), mod.__dict__)  # noqa: S102 - our own code
    return mod


def photo(height: int, width: int, bits: int = 8) -> np.ndarray:
    from PIL import Image as PILImage
    from skimage import data

    base = PILImage.fromarray(data.astronaut())
    if bits == 8:
        return np.asarray(base.resize((width, height), PILImage.Resampling.BICUBIC))
    chans = [np.asarray(PILImage.fromarray(np.asarray(base)[..., c].astype(np.float32)).resize(
        (width, height), PILImage.Resampling.BICUBIC)) for c in range(3)]
    return np.clip(np.rint(np.stack(chans, -1) * 257.0), 0, 65535).astype(np.uint16)


#: name -> (extension, bits, write keyword arguments, formats the before implementation can do it in)
CASES = {
    "PNG 8-bit": (".png", 8, {}, True),
    "PNG 16-bit": (".png", 16, {}, True),
    "JPEG q90": (".jpg", 8, {"quality": 90}, True),
    "TIFF none": (".tif", 8, {}, True),
    "TIFF 16-bit": (".tif", 16, {}, True),
    "WebP lossless": (".webp", 8, {}, True),
    "WebP q90": (".webp", 8, {"quality": 90}, False),
    "BMP": (".bmp", 8, {}, True),
    "JPEG XL lossless": (".jxl", 8, {}, False),
    "JPEG XL q90": (".jxl", 8, {"quality": 90}, False),
    "AVIF q90": (".avif", 8, {"quality": 90}, False),
    "AVIF 10-bit lossless": (".avif", 10, {}, False),
}


def time_codecs(size: tuple[int, int], reps: int, folder: Path, before: types.ModuleType | None) -> list[dict]:
    h, w = size
    pixels = {8: photo(h, w, 8), 16: photo(h, w, 16)}
    pixels[10] = (pixels[16] >> 6).astype(np.uint16)
    impls = {"after": after} | ({"before": before} if before is not None else {})
    rows = []
    for name, (ext, bits, kw, before_can) in CASES.items():
        a = pixels[bits]
        extra = {"bits": 10} if bits == 10 else {}
        times: dict[str, dict[str, list[float]]] = {k: {"enc": [], "dec": []} for k in impls}
        sizes: dict[str, int] = {}
        for _ in range(reps):  # interleaved: before and after alternate in every repetition
            for impl, mod in impls.items():
                if impl == "before" and not before_can:
                    continue
                p = folder / f"{impl}{ext}"
                kwargs = dict(kw)
                if impl == "before" and "quality" not in kwargs and ext == ".jpg":
                    kwargs["quality"] = 90
                t = time.perf_counter()
                mod.write_image(p, a, overwrite=True, **kwargs, **(extra if impl == "after" else {}))
                times[impl]["enc"].append(time.perf_counter() - t)
                t = time.perf_counter()
                back = mod.read_image(p)
                times[impl]["dec"].append(time.perf_counter() - t)
                sizes[impl] = p.stat().st_size
                if "quality" not in kw and ext != ".jpg":
                    assert np.array_equal(back.pixels, a), f"{impl} {name} not lossless"
        row = {"case": name}
        for impl in impls:
            if times[impl]["enc"]:
                row[f"{impl}_enc"] = 1e3 * float(np.median(times[impl]["enc"]))
                row[f"{impl}_dec"] = 1e3 * float(np.median(times[impl]["dec"]))
                row[f"{impl}_kb"] = sizes[impl] / 1024
        rows.append(row)
        print(row, flush=True)
    return rows


_RSS_CHILD = r"""
import sys, numpy as np
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) / 1024
from gpu_deconv.io.images import read_image, write_image
base = hwm()
im = read_image(sys.argv[1], max_pixels=None)
after_read = hwm()
write_image(sys.argv[2], im.pixels, like=im, overwrite=True)
print(base, after_read, hwm(), im.pixels.nbytes / 2**20)
"""


def peak_rss(src: Path, dst: Path) -> tuple[float, float, float, float]:
    """(MiB after imports, after read, after write, decoded array MiB): VmHWM of a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(src), str(dst)], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    return tuple(float(v) for v in out)  # type: ignore[return-value]


def rss_table(sizes: list[tuple[int, int]], folder: Path) -> list[dict]:
    rows = []
    for h, w in sizes:
        a = photo(h, w, 8)
        for ext in (".png", ".jpg", ".tif"):
            src = folder / f"rss_{w}x{h}{ext}"
            after.write_image(src, a, overwrite=True, **({"quality": 90} if ext == ".jpg" else {}))
            base, read, write, array = peak_rss(src, folder / f"rss_out{ext}")
            row = {"size": f"{w}x{h}", "format": ext[1:], "file_mb": src.stat().st_size / 2**20, "array_mb": array,
                   "imports_mb": base, "read_mb": read, "read_write_mb": write}
            rows.append(row)
            print(row, flush=True)
            src.unlink()
        del a
    return rows


def render(rows: list[dict], rss: list[dict], size: tuple[int, int], reps: int, has_before: bool) -> str:
    h, w = size
    lines = [
        "## Image codecs (`benchmarks/bench_codecs.py`)",
        "",
        machine_line(),
        "",
        f"Encode/decode of scikit-image's astronaut upscaled to {w}x{h} (median of {reps}, before/after "
        "interleaved in one run; wall clock on a shared 2-core machine, so compare within a row). "
        f"\"before\" = gpu_deconv/io/images.py at {BEFORE} (NumPy/zlib PNG encoder, ffmpeg 16-bit PNG reader, "
        "Pillow JPEG/WebP/BMP); \"after\" = imagecodecs/tifffile with metadata handling.",
        "",
        "| case | before enc ms | after enc ms | before dec ms | after dec ms | before KiB | after KiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def f(row: dict, key: str, fmt: str = "{:.0f}") -> str:
        return fmt.format(row[key]) if key in row else "-"

    for r in rows:
        lines.append(f"| {r['case']} | {f(r, 'before_enc')} | {f(r, 'after_enc')} | {f(r, 'before_dec')} | "
                     f"{f(r, 'after_dec')} | {f(r, 'before_kb')} | {f(r, 'after_kb')} |")
    if not has_before:
        lines += ["", "(git history not available: before column not measured)"]
    if rss:
        lines += [
            "",
            "Peak RSS (VmHWM) of a fresh process reading the file and writing it back in the same format "
            "(`read_image` + `write_image(like=)`), MiB:",
            "",
            "| image | format | file MiB | decoded array MiB | after imports | after read | after read + write |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in rss:
            lines.append(f"| {r['size']} | {r['format']} | {r['file_mb']:.0f} | {r['array_mb']:.0f} | "
                         f"{r['imports_mb']:.0f} | {r['read_mb']:.0f} | {r['read_write_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--quick", action="store_true", help="tiny images, one repetition, no 108 MP case, no write")
    ap.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    reps = args.reps
    rss_sizes = [(1080, 1920), (9000, 12000)]
    if args.quick:
        w, h, reps, rss_sizes = 96, 64, 1, [(64, 96)]
    before = load_before()
    with tempfile.TemporaryDirectory(prefix="gpu_deconv_codecs_") as tmp:
        rows = time_codecs((h, w), reps, Path(tmp), before)
        rss = rss_table(rss_sizes, Path(tmp))
    text = render(rows, rss, (h, w), reps, before is not None)
    print(text)
    if not (args.quick or args.no_write):
        update_section("codecs", text)


if __name__ == "__main__":
    main()
