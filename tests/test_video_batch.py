"""``gpu-deconv run`` on videos (real headless GL engine): mixed folders with --format, damaged inputs, data
safety (no overwrite, no temp file after an error or Ctrl-C), the video flags and their one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from video_clips import ffmpeg, frame_times, native_planes, no_temp_files, pattern, pixel_format, smooth_src

from gpu_deconv.apps.cli import main
from gpu_deconv.io.images import read_image, write_image
from gpu_deconv.io.video import probe_video

pytestmark = pytest.mark.usefixtures("gl_ctx")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("batch") / "clip.mp4"
    ffmpeg(*smooth_src(), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.5", "-c:v", "libx264",
           "-c:a", "aac", p)
    return p


def test_mixed_folder_with_format_png(tmp_path, clip, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_image(src / "a.tif", np.full((20, 30, 3), 30000, np.uint16))
    (src / "sub" / "clip.mp4").write_bytes(clip.read_bytes())
    (src / "sub" / "old.avi").write_bytes(b"")  # unreadable: one line, the rest goes on
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "out"), "--sigma", "0.8", "--noise", "auto",
                       "--format", "png", "-q")
    assert code == 1
    assert read_image(tmp_path / "out" / "a.png").pixels.dtype == np.uint16  # images follow --format
    out = tmp_path / "out" / "sub" / "clip.mp4"  # videos keep a video container
    assert probe_video(out).has_audio and len(frame_times(out)) == len(frame_times(clip))
    assert err.count("--format png applies to images") == 1
    assert f"{src / 'sub' / 'old.avi'}: empty file" in err
    assert "2 ok, 1 failed" in err
    assert no_temp_files(tmp_path / "out" / "sub")


def test_truncated_video_is_written_partly_with_a_warning_and_exit_1(tmp_path, capsys):
    full = tmp_path / "full.mkv"
    ffmpeg(*pattern(), "-t", "2", "-c:v", "libx264", "-cluster_time_limit", "200", full)  # clusters of 0.2 s
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 7 // 10])
    code, _, err = run(capsys, "run", str(cut), "-o", str(tmp_path / "out"), "--sigma", "0.8", "--noise", "auto",
                       "-q")
    assert code == 1
    lines = [ln for ln in err.splitlines() if "truncated" in ln]
    assert len(lines) == 1 and lines[0].startswith(f"gpu-deconv: warning: {cut}: truncated: decoding stopped at")
    n = len(frame_times(tmp_path / "out" / "cut.mkv"))
    assert 5 < n < 48 and f"the {n} frame(s) that decoded were written" in lines[0]
    assert "0 ok, 1 failed (1 partly written) of 1 file(s)" in err


def test_existing_output_is_never_replaced(tmp_path, clip, capsys):
    out = tmp_path / "out"
    assert run(capsys, "run", str(clip), "-o", str(out), "--sigma", "0.8", "-q")[0] == 0
    before = digest(out / "clip.mp4")
    code, _, err = run(capsys, "run", str(clip), "-o", str(out), "--sigma", "1.2", "-q")
    assert code == 1 and "output exists; pass --overwrite" in err
    assert digest(out / "clip.mp4") == before
    assert run(capsys, "run", str(clip), "-o", str(out), "--sigma", "1.2", "-q", "--overwrite")[0] == 0
    assert digest(out / "clip.mp4") != before
    assert no_temp_files(out)


@pytest.mark.parametrize("exc,code", [(RuntimeError("GL lost"), 1), (KeyboardInterrupt(), 130)])
def test_no_temp_file_after_an_error_or_ctrl_c(tmp_path, clip, capsys, monkeypatch, exc, code):
    from gpu_deconv.gl.engine import Deconvolver

    real = Deconvolver.process
    calls = []

    def failing(self, *a, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise exc
        return real(self, *a, **kw)

    monkeypatch.setattr(Deconvolver, "process", failing)
    out = tmp_path / "out"
    got, _, err = run(capsys, "run", str(clip), "-o", str(out), "--sigma", "0.8", "-q")
    assert got == code
    assert not (out / "clip.mp4").exists() and no_temp_files(out)
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err


def test_rewrapped_container_is_said_and_container_flag(tmp_path, capsys):
    src = tmp_path / "clip.avi"
    ffmpeg(*pattern(), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.5", "-c:v", "mpeg4",
           "-c:a", "libmp3lame", src)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "a"), "--sigma", "0.8", "-q")
    assert code == 0 and (tmp_path / "a" / "clip.mkv").exists()
    assert f"{src}: written as clip.mkv" in err and "--container avi" in err
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "b"), "--sigma", "0.8", "-q",
                       "--container", "mp4", "--codec", "libx264", "--crf", "30")
    assert code == 0, err
    info = probe_video(tmp_path / "b" / "clip.mp4")
    assert info.codec == "h264" and info.audio_codecs == ("mp3",)


def test_video_flags_give_one_line_usage_errors(tmp_path, clip, capsys):
    for flags, why in ((["--codec", "nosuch"], "no video encoder"), (["--container", "doc"], "unknown video container"),
                       (["--crf", "18", "--qscale", "3"], "not both")):
        with pytest.raises(SystemExit) if "not both" not in why else _no_raise():
            code, _, err = run(capsys, "run", str(clip), "-o", str(tmp_path / "o"), "--sigma", "1", *flags)
            assert code == 2
        err = err if "not both" in why else capsys.readouterr().err
        assert why in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_odd_size_flag(tmp_path, capsys):
    src = tmp_path / "odd.mkv"
    ffmpeg(*pattern((80, 60)), "-frames:v", "4", "-vf", "format=yuv444p,crop=65:49", "-c:v", "libx264",
           "-pix_fmt", "yuv444p", src)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "p"), "--sigma", "0.8", "-q",
                       "--pix-fmt", "yuv420p")
    assert code == 0 and probe_video(tmp_path / "p" / "odd.mkv").size == (66, 50)
    assert "odd frame size 65x49" in err and "66x50" in err
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "e"), "--sigma", "0.8", "-q",
                       "--pix-fmt", "yuv420p", "--odd-size", "error")
    assert code == 1 and "odd frame size 65x49 can't be stored" in err
    assert no_temp_files(tmp_path / "e")


def test_ten_bit_video_through_the_cli_stays_ten_bit(tmp_path, capsys):
    src = tmp_path / "ten.mkv"
    ffmpeg(*smooth_src(), "-frames:v", "4", "-c:v", "ffv1", "-pix_fmt", "yuv422p10le", src)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "o"), "--sigma", "1.0", "--noise", "auto", "-q")
    assert code == 0, err
    out = tmp_path / "o" / "ten.mkv"
    assert pixel_format(out) == "yuv422p10le"
    a, b = native_planes(src)[0][0], native_planes(out)[0][0]
    assert a.max() > 255 and np.abs(a.astype(int) - b).max() > 0  # 10-bit codes, changed by the filter


def test_hdr_video_ignores_space_flag_and_says_so(tmp_path, capsys):
    src = tmp_path / "hdr.mkv"
    ffmpeg(*pattern(), "-frames:v", "3", "-vf", "setparams=color_primaries=bt2020:color_trc=smpte2084:"
           "colorspace=bt2020nc:range=tv", "-c:v", "ffv1", "-pix_fmt", "yuv420p10le", src)
    code, _, err = run(capsys, "run", str(src), "-o", str(tmp_path / "o"), "--sigma", "0.8", "--noise", "0.002",
                       "--space", "srgb", "-q")
    assert code == 0, err
    assert err.count("HDR (PQ) frames are decoded to linear light") == 1
    assert pixel_format(tmp_path / "o" / "hdr.mkv") == "yuv420p10le"
