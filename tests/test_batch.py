"""The batch tool as a photographer uses it: odd trees, reruns, reports, signals, messages (issue #14).

Each test here failed before the fix it covers (noted in its docstring).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gpu_deconv.apps.cli import main
from gpu_deconv.io.images import read_image, write_image

pytestmark = pytest.mark.usefixtures("gl_ctx")
ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def img(shape=(12, 14, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def errors(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if "error" in ln]


def test_symlink_loop_in_the_tree_is_one_failed_entry(tmp_path, capsys):
    """Was: 'RuntimeError: Symlink loop', 0 files done, no summary."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_image(src / "a.png", img())
    write_image(src / "sub" / "b.png", img(seed=1))
    os.symlink(src / "loop.png", src / "loop.png")  # a file link pointing at itself
    os.symlink(src, src / "sub" / "up")  # a directory link back up the tree: not followed
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 1
    assert "2 ok, 1 failed of 3 file(s)" in err
    assert len(errors(err)) == 1 and "loop.png" in errors(err)[0] and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["a.png", "b.png"]


def test_identity_needs_no_noise(tmp_path, capsys):
    """Was: "noise='auto' needs the frame's statistics" for every file."""
    write_image(tmp_path / "a.png", img())
    code, _, err = run(capsys, "run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--method", "identity", "-q")
    assert code == 0, err
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "a.png").pixels, img())


def test_rerun_skips_existing_outputs_instead_of_failing(tmp_path, capsys):
    """Was: a rerun into an existing output folder counted every file as failed."""
    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", img(seed=i)) if (tmp_path / "in").exists() else (
            (tmp_path / "in").mkdir(), write_image(tmp_path / "in" / f"{i}.png", img(seed=i)))
    args = ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01", "-q"]
    assert run(capsys, *args)[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    code, _, err = run(capsys, *args)
    assert code == 1 and "0 failed" in err and "3 skipped" in err and "--overwrite" in err
    assert not errors(err)
    code, _, err = run(capsys, *args, "--skip-existing")
    assert code == 0 and "3 skipped" in err, err
    (tmp_path / "out" / "1.png").unlink()  # resume: only the missing output is made
    code, _, err = run(capsys, *args, "--skip-existing")
    assert code == 0 and "1 ok" in err and "2 skipped" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_rerun_in_place_with_suffix_skips_our_own_outputs(tmp_path, capsys):
    """Was: a second run with --suffix in place made a_deblur_deblur.png."""
    write_image(tmp_path / "a.png", img())
    args = ["run", str(tmp_path), "-o", str(tmp_path), "--suffix", "_deblur", "--sigma", "1", "--noise", "0.01", "-q"]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args, "--skip-existing")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_deblur.png"]


def test_output_file_name_with_several_inputs_is_a_usage_error(tmp_path, capsys):
    """Was: '-o result.png' with two inputs created a folder named result.png."""
    write_image(tmp_path / "a.png", img())
    write_image(tmp_path / "b.png", img(seed=1))
    code, _, err = run(capsys, "run", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
                       str(tmp_path / "result.png"), "--sigma", "1")
    assert code == 2 and "result.png" in err and "folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "result.png").exists()


