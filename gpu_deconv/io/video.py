"""Video reading and writing through the ffmpeg binary bundled with imageio-ffmpeg.

* :func:`probe_video` reports size (after the rotation ffmpeg applies on decode), the exact frame rate
  as a :class:`~fractions.Fraction` (read from the decoder's filter-graph set-up, so 24000/1001 stays
  24000/1001), a frame-count estimate (exact with ``count_frames=True``), codec, pixel format and the
  audio streams.
* :class:`VideoReader` yields 8-bit RGB frames ``(H, W, 3)`` decoded by an ffmpeg subprocess; with
  ``prefetch > 0`` a background thread keeps that many frames decoded ahead so decoding overlaps the
  GPU work.
* :class:`VideoWriter` pipes RGB frames into ffmpeg, encoding into ``.NAME.XXXX.tmp`` in the target
  folder; :meth:`VideoWriter.close` renames it into place, an error or Ctrl-C deletes it. The source's
  audio streams are muxed in on the fly (copied when the container accepts the codec, else re-encoded).

Codecs by container: ``.mp4``/``.m4v``/``.mov``/``.mkv`` -> H.264 (libx264, CRF 18, yuv420p);
``.webm`` -> VP9 (libvpx-vp9, CRF 24, yuv420p). RGB is converted with the BT.709 matrix in TV range and
tagged BT.709.

Odd frame sizes (the rule): H.264 4:2:0 needs an even width and height, and a container can't crop a
padded frame back to an odd size, so for H.264 an odd size is handled by ``odd_size``:

* ``'yuv444p'`` (default): encode 4:4:4 (High 4:4:4 profile) at the exact size. Nothing is resized or
  padded, but browsers, QuickTime and many hardware decoders can't play it.
* ``'pad'``: repeat the last column/row to the next even size and encode 4:2:0; the output is one
  pixel wider/taller than the input but plays everywhere.
* ``'error'``: refuse with :class:`VideoError`.

Either way :attr:`VideoWriter.warnings` holds a one-line explanation for the CLI to print. VP9 (webm)
stores odd sizes in 4:2:0 natively, so webm needs no rule and gives no warning. Sizes that are even but
not multiples of 16 need nothing: the encoders pad internally and crop in the bitstream.
"""

from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import VideoError
from .atomic import commit_temp, default_mode, unlink_quietly
from .images import looks_like_text

#: Container by extension (the ffmpeg muxer name).
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}

#: Extensions the reader is meant for (anything ffmpeg can decode works; this is for picking files).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".ogv", ".gif")

ODD_SIZE_RULES = ("yuv444p", "pad", "error")

_CODEC_ALIASES = {"h264": "libx264", "libx264": "libx264", "avc": "libx264", "vp9": "libvpx-vp9",
                  "libvpx-vp9": "libvpx-vp9"}
_DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 24}
_AUDIO_COPY_OK = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be",
            "pcm_f32le", "pcm_f32be"},
    "matroska": None,  # anything
    "webm": {"opus", "vorbis"},
}
_NTSC_BASES = (24, 30, 48, 60, 120, 240)


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary (or ``IMAGEIO_FFMPEG_EXE`` when set)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when the extension is one of :data:`VIDEO_EXTENSIONS`."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def as_fraction(fps: float | int | str | Fraction) -> Fraction:
    """Exact frame rate from a number, a ``Fraction`` or a ``"num/den"`` string.

    Floats within 0.001 of an NTSC rate (23.976, 29.97, 59.94, ...) become ``N*1000/1001``; other
    floats are rationalised with a denominator up to 1001.
    """
    if isinstance(fps, Fraction):
        f = fps
    elif isinstance(fps, int):
        f = Fraction(fps)
    elif isinstance(fps, str):
        try:
            f = Fraction(fps.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"frame rate must be a number or 'num/den', got {fps!r}") from None
    else:
        v = float(fps)
        if not math.isfinite(v):
            raise ValueError(f"frame rate must be finite, got {fps!r}")
        f = Fraction(v).limit_denominator(1001)
        for base in _NTSC_BASES:
            ntsc = Fraction(base * 1000, 1001)
            if abs(v - float(ntsc)) < 1e-3:
                f = ntsc
                break
        else:
            if abs(v - round(v)) < 1e-6:
                f = Fraction(round(v))
    if f <= 0:
        raise ValueError(f"frame rate must be > 0, got {fps!r}")
    return f


