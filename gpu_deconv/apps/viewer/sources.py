"""What the viewer shows: the built-in chart, one image, a folder of images, or a video.

A source holds the current frame as a NumPy array (``uint8``/``uint16`` sRGB-encoded or ``float32``
linear, as :func:`gpu_deconv.io.images.read_image` returns it) and a ``generation`` number that grows by
one whenever the frame changes; the viewer uploads a frame only when ``(source, generation)`` is new.
Opening errors never raise out of a source: they land in ``error`` as one line ``"<path>: <reason>"``
so the window can show them and stay open.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np

from ...errors import one_line

#: Extensions a folder is scanned for (the still-image formats :mod:`gpu_deconv.io.images` reads).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".webp", ".bmp", ".dib", ".npy")


class Source:
    """Base class: a current frame plus navigation that subclasses may support.

    Attributes
    ----------
    kind : str
        ``'chart'``, ``'image'``, ``'folder'`` or ``'video'``.
    name : str
        Short label for the title bar.
    frame : ndarray or None
        The current pixels, or None when nothing could be opened.
    generation : int
        Bumped whenever ``frame`` changes.
    error : str or None
        One-line message of the last failure (cleared by the next success).
    sharp : bool
        True when the content is known to be sharp (the chart), so the viewer starts in simulate mode.
    """

    kind = "none"
    sharp = False
    _serials = itertools.count(1)

    def __init__(self) -> None:
        #: Unique per source object (with ``generation`` it names a frame's content).
        self.serial = next(Source._serials)
        self.frame: np.ndarray | None = None
        self.generation = 0
        self.error: str | None = None
        self.name = ""

    def _set(self, frame: np.ndarray | None) -> None:
        self.frame = frame
        self.generation += 1

    # navigation (no-ops unless overridden)
    def next(self) -> bool:
        """Go to the next item; True when the frame changed."""
        return False

    def prev(self) -> bool:
        """Go to the previous item; True when the frame changed."""
        return False

    def poll(self, now: float) -> bool:
        """Advance a playing video when its next frame is due; True when the frame changed."""
        return False

    def status(self) -> str:
        """One line for the panel (position in a folder, frame number of a video...)."""
        return self.name

    def close(self) -> None:
        """Release files and subprocesses."""


class ChartSource(Source):
    """The built-in sharp test chart (:func:`gpu_deconv.core.chart.test_chart`), linear float32."""

    kind = "chart"
    sharp = True

    def __init__(self, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        from ...core.chart import DEFAULT_SIZE, test_chart

        self.size = size or DEFAULT_SIZE
        self.name = f"test chart {self.size[1]}x{self.size[0]}"
        self._set(test_chart(self.size))


class ImageSource(Source):
    """One still image file."""

    kind = "image"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.load(self.path)

    def load(self, path: str) -> bool:
        from ...io.images import read_image

        try:
            img = read_image(path)
        except Exception as e:  # ImageError is already one line; anything else is made one
            self.error = one_line(e, path)
            return False
        self.error = None
        self._set(img.pixels)
        return True


class FolderSource(ImageSource):
    """The images of a folder, sorted by name, with next/previous (wrapping around)."""

    kind = "folder"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Source.__init__(self)
        self.folder = os.fspath(path)
        self.files = sorted(
            str(p) for p in Path(self.folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        self.index = 0
        self.path = self.folder
        self.name = os.path.basename(os.path.normpath(self.folder))
        if not self.files:
            self.error = f"{self.folder}: no images in this folder ({', '.join(IMAGE_EXTENSIONS)})"
        else:
            self._open(0)

    def _open(self, i: int) -> bool:
        self.index = i % len(self.files)
        self.path = self.files[self.index]
        self.name = os.path.basename(self.path)
        ok = self.load(self.path)
        if not ok:  # keep the error visible; show nothing stale from the previous file
            self._set(None)
        return True

    def next(self) -> bool:
        return bool(self.files) and self._open(self.index + 1)

    def prev(self) -> bool:
        return bool(self.files) and self._open(self.index - 1)

    def status(self) -> str:
        return f"{self.name}  ({self.index + 1}/{len(self.files)})" if self.files else self.name


class VideoSource(Source):
    """A video decoded by :class:`gpu_deconv.io.video.VideoReader`: play/pause, single steps, loop.

    Frames come as RGBA in the file's own depth (``uint8``, or ``uint16`` for 10-16-bit video; HDR video
    as linear ``float32``) and are shown for their own durations while playing, so a variable-frame-rate
    file plays at its pace (frames are never dropped: a slow viewer plays slower). At the end it rewinds
    when ``loop`` is on, else it pauses on the last frame.
    """

    kind = "video"

    def __init__(self, path: str | os.PathLike[str], loop: bool = True, playing: bool = True) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.loop = loop
        self.playing = playing
        self.index = -1
        self.info = None
        self._reader = None
        self._due = 0.0
        self._shown_for = 1.0 / 30.0  # display duration of the current frame, seconds
        try:
            from ...io.video import VideoReader, probe_video

            self.info = probe_video(self.path)
            self._reader = VideoReader(self.path, channels=4, prefetch=2, info=self.info)
        except Exception as e:
            self.error = one_line(e, self.path)
            return
        self.step()
        self._due = time.perf_counter()

    @property
    def fps(self) -> float:
        return float(self.info.fps) if self.info is not None else 30.0

    def _rewind(self) -> bool:
        from ...io.video import VideoReader

        if self._reader is not None:
            self._reader.close()
        try:
            self._reader = VideoReader(self.path, channels=4, prefetch=2, info=self.info)
        except Exception as e:
            self.error = one_line(e, self.path)
            self._reader = None
            return False
        self.index = -1
        return True

    def step(self) -> bool:
        """Show the next frame (rewinding at the end when looping); True when the frame changed."""
        if self._reader is None:
            return False
        try:
            frame = self._reader.read_frame()
            if frame is None and self.loop and self.index >= 0 and self._rewind():
                frame = self._reader.read_frame()
        except Exception as e:
            self.error = one_line(e, self.path)
            self.playing = False
            return False
        if frame is None:  # end without looping: stay on the last frame
            self.playing = False
            return False
        self.index += 1
        self.error = None
        self._shown_for = float(frame.duration * frame.time_base) or 1.0 / self.fps
        self._set(frame.pixels)
        return True

    def next(self) -> bool:
        return self.step()

    def toggle_play(self) -> None:
        self.playing = not self.playing
        self._due = time.perf_counter()

    def poll(self, now: float) -> bool:
        if not self.playing or now < self._due:
            return False
        self._due = max(self._due + self._shown_for, now - 0.5)  # catch up at most half a second
        return self.step()

    def status(self) -> str:
        n = self.info.frame_count if self.info is not None else 0
        state = "playing" if self.playing else "paused"
        return f"{self.name}  frame {self.index + 1}/{n or '?'}  {state}{'  loop' if self.loop else ''}"

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def open_source(path: str | os.PathLike[str] | None, chart_size: tuple[int, int] | None = None) -> Source:
    """The source for a command-line PATH: None -> chart, a folder, a video (by extension), else an image."""
    if path is None:
        return ChartSource(chart_size)
    p = os.fspath(path)
    if os.path.isdir(p):
        return FolderSource(p)
    from ...io.video import is_video_path

    if is_video_path(p) and not p.lower().endswith(".gif"):
        return VideoSource(p)
    return ImageSource(p)


def as_rgba(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Any (H, W) / (H, W, C<=4) frame as contiguous RGBA of the same dtype (alpha opaque when added).

    ``out``, when its shape and dtype fit, is reused (a video needs no new buffer per frame).
    """
    a = np.asarray(frame)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    if out is None or out.shape != (h, w, 4) or out.dtype != a.dtype:
        out = np.empty((h, w, 4), dtype=a.dtype)
        opaque = np.iinfo(a.dtype).max if a.dtype.kind == "u" else 1.0
        out[:, :, 3] = opaque
    if c == 1:
        out[:, :, :3] = a
    elif c == 2:  # gray + alpha
        out[:, :, :3] = a[:, :, :1]
        out[:, :, 3] = a[:, :, 1]
    else:
        out[:, :, :3] = a[:, :, :3]
        if c == 4:
            out[:, :, 3] = a[:, :, 3]
    return out
