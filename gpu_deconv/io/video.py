"""Video files on PyAV: frames in their native depth, exact timestamps, colour and HDR tags, every stream kept.

PyAV (``av``) wraps FFmpeg's libraries in-process: frames come as arrays in their native format, packets keep
their timestamps, and streams that are not processed are copied packet for packet. What this module keeps,
and how:

* **Pixels.** A frame is converted once, by swscale, into the array the engine takes: ``uint8`` RGBA for 8-bit
  sources, ``uint16`` RGBA (full 16-bit scale, ``bits`` = the source depth for the noise model) for 9-16-bit
  sources, one channel for gray sources. The output is converted back into the *input's* pixel format (depth,
  chroma subsampling, alpha) with the input's matrix and range. Chroma is upsampled bicubically and
  downsampled by area averaging with accurate rounding (:data:`DECODE_FLAGS`, :data:`ENCODE_FLAGS`): an
  identity round trip of in-gamut 4:2:0 / 4:2:2 content is then within one code (measured in
  ``tests/test_video_formats.py``); Y'CbCr triplets outside the RGB gamut (saturated chroma edges) are
  clipped by the RGB step, as in any RGB-domain filter. An alpha plane is copied from the decoded frame into
  the encoded one, bit for bit.
* **Transfer.** SDR video (BT.709 / BT.601 / BT.2020 SDR, i.e. a BT.1886 display) is handed to the engine as
  sRGB-coded values: the sRGB curve is within a few percent of BT.1886 over the range that matters and is
  what the engine decodes exactly. PQ (SMPTE ST 2084) and HLG (ARIB STD-B67) video, chosen from the
  stream's transfer tag, is decoded on the CPU to linear float32 with 1.0 = :data:`HDR_REFERENCE_WHITE_NITS`
  (ITU-R BT.2408 reference white), values above 1 kept (PQ peaks at 49.3), filtered by the engine in float,
  and re-encoded on the CPU: :func:`hdr_codes_to_linear` and :func:`linear_to_hdr_codes` are that one
  conversion (the engine's shaders will take it over).
* **Colour and HDR metadata.** Primaries, transfer, matrix and range are written to the encoder (VUI) and
  the container. Mastering-display colour volume and content light level (frame side data) are written by
  the encoders that can store them (libx265, libsvtav1); with any other encoder the user is told in one line.
  A rotation (display matrix) is carried as a tag, pixels are not rotated.
* **Time.** Each frame keeps its own presentation timestamp and duration, in the input stream's time base
  (a container that imposes its own, Matroska's 1 ms, rounds to it): a variable-frame-rate input stays
  variable, and the frame count and duration equal the input's. If the input starts late (MPEG-TS
  clocks), every stream is shifted by the same amount so the output starts at 0, as ffmpeg does.
* **Other streams.** Audio, subtitles, data streams, extra video streams (cover art), attachments,
  chapters, container and stream metadata (title, creation_time, language, disposition) are copied without
  re-encoding. A stream the output container cannot hold is reported in one line and left out.
* **Output container and codec** (:class:`VideoOptions`, flags from :func:`add_video_arguments`): by default
  the input's container (for ``.avi``/``.ts``/``.mts``/``.m2ts``/``.flv`` and the other containers in
  :data:`REWRAPPED`, ``.mkv``: it holds every codec, variable frame rates, chapters and attachments; the user
  is told), the input's codec when FFmpeg can encode it (:data:`DEFAULT_CRF` / :data:`DEFAULT_QSCALE`
  qscale), and the input's pixel format.
* **Odd sizes.** Some encoders cannot store a frame whose width (4:2:0, 4:2:2) or height (4:2:0) is odd
  (libx264, libx265, ProRes); VP9, AV1, FFV1 and MPEG-4 can. Only where the encoder refuses the exact size,
  ``odd_size`` (``--odd-size``) decides: ``'pad'`` (default) repeats the last column/row (nothing is lost;
  the output is one pixel larger), ``'crop'`` drops it, ``'error'`` refuses. The user is told in one line.
* **Damaged input.** A truncated file (frames end before the duration its container states) or a packet the
  decoder rejects does not stop the run: the frames that decoded are written and :attr:`VideoReader.damage`
  holds one line naming the file and the time where decoding stopped.
* **Safety.** The output is written to a temp file in the target folder and renamed into place at the end
  (:mod:`gpu_deconv.io.atomic`); an exception or Ctrl-C removes it and leaves any existing file untouched.

Threads: the reader demuxes, decodes and converts on its own thread ahead of the consumer; the writer
converts, encodes and muxes on another; FFmpeg's codecs use their own frame/slice threads. PyAV releases
the GIL inside FFmpeg calls, so these overlap the engine's work.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VideoError, one_line
from .atomic import commit_temp, temp_path
from .video_options import (  # noqa: F401 - re-exported: the video API in one place
    CONTAINERS,
    DEFAULT_CONTAINER,
    DEFAULT_CRF,
    DEFAULT_QSCALE,
    FALLBACK_ENCODERS,
    ODD_SIZE_RULES,
    PREFERRED_ENCODERS,
    REWRAPPED,
    VIDEO_EXTENSIONS,
    VideoOptions,
    _encoder,
    add_video_arguments,
    is_video_path,
    normalise_container,
    output_extension,
    video_options_from_args,
)

#: Linear value 1.0 of HDR video, in cd/m2: the HDR reference white of ITU-R BT.2408 (graphics white, the
#: level SDR white is mapped to), so SDR-like content lies in [0, 1] and highlights above it.
HDR_REFERENCE_WHITE_NITS = 203.0

#: Extra encoder options (speed/behaviour; quality is set from the tables above).
_ENCODER_OPTIONS = {
    "libx264": {"preset": "medium"},
    "libx265": {"preset": "medium"},
    "libvpx-vp9": {"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"},
    "libvpx": {"b": "20M", "deadline": "good", "cpu-used": "4"},
    "libsvtav1": {"preset": "8"},
    "ffv1": {"level": "3"},
}
#: ProRes profile names (as PyAV reports the input's) -> prores_ks ``profile``.
_PRORES_PROFILES = {"proxy": "proxy", "lt": "lt", "standard": "standard", "hq": "hq", "4444": "4444",
                    "4444xq": "4444xq", "xq": "4444xq"}

# FFmpeg's colour enums (libavutil/pixfmt.h), by value, with FFmpeg's names.
_PRIMARIES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
              9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_TRANSFERS = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
              9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
              15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_MATRICES = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
             8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
             13: "chroma-derived-c", 14: "ictcp"}
_RANGES = {0: "unknown", 1: "tv", 2: "pc"}
_TRC_PQ, _TRC_HLG = 16, 18
# AVColorSpace -> the swscale matrix constant (SWS_CS_*) PyAV's reformat takes.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}

# swscale flags (libswscale/swscale.h): measured in tests/test_video_formats.py. Bicubic chroma upsampling with
# full horizontal interpolation and accurate rounding into 8-bit RGB; into 16-bit RGB the same without
# SWS_FULL_CHR_H_INT (with bilinear it corrupts 16-bit output in this FFmpeg). Area-averaged chroma from full
# RGB input on the way back.
_SWS_BILINEAR, _SWS_BICUBIC, _SWS_AREA = 0x2, 0x4, 0x20
_SWS_FULL_CHR_H_INT, _SWS_FULL_CHR_H_INP, _SWS_ACCURATE_RND = 0x2000, 0x4000, 0x40000
DECODE_FLAGS = {8: _SWS_BICUBIC | _SWS_ACCURATE_RND | _SWS_FULL_CHR_H_INT, 16: _SWS_BICUBIC | _SWS_ACCURATE_RND}
ENCODE_FLAGS = _SWS_AREA | _SWS_ACCURATE_RND | _SWS_FULL_CHR_H_INP

# Stream tags that describe the old encode and would be wrong on the new file.
_STALE_TAGS = {"encoder", "duration", "number_of_frames", "number_of_bytes", "_statistics_tags",
               "_statistics_writing_app", "_statistics_writing_date_utc", "bps"}

_END = object()


def _av():
    """PyAV, imported on first use (``import av`` costs ~0.4 s; ``gpu-deconv --help`` must stay fast)."""
    import av

    return av


def ffmpeg_exe() -> str:
    """An ``ffmpeg`` binary, for making test clips and for the benchmark's side-by-side runs.

    The package itself never runs it (it uses PyAV). ``$GPU_DECONV_FFMPEG``, else ``ffmpeg`` on ``PATH``, else
    the binary imageio-ffmpeg bundles. Raises ``FileNotFoundError`` when there is none.
    """
    import shutil

    exe = os.environ.get("GPU_DECONV_FFMPEG") or shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FileNotFoundError("no ffmpeg binary: install Debian's ffmpeg or pip install imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


# ---------------------------------------------------------------------------------------------------------------
# HDR transfer (the CPU half of the HDR path; the engine filters linear float)


def _hlg_reference_white() -> np.float32:
    from ..core.colour import hlg_to_linear

    return hlg_to_linear(np.float32(0.75))


def hdr_codes_to_linear(codes: np.ndarray, transfer: str) -> np.ndarray:
    """Non-linear HDR signal in [0, 1] -> linear light with 1.0 = :data:`HDR_REFERENCE_WHITE_NITS`, in place.

    PQ: ``pq_to_linear(E') * 10000 / 203`` (display light; peak 49.26). HLG: scene light
    ``hlg_to_linear(E') / hlg_to_linear(0.75)``: the HLG reference white (signal 75 %) maps to 1.0, peak 3.78.

    Parameters
    ----------
    codes : ndarray of float32
        R'G'B' signal values (as swscale's ``gbrpf32le`` gives them); overwritten.
    transfer : {'pq', 'hlg'}

    References
    ----------
    SMPTE ST 2084; ARIB STD-B67 / ITU-R BT.2100; ITU-R BT.2408 (reference white 203 cd/m2).
    """
    from ..core.colour import hlg_to_linear, pq_to_linear

    if transfer == "pq":
        codes[...] = pq_to_linear(codes) * np.float32(10000.0 / HDR_REFERENCE_WHITE_NITS)
    elif transfer == "hlg":
        codes[...] = hlg_to_linear(codes) / _hlg_reference_white()
    else:
        raise ValueError(f"transfer must be 'pq' or 'hlg', got {transfer!r}")
    return codes


def linear_to_hdr_codes(linear: np.ndarray, transfer: str, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`hdr_codes_to_linear`: linear light (1.0 = 203 cd/m2) -> PQ or HLG signal values."""
    from ..core.colour import linear_to_hlg, linear_to_pq

    x = np.asarray(linear, dtype=np.float32)
    if transfer == "pq":
        v = linear_to_pq(x * np.float32(HDR_REFERENCE_WHITE_NITS / 10000.0))
    elif transfer == "hlg":
        v = linear_to_hlg(x * _hlg_reference_white())
    else:
        raise ValueError(f"transfer must be 'pq' or 'hlg', got {transfer!r}")
    if out is None:
        return v
    out[...] = v
    return out


# ---------------------------------------------------------------------------------------------------------------
# probing


@dataclass(frozen=True)
class HdrMetadata:
    """HDR10 static metadata of a stream (SMPTE ST 2086 mastering display, CTA-861.3 content light level).

    Attributes
    ----------
    primaries : ((x, y), (x, y), (x, y)) or None
        Mastering display R, G, B chromaticities (CIE 1931 xy).
    white_point : (x, y) or None
    luminance : (min, max) or None
        Mastering display luminance in cd/m2.
    max_cll, max_fall : int or None
        Maximum content / frame-average light level in cd/m2.
    """

    primaries: tuple[tuple[float, float], ...] | None = None
    white_point: tuple[float, float] | None = None
    luminance: tuple[float, float] | None = None
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def from_frame(cls, frame) -> HdrMetadata | None:
        """Parse a decoded PyAV frame's side data (``AVMasteringDisplayMetadata``, ``AVContentLightMetadata``)."""
        values: dict[str, Any] = {}
        for sd in frame.side_data:
            name = sd.type.name
            raw = bytes(sd)
            if name == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
                v = struct.unpack("<22i", raw[:88])  # 10 AVRationals, has_primaries, has_luminance
                q = [v[i] / v[i + 1] if v[i + 1] else 0.0 for i in range(0, 20, 2)]  # R, G, B xy; WP; min; max
                if v[20]:
                    values["primaries"] = ((q[0], q[1]), (q[2], q[3]), (q[4], q[5]))
                    values["white_point"] = (q[6], q[7])
                if v[21]:
                    values["luminance"] = (q[8], q[9])
            elif name == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
                values["max_cll"], values["max_fall"] = struct.unpack("<2I", raw[:8])
        return cls(**values) if values else None

    def x265_params(self) -> list[str]:
        """``x265-params`` entries (``master-display`` in 1/50000 and 1/10000 cd/m2 units, ``max-cll``)."""
        out = []
        if self.primaries and self.white_point and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries

            def c(v: float) -> int:
                return round(v * 50000)

            wx, wy = self.white_point
            lo, hi = self.luminance
            out.append(f"master-display=G({c(gx)},{c(gy)})B({c(bx)},{c(by)})R({c(rx)},{c(ry)})"
                       f"WP({c(wx)},{c(wy)})L({round(hi * 10000)},{round(lo * 10000)})")
        if self.max_cll is not None:
            out.append(f"max-cll={self.max_cll},{self.max_fall or 0}")
        return out

    def svtav1_params(self) -> list[str]:
        """``svtav1-params`` entries (``mastering-display`` in floats, ``content-light``)."""
        out = []
        if self.primaries and self.white_point and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            wx, wy = self.white_point
            lo, hi = self.luminance
            out.append(f"mastering-display=G({gx:.4f},{gy:.4f})B({bx:.4f},{by:.4f})R({rx:.4f},{ry:.4f})"
                       f"WP({wx:.4f},{wy:.4f})L({hi:.4f},{lo:.4f})")
        if self.max_cll is not None:
            out.append(f"content-light={self.max_cll},{self.max_fall or 0}")
        return out


@dataclass(frozen=True)
class StreamInfo:
    """A stream other than the processed video: what would be copied."""

    index: int
    type: str  # 'audio', 'subtitle', 'data', 'attachment', 'video'
    codec: str
    language: str | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found (the first video stream; its first frame was decoded).

    Attributes
    ----------
    path : str
    width, height : int
        Coded frame size (rotation is a tag, not applied).
    fps : Fraction
        Average frame rate (exact, e.g. ``Fraction(24000, 1001)``); for a variable-rate stream the mean.
    time_base : Fraction
        The stream's time base (timestamps are kept in it).
    frame_count : int
        From the container's index when it has one (exact), else ``round(duration * fps)``; exact with
        ``count_frames=True``.
    frame_count_exact : bool
    duration : float or None
        Video stream duration in seconds (the container's when the stream states none).
    codec : str
        Decoder name (``'h264'``, ``'hevc'``, ``'ffv1'``).
    profile : str or None
    pix_fmt : str
        FFmpeg's name of the decoded pixel format (``'yuv420p10le'``).
    bit_depth : int
        Bits per component of the pixel format.
    chroma : (int, int)
        log2 chroma subsampling (x, y): (1, 1) 4:2:0, (1, 0) 4:2:2, (0, 0) 4:4:4 or RGB/gray.
    has_alpha, is_gray, is_rgb : bool
    colour : dict
        ``primaries``, ``transfer``, ``matrix``, ``range`` as FFmpeg's enum values (ints).
    hdr : HdrMetadata or None
    rotation : int
        Display rotation in degrees (counter-clockwise), 0 when none.
    display_matrix : tuple of 9 ints or None
        The raw display matrix (carried to the output).
    container : str
        FFmpeg's demuxer name (``'mov,mp4,m4a,3gp,3g2,mj2'``, ``'matroska,webm'``).
    streams : tuple of StreamInfo
        Every other stream (audio, subtitles, data, attachments, other video).
    """

    path: str
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int
    frame_count_exact: bool
    duration: float | None
    codec: str
    profile: str | None
    pix_fmt: str
    bit_depth: int
    chroma: tuple[int, int]
    has_alpha: bool
    is_gray: bool
    is_rgb: bool
    colour: dict[str, int] = field(default_factory=dict)
    hdr: HdrMetadata | None = None
    rotation: int = 0
    display_matrix: tuple[int, ...] | None = None
    container: str = ""
    streams: tuple[StreamInfo, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return (self.width, self.height)

    @property
    def audio_codecs(self) -> tuple[str, ...]:
        """Codec of each audio stream."""
        return tuple(s.codec for s in self.streams if s.type == "audio")

    @property
    def has_audio(self) -> bool:
        """True when there is at least one audio stream."""
        return any(s.type == "audio" for s in self.streams)

    @property
    def fps_float(self) -> float:
        """The frame rate as a float."""
        return float(self.fps)

    @property
    def transfer(self) -> str:
        """``'pq'``, ``'hlg'`` or ``'sdr'`` (anything else), from the transfer tag."""
        trc = self.colour.get("transfer", 2)
        return "pq" if trc == _TRC_PQ else "hlg" if trc == _TRC_HLG else "sdr"

    @property
    def colour_names(self) -> dict[str, str]:
        """The colour tags by FFmpeg's names (``{'primaries': 'bt2020', 'transfer': 'smpte2084', ...}``)."""
        tables = {"primaries": _PRIMARIES, "transfer": _TRANSFERS, "matrix": _MATRICES, "range": _RANGES}
        return {k: tables[k].get(v, str(v)) for k, v in self.colour.items()}


def _check_input_file(p: str) -> None:
    if not os.path.exists(p):
        raise VideoError(p, "no such file")
    if os.path.isdir(p):
        raise VideoError(p, "is a directory, not a video file")
    if os.path.getsize(p) == 0:
        raise VideoError(p, "empty file (0 bytes)")


def _open_input(p: str):
    """``av.open(p)`` with FFmpeg's failures turned into one-line :class:`VideoError` s."""
    from .images import looks_like_text

    av = _av()
    _check_input_file(p)
    try:
        container = av.open(p, "r")
    except av.error.FFmpegError as e:
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            head = fh.read(64)
        if head[4:8] == b"ftyp":
            raise VideoError(p, "truncated or unfinished MP4/MOV (its index, the moov atom, is missing)") from None
        if looks_like_text(head):
            raise VideoError(p, "not a video: content looks like text") from None
        raise VideoError(p, f"not a video (FFmpeg: {e.strerror or one_line(e)})") from None
    except OSError as e:
        raise VideoError(p, f"cannot read: {e.strerror or e}") from None
    name = container.format.name
    if name == "image2" or name.endswith("_pipe"):  # png_pipe, jpeg_pipe...: one picture
        container.close()
        raise VideoError(p, f"is a still image ({name}), not a video")
    if not container.streams.video:
        container.close()
        raise VideoError(p, "has no video stream")
    return container


def _main_video_stream(container):
    """The stream to process: the first video stream that is not cover art."""
    for s in container.streams.video:
        if not (s.disposition & 0x400):  # AV_DISPOSITION_ATTACHED_PIC
            return s
    return container.streams.video[0]


def _pix_fmt_props(pix_fmt: str) -> tuple[int, tuple[int, int], bool, bool, bool]:
    """(bit depth, log2 chroma subsampling (x, y), has alpha, is gray, is RGB) of an FFmpeg pixel format."""
    f = _av().VideoFormat(pix_fmt, 16, 16)
    comps = f.components
    depth = max(c.bits for c in comps)
    alpha = any(c.is_alpha for c in comps)
    rgb = bool(f.is_rgb or f.has_palette)
    gray = not rgb and sum(1 for c in comps if not c.is_alpha) == 1
    chroma = (0, 0)
    if not rgb and not gray:
        chroma = (int(round(np.log2(16 / f.chroma_width(16)))), int(round(np.log2(16 / f.chroma_height(16)))))
    return depth, chroma, alpha, gray, rgb


def _alpha_plane(pix_fmt: str) -> int | None:
    """Index of the plane that holds only alpha in a planar format (``yuva*``, ``gbrap*``), else None."""
    f = _av().VideoFormat(pix_fmt, 16, 16)
    alpha = [c for c in f.components if c.is_alpha]
    if not alpha or sum(1 for c in f.components if c.plane == alpha[0].plane) != 1:
        return None
    return alpha[0].plane


def _decoder_for(stream):
    """A decoder for ``stream``: its own codec context, or libvpx for VP8/VP9 with an alpha channel
    (FFmpeg's native VP8/VP9 decoders drop the alpha that WebM stores beside each frame)."""
    av = _av()
    name = stream.codec_context.name
    tags = {k.lower(): v for k, v in stream.metadata.items()}
    if tags.get("alpha_mode") == "1" and name in ("vp8", "vp9"):
        dec = av.CodecContext.create("libvpx-vp9" if name == "vp9" else "libvpx", "r")
        dec.width, dec.height = stream.codec_context.width, stream.codec_context.height
        return dec
    cc = stream.codec_context
    cc.thread_type = "AUTO"  # frame and slice threads
    return cc


def _duration_tag(stream) -> float | None:
    """Matroska's per-stream ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``) in seconds."""
    text = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text or "")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def _stream_duration(container, stream) -> float | None:
    """The video stream's stated duration in seconds: the stream's, Matroska's tag, or the container's when
    the video is its only stream (else the container's covers the longest stream, often the audio)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = _duration_tag(stream)
    if tag is not None:
        return tag
    if container.duration and len(container.streams) == 1:
        return container.duration / 1e6
    return None


def _side_data(frame, name: str) -> bytes | None:
    for sd in frame.side_data:
        if sd.type.name == name:
            return bytes(sd)
    return None


def probe_video(path: str | os.PathLike[str], *, count_frames: bool = False) -> VideoInfo:
    """Describe a video file: open it with PyAV and decode its first frame.

    Parameters
    ----------
    path : str or path-like
    count_frames : bool
        Count the video packets (reads the whole file, decodes nothing) for an exact ``frame_count``.

    Raises
    ------
    VideoError
        Missing, empty, not a video, a still image, truncated before its index, no video stream, or no
        decodable frame.
    """
    p = os.fspath(path)
    container = _open_input(p)
    try:
        vs = _main_video_stream(container)
        cc = vs.codec_context
        dec = _decoder_for(vs)
        first = None
        failure = "truncated or corrupt"
        with contextlib.suppress(_av().error.FFmpegError):  # a damaged file may still hold a first frame
            for packet in container.demux(vs):
                try:
                    first = next(iter(dec.decode(packet)), None)
                except _av().error.FFmpegError as e:
                    failure = e.strerror or one_line(e)
                if first is not None:
                    break
        if first is None:
            with contextlib.suppress(_av().error.FFmpegError):
                first = next(iter(dec.decode(None)), None)  # frames held back by the decoder's threads
        if first is None:
            raise VideoError(p, f"no decodable video frame ({failure})")
        pix_fmt = first.format.name
        depth, chroma, alpha, gray, rgb = _pix_fmt_props(pix_fmt)
        tb = Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000)
        fps = Fraction(vs.average_rate or vs.guessed_rate or vs.base_rate or 25)
        duration = _stream_duration(container, vs)
        exact = bool(vs.frames)
        count = int(vs.frames) if vs.frames else (round(duration * fps) if duration else 0)
        matrix = _side_data(first, "DISPLAYMATRIX")
        colour = {"primaries": int(first.color_primaries), "transfer": int(first.color_trc),
                  "matrix": int(first.colorspace), "range": int(first.color_range)}
        for key, attr in (("primaries", "color_primaries"), ("transfer", "color_trc"), ("matrix", "colorspace"),
                          ("range", "color_range")):
            if colour[key] in (0, 2) and key != "range" or key == "range" and colour[key] == 0:
                colour[key] = int(getattr(cc, attr))  # the container may state what the bitstream does not
        streams = tuple(
            StreamInfo(s.index, s.type, (s.codec_context.codec.canonical_name if s.codec_context is not None
                                         else s.type), s.metadata.get("language"))
            for s in container.streams if s.index != vs.index)
        if count_frames:
            container.seek(0)
            count = sum(1 for pk in container.demux(vs) if pk.size)
            exact = True
        return VideoInfo(
            path=p, width=first.width, height=first.height, fps=fps, time_base=tb, frame_count=int(count),
            frame_count_exact=exact, duration=duration, codec=cc.name,
            profile=(vs.profile if isinstance(vs.profile, str) else None), pix_fmt=pix_fmt, bit_depth=depth,
            chroma=chroma, has_alpha=alpha, is_gray=gray, is_rgb=rgb, colour=colour,
            hdr=HdrMetadata.from_frame(first), rotation=int(first.rotation) if matrix else 0,
            display_matrix=struct.unpack("<9i", matrix[:36]) if matrix and len(matrix) >= 36 else None,
            container=container.format.name, streams=streams)
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------------------------
# pixels


@dataclass(frozen=True)
class PixelFormat:
    """How a video's frames are handed to the engine.

    Attributes
    ----------
    layout : str
        swscale format of the arrays: ``'rgba'``, ``'rgba64le'``, ``'rgb24'``, ``'rgb48le'``, ``'gray'``,
        ``'gray16le'`` (integer, sRGB-coded) or ``'gbrpf32le'`` (HDR: decoded to linear float32).
    dtype : numpy dtype
    channels : int
        1, 3 or 4 (arrays are (H, W) for 1).
    space : {'srgb', 'linear'}
        What the values are: sRGB-coded integers (SDR; module docstring) or linear light (HDR).
    bits : int or None
        The source's bit depth (its quantisation noise), None for HDR float.
    transfer : {'sdr', 'pq', 'hlg'}
    """

    layout: str
    dtype: np.dtype
    channels: int
    space: str
    bits: int | None
    transfer: str

    @classmethod
    def for_video(cls, info: VideoInfo, channels: int | str = 3, depth: int | None = None) -> PixelFormat:
        """The format for ``info``'s frames.

        Parameters
        ----------
        channels : 3, 4 or 'auto'
            RGB, RGBA (alpha real or opaque; the engine uploads RGBA without repacking), or 'auto': 1 for
            gray sources, else 4.
        depth : 8 or 16, optional
            Force the integer sample size; default 8 for <= 8-bit sources, 16 above.
        """
        transfer = info.transfer
        if transfer != "sdr":
            return cls("gbrpf32le", np.dtype(np.float32), 3, "linear", None, transfer)
        wide = (depth or (16 if info.bit_depth > 8 else 8)) > 8
        if channels == "auto":
            channels = 1 if info.is_gray and not info.has_alpha else 4
        if channels not in (1, 3, 4):
            raise ValueError(f"channels must be 1, 3, 4 or 'auto', got {channels!r}")
        layout = {(1, False): "gray", (1, True): "gray16le", (3, False): "rgb24", (3, True): "rgb48le",
                  (4, False): "rgba", (4, True): "rgba64le"}[(channels, wide)]
        return cls(layout, np.dtype(np.uint16 if wide else np.uint8), channels, "srgb", info.bit_depth, "sdr")

    @property
    def sws_flags(self) -> int:
        return DECODE_FLAGS[8 if self.dtype == np.uint8 else 16]


def _sws_matrix(info: VideoInfo) -> int:
    """swscale matrix for ``info``: its tag, else BT.709 for HD and BT.601 for SD (what players assume)."""
    m = info.colour.get("matrix", 2)
    if m in _SWS_MATRIX:
        return _SWS_MATRIX[m]
    return 1 if info.height > 576 else 5


def _float_white(info: VideoInfo, matrix: int) -> np.float32:
    """The float RGB swscale gives for nominal white of ``info``'s pixel format, range and matrix."""
    av = _av()
    f = av.VideoFrame(16, 16, info.pix_fmt)
    full = info.colour.get("range") == 2 or info.is_rgb or info.pix_fmt.startswith("yuvj")
    d = info.bit_depth
    top = (1 << d) - 1
    dt = np.uint16 if d > 8 else np.uint8
    luma = top if full else 235 << (d - 8)
    for i, plane in enumerate(f.planes):
        alpha = any(c.is_alpha for c in f.format.components if c.plane == i)
        chroma = i in (1, 2) and not (alpha or info.is_rgb or info.is_gray)  # Y'CbCr planes: Y, Cb, Cr[, A]
        _plane_array(plane, dt)[...] = (1 << (d - 1)) if chroma else top if alpha or info.is_rgb else luma
    f.color_range = 2 if full else 1
    white = f.reformat(format="gbrpf32le", src_colorspace=matrix).to_ndarray()
    return np.float32(white[0, 0, 1])


@dataclass
class DecodedFrame:
    """One decoded video frame.

    Attributes
    ----------
    pixels : ndarray
        (H, W) or (H, W, C) in :attr:`VideoReader.pixel_format`. For SDR it is a view into ``carrier``.
    pts : int
        Presentation timestamp in ``time_base`` (shifted so the file starts at 0; see the module docstring).
    duration : int
        Display duration in ``time_base``.
    time_base : Fraction
    index : int
        0, 1, 2... in presentation order.
    carrier : av.VideoFrame
        The converted frame ``pixels`` came from; it keeps the decoded frame's properties (timestamps, colour
        tags, side data such as closed captions) for the writer.
    alpha : ndarray or None
        The source's alpha plane in its native depth and layout (copied into the output bit for bit).
    """

    pixels: np.ndarray
    pts: int
    duration: int
    time_base: Fraction
    index: int
    carrier: Any = None
    alpha: np.ndarray | None = None

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


def _plane_array(plane, dtype: np.dtype) -> np.ndarray:
    """A writable (height, width) view of a PyAV plane."""
    itemsize = np.dtype(dtype).itemsize
    a = np.frombuffer(plane, dtype=dtype)
    return a.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]