# ---------------------------------------------------------------------------------------------------
# probing


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found.

    Attributes
    ----------
    path : str
    width, height : int
        Decoded frame size, after the display rotation ffmpeg applies.
    fps : Fraction
        Exact frame rate (e.g. ``Fraction(24000, 1001)``).
    frame_count : int
        ``round(duration * fps)``, or the exact packet count when probed with ``count_frames=True``.
    frame_count_exact : bool
    duration : float or None
        Container duration in seconds.
    codec, pix_fmt : str
        Video codec and source pixel format as ffmpeg names them (``'h264'``, ``'yuv420p'``).
    audio_codecs : tuple of str
        One entry per audio stream.
    container : str
        ffmpeg's demuxer name (``'mov,mp4,m4a,3gp,3g2,mj2'``, ``'matroska,webm'``).
    rotation : int
        Display rotation in degrees (already applied to the decoded frames).
    color : dict
        ``color_range``, ``color_space``, ``color_primaries``, ``color_trc`` of the first frame.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    frame_count_exact: bool
    duration: float | None
    codec: str
    pix_fmt: str
    audio_codecs: tuple[str, ...] = ()
    container: str = ""
    rotation: int = 0
    color: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)

    @property
    def has_audio(self) -> bool:
        """True when there is at least one audio stream."""
        return bool(self.audio_codecs)

    @property
    def fps_float(self) -> float:
        """The frame rate as a float."""
        return float(self.fps)


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses or brackets."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _check_input_file(p: str) -> None:
    if not os.path.exists(p):
        raise VideoError(p, "no such file")
    if os.path.isdir(p):
        raise VideoError(p, "is a directory, not a video file")
    if os.path.getsize(p) == 0:
        raise VideoError(p, "empty file (0 bytes)")


def _ffmpeg_failure(p: str, stderr: str) -> VideoError:
    lines = _ffmpeg_lines(stderr)
    text = " ".join(lines)
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError:
        head = b""
    if "moov atom not found" in text and head[4:8] == b"ftyp":
        return VideoError(p, "truncated or unfinished MP4/MOV (moov atom not found)")
    if "Invalid data found" in text or "moov atom not found" in text:
        if looks_like_text(head):
            return VideoError(p, "not a video: content looks like text")
        return VideoError(p, "not a video (ffmpeg: Invalid data found when processing input)")
    if "matches no streams" in text or "does not contain any stream" in text:
        return VideoError(p, "has no video stream")
    for ln in reversed(lines):
        if not ln.startswith(("Error opening", "Conversion failed", "Exiting")):
            return VideoError(p, f"ffmpeg: {ln[:300]}")
    return VideoError(p, f"ffmpeg failed: {lines[-1][:300] if lines else 'no message'}")