def test_explicit_output_file_converts_to_its_extension(tmp_path, capsys):
    """Was: 'a.jpg -o b.png' failed with no hint about --format."""
    write_image(tmp_path / "a.jpg", img((16, 16, 3)), quality=95)
    code, _, err = run(capsys, "run", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "b.png"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 0, err
    assert "PNG" in err and "JPEG" in err  # the conversion is said, in one note line
    assert read_image(tmp_path / "b.png").format == "png"


def test_debug_before_the_command_shows_the_traceback(tmp_path, capsys):
    """Was: the documented top-level --debug was ignored for run."""
    (tmp_path / "fake.png").write_text("text")
    code, _, err = run(capsys, "--debug", "run", str(tmp_path / "fake.png"), "-o", str(tmp_path / "o"),
                       "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 1 and "Traceback" in err


@pytest.mark.parametrize("field, value", [("polyblur_alpha", 1e300), ("strength", 99), ("noise", 5),
                                          ("unsharp_amount", 1e9)])
def test_every_parameter_has_a_range(tmp_path, capsys, field, value):
    """Was: polyblur_alpha 1e300 wrote an all-white image and exited 0."""
    write_image(tmp_path / "a.png", img())
    pj = tmp_path / "p.json"
    pj.write_text(json.dumps({"sigma": 1.0, "method": "polyblur", field: value}))
    code, _, err = run(capsys, "run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--params", str(pj))
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_huge_float_input_is_a_one_line_error_naming_the_file(tmp_path, capsys):
    """Was: an .npy holding 1e30 gave an internal "noise_var ... got nan"."""
    a = np.full((16, 16, 3), 0.3, np.float32)
    a[2, 2] = 1e30
    np.save(tmp_path / "big.npy", a)
    code, _, err = run(capsys, "run", str(tmp_path / "big.npy"), "-o", str(tmp_path / "o"), "--sigma", "1", "-q")
    assert code == 1
    (line,) = errors(err)
    assert "big.npy" in line and "1e+30" in line and "noise_var" not in line
    assert not (tmp_path / "o" / "big.npy").exists()


def test_exists_message_names_the_flag_not_the_api(tmp_path, capsys):
    """Was: 'pass overwrite=True' named an API argument."""
    write_image(tmp_path / "a.png", img())
    (tmp_path / "o").mkdir()
    write_image(tmp_path / "o" / "a.png", img(seed=5))
    _, _, err = run(capsys, "run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--sigma", "1",
                    "--noise", "0.01", "-q")
    assert "--overwrite" in err and "overwrite=True" not in err


def test_fit_plot_keeps_an_existing_file_and_json_survives_a_closed_pipe(tmp_path, capsys):
    """Was: fit --plot replaced an existing file silently; fit --json | head ended with BrokenPipeError."""
    plot = tmp_path / "r.png"
    plot.write_bytes(b"mine")
    code, _, err = run(capsys, "fit", "--sigma", "1", "--noise", "0.01", "--plot", str(plot))
    assert code == 2 and "--overwrite" in err and plot.read_bytes() == b"mine"
    proc = subprocess.run(f"{sys.executable} -m gpu_deconv.apps.cli fit --sigma 1 --noise 0.01 --json | head -n 1",
                          shell=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip() == "{" and "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr


def test_report_json_and_csv_and_verbose_lines(tmp_path, capsys):
    write_image(tmp_path / "in" / "a.png", img()) if (tmp_path / "in").mkdir() is None else None
    (tmp_path / "in" / "bad.png").write_text("not a png")
    base = ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "0.8", "--noise", "auto", "-q"]
    code, _, err = run(capsys, *base, "--report", str(tmp_path / "r.json"), "-v")
    assert code == 1
    assert any("a.png" in ln and "->" in ln and "laplacian" in ln for ln in err.splitlines()), err
    rows = {Path(r["input"]).name: r for r in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert rows["a.png"]["status"] == "ok" and rows["a.png"]["method"] == "laplacian"
    assert rows["a.png"]["sigma"] == 0.8 and rows["a.png"]["noise"] > 0 and rows["a.png"]["level"] > 0
    assert rows["bad.png"]["status"] == "failed" and "bad.png" in rows["bad.png"]["reason"]
    code, _, err = run(capsys, *base, "--report", str(tmp_path / "r.csv"), "--skip-existing")
    with open(tmp_path / "r.csv", newline="") as f:
        table = {Path(r["input"]).name: r for r in csv.DictReader(f)}
    assert table["a.png"]["status"] == "skipped" and table["bad.png"]["status"] == "failed"
    code, _, err = run(capsys, *base, "--report", str(tmp_path / "r.csv"))  # an existing report is kept
    assert code == 2 and "r.csv" in err


def test_sigterm_leaves_no_temp_file(tmp_path):
    """Was: SIGTERM (CI time-outs, docker stop) left hidden .NAME.xxxx.tmp files behind."""
    big = np.random.default_rng(0).integers(0, 256, (1600, 1600, 3), dtype=np.uint8)
    for i in range(6):
        write_image(tmp_path / "in" / f"{i}.png", big) if (tmp_path / "in").exists() else (
            (tmp_path / "in").mkdir(), write_image(tmp_path / "in" / f"{i}.png", big))
    proc = subprocess.Popen([sys.executable, "-m", "gpu_deconv.apps.cli", "run", str(tmp_path / "in"), "-o",
                             str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01", "-q"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((tmp_path / "out").glob(".gd-*")):  # wait until a write is under way
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    for p in (tmp_path / "out").iterdir():  # whatever was finished is whole
        assert read_image(p).pixels.shape == big.shape


# --- image files through the batch (each failed before the batch used the new image layer) ------------------
def _camera_jpeg(path: Path) -> bytes:
    from PIL import Image as PILImage
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ex = PILImage.Exif()
    ex[274] = 6  # rotated: a viewer turns it upright
    ex[271] = "Canon"
    PILImage.fromarray(img((24, 40, 3))).save(path, quality=92, exif=ex.tobytes(), icc_profile=icc)
    return icc


def test_format_change_keeps_exif_orientation_and_icc(tmp_path, capsys):
    """Was: --format png on a JPEG dropped EXIF and ICC, so the photo displayed rotated."""
    icc = _camera_jpeg(tmp_path / "cam.jpg")
    code, _, err = run(capsys, "run", str(tmp_path / "cam.jpg"), "-o", str(tmp_path / "o"), "--format", "png",
                       "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 0, err
    out = read_image(tmp_path / "o" / "cam.png")
    assert out.format == "png" and out.orientation == 6 and out.metadata.icc == icc


def test_non_srgb_profile_is_linearised_with_its_own_curve(tmp_path, capsys):
    """Was: an embedded Adobe RGB profile was ignored when linearising."""
    from test_images_colour import build_icc, curv

    from gpu_deconv.core.colour import TransferCurve
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    icc = build_icc(curv(563 / 256), "adobe", name="Adobe RGB (1998)")
    codes = np.random.default_rng(4).integers(0, 65536, (20, 26, 3), dtype=np.uint16)
    write_image(tmp_path / "a.png", codes, metadata=None)
    src = read_image(tmp_path / "a.png")
    src.metadata.icc = icc
    write_image(tmp_path / "adobe.png", codes, like=src)
    assert read_image(tmp_path / "adobe.png").transfer == TransferCurve.gamma(563 / 256)
    code, _, err = run(capsys, "run", str(tmp_path / "adobe.png"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "0.002", "--method", "laplacian", "-q")
    assert code == 0, err
    got = read_image(tmp_path / "o" / "adobe.png")
    assert got.metadata.icc == icc  # the same profile written back
    curve = TransferCurve.gamma(563 / 256)
    with Deconvolver(params=DeconvParams(sigma=1, noise=0.002, method="laplacian")) as d:
        lin = d.process(curve.to_linear(codes.astype(np.float32) / 65535), space="linear", bits=16)
    want = np.clip(np.rint(curve.from_linear(lin) * 65535), 0, 65535)
    assert np.abs(got.pixels.astype(np.int64) - want).max() <= 1


def test_max_pixels_refuses_from_the_header_and_the_batch_goes_on(tmp_path, capsys):
    """Was: a 500 KB PNG declaring 16000 x 16000 took 90 s and 2.4 GB."""
    from test_images_formats import _png_declaring

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bomb.png").write_bytes(_png_declaring(16000, 16000))
    write_image(tmp_path / "in" / "ok.png", img())
    t = time.perf_counter()
    code, _, err = run(capsys, "run", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 1 and time.perf_counter() - t < 60
    (line,) = errors(err)
    assert "bomb.png" in line and "--max-pixels" in line
    assert (tmp_path / "o" / "ok.png").exists()
    code, _, err = run(capsys, "run", str(tmp_path / "in" / "ok.png"), "-o", str(tmp_path / "o2"), "--sigma", "1",
                       "--noise", "0.01", "--max-pixels", "100", "-q")
    assert code == 1 and "--max-pixels" in err


def test_lossy_webp_stays_lossy(tmp_path, capsys):
    """Was: a lossy WebP input became a 24x larger lossless file."""
    from PIL import Image as PILImage
    from test_images_formats import _photo

    PILImage.fromarray(_photo((96, 128, 3))).save(tmp_path / "a.webp", quality=80)
    code, _, err = run(capsys, "run", str(tmp_path / "a.webp"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 0, err
    out = read_image(tmp_path / "o" / "a.webp")
    assert out.lossy and (tmp_path / "o" / "a.webp").stat().st_size < 3 * (tmp_path / "a.webp").stat().st_size


def test_lzw_tiff_from_an_editor(tmp_path, capsys):
    """Was: 'requires the imagecodecs package' for LZW/JPEG-compressed TIFFs."""
    import tifffile

    tifffile.imwrite(tmp_path / "e.tif", img((20, 24, 3)), photometric="rgb", compression="lzw")
    code, _, err = run(capsys, "run", str(tmp_path / "e.tif"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 0, err
    assert read_image(tmp_path / "o" / "e.tif").encoding.get("compression") in ("lzw", "LZW", 5)


def test_jpeg_input_adds_its_compression_noise(tmp_path, capsys):
    """Was: JPEG inputs got their 8x8 blocking amplified (the noise model did not know the compression)."""
    from PIL import Image as PILImage
    from test_images_formats import _photo

    PILImage.fromarray(_photo((128, 128, 3))).save(tmp_path / "q75.jpg", quality=75)
    noise = {}
    for flag in ([], ["--no-jpeg-noise"]):
        out = tmp_path / f"o{len(flag)}"
        code, _, err = run(capsys, "run", str(tmp_path / "q75.jpg"), "-o", str(out), "--sigma", "1", "--noise",
                           "0.002", "--report", str(out) + ".json", *flag, "-q")
        assert code == 0, err
        row = json.loads(Path(str(out) + ".json").read_text())["files"][0]
        assert row["noise"] == pytest.approx(0.002)  # the given noise, either way
        noise[bool(flag)] = row["noise_total"]
    assert noise[True] == pytest.approx(np.hypot(0.002, 1 / 255 / np.sqrt(12)), rel=1e-6)  # + 8-bit quantization
    assert noise[False] > 2 * noise[True]  # the compression noise joined it


def test_10_bit_avif_keeps_its_depth(tmp_path, capsys):
    codes = np.random.default_rng(6).integers(0, 1024, (16, 20, 3), dtype=np.uint16)
    write_image(tmp_path / "ten.avif", codes, bits=10)
    code, _, err = run(capsys, "run", str(tmp_path / "ten.avif"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--method", "identity", "-q")
    assert code == 0, err
    out = read_image(tmp_path / "o" / "ten.avif")
    assert out.bits == 10
    np.testing.assert_array_equal(out.pixels, read_image(tmp_path / "ten.avif").pixels)