def _format_time(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:06.3f}" if h else f"{m}:{s:06.3f}"


# ---------------------------------------------------------------------------------------------------------------
# reading


class VideoReader:
    """Decode a video's frames, in order, on a background thread.

    Iterating yields the pixel arrays (``(H, W, 3)`` ``uint8`` RGB for an 8-bit SDR source by default);
    :meth:`frames` yields :class:`DecodedFrame` s with their timestamps; :meth:`items` also yields the packets
    of the other streams, in file order, for :class:`VideoWriter` to copy.

    Parameters
    ----------
    path : str or path-like
    channels : 3, 4 or 'auto'
        See :meth:`PixelFormat.for_video`.
    depth : 8 or 16, optional
        Force 8- or 16-bit integer samples (default: the source's, rounded up).
    prefetch : int
        Frames decoded ahead (0: decode on the caller's thread).
    info : VideoInfo, optional
        A probe result to reuse.

    Attributes
    ----------
    info : VideoInfo
    pixel_format : PixelFormat
    frames_read : int
    damage : str or None
        Once iteration has ended: one line (``"<path>: truncated: ..."``) when the file ended before its
        stated duration or packets could not be decoded; None for a clean file.

    Raises
    ------
    VideoError
        From the constructor (see :func:`probe_video`).
    """

    def __init__(self, path: str | os.PathLike[str], *, channels: int | str = 3, depth: int | None = None,
                 prefetch: int = 4, info: VideoInfo | None = None) -> None:
        self.path = os.fspath(path)
        self.info = info if info is not None else probe_video(self.path)
        self.pixel_format = PixelFormat.for_video(self.info, channels, depth)
        self.frames_read = 0
        self.damage: str | None = None
        self._container = _open_input(self.path)
        self._video = _main_video_stream(self._container)
        self._decoder = _decoder_for(self._video)
        self._matrix = _sws_matrix(self.info)
        self._alpha_plane = _alpha_plane(self.info.pix_fmt) if self.info.has_alpha else None
        #: What swscale makes of this format's nominal white in float RGB: 0.99615 for limited-range 10/12-bit
        #: Y'CbCr (it scales as if to 255 * 256 / 65535). HDR codes are divided by it before the PQ/HLG decode
        #: and multiplied after the encode, so that linear 1.0 is 203 cd/m2 exactly (measured per stream).
        self.float_white = _float_white(self.info, self._matrix) if self.pixel_format.transfer != "sdr" else 1.0
        start = self._container.start_time
        #: Seconds subtracted from every timestamp so the output starts at 0 (MPEG-TS clocks start late).
        self.start_offset = start / 1e6 if start and start > 0 else 0.0
        self._copy = False
        self._prefetch = max(0, int(prefetch))
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._iter: Iterator[Any] | None = None
        self._stop = threading.Event()
        self._closed = False

    # -- streams the writer copies ------------------------------------------------------------------------------
    def copy_streams(self) -> list[Any]:
        """The input's other streams (PyAV streams) and turn on their packets in :meth:`items`."""
        if self._iter is not None:
            raise RuntimeError("copy_streams() must be called before reading")
        self._copy = True
        return [s for s in self._container.streams if s.index != self._video.index]

    @property
    def input_container(self):
        """The PyAV input container (chapters and metadata for the writer; do not demux from it)."""
        return self._container

    # -- producing (reader thread, or the caller's with prefetch=0) --------------------------------------------
    def _produce(self) -> Iterator[Any]:
        av = _av()
        video, dec, container = self._video, self._decoder, self._container
        tb = Fraction(video.time_base) if video.time_base else Fraction(1, 90000)
        shift = round(self.start_offset / tb)
        # attachments have no packets (the writer copies them from the stream itself)
        streams = [s for s in container.streams if s.type != "attachment"] if self._copy else [video]
        default_dur = max(1, round(1 / (self.info.fps * tb))) if self.info.fps else 1
        pending: DecodedFrame | None = None
        first_pts: int | None = None
        first_error: float | None = None
        errors = 0
        last_end = 0
        index = 0

        def finish(frame) -> Iterator[DecodedFrame]:
            nonlocal pending, last_end, index, first_pts
            pts = frame.pts if frame.pts is not None else (pending.pts + pending.duration if pending else 0) + shift
            first_pts = pts - shift if first_pts is None else first_pts
            cur = self._convert(frame, pts - shift, int(frame.duration or 0), tb, index)
            index += 1
            if pending is not None:
                if pending.duration <= 0:
                    pending.duration = max(1, cur.pts - pending.pts)
                last_end = pending.pts + pending.duration
                yield pending
            pending = cur

        try:
            for packet in container.demux(streams):
                if self._stop.is_set():
                    return
                if packet.stream_index != video.index:
                    if packet.size and (packet.dts is not None or packet.pts is not None):
                        yield packet
                    continue
                try:
                    decoded = dec.decode(packet) if packet.size else []
                except av.error.FFmpegError:
                    errors += 1
                    if first_error is None and packet.pts is not None:
                        first_error = float(packet.pts * tb) - self.start_offset
                    continue
                for frame in decoded:
                    yield from finish(frame)
        except av.error.FFmpegError as e:  # the container itself is damaged: stop reading here
            self.damage = (f"{self.path}: unreadable data ({e.strerror or one_line(e)}): decoding stopped at "
                           f"{_format_time(float((last_end - (first_pts or 0)) * tb))}")
        with contextlib.suppress(av.error.FFmpegError):
            for frame in dec.decode(None):  # frames the decoder still holds
                yield from finish(frame)
        if pending is not None:
            if pending.duration <= 0:
                pending.duration = default_dur
            last_end = pending.pts + pending.duration
            yield pending
        if self.damage is None:
            expected = self.info.duration
            got = float((last_end - (first_pts or 0)) * tb)
            frame_time = float(default_dur * tb)
            if expected is not None and got < expected - max(2.0 * frame_time, 0.05):
                self.damage = (f"{self.path}: truncated: decoding stopped at {_format_time(got)} of "
                               f"{_format_time(expected)}")
            elif errors:
                self.damage = (f"{self.path}: corrupt data: {errors} video packet(s) could not be decoded, the "
                               f"first at {_format_time(first_error or 0.0)}")

    def _convert(self, frame, pts: int, duration: int, tb: Fraction, index: int) -> DecodedFrame:
        pf = self.pixel_format
        alpha = None
        if self._alpha_plane is not None and frame.format.name == self.info.pix_fmt:
            dt = np.uint16 if self.info.bit_depth > 8 else np.uint8
            alpha = _plane_array(frame.planes[self._alpha_plane], dt).copy()
        carrier = frame.reformat(format=pf.layout, src_colorspace=self._matrix, interpolation=pf.sws_flags)
        carrier.make_writable()  # a no-op reformat returns the decoder's own (shared) buffer
        if pf.transfer != "sdr":
            codes = carrier.to_ndarray()
            codes *= np.float32(1.0) / self.float_white
            pixels = hdr_codes_to_linear(codes, pf.transfer)
        else:
            pixels = carrier.to_ndarray()
        return DecodedFrame(pixels, pts, duration, tb, index, carrier, alpha)

    # -- consuming ------------------------------------------------------------------------------------------------
    def _worker(self) -> None:
        assert self._queue is not None
        try:
            for item in self._produce():
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer
            self._put(e)

    def _put(self, item: Any) -> bool:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next_item(self) -> Any:
        if self._closed:
            return _END
        if self._iter is None:
            if self._prefetch:
                self._queue = queue.Queue(maxsize=self._prefetch)
                self._thread = threading.Thread(target=self._worker, name="VideoReader", daemon=True)
                self._thread.start()
                self._iter = iter(())
            else:
                self._iter = self._produce()
        if self._queue is not None:
            item = self._queue.get()
        else:
            item = next(self._iter, _END)
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def items(self) -> Iterator[DecodedFrame | Any]:
        """Frames and (after :meth:`copy_streams`) the other streams' PyAV packets, in file order."""
        while True:
            item = self._next_item()
            if item is _END:
                return
            if isinstance(item, DecodedFrame):
                self.frames_read += 1
            yield item

    def frames(self) -> Iterator[DecodedFrame]:
        """The decoded frames with their timestamps."""
        for item in self.items():
            if isinstance(item, DecodedFrame):
                yield item

    def __iter__(self) -> Iterator[np.ndarray]:
        return (f.pixels for f in self.frames())

    def read(self) -> np.ndarray | None:
        """The next frame's pixels, or None at the end."""
        f = self.read_frame()
        return None if f is None else f.pixels

    def read_frame(self) -> DecodedFrame | None:
        """The next :class:`DecodedFrame`, or None at the end."""
        return next(self.frames(), None)

    def close(self) -> None:
        """Stop the decoding thread and close the file (idempotent)."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    while True:  # unblock a worker waiting on a full queue
                        self._queue.get_nowait()  # type: ignore[union-attr]
                self._thread.join(timeout=0.05)
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# ---------------------------------------------------------------------------------------------------------------
# writing


def _layout_of(a: np.ndarray) -> str:
    """swscale format of an integer (H, W[, C]) array handed to :meth:`VideoWriter.write` without a source."""
    c = 1 if a.ndim == 2 else a.shape[2]
    wide = a.dtype == np.uint16
    if a.dtype not in (np.uint8, np.uint16) or c not in (1, 3, 4):
        raise ValueError(f"frames must be uint8/uint16 (H, W), (H, W, 3) or (H, W, 4), got {a.dtype} {a.shape}")
    return {1: "gray16le" if wide else "gray", 3: "rgb48le" if wide else "rgb24",
            4: "rgba64le" if wide else "rgba"}[c]


def _encoder_opens(name: str, pix_fmt: str, width: int, height: int, time_base: Fraction, rate: Fraction) -> bool:
    """Whether encoder ``name`` accepts this size, pixel format and time base (a throw-away open)."""
    av = _av()
    cc = av.CodecContext.create(name, "w")
    cc.width, cc.height, cc.pix_fmt = width, height, pix_fmt
    cc.time_base = time_base
    cc.framerate = rate
    if name == "libx265":
        cc.options = {"x265-params": "log-level=none"}
    try:
        cc.open()
    except av.error.FFmpegError:
        return False
    finally:
        with contextlib.suppress(Exception):
            cc.close()
    return True


def _format_distance(want: str, have: str) -> tuple[int, ...]:
    """Sort key: how far pixel format ``have`` is from ``want`` (alpha, depth, chroma, family)."""
    wd, wc, wa, wg, wr = _pix_fmt_props(want)
    hd, hc, ha, hg, hr = _pix_fmt_props(have)
    return (int(wa != ha), int(hd < wd), abs(hd - wd), int(hc != wc), int((wg, wr) != (hg, hr)),
            int(have.endswith("be")), int(have.startswith(("nv", "p0", "p2", "yuvj"))))


def _copied_metadata(meta: dict[str, str]) -> dict[str, str]:
    """Tags worth carrying: without those that describe the old encode or the old container's brand."""
    drop = _STALE_TAGS | {"major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id"}
    return {k: v for k, v in meta.items() if k.lower() not in drop and not k.lower().startswith("_statistics")}


