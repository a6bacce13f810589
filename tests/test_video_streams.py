"""Time and everything that is not the processed picture: variable frame rates with audio, subtitles,
attachments, chapters, metadata, rotation, AVI/MPEG-TS inputs, damaged files."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from video_clips import ffmpeg, frame_times, packet_times, pattern, stream_end, time_base

from gpu_deconv.io.video import VideoOptions, VideoReader, output_extension, probe_video, transcode


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> str:
    """25 fps source with frames 5-9 and 14-15 dropped (two long gaps), plus 1 s of AAC: 18 frames, VFR."""
    p = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    drop = "select='not(between(n\\,5\\,9))*not(between(n\\,14\\,15))'"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=25,{drop}",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1", "-fps_mode", "vfr",
           "-c:v", "libx264", "-c:a", "aac", p)
    return str(p)


def _assert_same_timing(src, out) -> None:
    """Every frame's time and the video's end within one tick of the coarser time base; audio packets too."""
    tick = float(max(time_base(src), time_base(out))) + 1e-9
    a, b = frame_times(src), frame_times(out)
    assert len(a) == len(b)
    assert np.abs(np.array(a) - np.array(b)).max() <= tick
    assert abs(stream_end(src, "video") - stream_end(out, "video")) <= tick
    pa, pb = packet_times(src, "audio"), packet_times(out, "audio")
    assert len(pa) == len(pb) and np.abs(np.array(pa) - np.array(pb)).max() <= tick


@pytest.mark.parametrize("container", [None, "mkv", "mov"])
def test_variable_frame_rate_and_audio_stay_in_sync(tmp_path, vfr, container):
    gaps = np.diff(frame_times(vfr))
    assert gaps.max() > 5 * gaps.min()  # the input really is variable-rate
    out = tmp_path / f"out{output_extension(vfr, container)}"
    r = transcode(vfr, out, options=VideoOptions(container=container))
    assert r.frames == 18 and r.notes == [] and r.damage is None
    _assert_same_timing(vfr, out)
    info = probe_video(out)
    assert info.audio_codecs == ("aac",) and info.duration == pytest.approx(probe_video(vfr).duration, abs=0.001)


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> tuple[str, bytes]:
    """MKV with audio (eng), SRT subtitles (fra, forced), a font attachment, two chapters and tags."""
    d = tmp_path_factory.mktemp("rich")
    (d / "subs.srt").write_text("1\n00:00:00,000 --> 00:00:00,400\nBonjour\n\n2\n00:00:00,400 --> 00:00:00,900\n"
                                "le monde\n")
    (d / "meta.txt").write_text(";FFMETADATA1\ntitle=Chaptered\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\n"
                                "title=Intro\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Main\n")
    font = bytes(range(256)) * 3
    (d / "font.ttf").write_bytes(font)
    p = d / "rich.mkv"
    ffmpeg(*pattern(), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-i", d / "subs.srt", "-i", d / "meta.txt",
           "-map", "0", "-map", "1", "-map", "2", "-map_metadata", "3", "-map_chapters", "3", "-t", "1",
           "-c:v", "libx264", "-c:a", "aac", "-c:s", "srt", "-attach", d / "font.ttf",
           "-metadata:s:t", "mimetype=application/x-truetype-font", "-metadata:s:a", "language=eng",
           "-metadata:s:s", "language=fra", "-disposition:s:0", "forced",
           "-metadata", "creation_time=2024-01-02T03:04:05Z", p)
    return str(p), font


def _streams(path):
    import av

    with av.open(str(path)) as c:
        out = {"meta": dict(c.metadata), "chapters": [(ch["start"] * ch["time_base"], ch["end"] * ch["time_base"],
                                                        ch["metadata"].get("title")) for ch in c.chapters()]}
        for s in c.streams:
            key = s.type
            entry = {"lang": s.metadata.get("language"), "disposition": int(s.disposition)}
            if s.type == "attachment":
                entry.update(name=s.name, mimetype=s.mimetype, data=bytes(s.data))
            elif s.codec_context is not None:
                entry["codec"] = s.codec_context.name
            out[key] = entry
        subs = c.streams.subtitles
        if subs:
            out["subtitle"]["packets"] = [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(subs[0]) if p.size]
        return out


def test_subtitles_attachments_chapters_and_metadata_are_copied(tmp_path, rich):
    src, font = rich
    out = tmp_path / "out.mkv"
    r = transcode(src, out)
    assert r.notes == []
    a, b = _streams(src), _streams(out)
    assert b["subtitle"] == a["subtitle"] and b["subtitle"]["lang"] == "fra" and b["subtitle"]["disposition"] & 0x40
    assert [text for _, text in b["subtitle"]["packets"]] == [b"Bonjour", b"le monde"]
    assert b["attachment"]["data"] == font and b["attachment"] == a["attachment"]
    assert b["audio"] == a["audio"] and b["audio"]["lang"] == "eng"
    assert b["chapters"] == a["chapters"] == [(0, Fraction(1, 2), "Intro"), (Fraction(1, 2), 1, "Main")]
    assert b["meta"]["title"] == "Chaptered" and b["meta"]["creation_time"] == a["meta"]["creation_time"]


def test_what_a_container_cannot_hold_is_said(tmp_path, rich):
    src, _ = rich
    out = tmp_path / "out.mp4"
    r = transcode(src, out, options=VideoOptions(container="mp4"))
    said = " | ".join(r.notes)
    assert "stream #2 (subtitle srt) can't be stored in .mp4: left out (use --container mkv)" in said
    assert "attachment font.ttf can't be stored in .mp4" in said
    assert all("\n" not in n for n in r.notes)
    b = _streams(out)
    assert "subtitle" not in b and "attachment" not in b
    assert b["audio"]["codec"] == "aac" and len(b["chapters"]) == 2  # the rest is kept


def test_rotation_is_carried_as_a_tag(tmp_path):
    import av

    src = tmp_path / "rot.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(90)
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    assert probe_video(src).rotation == 90
    out = tmp_path / "out.mp4"
    transcode(src, out)
    info = probe_video(out)
    assert info.rotation == 90 and info.size == (64, 48)  # pixels are not rotated


@pytest.mark.parametrize("ext,vcodec,acodec", [(".avi", "mpeg4", "libmp3lame"), (".ts", "libx264", "aac"),
                                               (".m2ts", "libx264", "ac3"), (".flv", "flv", "aac")])
def test_legacy_containers_are_read_and_rewrapped(tmp_path, ext, vcodec, acodec):
    src = tmp_path / f"clip{ext}"
    ffmpeg(*pattern(), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.5", "-c:v", vcodec,
           "-c:a", acodec, src)
    dst = tmp_path / f"clip{output_extension(src)}"
    assert dst.suffix == ".mkv"
    r = transcode(src, dst)
    assert r.damage is None and r.frames == 12
    info = probe_video(dst)
    assert info.has_audio and info.frame_count_exact is False and len(frame_times(dst)) == 12
    assert frame_times(dst)[0] < 0.05  # an MPEG-TS clock starting at 1.4 s is moved to 0, audio with it
    sync_in = packet_times(src, "audio")[0] - frame_times(src)[0]
    assert packet_times(dst, "audio")[0] - frame_times(dst)[0] == pytest.approx(sync_in, abs=0.002)
    keep = tmp_path / f"keep{ext}"  # --container keeps the old container where the user asks for it
    r = transcode(src, keep, options=VideoOptions(container=ext))
    assert r.frames == 12 and probe_video(keep).has_audio and len(frame_times(keep)) == 12


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_truncated_input_keeps_the_decoded_frames_and_says_where(tmp_path, ext):
    full = tmp_path / f"full{ext}"
    ffmpeg(*pattern(), "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "2", "-c:v", "libx264", "-c:a", "aac",
           *(["-movflags", "+faststart"] if ext == ".mp4" else []), full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with VideoReader(cut) as r:
        n = sum(1 for _ in r)
        damage = r.damage
    assert 5 < n < 48
    assert damage is not None and damage.startswith(f"{cut}: truncated: decoding stopped at 0:0")
    assert "of 0:02.0" in damage and "\n" not in damage
    out = tmp_path / f"out{ext}"
    res = transcode(cut, out)
    assert res.damage == damage and res.frames == n
    assert len(frame_times(out)) == n
    with VideoReader(full) as r:  # and an intact file says nothing
        assert sum(1 for _ in r) == 48 and r.damage is None


def test_timecode_data_stream_is_copied(tmp_path):
    """A QuickTime timecode track (a data stream) goes through untouched."""
    src = tmp_path / "tc.mov"
    ffmpeg(*pattern(), "-frames:v", "6", "-c:v", "libx264", "-timecode", "01:02:03:04", src)
    assert [s.type for s in probe_video(src).streams] == ["data"]
    out = tmp_path / "out.mov"
    r = transcode(src, out)
    assert r.notes == []
    import av

    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert a.streams.data[0].metadata.get("timecode") == b.streams.data[0].metadata.get("timecode")
        assert b.streams.data[0].metadata.get("timecode") == "01:02:03:04"
    r = transcode(src, tmp_path / "out.mkv")  # Matroska has no timecode track: said, and the tag stays
    assert r.notes == ["timecode track #1 can't be stored in .mkv: kept as the video stream's timecode tag "
                       "01:02:03:04"]
