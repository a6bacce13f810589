"""Clips made by ffmpeg inside the video tests, and ways to look at what a file really holds.

Every clip is tiny (64 x 48 or so, a dozen frames) and made from ffmpeg's lavfi sources by the ffmpeg
binary :func:`gpu_deconv.io.video.ffmpeg_exe` finds (imageio-ffmpeg's, or ``$GPU_DECONV_FFMPEG``). The
inspection helpers read files with PyAV directly, independently of the code under test: native planes
(no conversion), packet timestamps, side data.
"""

from __future__ import annotations

import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from gpu_deconv.io.video import ffmpeg_exe

W, H = 64, 48


def ffmpeg(*args: str | Path) -> None:
    """Run ffmpeg quietly; fail the test with its message on error."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-nostdin", "-y", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"ffmpeg failed: {' '.join(cmd)}\n{r.stderr}"


def pattern(size: tuple[int, int] = (W, H), rate: str = "24", pix_fmt: str | None = None) -> list[str]:
    """ffmpeg input arguments of the moving ``testsrc2`` pattern (sharp, saturated edges)."""
    src = f"testsrc2=size={size[0]}x{size[1]}:rate={rate}"
    if pix_fmt:
        src += f",format={pix_fmt}"
    return ["-f", "lavfi", "-i", src]


def smooth_src(size: tuple[int, int] = (W, H), rate: str = "24") -> list[str]:
    """A smooth, in-gamut moving pattern (gradients only): what a mild-blur restorer is fed."""
    expr = (f"geq=r='128+90*sin(X/9+T*3)':g='128+80*cos(Y/7-T*2)':b='128+60*sin((X+Y)/11)',"
            f"scale={size[0]}x{size[1]}")
    return ["-f", "lavfi", "-i", f"color=c=gray:size={size[0]}x{size[1]}:rate={rate},format=rgb24,{expr}"]


def native_planes(path: str | Path) -> list[list[np.ndarray]]:
    """Every frame's planes in the stream's own pixel format (Y, U, V[, A] or G, B, R[, A]) as arrays."""
    import av

    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            out.append(frame_planes(f))
    return out


def frame_planes(f) -> list[np.ndarray]:
    """The planes of a PyAV frame as (height, width) arrays (uint8 or native-endian uint16)."""
    deep = max(c.bits for c in f.format.components) > 8
    planes = []
    for p in f.planes:
        dt = np.uint16 if deep else np.uint8
        a = np.frombuffer(p, dtype=dt).reshape(p.height, p.line_size // np.dtype(dt).itemsize)[:, : p.width]
        planes.append(a.copy())
    return planes


def pixel_format(path: str | Path) -> str:
    import av

    with av.open(str(path)) as c:
        return next(c.decode(video=0)).format.name


def frame_times(path: str | Path) -> list[float]:
    """Presentation times (seconds) of the decoded video frames, in order."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * f.time_base) for f in c.decode(s)]


def stream_end(path: str | Path, kind: str) -> float:
    """End time (seconds) of the first ``kind`` stream: its last packet's pts + duration."""
    import av

    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[0]
        end = 0.0
        for p in c.demux(s):
            if p.pts is not None:
                end = max(end, float((p.pts + p.duration) * p.time_base))
        return end


def packet_times(path: str | Path, kind: str) -> list[float]:
    """Presentation times (seconds) of the first ``kind`` stream's packets, sorted."""
    import av

    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[0]
        return sorted(float(p.pts * p.time_base) for p in c.demux(s) if p.pts is not None)


def time_base(path: str | Path) -> Fraction:
    import av

    with av.open(str(path)) as c:
        return Fraction(c.streams.video[0].time_base)


def hdr_side_data(path: str | Path) -> dict[str, tuple]:
    """Mastering display (22 int32) and content light level (2 uint32) of the first frame, raw."""
    import av

    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        out = {}
        for sd in f.side_data:
            if sd.type.name == "MASTERING_DISPLAY_METADATA":
                out["mastering"] = struct.unpack("<22i", bytes(sd)[:88])
            elif sd.type.name == "CONTENT_LIGHT_LEVEL":
                out["cll"] = struct.unpack("<2I", bytes(sd)[:8])
        return out


def colour_tags(path: str | Path) -> tuple[int, int, int, int]:
    """(primaries, transfer, matrix, range) of the first decoded frame, FFmpeg enum values."""
    import av

    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        return (int(f.color_primaries), int(f.color_trc), int(f.colorspace), int(f.color_range))


def no_temp_files(folder: str | Path) -> bool:
    """True when no ``.gd-*`` temp file (gpu_deconv.io.atomic) is left in ``folder``."""
    return not [p for p in Path(folder).iterdir() if p.name.startswith(".gd-")]
