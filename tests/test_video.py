"""Video I/O through imageio-ffmpeg's ffmpeg: exact frame rate, frame count, audio carried over, the
odd-size rule, atomic writes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import threading
from fractions import Fraction

import numpy as np
import pytest

from gpu_deconv.io.video import (
    VideoError,
    VideoReader,
    VideoWriter,
    as_fraction,
    ffmpeg_exe,
    probe_video,
)

FPS = Fraction(24000, 1001)
W, H, N = 66, 50, 12  # even but not multiples of 16


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """12 frames of 66x50 at 24000/1001 fps with a 440 Hz AAC track, made by ffmpeg's lavfi sources."""
    p = tmp_path_factory.mktemp("video") / "src.mp4"
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate={FPS}",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5",
           "-frames:v", str(N), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(p)]
    subprocess.run(cmd, check=True)
    return str(p)


@pytest.fixture(scope="module")
def frames(source) -> list[np.ndarray]:
    with VideoReader(source) as r:
        return list(r)


def _no_temp_files(folder) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_probe(source):
    info = probe_video(source, count_frames=True)
    assert info.size == (W, H) and (info.width, info.height) == (W, H)
    assert info.fps == FPS and isinstance(info.fps, Fraction)
    assert info.frame_count == N and info.frame_count_exact
    assert info.has_audio and info.audio_codecs == ("aac",)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert abs(probe_video(source).frame_count - N) <= 1  # the quick estimate


def test_reader_prefetch_and_plain_agree(source, frames):
    assert len(frames) == N
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.flags.writeable for f in frames)
    with VideoReader(source, prefetch=0) as r:
        plain = list(r)
    assert len(plain) == N
    for a, b in zip(frames, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reader_early_close_stops_thread(source):
    before = threading.active_count()
    r = VideoReader(source, prefetch=2)
    first = next(r)
    assert first.shape == (H, W, 3)
    r.close()
    assert r._thread is not None and not r._thread.is_alive()
    assert r._proc.poll() is not None
    assert next(r, None) is None
    assert threading.active_count() <= before


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov", ".webm"])
def test_round_trip_keeps_count_fps_and_audio(tmp_path, source, frames, ext):
    info = probe_video(source)
    out = tmp_path / f"out{ext}"
    with VideoReader(source, prefetch=2, info=info) as r, VideoWriter(out, info.size, info.fps,
                                                                      audio_from=source) as w:
        for f in r:
            w.write(f)
    assert w.frames_written == N
    assert (ext == ".webm") == bool(w.warnings)  # webm re-encodes AAC to Opus and says so
    got = probe_video(out, count_frames=True)
    assert got.frame_count == N
    assert got.fps == FPS
    assert got.size == (W, H)
    assert got.has_audio
    assert got.codec == ("vp9" if ext == ".webm" else "h264")
    assert got.color.get("color_space") == "bt709"
    with VideoReader(out) as r:
        back = list(r)
    assert len(back) == N
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(back, frames, strict=True)])
    assert err < 6.0  # lossy, but the same picture (a wrong colour matrix or size would be far off)
    assert _no_temp_files(tmp_path)


def test_colours_survive(tmp_path):
    cols = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], np.uint8)
    frame = np.repeat(np.repeat(cols[None], 32, 0), 32, 1)  # 32 x 128
    out = tmp_path / "c.mp4"
    with VideoWriter(out, (128, 32), 25) as w:
        for _ in range(3):
            w.write(frame)
    back = next(iter(VideoReader(out)))
    assert np.abs(back[16, 16::32].astype(int) - cols).max() <= 4


