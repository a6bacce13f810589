"""Video I/O on PyAV, the basics: probing, reading (threaded and not), the constant-rate writer, odd sizes,
atomic writes, one-line errors and the options' validation. Formats, timestamps and streams have their own
files (test_video_formats.py, test_video_streams.py); the batch path is in test_video_batch.py."""

from __future__ import annotations

import argparse
import threading
from fractions import Fraction

import numpy as np
import pytest
from video_clips import H, W, ffmpeg, no_temp_files, pattern, pixel_format

from gpu_deconv.io.video import (
    DecodedFrame,
    VideoError,
    VideoOptions,
    VideoReader,
    VideoWriter,
    add_video_arguments,
    output_extension,
    probe_video,
    transcode,
    video_options_from_args,
)

FPS = Fraction(24000, 1001)
N = 12


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    """12 frames of 66x50 (even, not multiples of 16) at 24000/1001 fps with a 440 Hz AAC track."""
    p = tmp_path_factory.mktemp("video") / "src.mp4"
    ffmpeg(*pattern((66, 50), str(FPS)), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.5",
           "-frames:v", str(N), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", p)
    return str(p)


@pytest.fixture(scope="module")
def frames(source) -> list[np.ndarray]:
    with VideoReader(source) as r:
        return list(r)


def test_probe(source):
    info = probe_video(source, count_frames=True)
    assert info.size == (66, 50) and (info.width, info.height) == (66, 50)
    assert info.fps == FPS and isinstance(info.fps, Fraction)
    assert info.frame_count == N and info.frame_count_exact
    assert info.has_audio and info.audio_codecs == ("aac",)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8 and info.chroma == (1, 1)
    assert not info.has_alpha and info.transfer == "sdr" and info.hdr is None and info.rotation == 0
    assert abs(probe_video(source).frame_count - N) <= 1  # from the index, without reading the file


def test_reader_prefetch_and_plain_agree(source, frames):
    assert len(frames) == N
    assert all(f.shape == (50, 66, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.flags.writeable for f in frames)
    with VideoReader(source, prefetch=0) as r:
        plain = list(r)
    assert len(plain) == N
    for a, b in zip(frames, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    with VideoReader(source, channels=4) as r:
        rgba = list(r)
    for a, b in zip(frames, rgba, strict=True):  # RGBA is the same picture with an opaque alpha
        np.testing.assert_array_equal(a, b[..., :3])
        assert (b[..., 3] == 255).all()


def test_reader_frames_carry_timestamps(source):
    with VideoReader(source) as r:
        got = list(r.frames())
        assert r.damage is None
    assert [f.index for f in got] == list(range(N))
    assert all(isinstance(f, DecodedFrame) for f in got)
    step = round(1 / (FPS * got[0].time_base))
    assert [f.pts for f in got] == [i * step for i in range(N)]
    assert all(f.duration == step for f in got)
    assert got[3].time == pytest.approx(3 / float(FPS), abs=1e-4)


def test_reader_early_close_stops_thread(source):
    before = threading.active_count()
    r = VideoReader(source, prefetch=2)
    first = next(iter(r))
    assert first.shape == (50, 66, 3)
    r.close()
    assert r._thread is not None and not r._thread.is_alive()
    assert next(iter(r), None) is None
    assert threading.active_count() <= before


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov", ".webm"])
def test_writer_round_trip_keeps_count_and_rate(tmp_path, source, frames, ext):
    out = tmp_path / f"out{ext}"
    with VideoWriter(out, (66, 50), FPS) as w:
        for f in frames:
            w.write(f)
    assert w.frames_written == N and w.notes == []
    got = probe_video(out, count_frames=True)
    assert got.frame_count == N and got.fps == FPS and got.size == (66, 50)
    assert got.codec == ("vp9" if ext == ".webm" else "h264")
    assert got.colour_names == {"primaries": "bt709", "transfer": "bt709", "matrix": "bt709", "range": "tv"}
    with VideoReader(out) as r:
        back = list(r)
    assert len(back) == N
    err = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(back, frames, strict=True)])
    assert err < 6.0  # lossy, but the same picture (a wrong matrix, range or size would be far off)
    assert no_temp_files(tmp_path)


def test_colours_survive(tmp_path):
    cols = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], np.uint8)
    frame = np.repeat(np.repeat(cols[None], 32, 0), 32, 1)  # 32 x 128
    out = tmp_path / "c.mp4"
    with VideoWriter(out, (128, 32), 25) as w:
        for _ in range(3):
            w.write(frame)
    back = next(iter(VideoReader(out)))
    assert np.abs(back[16, 16::32].astype(int) - cols).max() <= 4