def probe_video(path: str | os.PathLike[str], *, count_frames: bool = False) -> VideoInfo:
    """Describe a video file by decoding its first frame with ffmpeg.

    Parameters
    ----------
    path : str or path-like
    count_frames : bool
        Count video packets (no decoding; reads the whole file) for an exact ``frame_count``.

    Raises
    ------
    VideoError
        Missing, empty, not a video, a still image, truncated, or no video stream.
    """
    p = os.fspath(path)
    _check_input_file(p)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", f"file:{os.path.abspath(p)}", "-map", "0:v:0",
           "-frames:v", "1", "-vf", "showinfo", "-an", "-sn", "-dn", "-f", "null", "-"]
    r = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0:
        raise _ffmpeg_failure(p, err)
    m = re.search(r"Input #0, (.+?), from ", err)
    container = m.group(1) if m else ""
    if container == "image2" or container.endswith("_pipe"):
        raise VideoError(p, f"is a still image ({container}), not a video")
    duration = None
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    if m:
        duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    video_line = audio = None
    audio_codecs = []
    for m in re.finditer(r"Stream #0:\d+[^:\n]*: (Video|Audio): ([^\n]*)", err):
        if m.group(1) == "Video" and video_line is None:
            video_line = m.group(2)
        elif m.group(1) == "Audio":
            audio = _split_top(m.group(2))
            audio_codecs.append(audio[0].split()[0])
    if video_line is None:
        raise VideoError(p, "has no video stream")
    parts = _split_top(video_line)
    codec = parts[0].split()[0]
    pix_fmt = parts[1].split("(")[0].strip() if len(parts) > 1 else ""
    frame = re.search(r"n:\s*0 .*? s:(\d+)x(\d+)", err)
    if frame is None:
        raise VideoError(p, "no decodable video frame (truncated or corrupt)")
    width, height = int(frame.group(1)), int(frame.group(2))
    fps = None
    m = re.search(r"config in time_base: \d+/\d+, frame_rate: (\d+)/(\d+)", err)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        fps = Fraction(int(m.group(1)), int(m.group(2)))
    if fps is None:
        m = re.search(r"([\d.]+) (?:fps|tbr)", video_line)
        if m is None:
            raise VideoError(p, "cannot tell the frame rate")
        fps = as_fraction(float(m.group(1)))
    rotation = 0
    m = re.search(r"rotation of (-?[\d.]+) degrees", err)
    if m:
        rotation = int(round(float(m.group(1))))
    color = {}
    m = re.search(r"color_range:(\S+) color_space:(\S+) color_primaries:(\S+) color_trc:(\S+)", err)
    if m:
        color = dict(zip(("color_range", "color_space", "color_primaries", "color_trc"), m.groups(), strict=True))
    count, exact = (round(duration * fps) if duration else 0), False
    if count_frames:
        count, exact = _count_packets(p), True
    return VideoInfo(p, width, height, fps, int(count), exact, duration, codec, pix_fmt, tuple(audio_codecs),
                     container, rotation, color)