class VideoWriter:
    """Encode frames into a video file, atomically; copy a source's other streams.

    Two ways to use it:

    * ``VideoWriter(path, source=reader, options=...)`` (what :func:`transcode` does): codec, pixel format,
      colour tags, HDR metadata, rotation, time base and every other stream follow the reader's input
      (module docstring), ``write(pixels, frame)`` takes the processed pixels of each
      :class:`DecodedFrame` and ``mux(packet)`` the packets :meth:`VideoReader.items` yields;
    * ``VideoWriter(path, (width, height), fps)``: integer RGB/RGBA/gray frames at a constant rate, encoded
      with the container's usual codec (H.264, VP9 for ``.webm``) in 4:2:0, tagged BT.709.

    Frames are converted and encoded on a background thread; ``write`` copies what it needs before returning,
    so the caller may reuse its array.

    Parameters
    ----------
    path : str or path-like
        Target; its extension picks the container (:data:`CONTAINERS`).
    size : (int, int), optional
        ``(width, height)`` (required without ``source``).
    fps : Fraction, int, float or str, optional
        Frame rate without ``source`` (timestamps are frame numbers at this rate).
    source : VideoReader, optional
        The input being transcoded; call this before reading from it.
    options : VideoOptions
    overwrite : bool
        Replace an existing file when closing; otherwise an existing target is an error up front.

    Attributes
    ----------
    notes : list of str
        One-line notes for the user (odd-size rule, a stream left out, pixel format changed...).
    codec, pix_fmt : str
        Encoder and pixel format written.
    output_size : (int, int)
        Stored ``(width, height)`` (differs from the input only under ``odd_size`` 'pad' or 'crop').
    frames_written : int
    """

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int] | None = None,
                 fps: float | int | str | Fraction | None = None, *, source: VideoReader | None = None,
                 options: VideoOptions | None = None, overwrite: bool = False) -> None:
        self.path = p = os.fspath(path)
        self.notes: list[str] = []
        self.frames_written = 0
        self._options = options or VideoOptions()
        self._overwrite = overwrite
        self._source = source
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._durations: dict[int, int] = {}
        self._last_pts: int | None = None
        self._exit = contextlib.ExitStack()
        self._out = None
        ext = Path(p).suffix.lower()
        if ext not in CONTAINERS:
            raise VideoError(p, f"unsupported video container {ext!r} (use {', '.join(CONTAINERS)})")
        self._check_target(p)
        info = source.info if source is not None else None
        if info is not None:
            width, height = info.width, info.height
            self._time_base = info.time_base
            self._rate = info.fps
        else:
            if size is None or fps is None:
                raise VideoError(p, "size and fps are needed without a source")
            try:
                width, height = (int(v) for v in size)
                self._rate = Fraction(fps).limit_denominator(1001) if isinstance(fps, float) else Fraction(fps)
            except (TypeError, ValueError, ZeroDivisionError):
                raise VideoError(p, f"size must be (width, height) and fps a number, got {size!r}, {fps!r}") from None
            if width <= 0 or height <= 0 or self._rate <= 0:
                raise VideoError(p, f"size and fps must be positive, got {width}x{height} at {fps}")
            self._time_base = 1 / self._rate
        self.size = (width, height)
        try:
            tmp = self._exit.enter_context(temp_path(p, VideoError, suffix=ext))
            self._tmp = tmp
            opts = {"movflags": "+faststart"} if CONTAINERS[ext] in ("mp4", "mov") else {}
            if CONTAINERS[ext] in ("mp4", "mov", "matroska", "webm", "nut"):
                opts["avoid_negative_ts"] = "disabled"  # they store audio pre-roll below 0: keep every time as is
            self._out = _av().open(tmp, "w", format=CONTAINERS[ext], options=opts)
            self._setup(info, ext)
        except BaseException:
            self.abort()
            raise

    # -- set-up ---------------------------------------------------------------------------------------------------
    def _check_target(self, p: str) -> None:
        folder = os.path.dirname(os.path.abspath(p))
        if os.path.isdir(p):
            raise VideoError(p, "is a directory")
        if not os.path.isdir(folder):
            raise VideoError(p, f"output folder {folder} does not exist")
        if os.path.lexists(p) and not self._overwrite:
            raise VideoError(p, "output exists; pass --overwrite to replace it")

    def _choose_encoder(self, info: VideoInfo | None, ext: str):
        opt = self._options
        # MPEG-TS has no codec table for FFmpeg to answer from (it says "unknown"): let the muxer decide
        supported = None if CONTAINERS[ext] == "mpegts" else self._out.supported_codecs

        def fits(codec) -> bool:
            return supported is None or codec.name in supported or codec.canonical_name in supported

        if opt.codec is not None:
            codec = _encoder(opt.codec)
            if not fits(codec):
                raise VideoError(self.path, f"{ext} cannot hold {codec.name}; choose another --container or --codec")
            return codec
        first = ("libvpx-vp9",) if ext == ".webm" else ()
        candidates = ((PREFERRED_ENCODERS.get(info.codec, info.codec),) if info else first) + FALLBACK_ENCODERS
        for name in candidates:
            with contextlib.suppress(ValueError):
                codec = _encoder(name)
                if fits(codec):
                    if info is not None and name != candidates[0]:
                        self.notes.append(f"{info.codec} can't be encoded into {ext} here: using {codec.name}")
                    return codec
        raise VideoError(self.path, f"no encoder available for {ext}")

    def _choose_pix_fmt(self, codec, info: VideoInfo | None, layout: str | None) -> str:
        formats = [f.name for f in (codec.video_formats or [])]
        want = self._options.pix_fmt
        if want is not None:
            if formats and want not in formats:
                raise VideoError(self.path, f"{codec.name} cannot encode {want} (it takes {', '.join(formats)})")
            return want
        if info is not None:
            want = info.pix_fmt
        else:
            want = "yuv420p10le" if layout in ("rgb48le", "rgba64le", "gray16le") else "yuv420p"
        if not formats or want in formats:
            return want
        best = min(formats, key=lambda f: _format_distance(want, f))
        if info is not None:
            lost = " (its alpha channel is dropped)" if info.has_alpha and not _pix_fmt_props(best)[2] else ""
            self.notes.append(f"{codec.name} cannot encode {want}: writing {best}{lost}")
        return best

    def _setup(self, info: VideoInfo | None, ext: str) -> None:
        av = _av()
        out, opt = self._out, self._options
        codec = self._choose_encoder(info, ext)
        self.codec = codec.name
        self.pix_fmt = self._choose_pix_fmt(codec, info, None)
        depth, chroma, has_alpha, _gray, _rgb = _pix_fmt_props(self.pix_fmt)
        w, h = self.size
        step_x, step_y = 1 << chroma[0], 1 << chroma[1]
        self._geometry: tuple[int, int] | None = None  # rows/columns added (pad) or removed (crop)
        if (w % step_x or h % step_y) and not _encoder_opens(self.codec, self.pix_fmt, w, h, self._time_base,
                                                             self._rate):
            rule = opt.odd_size
            if rule == "error":
                raise VideoError(self.path, f"odd frame size {w}x{h} can't be stored by {self.codec} in "
                                            f"{self.pix_fmt}; use --odd-size pad|crop or --codec ffv1/libvpx-vp9")
            if rule == "pad":
                nw, nh = -(-w // step_x) * step_x, -(-h // step_y) * step_y
                how = f"last column/row repeated to {nw}x{nh}"
            else:
                nw, nh = w // step_x * step_x, h // step_y * step_y
                how = f"cropped to {nw}x{nh}"
            self._geometry = (nw - w, nh - h)
            self.notes.append(f"odd frame size {w}x{h}: {self.codec} {self.pix_fmt} needs even sizes, {how} "
                              "(--odd-size)")
            w, h = nw, nh
        self.output_size = (w, h)
        if not _encoder_opens(self.codec, self.pix_fmt, w, h, self._time_base, self._rate):
            if not _encoder_opens(self.codec, self.pix_fmt, w, h, 1 / self._rate, self._rate):
                raise VideoError(self.path, f"{self.codec} cannot encode {w}x{h} {self.pix_fmt}")
            self.notes.append(f"{self.codec} needs a constant frame rate: timestamps rounded to 1/{self._rate}")
            self._time_base = 1 / self._rate
        # the processed video goes where it was among the input's streams; the others are copied
        copied = self._source.copy_streams() if self._source is not None else []
        src_ext = Path(self._source.path).suffix.lower() if self._source is not None else ext
        self._source_muxer = CONTAINERS.get(src_ext)
        video_index = self._source._video.index if self._source is not None else -1
        self._copy_map: dict[int, Any] = {}
        self._video = None
        order = sorted([*copied, "video"], key=lambda s: video_index if s == "video" else s.index)
        for s in order:
            if s == "video":
                self._add_video_stream(av, codec, info, depth, has_alpha)
            else:
                self._add_copy(s, ext)
        if info is not None:
            src = self._source.input_container
            out.metadata.update(_copied_metadata(dict(src.metadata)))
            chapters = src.chapters()
            if chapters:
                if CONTAINERS[ext] in ("avi", "mpegts", "flv"):
                    self.notes.append(f"{len(chapters)} chapter(s) can't be stored in {ext}: left out")
                else:
                    out.set_chapters(chapters)
        try:  # open the encoder and write the header now: a refusal is reported before any frame is decoded
            out.start_encoding()
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"cannot start writing {ext} with {self.codec} {self.pix_fmt} "
                                        f"(FFmpeg: {e.strerror or one_line(e)})") from None

    def _add_video_stream(self, av, codec, info: VideoInfo | None, depth: int, has_alpha: bool) -> None:
        out, opt = self._out, self._options
        vs = out.add_stream(codec.name, rate=self._rate)
        cc = vs.codec_context
        vs.width, vs.height = self.output_size
        vs.pix_fmt = self.pix_fmt
        vs.time_base = self._time_base
        cc.time_base = self._time_base
        cc.framerate = self._rate
        cc.thread_count = 0
        options: dict[str, str] = dict(_ENCODER_OPTIONS.get(codec.name, {}))
        if codec.name in DEFAULT_CRF:
            if opt.qscale is not None:
                raise VideoError(self.path, f"--qscale does not apply to {codec.name}; use --crf")
            options["crf"] = f"{DEFAULT_CRF[codec.name] if opt.crf is None else opt.crf:g}"
        elif codec.name in DEFAULT_QSCALE:
            if opt.crf is not None:
                raise VideoError(self.path, f"--crf does not apply to {codec.name}; use --qscale")
            cc.qscale = True
            cc.global_quality = round((DEFAULT_QSCALE[codec.name] if opt.qscale is None else opt.qscale) * 118)
        elif opt.crf is not None or opt.qscale is not None:
            raise VideoError(self.path, f"{codec.name} has no --crf/--qscale setting")
        if codec.name == "prores_ks":
            prof = _PRORES_PROFILES.get(((info.profile if info else None) or "hq").lower().replace(" ", ""), "hq")
            options["profile"] = "4444" if has_alpha and not prof.startswith("4444") else prof
        if info is not None:
            colour = info.colour
            cc.color_primaries = colour.get("primaries", 2)
            cc.color_trc = colour.get("transfer", 2)
            cc.colorspace = colour.get("matrix", 2)
            cc.color_range = colour.get("range", 0)
            self._matrix = _sws_matrix(info)
            self._range = colour.get("range", 0)
            self._tags = (colour.get("matrix", 2), self._range)
            self._add_hdr(codec.name, info.hdr, options)
            if info.display_matrix is not None:
                vs.set_display_matrix(info.display_matrix)
            src_stream = self._source._video
            vs.metadata.update(_copied_metadata(dict(src_stream.metadata)))
            vs.disposition = int(src_stream.disposition)
            if info.has_alpha and not has_alpha and not any("alpha" in n for n in self.notes):
                self.notes.append(f"{self.pix_fmt} has no alpha channel: the input's alpha is dropped")
        else:
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1
            self._matrix, self._range = 1, 1
            self._tags = (1, 1)
        if codec.name == "libx265":  # x265 prints its settings on stderr unless told otherwise
            options["x265-params"] = ":".join(p for p in ("log-level=error", options.get("x265-params")) if p)
        vs.options = options
        self._video = vs
        self._alpha_plane = _alpha_plane(self.pix_fmt) if has_alpha else None

    def _add_hdr(self, encoder: str, hdr: HdrMetadata | None, options: dict[str, str]) -> None:
        if hdr is None:
            return
        if encoder == "libx265":
            options["x265-params"] = ":".join(["hdr10=1", *hdr.x265_params()])
        elif encoder == "libsvtav1":
            options["svtav1-params"] = ":".join(hdr.svtav1_params())
        else:
            self.notes.append(f"{encoder} can't store the HDR mastering-display / content-light metadata: left out "
                              "(use --codec libx265 or libsvtav1)")

    def _add_copy(self, s, ext: str) -> None:
        out = self._out
        what = f"stream #{s.index} ({s.type} {s.codec_context.name if s.codec_context is not None else ''})".replace(
            " )", ")")
        if s.type == "attachment":
            if CONTAINERS[ext] != "matroska":
                self.notes.append(f"attachment {s.name or s.index} can't be stored in {ext}: left out "
                                  "(use --container mkv)")
                return
            out.add_attachment(s.name or f"attachment{s.index}", s.mimetype or "application/octet-stream",
                               bytes(s.data or b""))
            return
        timecode = s.metadata.get("timecode")
        if s.type == "data" and timecode and self._source._video.metadata.get("timecode") == timecode:
            if CONTAINERS[ext] not in ("mp4", "mov"):  # the tag stays on the video stream
                self.notes.append(f"timecode track #{s.index} can't be stored in {ext}: kept as the video "
                                  f"stream's timecode tag {timecode}")
            return  # mp4/mov: the muxer writes the track anew from the video stream's timecode tag
        if s.type == "data" and CONTAINERS[ext] != self._source_muxer:
            self.notes.append(f"{what} can't be carried into {ext} from {self._source_muxer}: left out")
            return
        try:
            o = out.add_stream_from_template(s, opaque=True)
        except (ValueError, _av().error.FFmpegError):
            self.notes.append(f"{what} can't be stored in {ext}: left out (use --container mkv)")
            return
        o.metadata.update(_copied_metadata(dict(s.metadata)))
        o.disposition = int(s.disposition)
        self._copy_map[s.index] = o

    # -- writing (caller's thread: deposit the pixels; writer thread: convert, encode, mux) ----------------------
    def write(self, pixels: np.ndarray, frame: DecodedFrame | None = None) -> None:
        """Append one frame.

        Parameters
        ----------
        pixels : ndarray
            With a source: the processed pixels of ``frame`` (same shape and dtype as ``frame.pixels``).
            Without: (H, W), (H, W, 3) or (H, W, 4) uint8/uint16 of the writer's size, sRGB-coded.
        frame : DecodedFrame, optional
            The source frame these pixels come from (timestamps, colour, side data, alpha).
        """
        self._raise_pending()
        if self._closed:
            raise VideoError(self.path, "writer is closed")
        a = np.asarray(pixels)
        w, h = self.size
        try:
            if frame is not None:
                if a.shape != frame.pixels.shape or a.dtype != frame.pixels.dtype:
                    raise ValueError(f"pixels {a.dtype} {a.shape} do not match the frame's {frame.pixels.dtype} "
                                     f"{frame.pixels.shape}")
                av_frame = self._deposit(a, frame)
                pts, duration = frame.pts, frame.duration
            else:
                if a.ndim == 3 and a.shape[2] == 1:
                    a = a[..., 0]
                if a.shape[:2] != (h, w):
                    raise ValueError(f"frame shape {a.shape} does not match the writer's size {w}x{h}")
                av_frame = _av().VideoFrame.from_ndarray(np.ascontiguousarray(self._reshape(a)), format=_layout_of(a))
                pts, duration = self.frames_written, 1
        except ValueError as e:
            raise VideoError(self.path, one_line(e)) from None
        self._start()
        self._enqueue(("frame", av_frame, frame.alpha if frame is not None else None, pts, duration))
        self.frames_written += 1

    def _reshape(self, a: np.ndarray) -> np.ndarray:
        """Apply the odd-size rule (pad by repeating the edge, or crop) to (H, W[, C]) ``a``."""
        if self._geometry is None:
            return a
        dx, dy = self._geometry
        if dx >= 0 and dy >= 0:
            return np.pad(a, ((0, dy), (0, dx)) + ((0, 0),) * (a.ndim - 2), mode="edge")
        return a[: a.shape[0] + min(dy, 0), : a.shape[1] + min(dx, 0)]

    def _deposit(self, a: np.ndarray, frame: DecodedFrame):
        """A PyAV frame holding ``a``: the source's carrier (keeps its properties) with the new pixels."""
        av = _av()
        pf = self._source.pixel_format
        carrier = frame.carrier
        if pf.transfer != "sdr":
            codes = linear_to_hdr_codes(a, pf.transfer)
            codes *= self._source.float_white
            if self._geometry is None:
                for plane, ch in zip(carrier.planes, (1, 2, 0), strict=True):  # gbrp plane order
                    _plane_array(plane, np.float32)[...] = codes[..., ch]
                return carrier
            new = av.VideoFrame.from_ndarray(np.ascontiguousarray(self._reshape(codes)), format="gbrpf32le")
        elif self._geometry is None:
            view = carrier.to_ndarray()
            if not np.shares_memory(view, a):
                np.copyto(view, a)
            return carrier
        else:
            new = av.VideoFrame.from_ndarray(np.ascontiguousarray(self._reshape(a)), format=pf.layout)
        for attr in ("color_primaries", "color_trc", "colorspace", "color_range"):
            setattr(new, attr, getattr(carrier, attr))
        return new

    def mux(self, packet) -> None:
        """Copy one packet of another stream of the source (as :meth:`VideoReader.items` yields it)."""
        self._raise_pending()
        if packet.stream_index in self._copy_map:
            self._start()
            self._enqueue(("packet", packet))

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="VideoWriter", daemon=True)
            self._thread.start()

    def _enqueue(self, item: Any) -> None:
        while True:
            self._raise_pending()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_pending(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            self.abort()
            if isinstance(err, VideoError):
                raise err
            raise VideoError(self.path, f"encoding failed: {one_line(err)}") from err

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    self._encode(None)
                    return
                if item[0] == "frame":
                    self._encode(*item[1:])
                else:
                    self._mux_copy(item[1])
        except BaseException as e:
            self._error = e
            with contextlib.suppress(queue.Empty):
                while True:  # let a blocked producer see the error
                    self._queue.get_nowait()

    def _mux_copy(self, packet) -> None:
        shift = self._source.start_offset if self._source is not None else 0.0
        if shift and packet.time_base:
            d = round(shift / packet.time_base)
            if packet.pts is not None:
                packet.pts -= d
            if packet.dts is not None:
                packet.dts -= d
        packet.stream = self._copy_map[packet.stream_index]
        self._out.mux(packet)

    def _encode(self, av_frame, alpha: np.ndarray | None = None, pts: int = 0, duration: int = 0) -> None:
        vs = self._video
        if av_frame is None:
            packets = vs.encode(None)
        else:
            if self._source is not None and self._time_base != self._source.info.time_base:
                scale = self._source.info.time_base / self._time_base  # the encoder's constant-rate clock
                pts, duration = round(pts * scale), max(1, round(duration * scale))
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1  # encoders need strictly increasing timestamps
            self._last_pts = pts
            out = av_frame.reformat(format=self.pix_fmt, dst_colorspace=self._matrix,
                                    dst_color_range=self._range or None, interpolation=ENCODE_FLAGS)
            if alpha is not None and self._alpha_plane is not None and out.format.name == self._source.info.pix_fmt:
                dst = _plane_array(out.planes[self._alpha_plane], alpha.dtype)  # the source's, bit for bit
                dst[...] = self._reshape(alpha)
            out.colorspace, out.color_range = self._tags  # the input's tags, not swscale's assumptions
            out.pts = pts
            out.time_base = self._time_base
            self._durations[pts] = duration
            packets = vs.encode(out)
        for pk in packets:
            if pk.pts is not None:
                pk.duration = self._durations.pop(pk.pts, pk.duration)
            self._out.mux(pk)

    # -- finishing ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush the encoder, write the trailer and move the file into place (idempotent).

        Raises :class:`VideoError` on failure, after removing the temp file.
        """
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise VideoError(self.path, "no frames were written")
            self._start()
            self._enqueue(_END)
            self._thread.join()
            self._raise_pending()
            self._out.close()
            self._out = None
            with open(self._tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            try:
                commit_temp(self._tmp, self.path, overwrite=self._overwrite, error=VideoError)
            except OSError as e:
                raise VideoError(self.path, f"cannot write: {e.strerror or e}") from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._exit.close()

    def abort(self) -> None:
        """Stop encoding and delete the temp file; the target is left as it was (idempotent)."""
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                while self._thread.is_alive():
                    with contextlib.suppress(queue.Empty):
                        while True:
                            self._queue.get_nowait()
                    self._queue.put_nowait(_END)
                    self._thread.join(timeout=0.1)
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
            self._out = None
        self._exit.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed:
                self.abort()


# ---------------------------------------------------------------------------------------------------------------
# transcoding


@dataclass
class TranscodeResult:
    """What :func:`transcode` did.

    Attributes
    ----------
    frames : int
        Frames written.
    notes : list of str
        One-line notes (see :attr:`VideoWriter.notes`).
    damage : str or None
        One line when the input was truncated or corrupt (the frames that decoded were written).
    """

    frames: int
    notes: list[str]
    damage: str | None


def transcode(src: str | os.PathLike[str], dst: str | os.PathLike[str],
              process: Callable[[np.ndarray, PixelFormat], np.ndarray] | None = None, *,
              options: VideoOptions | None = None, overwrite: bool = False, channels: int | str = "auto",
              on_note: Callable[[str], None] | None = None, on_frame: Callable[[DecodedFrame], None] | None = None,
              prefetch: int = 4) -> TranscodeResult:
    """Process every frame of video ``src`` and write ``dst`` with everything else kept (module docstring).

    Parameters
    ----------
    src, dst : path
    process : callable, optional
        ``process(pixels, pixel_format) -> pixels`` on the caller's thread, once per frame in order
        (same shape and dtype back); None copies the frames (a decode/encode round trip).
    options : VideoOptions, optional
    overwrite : bool
    channels : 3, 4 or 'auto'
        Array layout handed to ``process`` (:meth:`PixelFormat.for_video`).
    on_note : callable, optional
        Called with each one-line note as soon as it is known.
    on_frame : callable, optional
        Called after each frame (progress).
    prefetch : int
        Frames decoded ahead.

    Returns
    -------
    TranscodeResult

    Raises
    ------
    VideoError
        Unreadable input, unwritable output, or no frame decoded. The output is then not created.
    """
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        if on_note is not None:
            on_note(msg)

    with VideoReader(src, channels=channels, prefetch=prefetch) as reader:
        writer = VideoWriter(dst, source=reader, options=options, overwrite=overwrite)
        try:
            for msg in writer.notes:
                note(msg)
            fmt = reader.pixel_format
            for item in reader.items():
                if isinstance(item, DecodedFrame):
                    out = item.pixels if process is None else process(item.pixels, fmt)
                    writer.write(out, item)
                    if on_frame is not None:
                        on_frame(item)
                else:
                    writer.mux(item)
            if writer.frames_written == 0:
                raise VideoError(reader.path, "no frames could be decoded")
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return TranscodeResult(writer.frames_written, notes, reader.damage)