def test_writer_copies_the_callers_buffer(tmp_path, frames):
    """write() returns before encoding: reusing the array afterwards must not change what is written."""
    out = tmp_path / "reuse.mkv"
    buf = np.empty_like(frames[0])
    with VideoWriter(out, (66, 50), FPS, options=VideoOptions(codec="ffv1", pix_fmt="bgr0")) as w:
        for f in frames:
            buf[...] = f
            w.write(buf)
        buf[...] = 0
    with VideoReader(out) as r:
        back = list(r)
    for a, b in zip(back, frames, strict=True):
        np.testing.assert_array_equal(a, b)  # lossless RGB


def test_odd_size_rules(tmp_path, frames):
    odd = [np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge") for f in frames[:4]]  # 67 x 51

    def write(name, **kw):
        out = tmp_path / name
        with VideoWriter(out, (67, 51), FPS, options=VideoOptions(**kw)) as w:
            for f in odd:
                w.write(f)
        return out, w

    out, w = write("pad.mp4")  # default: pad, for libx264 4:2:0
    assert w.output_size == (68, 52) and len(w.notes) == 1 and "68x52" in w.notes[0] and "\n" not in w.notes[0]
    assert probe_video(out).size == (68, 52)
    with VideoReader(out) as r:
        f = next(iter(r))
    assert np.abs(f[:, 67].astype(int) - f[:, 66]).mean() < 3  # the repeated column
    out, w = write("crop.mp4", odd_size="crop")
    assert w.output_size == (66, 50) and "cropped" in w.notes[0]
    assert probe_video(out).size == (66, 50)
    out, w = write("odd.webm")  # VP9 stores odd 4:2:0 sizes itself: nothing to do, nothing said
    assert w.notes == [] and w.output_size == (67, 51) and probe_video(out).size == (67, 51)
    out, w = write("odd.mkv", codec="ffv1")
    assert w.notes == [] and probe_video(out).size == (67, 51)
    with pytest.raises(VideoError, match="odd frame size 67x51"):
        VideoWriter(tmp_path / "no.mp4", (67, 51), FPS, options=VideoOptions(odd_size="error"))
    assert not (tmp_path / "no.mp4").exists()
    assert no_temp_files(tmp_path)


def test_writer_is_atomic(tmp_path, frames):
    out = tmp_path / "a.mp4"
    with pytest.raises(RuntimeError), VideoWriter(out, (66, 50), FPS) as w:
        for f in frames[:3]:
            w.write(f)
        raise RuntimeError("processing failed")
    assert not out.exists() and no_temp_files(tmp_path)

    w = VideoWriter(out, (66, 50), FPS)
    w.write(frames[0])
    w.abort()  # what a KeyboardInterrupt in the with-block does
    assert not out.exists() and no_temp_files(tmp_path)

    out.write_bytes(b"precious")
    with pytest.raises(VideoError, match="exists"):
        VideoWriter(out, (66, 50), FPS)
    assert out.read_bytes() == b"precious"
    with VideoWriter(out, (66, 50), FPS, overwrite=True) as w:
        w.write(frames[0])
    assert probe_video(out).size == (66, 50)
    assert no_temp_files(tmp_path)


def test_interrupted_transcode_leaves_nothing(tmp_path, source):
    """Ctrl-C (any exception) in the middle of a transcode: no output, no temp file, input untouched."""
    before = open(source, "rb").read()
    seen = []

    def process(pixels, fmt):
        seen.append(1)
        if len(seen) == 5:
            raise KeyboardInterrupt
        return pixels

    with pytest.raises(KeyboardInterrupt):
        transcode(source, tmp_path / "out.mp4", process)
    assert not (tmp_path / "out.mp4").exists() and no_temp_files(tmp_path)
    assert open(source, "rb").read() == before


def test_writer_rejects_bad_frames(tmp_path, frames):
    with VideoWriter(tmp_path / "a.mkv", (66, 50), FPS) as w:
        with pytest.raises(VideoError, match="does not match"):
            w.write(frames[0][:-2])
        with pytest.raises(VideoError, match="uint8/uint16"):
            w.write(frames[0].astype(np.float32))
        w.write(frames[0][..., 0])  # gray is accepted
    assert probe_video(tmp_path / "a.mkv").frame_count >= 1
    with pytest.raises(VideoError, match="container"):
        VideoWriter(tmp_path / "a.xyz", (66, 50), FPS)
    with pytest.raises(VideoError, match="cannot hold"):
        VideoWriter(tmp_path / "a.webm", (66, 50), FPS, options=VideoOptions(codec="libx264"))
    with pytest.raises(VideoError, match="no frames"), VideoWriter(tmp_path / "empty.mp4", (66, 50), FPS):
        pass
    assert not (tmp_path / "empty.mp4").exists()
    assert no_temp_files(tmp_path)


def test_bad_inputs_give_one_line_errors(tmp_path, source):
    data = open(source, "rb").read()
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 10)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the moov atom is at the end: gone
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    from gpu_deconv.io.images import write_image

    write_image(tmp_path / "still.png", np.zeros((8, 8), np.uint8))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", tmp_path / "tone.wav")
    cases = {
        "missing.mp4": "no such file",
        "text.mp4": "not a video",
        "empty.mp4": "empty",
        "cut.mp4": "truncated",
        "dir.mp4": "directory",
        "still.png": "still image",
        "tone.wav": "no video stream",
        "noise.mkv": "not a video",
    }
    for name, expected in cases.items():
        p = tmp_path / name
        with pytest.raises(VideoError) as ei:
            probe_video(p)
        msg = str(ei.value)
        assert isinstance(ei.value, ValueError)
        assert msg.startswith(str(p) + ": ") and "\n" not in msg
        assert expected in msg, msg