def probe_audio(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Codec names of the audio streams in any file ffmpeg can open (a video or an audio file).

    Raises
    ------
    VideoError
        Missing, empty or unreadable file.
    """
    p = os.fspath(path)
    _check_input_file(p)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", f"file:{os.path.abspath(p)}"]
    r = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    err = r.stderr.decode("utf-8", "replace")  # exits 1 ("no output file") after printing the streams
    if "Input #0" not in err:
        raise _ffmpeg_failure(p, err)
    codecs = []
    for m in re.finditer(r"Stream #0:\d+[^:\n]*: Audio: ([^\n]*)", err):
        codecs.append(_split_top(m.group(1))[0].split()[0])
    return tuple(codecs)


def _count_packets(p: str) -> int:
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-nostdin", "-i", f"file:{os.path.abspath(p)}",
           "-map", "0:v:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-nostats", "-"]
    r = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    frames = re.findall(rb"^frame=(\d+)", r.stdout, flags=re.M)
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != 0 or not frames:
        raise _ffmpeg_failure(p, err)
    if "partial file" in err:
        raise VideoError(p, f"truncated: the data ends after {int(frames[-1])} frames (ffmpeg: partial file)")
    return int(frames[-1])


# ---------------------------------------------------------------------------------------------------
# reading

_END = object()


class VideoReader:
    """Iterate over a video's frames as ``uint8`` RGB arrays ``(H, W, 3)``.

    Parameters
    ----------
    path : str or path-like
    prefetch : int
        Frames decoded ahead on a background thread (0 decodes on the caller's thread).
    info : VideoInfo, optional
        A probe result to reuse.

    Notes
    -----
    Every decoded frame is delivered once (``-fps_mode passthrough``: no frame is duplicated or
    dropped to force a constant rate). Sources with more than 8 bits are reduced to 8-bit RGB. Use as
    a context manager, or call :meth:`close`, to stop ffmpeg early.

    Raises
    ------
    VideoError
        From the constructor (see :func:`probe_video`) or during iteration when ffmpeg fails or the
        stream ends inside a frame.
    """

    def __init__(self, path: str | os.PathLike[str], *, prefetch: int = 2, info: VideoInfo | None = None) -> None:
        self.path = os.fspath(path)
        self.info = info if info is not None else probe_video(self.path)
        self.frames_read = 0
        #: ffmpeg's error/warning lines once the stream has ended (decoding glitches that did not stop it).
        self.messages: list[str] = []
        self._shape = (self.info.height, self.info.width, 3)
        self._nbytes = self.info.width * self.info.height * 3
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-nostdin", "-i", f"file:{os.path.abspath(self.path)}",
               "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                                      start_new_session=True)
        self._done = False
        self._closed = False
        self._decoded = 0
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        if prefetch > 0:
            self._queue = queue.Queue(maxsize=int(prefetch))
            self._thread = threading.Thread(target=self._worker, name="VideoReader-prefetch", daemon=True)
            self._thread.start()

    # -- decoding (either thread) --
    def _read_one(self) -> np.ndarray | None:
        buf = np.empty(self._shape, dtype=np.uint8)
        mv = memoryview(buf).cast("B")
        got = 0
        stdout = self._proc.stdout
        assert stdout is not None
        while got < self._nbytes:
            k = stdout.readinto(mv[got:])
            if not k:
                break
            got += k
        if got == 0:
            return None
        if got < self._nbytes:
            self._proc.wait()
            raise VideoError(self.path, f"truncated: frame {self._decoded} ends after {got} of {self._nbytes} bytes")
        self._decoded += 1
        return buf

    def _finish(self) -> None:
        rc = self._proc.wait()
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        self.messages = _ffmpeg_lines(text)
        if self._stop.is_set():
            return
        if rc != 0:
            raise _ffmpeg_failure(self.path, text)
        if any("partial file" in m for m in self.messages):
            raise VideoError(self.path, f"truncated: the data ends after {self._decoded} frames (ffmpeg: partial file)")

    def _worker(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._read_one()
                if frame is None:
                    self._finish()
                    self._put(_END)
                    return
                self._put(frame)
        except BaseException as e:  # handed to the consumer thread
            self._put(e)

    def _put(self, item: Any) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- consumer side --
    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        if self._done or self._closed:
            raise StopIteration
        if self._queue is not None:
            item = self._queue.get()
        else:
            try:
                item = self._read_one()
                if item is None:
                    self._finish()
                    item = _END
            except BaseException as e:
                item = e
        if item is _END:
            self._done = True
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            self.close()
            raise item
        self.frames_read += 1
        return item

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end."""
        return next(self, None)

    def close(self) -> None:
        """Stop ffmpeg and the prefetch thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._thread is not None:
            while self._thread.is_alive():
                try:  # unblock a worker waiting on a full queue
                    while True:
                        self._queue.get_nowait()  # type: ignore[union-attr]
                except queue.Empty:
                    pass
                self._thread.join(timeout=0.05)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------------
# writing


class VideoWriter:
    """Encode ``uint8`` RGB frames into an mp4/mkv/mov/webm file, atomically.

    Parameters
    ----------
    path : str or path-like
        Target; the extension picks the container (:data:`CONTAINERS`).
    size : (int, int)
        Frame ``(width, height)``.
    fps : Fraction, int, float or str
        Frame rate, kept exactly (see :func:`as_fraction`); pass ``VideoInfo.fps``.
    audio_from : str or path-like, optional
        File whose audio streams are muxed in (copied if the container takes the codec, else AAC, or
        Opus for webm). Nothing happens when it has no audio.
    audio_duration : float, optional
        Cut the audio to this many seconds (when only part of the video is processed).
    codec : str, optional
        ``'h264'``/``'libx264'`` or ``'vp9'``/``'libvpx-vp9'``; default by container. webm needs VP9.
    crf : int, optional
        Constant-quality factor (lower is better): default 18 for H.264, 24 for VP9.
    preset : str
        x264 preset (``'medium'``); for VP9 it maps to ``-cpu-used`` (``'fast'``... -> 4, ``'slow'`` -> 1).
    odd_size : {'yuv444p', 'pad', 'error'}
        The H.264 rule for odd widths/heights (module docstring).
    overwrite : bool
        Replace an existing file at :meth:`close`; otherwise an existing target is an error up front.

    Attributes
    ----------
    warnings : list of str
        One-line notes for the user (odd-size handling, audio re-encoding).
    output_size : (int, int)
        Stored ``(width, height)`` (differs from ``size`` only with ``odd_size='pad'``).
    pix_fmt : str
        Encoded pixel format.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: tuple[int, int],
        fps: float | int | str | Fraction,
        *,
        audio_from: str | os.PathLike[str] | None = None,
        audio_duration: float | None = None,
        codec: str | None = None,
        crf: int | None = None,
        preset: str = "medium",
        odd_size: str = "yuv444p",
        overwrite: bool = False,
    ) -> None:
        p = os.fspath(path)
        self.path = p
        self.warnings: list[str] = []
        self.frames_written = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        self._closed = False
        ext = Path(p).suffix.lower()
        if ext not in CONTAINERS:
            raise VideoError(p, f"unsupported video container {ext!r} (use {', '.join(sorted(CONTAINERS))})")
        muxer = CONTAINERS[ext]
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise VideoError(p, f"size must be (width, height), got {size!r}") from None
        if width <= 0 or height <= 0:
            raise VideoError(p, f"size must be positive, got {width}x{height}")
        try:
            self.fps = as_fraction(fps)
        except ValueError as e:
            raise VideoError(p, str(e)) from None
        enc = _CODEC_ALIASES.get((codec or ("vp9" if muxer == "webm" else "h264")).lower())
        if enc is None:
            raise VideoError(p, f"unsupported codec {codec!r} (use 'h264' or 'vp9')")
        if muxer == "webm" and enc != "libvpx-vp9":
            raise VideoError(p, "webm holds VP9 here; use .mp4/.mkv/.mov for H.264")
        if odd_size not in ODD_SIZE_RULES:
            raise VideoError(p, f"odd_size must be one of {ODD_SIZE_RULES}, got {odd_size!r}")
        self.size = (width, height)
        self.codec = enc
        self.pix_fmt = "yuv420p"
        self._pad = (0, 0)
        odd = width % 2 or height % 2
        if odd and enc == "libx264":
            if odd_size == "error":
                raise VideoError(p, f"odd frame size {width}x{height} can't be stored as H.264 4:2:0")
            if odd_size == "yuv444p":
                self.pix_fmt = "yuv444p"
                self.warnings.append(
                    f"odd frame size {width}x{height}: encoding H.264 4:4:4 at the exact size; browsers and "
                    "QuickTime can't play it (use odd_size='pad' or .webm for wide compatibility)")
            else:
                self._pad = (width % 2, height % 2)
                self.warnings.append(
                    f"odd frame size {width}x{height}: last column/row repeated to "
                    f"{width + self._pad[0]}x{height + self._pad[1]} for H.264 4:2:0")
        self.output_size = (width + self._pad[0], height + self._pad[1])

        folder = os.path.dirname(os.path.abspath(p))
        if os.path.isdir(p):
            raise VideoError(p, "is a directory")
        if not os.path.isdir(folder):
            raise VideoError(p, f"output folder {folder} does not exist")
        if os.path.lexists(p) and not overwrite:
            raise VideoError(p, "file exists; pass overwrite=True (--overwrite) to replace it")
        self._overwrite = overwrite

        audio_args: list[str] = []
        map_args = ["-map", "0:v:0"]
        if audio_from is not None:
            src = os.fspath(audio_from)
            audio_codecs = probe_audio(src)
            if audio_codecs:
                if audio_duration is not None:
                    audio_args += ["-t", f"{float(audio_duration):.6f}"]
                audio_args += ["-i", f"file:{os.path.abspath(src)}"]
                map_args += ["-map", "1:a"]
                ok = _AUDIO_COPY_OK[muxer]
                if ok is None or all(c in ok for c in audio_codecs):
                    map_args += ["-c:a", "copy"]
                else:
                    target = "libopus" if muxer == "webm" else "aac"
                    map_args += ["-c:a", target, "-b:a", "160k" if target == "libopus" else "192k"]
                    self.warnings.append(
                        f"audio {'/'.join(audio_codecs)} can't go into {ext} as is: re-encoded to "
                        f"{'Opus' if target == 'libopus' else 'AAC'}")
        self.has_audio = len(map_args) > 2

        ow, oh = self.output_size
        video_args = ["-vf", f"scale=out_color_matrix=bt709:out_range=tv,format={self.pix_fmt},"
                      "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"]
        if enc == "libx264":
            video_args += ["-c:v", "libx264", "-preset", preset, "-crf", str(_DEFAULT_CRF[enc] if crf is None
                                                                            else int(crf))]
        else:
            cpu_used = {"ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 3,
                        "slow": 2, "slower": 1, "veryslow": 0}.get(preset, 3)
            video_args += ["-c:v", "libvpx-vp9", "-crf", str(_DEFAULT_CRF[enc] if crf is None else int(crf)),
                           "-b:v", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", str(cpu_used)]
        if muxer in ("mp4", "mov"):
            video_args += ["-movflags", "+faststart"]
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(p)}.", suffix=".tmp", dir=folder)
            os.close(fd)
        except OSError as e:
            raise VideoError(p, f"cannot write to folder {folder}: {e.strerror or e}") from None
        self._tmp = tmp
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{ow}x{oh}", "-framerate", str(self.fps),
               "-i", "pipe:0", *audio_args, *map_args, *video_args,
               "-fps_mode", "passthrough", "-f", muxer, f"file:{tmp}"]
        self._cmd = cmd
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, start_new_session=True)
        except BaseException:
            self._cleanup()
            raise

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def write(self, frame: np.ndarray) -> None:
        """Append one ``uint8`` frame, ``(H, W, 3)`` RGB or ``(H, W)`` gray, of the writer's size."""
        if self._closed or self._proc is None:
            raise VideoError(self.path, "writer is closed")
        a = np.asarray(frame)
        if a.dtype != np.uint8:
            raise VideoError(self.path, f"frames must be uint8, got {a.dtype}")
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        w, h = self.size
        if a.shape != (h, w, 3):
            raise VideoError(self.path, f"frame shape {a.shape} does not match the writer's size {w}x{h} (RGB)")
        if self._pad != (0, 0):
            a = np.pad(a, ((0, self._pad[1]), (0, self._pad[0]), (0, 0)), mode="edge")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(memoryview(np.ascontiguousarray(a)).cast("B"))
        except (BrokenPipeError, OSError):
            self._proc.wait()
            text = self._stderr_text()
            self.abort()
            raise _writer_failure(self.path, text) from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish encoding and move the file into place (idempotent). Raises :class:`VideoError` on failure."""
        if self._closed:
            return
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            rc = proc.wait()
            if rc != 0:
                raise _writer_failure(self.path, self._stderr_text())
            if self.frames_written == 0:
                raise VideoError(self.path, "no frames were written")
            assert self._tmp is not None
            with open(self._tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(self._tmp, default_mode())
            try:
                commit_temp(self._tmp, self.path, overwrite=self._overwrite, error=VideoError)
            except OSError as e:
                raise VideoError(self.path, f"cannot write: {e.strerror or e}") from None
            self._tmp = None
        except BaseException:
            self.abort()
            raise
        finally:
            self._closed = True
            self._cleanup()

    def abort(self) -> None:
        """Stop ffmpeg and delete the temp file; the target is left as it was (idempotent)."""
        self._closed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._proc is not None and self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        if self._tmp is not None:
            unlink_quietly(self._tmp)
            self._tmp = None
        if hasattr(self, "_stderr") and not self._stderr.closed:
            self._stderr.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass


def _ffmpeg_lines(stderr: str) -> list[str]:
    """ffmpeg's message lines without the ``[libx264 @ 0x...]`` context prefixes."""
    out = []
    for ln in stderr.splitlines():
        ln = re.sub(r"^(\[[^\]]*@ 0x[0-9a-f]+\] ?)+", "", ln.strip())
        if ln:
            out.append(ln)
    return out


def _writer_failure(p: str, stderr: str) -> VideoError:
    lines = _ffmpeg_lines(stderr)  # the first line is the cause, the rest is fallout
    return VideoError(p, f"encoding failed: ffmpeg: {lines[0][:300] if lines else 'no message'}")