def test_odd_size_rules(tmp_path, frames):
    odd = [np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge") for f in frames[:4]]  # 67 x 51

    out = tmp_path / "exact.mp4"
    with VideoWriter(out, (W + 1, H + 1), FPS) as w:
        for f in odd:
            w.write(f)
    assert w.pix_fmt == "yuv444p" and w.output_size == (W + 1, H + 1)
    assert len(w.warnings) == 1 and "4:4:4" in w.warnings[0] and "\n" not in w.warnings[0]
    info = probe_video(out)
    assert info.size == (W + 1, H + 1) and info.pix_fmt == "yuv444p"

    out = tmp_path / "pad.mp4"
    with VideoWriter(out, (W + 1, H + 1), FPS, odd_size="pad") as w:
        for f in odd:
            w.write(f)
    assert w.output_size == (W + 2, H + 2) and "68x52" in w.warnings[0]
    assert probe_video(out).size == (W + 2, H + 2)

    out = tmp_path / "odd.webm"
    with VideoWriter(out, (W + 1, H + 1), FPS) as w:
        for f in odd:
            w.write(f)
    assert w.warnings == [] and w.pix_fmt == "yuv420p"
    assert probe_video(out).size == (W + 1, H + 1)

    with pytest.raises(VideoError, match="odd frame size"):
        VideoWriter(tmp_path / "no.mp4", (W + 1, H), FPS, odd_size="error")
    assert _no_temp_files(tmp_path)


def test_writer_is_atomic(tmp_path, frames):
    out = tmp_path / "a.mp4"
    with pytest.raises(RuntimeError), VideoWriter(out, (W, H), FPS) as w:
        for f in frames[:3]:
            w.write(f)
        raise RuntimeError("processing failed")
    assert not out.exists() and _no_temp_files(tmp_path)

    w = VideoWriter(out, (W, H), FPS)
    w.write(frames[0])
    w.abort()  # what a KeyboardInterrupt in the with-block does
    assert not out.exists() and _no_temp_files(tmp_path)

    out.write_bytes(b"precious")
    with pytest.raises(VideoError, match="exists"):
        VideoWriter(out, (W, H), FPS)
    assert out.read_bytes() == b"precious"
    with VideoWriter(out, (W, H), FPS, overwrite=True) as w:
        w.write(frames[0])
    assert probe_video(out).size == (W, H)
    assert _no_temp_files(tmp_path)


def test_writer_rejects_bad_frames(tmp_path, frames):
    with VideoWriter(tmp_path / "a.mkv", (W, H), FPS) as w:
        with pytest.raises(VideoError, match="does not match"):
            w.write(frames[0][:-2])
        with pytest.raises(VideoError, match="uint8"):
            w.write(frames[0].astype(np.uint16))
        w.write(frames[0][..., 0])  # gray is accepted
    assert probe_video(tmp_path / "a.mkv").frame_count >= 1
    with pytest.raises(VideoError, match="container"):
        VideoWriter(tmp_path / "a.avi", (W, H), FPS)
    with pytest.raises(VideoError, match="webm"):
        VideoWriter(tmp_path / "a.webm", (W, H), FPS, codec="h264")
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", (W, H), FPS):
            pass
    assert not (tmp_path / "empty.mp4").exists()
    assert _no_temp_files(tmp_path)


def test_bad_inputs_give_one_line_errors(tmp_path, source):
    data = open(source, "rb").read()
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 10)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom is at the end: gone
    (tmp_path / "dir.mp4").mkdir()
    from gpu_deconv.io.images import write_image

    write_image(tmp_path / "still.png", np.zeros((8, 8), np.uint8))
    cases = {
        "missing.mp4": "no such file",
        "text.mp4": "not a video",
        "empty.mp4": "empty",
        "cut.mp4": "truncated",
        "dir.mp4": "directory",
        "still.png": "still image",
    }
    for name, expected in cases.items():
        p = tmp_path / name
        with pytest.raises(VideoError) as ei:
            probe_video(p)
        msg = str(ei.value)
        assert isinstance(ei.value, ValueError)
        assert msg.startswith(str(p) + ": ") and "\n" not in msg
        assert expected in msg, msg


def test_truncated_after_moov_is_reported(tmp_path, frames):
    """A faststart file (moov first) cut short decodes partly; the reader says it is truncated."""
    full = tmp_path / "full.mp4"
    with VideoWriter(full, (W, H), FPS) as w:
        for f in frames:
            w.write(f)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoError, match="truncated"), VideoReader(cut) as r:
        for _ in r:
            pass


def test_as_fraction():
    assert as_fraction(23.976) == Fraction(24000, 1001)
    assert as_fraction(29.97) == Fraction(30000, 1001)
    assert as_fraction("24000/1001") == Fraction(24000, 1001)
    assert as_fraction(25) == 25 and as_fraction(25.0) == 25
    assert as_fraction(Fraction(60000, 1001)) == Fraction(60000, 1001)
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(ValueError):
            as_fraction(bad)


def test_audio_from_audio_file_and_silent_source(tmp_path, frames):
    wav = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.5", str(wav)],
                   check=True)
    out = tmp_path / "a.mp4"
    with VideoWriter(out, (W, H), FPS, audio_from=wav, audio_duration=0.25) as w:
        for f in frames:
            w.write(f)
    assert w.has_audio and any("AAC" in m for m in w.warnings)  # PCM can't be copied into mp4
    assert probe_video(out).audio_codecs == ("aac",)

    silent = tmp_path / "silent.mkv"
    with VideoWriter(silent, (W, H), FPS) as w:
        w.write(frames[0])
    with VideoWriter(tmp_path / "b.mkv", (W, H), FPS, audio_from=silent) as w:
        w.write(frames[0])
    assert not w.has_audio and w.warnings == []
    assert not probe_video(tmp_path / "b.mkv").has_audio
    with pytest.raises(VideoError, match="no such file"):
        VideoWriter(tmp_path / "c.mkv", (W, H), FPS, audio_from=tmp_path / "nope.wav")
    assert _no_temp_files(tmp_path)