def test_output_extension():
    assert output_extension("a/clip.mp4") == ".mp4" and output_extension("clip.MOV") == ".mov"
    for ext in (".avi", ".ts", ".mts", ".m2ts", ".flv"):
        assert output_extension("clip" + ext) == ".mkv"
    assert output_extension("clip.avi", "mp4") == ".mp4" and output_extension("clip.mkv", ".AVI") == ".avi"
    with pytest.raises(ValueError, match="unknown video container"):
        output_extension("clip.mp4", "doc")


def test_options_are_checked_while_parsing(capsys):
    ap = argparse.ArgumentParser()
    add_video_arguments(ap)
    opts = video_options_from_args(ap.parse_args(["--codec", "hevc", "--crf", "20", "--pix-fmt", "yuv420p10le",
                                                  "--container", "MKV", "--odd-size", "crop"]))
    assert opts == VideoOptions(codec="hevc", crf=20.0, pix_fmt="yuv420p10le", container=".mkv", odd_size="crop")
    assert video_options_from_args(ap.parse_args([])) == VideoOptions()
    for bad, why in ((["--codec", "nosuch"], "no video encoder"), (["--crf", "99"], "0..63"),
                     (["--pix-fmt", "yuv999p"], "unknown pixel format"), (["--container", "doc"], "container"),
                     (["--codec", "aac"], "not a video encoder"), (["--qscale", "0"], "1..31")):
        with pytest.raises(SystemExit) as ei:
            ap.parse_args(bad)
        assert ei.value.code == 2
        assert why in capsys.readouterr().err
    with pytest.raises(ValueError, match="not both"):
        video_options_from_args(ap.parse_args(["--crf", "18", "--qscale", "2"]))


def test_codec_and_qscale_options(tmp_path, source):
    out = tmp_path / "q.mkv"
    r = transcode(source, out, options=VideoOptions(codec="mpeg4", qscale=3))
    assert r.frames == N and probe_video(out).codec == "mpeg4"
    with pytest.raises(VideoError, match="--crf does not apply"):
        transcode(source, tmp_path / "bad.mkv", options=VideoOptions(codec="mpeg4", crf=20))
    with pytest.raises(VideoError, match="--qscale does not apply"):
        transcode(source, tmp_path / "bad.mkv", options=VideoOptions(qscale=3))
    out = tmp_path / "x265.mp4"
    r = transcode(source, out, options=VideoOptions(codec="hevc", crf=30, pix_fmt="yuv444p"))
    assert probe_video(out).codec == "hevc" and pixel_format(out) == "yuv444p"
    assert no_temp_files(tmp_path)


def test_missing_encoder_for_pixel_format_is_explained(tmp_path):
    """12-bit input into an encoder without 12-bit: the closest format (same chroma, 10-bit) and a note."""
    src = tmp_path / "twelve.mkv"
    ffmpeg(*pattern(), "-frames:v", "3", "-c:v", "ffv1", "-pix_fmt", "yuv422p12le", src)
    out = tmp_path / "out.mkv"
    r = transcode(src, out, options=VideoOptions(codec="libx264"))
    assert pixel_format(out) == "yuv422p10le"
    assert any("cannot encode yuv422p12le: writing yuv422p10le" in n for n in r.notes)
    assert (W, H) == probe_video(out).size
