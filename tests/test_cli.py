"""End-to-end tests of the ``gpu-deconv`` command in temp folders (real headless GL engine)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from gpu_deconv.apps.cli import main
from gpu_deconv.io.images import read_image, write_image

pytestmark = pytest.mark.usefixtures("gl_ctx")  # the GL tests skip (or fail under CI) without a context


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden temp files included) with its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rng_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


CASES = [
    ("png", np.uint8, (21, 34)), ("png", np.uint8, (21, 34, 3)), ("png", np.uint8, (21, 34, 4)),
    ("png", np.uint8, (21, 34, 2)), ("png", np.uint16, (19, 33, 3)), ("png", np.uint16, (19, 33, 4)),
    ("png", np.uint16, (19, 33)), ("tiff", np.uint8, (17, 25, 3)), ("tiff", np.uint16, (17, 25, 3)),
    ("tiff", np.float32, (17, 25, 3)), ("tiff", np.float32, (17, 25)), ("webp", np.uint8, (16, 24, 3)),
    ("webp", np.uint8, (16, 24, 4)), ("bmp", np.uint8, (15, 23, 3)), ("npy", np.float32, (15, 23, 4)),
    ("npy", np.float32, (15, 23)),
]
EXT = {"png": ".png", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "npy": ".npy", "jpeg": ".jpg"}


@pytest.mark.parametrize("fmt, dtype, shape", CASES)
def test_identity_round_trips_every_format_bit_exactly(tmp_path, capsys, fmt, dtype, shape):
    src = tmp_path / f"in{EXT[fmt]}"
    pixels = rng_image(shape, dtype)
    write_image(src, pixels)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01",
                       "--method", "identity", "-q")
    assert code == 0, err
    back = read_image(tmp_path / "out" / src.name)
    assert back.pixels.dtype == pixels.dtype and back.format == fmt
    np.testing.assert_array_equal(back.pixels, read_image(src).pixels)


def test_jpeg_identity_is_bit_exact_on_the_decoded_pixels(tmp_path, capsys):
    src = tmp_path / "photo.jpg"
    write_image(src, rng_image((32, 48, 3), np.uint8))
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0",
                       "--method", "identity", "--format", "png", "-q")
    assert code == 0, err
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "photo.png").pixels, read_image(src).pixels)


def test_deblur_changes_pixels_keeps_alpha_and_depth(tmp_path, capsys):
    from gpu_deconv.core.chart import blur_and_noise, test_chart

    sharp = test_chart((96, 128))
    rgba = np.concatenate([blur_and_noise(sharp, 1.0, 0.0), np.full((96, 128, 1), 0.5, np.float32)], axis=2)
    u16 = np.clip(np.rint(rgba * 65535), 0, 65535).astype(np.uint16)
    u16[..., 3] = np.arange(96 * 128).reshape(96, 128) % 65536
    write_image(tmp_path / "a.png", u16)
    code, _, err = run(capsys, "run", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "auto", "-q")
    assert code == 0, err
    out = read_image(tmp_path / "o" / "a.png").pixels
    assert out.dtype == np.uint16 and out.shape == u16.shape
    np.testing.assert_array_equal(out[..., 3], u16[..., 3])
    assert np.abs(out[..., :3].astype(int) - u16[..., :3]).max() > 1000


def test_folder_is_mirrored_recursively_and_params_json_is_read(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    for rel in ("a.png", "sub/b.png", "sub/deeper/c.tif"):
        write_image(src / rel, rng_image((12, 14, 3), np.uint8))
    (src / "notes.txt").write_text("not an image, ignored by the folder walk")
    pj = tmp_path / "p.json"
    pj.write_text(json.dumps({"sigma": 0.6, "noise": 0.01, "method": "identity"}))
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--params", str(pj), "--suffix", "_d",
                       "-q")
    assert code == 0, err
    assert sorted(snapshot(tmp_path / "out")) == ["a_d.png", "sub/b_d.png", "sub/deeper/c_d.tif"]
    assert "3 ok, 0 failed" in err


def test_existing_output_is_kept_without_overwrite(tmp_path, capsys):
    src = tmp_path / "x.png"
    write_image(src, rng_image((10, 10, 3), np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.png").write_bytes(b"precious")
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 1 and "--overwrite" in err and "out/x.png" in err
    assert (tmp_path / "out" / "x.png").read_bytes() == b"precious"
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "1", "--noise", "0.01",
                       "--overwrite", "-q")
    assert code == 0, err
    assert read_image(tmp_path / "out" / "x.png").pixels.shape == (10, 10, 3)


def _bad(tmp_path: Path, kind: str) -> tuple[list[str], str]:
    """Make one bad input; return (extra argv, text the error line must contain)."""
    if kind == "missing":
        return [str(tmp_path / "nope.png")], "nope.png: no such file"
    if kind == "empty_folder":
        (tmp_path / "empty").mkdir()
        return [str(tmp_path / "empty")], "no supported images"
    if kind == "zero_bytes":
        (tmp_path / "z.png").write_bytes(b"")
        return [str(tmp_path / "z.png")], "z.png"
    if kind == "truncated_png":
        write_image(tmp_path / "t.png", rng_image((40, 40, 3), np.uint8))
        data = (tmp_path / "t.png").read_bytes()
        (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
        return [str(tmp_path / "t.png")], "t.png"
    if kind == "truncated_jpeg":
        write_image(tmp_path / "t.jpg", rng_image((40, 40, 3), np.uint8))
        data = (tmp_path / "t.jpg").read_bytes()
        (tmp_path / "t.jpg").write_bytes(data[: len(data) // 3])
        return [str(tmp_path / "t.jpg")], "t.jpg"
    if kind == "text_as_png":
        (tmp_path / "fake.png").write_text("hello, I am text\n")
        return [str(tmp_path / "fake.png")], "fake.png"
    if kind == "unsupported":
        (tmp_path / "anim.gif").write_bytes(b"GIF89a" + bytes(50))
        return [str(tmp_path / "anim.gif")], "anim.gif"
    if kind == "nan_npy":
        a = np.zeros((8, 8), np.float32)
        a[3, 3] = np.nan
        np.save(tmp_path / "nan.npy", a)
        return [str(tmp_path / "nan.npy")], "nan.npy"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty_folder", "zero_bytes", "truncated_png", "truncated_jpeg",
                                  "text_as_png", "unsupported", "nan_npy"])
def test_bad_input_gives_one_line_and_the_batch_goes_on(tmp_path, capsys, kind):
    good = tmp_path / "good.png"
    write_image(good, rng_image((12, 12, 3), np.uint8))
    args, needle = _bad(tmp_path, kind)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "run", *args, str(good), "-o", str(tmp_path / "out"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 1
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before  # inputs untouched
    assert list(snapshot(tmp_path / "out")) == ["good.png"]  # the good file was still processed


@pytest.mark.parametrize("argv, needle", [
    (["--sigma", "0"], "sigma"), (["--sigma", "-1"], "sigma"), (["--sigma", "nan"], "sigma"),
    (["--sigma", "3", "--method", "comb"], "useful range"), (["--sigma", "1", "--noise", "-0.1"], "noise"),
    (["--sigma", "1", "--noise", "lots"], "noise"), (["--sigma", "9"], "sigma"),
])
def test_bad_parameters_are_usage_errors(tmp_path, capsys, argv, needle):
    src = tmp_path / "a.png"
    write_image(src, rng_image((8, 8, 3), np.uint8))
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) if "lots" in argv else _null():
        code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "o"), *argv)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_output_equal_to_input_is_refused(tmp_path, capsys):
    src = tmp_path / "same.png"
    write_image(src, rng_image((8, 8, 3), np.uint8))
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path), "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 1 and "same.png" in err and "input" in err
    code, _, err = run(capsys, "run", str(src), "-o", str(src), "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 1 and "same.png" in err
    assert snapshot(tmp_path) == before


def test_unwritable_output_folder(tmp_path, capsys):
    src = tmp_path / "a.png"
    write_image(src, rng_image((8, 8, 3), np.uint8))
    (tmp_path / "file").write_text("a file where a folder should be")
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "file" / "sub"), "--sigma", "1",
                       "--noise", "0.01", "-q")
    assert code == 1 and "file" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1


def test_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "fake.png").write_text("text")
    code, _, err = run(capsys, "run", str(tmp_path / "fake.png"), "-o", str(tmp_path / "o"), "--sigma", "1",
                       "--noise", "0.01", "-q", "--debug")
    assert code == 1 and "Traceback" in err


def test_forced_tiles_give_the_untiled_output(tmp_path, capsys):
    from gpu_deconv.core.chart import test_chart

    x = test_chart((150, 230))
    np.save(tmp_path / "c.npy", x)
    outs = []
    for i, extra in enumerate(([], ["--tile", "64"])):
        code, _, err = run(capsys, "run", str(tmp_path / "c.npy"), "-o", str(tmp_path / f"o{i}"), "--sigma", "1",
                           "--noise", "auto", "--precision", "32", "-q", *extra)
        assert code == 0, err
        outs.append(np.load(tmp_path / f"o{i}" / "c.npy"))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_video_round_trip_keeps_frames_fps_and_audio(tmp_path, capsys):
    import subprocess

    from gpu_deconv.io.video import ffmpeg_exe, probe_video

    src = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=66x50:rate=24000/1001",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "0.5", "-c:v", "libx264",
                    "-pix_fmt", "yuv444p", "-c:a", "aac", "-shortest", str(src)], check=True)
    info = probe_video(src, count_frames=True)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "0.7", "--noise", "auto",
                       "-q")
    assert code == 0, err
    out = probe_video(tmp_path / "out" / "clip.mp4", count_frames=True)
    assert out.frame_count == info.frame_count and out.fps == info.fps and out.has_audio
    assert "frame" in err


def test_demo_runs_headless_and_restores(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "-o", str(tmp_path / "demo"), "--sigma", "1.0")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("PSNR"))
    before, after = (float(v) for v in line.replace("dB", "").split("blurred")[1].split("->")[0:1]
                     + line.split("restored")[1].split("dB")[0:1])
    assert after > before + 1.0
    for name in ("original.png", "blurred.png", "restored.png", "comparison.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 1000
    code, _, err = run(capsys, "demo", "-o", str(tmp_path / "demo"))
    assert code == 1 and "--overwrite" in err


def test_fit_json_and_info(capsys):
    code, out, _ = run(capsys, "fit", "--sigma", "0.35", "--noise", "0.01", "--json", "--mode", "global")
    info = json.loads(out)
    assert code == 0 and info["mode"] == "global" and info["method"] == "comb" and len(info["coefficients"]) == 2
    # the default (what run applies): the adaptive table, its rows the levels v = -10..21, the same table
    # the engine solves for that blur and noise
    from gpu_deconv.core.design import FilterDesigner, FrameFormat
    from gpu_deconv.core.params import DeconvParams

    code, out, _ = run(capsys, "fit", "--sigma", "1", "--noise", "0.01", "--json", "--bits", "8")
    info = json.loads(out)
    want = FilterDesigner().adaptive(DeconvParams(sigma=1.0, noise=0.01), FrameFormat(bits=8)).table
    assert code == 0 and info["mode"] == "adaptive" and info["table_v"] == [float(v) for v in range(-10, 22)]
    np.testing.assert_array_equal(np.asarray(info["coefficients"], np.float32), want.coefficients)
    assert info["energy_bands"] == list(want.bands) and info["noise_var_total"] == want.noise_var
    code, out, _ = run(capsys, "info")
    assert code == 0 and "GL_RENDERER" in out and "GL_MAX_TEXTURE_SIZE" in out


def test_no_partial_output_when_interrupted(tmp_path, monkeypatch, capsys):
    import gpu_deconv.io.images as imf

    src = tmp_path / "a.png"
    write_image(src, rng_image((16, 16, 3), np.uint8))

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(imf, "_encode", boom)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "o"), "--sigma", "1", "--noise", "0.01", "-q")
    assert code == 130
    assert [p for p in (tmp_path / "o").iterdir()] == [] if (tmp_path / "o").exists() else True
    assert os.path.exists(src)
