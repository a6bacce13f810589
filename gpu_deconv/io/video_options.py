"""What a user chooses about video outputs, and which files are videos - without importing PyAV or NumPy.

``gpu-deconv run`` builds its command line (``--codec``, ``--crf``, ``--qscale``, ``--pix-fmt``,
``--container``, ``--odd-size``) and plans its jobs (which inputs are videos, which container each output
gets) from this module, so ``gpu-deconv --help`` stays fast; the encoding itself is :mod:`gpu_deconv.io.video`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import one_line

#: Extensions read as video (anything FFmpeg decodes works; this is for picking files in folders).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".ogv", ".gif", ".nut")

#: Writable containers: extension -> FFmpeg muxer.
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                              ".nut": "nut", ".avi": "avi", ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts",
                              ".flv": "flv"}
#: Input extensions whose output goes into :data:`DEFAULT_CONTAINER` unless ``--container`` says otherwise:
#: AVI has no per-frame timestamps (variable frame rate is lost), MPEG-TS and FLV take few codecs and no
#: chapters, attachments or titles, the rest are read-only here.
REWRAPPED = (".avi", ".ts", ".mts", ".m2ts", ".flv", ".mpg", ".mpeg", ".wmv", ".ogv", ".gif")
DEFAULT_CONTAINER = ".mkv"

ODD_SIZE_RULES = ("pad", "crop", "error")

#: Encoder used for a decoder's codec where FFmpeg has several (the others use FFmpeg's default encoder).
PREFERRED_ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "vp8": "libvpx",
                      "av1": "libsvtav1", "prores": "prores_ks"}
#: Tried in order when the input's codec has no encoder or the chosen container refuses it.
FALLBACK_ENCODERS = ("libx264", "libx265", "libsvtav1", "libvpx-vp9", "ffv1")
#: Constant-rate-factor encoders and their default CRF (visually transparent at typical sizes; ``--crf``).
DEFAULT_CRF = {"libx264": 18, "libx265": 18, "libvpx-vp9": 24, "libvpx": 10, "libsvtav1": 28}
#: Fixed-quantiser encoders and their default qscale (1 best .. 31; ``--qscale``).
DEFAULT_QSCALE = {"mpeg4": 2, "mpeg2video": 2, "mpeg1video": 2, "mjpeg": 2, "msmpeg4v2": 2, "msmpeg4": 2,
                  "wmv2": 2, "flv": 2, "h263p": 2}
def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when the extension is one of :data:`VIDEO_EXTENSIONS`."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def output_extension(src: str | os.PathLike[str], container: str | None = None) -> str:
    """The extension of the output of video ``src``: ``container``'s, else the input's, else ``.mkv``.

    Parameters
    ----------
    src : path
        The input video.
    container : str, optional
        ``--container`` (``'mkv'`` or ``'.mkv'``); must be a key of :data:`CONTAINERS`.
    """
    if container:
        return normalise_container(container)
    ext = Path(src).suffix.lower()
    return DEFAULT_CONTAINER if ext in REWRAPPED or ext not in CONTAINERS else ext


def normalise_container(name: str) -> str:
    """``'mkv'``/``'.MKV'`` -> ``'.mkv'``; ``ValueError`` for a container not in :data:`CONTAINERS`."""
    ext = "." + name.lower().lstrip(".")
    if ext not in CONTAINERS:
        raise ValueError(f"unknown video container {name!r} (use {', '.join(c[1:] for c in CONTAINERS)})")
    return ext


@dataclass(frozen=True)
class VideoOptions:
    """How video outputs are encoded (``gpu-deconv run`` flags from :func:`add_video_arguments`).

    Parameters
    ----------
    codec : str, optional
        Encoder (``'libx264'``) or codec name (``'h264'``, ``'hevc'``, ``'ffv1'``...). Default: the input's
        codec (:data:`PREFERRED_ENCODERS`), else the first of :data:`FALLBACK_ENCODERS` that the container
        and pixel format allow.
    crf : float, optional
        Constant rate factor for the encoders in :data:`DEFAULT_CRF` (lower is better).
    qscale : float, optional
        Fixed quantiser (1 = best .. 31) for the encoders in :data:`DEFAULT_QSCALE` (``--quality`` is the
        images' 1..100 scale; a video encoder takes ``--crf`` or ``--qscale``).
    pix_fmt : str, optional
        Output pixel format (FFmpeg name, e.g. ``'yuv420p10le'``). Default: the input's, or the encoder's
        closest one (same depth, chroma and alpha where possible; the user is told).
    container : str, optional
        Output container (``'mkv'``, ``'mp4'``...). Default: :func:`output_extension`.
    odd_size : {'pad', 'crop', 'error'}
        What to do where the encoder cannot store an odd width/height (module docstring).
    """

    codec: str | None = None
    crf: float | None = None
    qscale: float | None = None
    pix_fmt: str | None = None
    container: str | None = None
    odd_size: str = "pad"

    def __post_init__(self) -> None:
        if self.odd_size not in ODD_SIZE_RULES:
            raise ValueError(f"odd_size must be one of {', '.join(ODD_SIZE_RULES)}, got {self.odd_size!r}")
        if self.crf is not None and self.qscale is not None:
            raise ValueError("give --crf or --qscale, not both")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ValueError(f"--crf must be in 0..63, got {self.crf:g}")
        if self.qscale is not None and not 1 <= self.qscale <= 31:
            raise ValueError(f"--qscale must be in 1..31, got {self.qscale:g}")
        if self.container is not None:
            object.__setattr__(self, "container", normalise_container(self.container))
        if self.codec is not None:
            _encoder(self.codec)
        if self.pix_fmt is not None:
            try:
                import av

                av.VideoFormat(self.pix_fmt)
            except (ValueError, TypeError):
                raise ValueError(f"unknown pixel format {self.pix_fmt!r} (FFmpeg names, e.g. yuv420p10le)") from None


def _encoder(name: str):
    """The PyAV encoder for an encoder or codec name; ``ValueError`` when FFmpeg has none."""
    import av  # only when a --codec is given (PyAV costs ~0.4 s of start-up)

    name = PREFERRED_ENCODERS.get(name, name)
    try:
        codec = av.Codec(name, "w")
    except Exception:  # av.codec.codec.UnknownCodecError
        raise ValueError(f"no video encoder named {name!r} in this FFmpeg (e.g. libx264, libx265, libsvtav1, "
                         "libvpx-vp9, ffv1, prores_ks)") from None
    if codec.type != "video":
        raise ValueError(f"{name!r} is not a video encoder")
    return codec


def _arg(kind: Callable[[str], Any], check: Callable[[Any], None]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
            check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(one_line(e)) from None
        return value

    return parse


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--codec``, ``--crf``, ``--qscale``, ``--pix-fmt``, ``--container``, ``--odd-size`` to ``parser``.

    Values are checked while parsing (exit code 2 with a one-line reason); build the options with
    :func:`video_options_from_args`.
    """
    g = parser.add_argument_group("video outputs (default: the input's container, codec and pixel format)")
    g.add_argument("--codec", type=_arg(str, lambda v: VideoOptions(codec=v)), default=None,
                   help="video encoder, e.g. libx264, libx265, libsvtav1, libvpx-vp9, ffv1, prores_ks")
    g.add_argument("--crf", type=_arg(float, lambda v: VideoOptions(crf=v)), default=None,
                   help="constant rate factor for x264/x265/VP9/AV1 (default 18/18/24/28; lower is better)")
    g.add_argument("--qscale", type=_arg(float, lambda v: VideoOptions(qscale=v)), default=None,
                   help="fixed quantiser 1 (best)..31 for MPEG-2/MPEG-4/MJPEG (default 2)")
    g.add_argument("--pix-fmt", type=_arg(str, lambda v: VideoOptions(pix_fmt=v)), default=None,
                   help="output pixel format, e.g. yuv420p10le (default: the input's)")
    g.add_argument("--container", type=_arg(normalise_container, lambda v: None), default=None,
                   help="output container for videos: " + ", ".join(c[1:] for c in CONTAINERS)
                   + f" (default: the input's; {DEFAULT_CONTAINER} for " + "/".join(REWRAPPED[:5]) + ")")
    g.add_argument("--odd-size", choices=ODD_SIZE_RULES, default="pad",
                   help="odd width/height where the encoder needs even: pad (repeat the last column/row), "
                        "crop, or error (default: pad)")


def video_options_from_args(args: argparse.Namespace) -> VideoOptions:
    """:class:`VideoOptions` from the flags :func:`add_video_arguments` added (``ValueError`` if inconsistent)."""
    return VideoOptions(codec=args.codec, crf=args.crf, qscale=args.qscale, pix_fmt=args.pix_fmt,
                        container=args.container, odd_size=args.odd_size)


