"""Native depth, chroma, alpha and HDR through the video path.

Outputs are written losslessly (FFV1) wherever values are compared, so what is measured is the path
itself: swscale's conversions into the engine's arrays and back, and the engine against the NumPy
reference (:func:`gpu_deconv.core.reference.apply_plan`) through the same conversions.
"""

from __future__ import annotations

import numpy as np
import pytest
from video_clips import (
    colour_tags,
    ffmpeg,
    hdr_side_data,
    native_planes,
    pattern,
    pixel_format,
    smooth_src,
)

from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import Plan
from gpu_deconv.core.reference import apply_plan
from gpu_deconv.io.video import (
    HDR_REFERENCE_WHITE_NITS,
    PixelFormat,
    VideoOptions,
    VideoReader,
    hdr_codes_to_linear,
    linear_to_hdr_codes,
    probe_video,
    transcode,
)

LOSSLESS = VideoOptions(codec="ffv1")
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


def _max_plane_diff(a_path, b_path) -> list[int]:
    """Largest |difference| per plane over all frames of two files with the same pixel format."""
    a, b = native_planes(a_path), native_planes(b_path)
    assert len(a) == len(b) and len(a) > 0
    worst = [0] * len(a[0])
    for fa, fb in zip(a, b, strict=True):
        for i, (pa, pb) in enumerate(zip(fa, fb, strict=True)):
            worst[i] = max(worst[i], int(np.abs(pa.astype(np.int64) - pb).max()))
    return worst


def _srgb_reference(pixels: np.ndarray, plan: Plan) -> np.ndarray:
    """decode -> apply_plan (fp32) -> encode -> round, on sRGB-coded integers; alpha passes through."""
    maxv = np.float32(np.iinfo(pixels.dtype).max)
    x = pixels.astype(np.float32) / maxv
    c = 1 if x.ndim == 2 else x.shape[2]
    colour = slice(None) if c == 1 else slice(0, 3 if c == 4 else c)
    lin = x.copy()
    lin[..., colour] = srgb_to_linear(x[..., colour])
    out = apply_plan(lin, plan, 32)
    out[..., colour] = linear_to_srgb(out[..., colour])
    return np.round(np.clip(out, 0, 1) * maxv).astype(pixels.dtype)


@pytest.fixture(scope="module")
def plan() -> Plan:
    """A real restoring filter (sigma 1 px, noise 0.01): strong enough that any path error would show."""
    return FilterDesigner().design(DeconvParams(sigma=1.0, noise=0.01, level=1e-3, method="laplacian")).plan


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("formats")
    made = {}
    for name, pix_fmt in (("420p10", "yuv420p10le"), ("422p10", "yuv422p10le"), ("420p8", "yuv420p")):
        made[name] = str(d / f"{name}.mkv")
        ffmpeg(*smooth_src(), "-frames:v", "6", "-c:v", "ffv1", "-pix_fmt", pix_fmt, made[name])
    made["x264_10"] = str(d / "x264_10.mp4")
    ffmpeg(*smooth_src(), "-frames:v", "6", "-c:v", "libx264", "-pix_fmt", "yuv420p10le", made["x264_10"])
    return made


@pytest.mark.parametrize("name", ["420p10", "422p10", "420p8"])
def test_identity_round_trip_within_one_code(tmp_path, clips, name):
    """Decode -> engine arrays -> encode, nothing done in between: every plane within 1 code (lossless out)."""
    src = clips[name]
    out = tmp_path / "out.mkv"
    r = transcode(src, out, options=LOSSLESS)
    assert r.frames == 6 and r.notes == [] and r.damage is None
    assert pixel_format(out) == pixel_format(src)
    assert max(_max_plane_diff(src, out)) <= 1


@pytest.mark.parametrize("name", ["420p10", "422p10"])
def test_ten_bit_through_the_engine_matches_the_numpy_reference(gl_ctx, tmp_path, clips, plan, name):
    """10-bit 4:2:0 / 4:2:2: engine arrays are uint16 RGBA with bits=10; the output is 10-bit in the input's
    chroma format, within 1 code of the same frames filtered by the NumPy reference."""
    from gpu_deconv.gl.engine import Deconvolver

    src = clips[name]
    seen: list[PixelFormat] = []
    with Deconvolver(gl_ctx, DeconvParams(precision=32)) as dec:
        def gl(pixels, fmt):
            seen.append(fmt)
            return dec.process(pixels, plan=plan, space=fmt.space, bits=fmt.bits)

        transcode(src, tmp_path / "gl.mkv", gl, options=LOSSLESS)
    transcode(src, tmp_path / "np.mkv", lambda px, fmt: _srgb_reference(px, plan), options=LOSSLESS)
    fmt = seen[0]
    assert (fmt.layout, fmt.dtype, fmt.channels, fmt.bits, fmt.space) == ("rgba64le", np.uint16, 4, 10, "srgb")
    assert pixel_format(tmp_path / "gl.mkv") == pixel_format(src) and probe_video(tmp_path / "gl.mkv").bit_depth == 10
    assert max(_max_plane_diff(tmp_path / "gl.mkv", tmp_path / "np.mkv")) <= 1
    assert max(_max_plane_diff(src, tmp_path / "gl.mkv")) > 2  # the filter did something


def test_lossy_ten_bit_input_stays_ten_bit(tmp_path, clips):
    out = tmp_path / "out.mp4"
    transcode(clips["x264_10"], out)
    info = probe_video(out)
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("h264", "yuv420p10le", 10)


def test_pq_and_hlg_codes_to_linear_round_trip():
    codes = np.linspace(0, 1, 1024, dtype=np.float32)
    for transfer in ("pq", "hlg"):
        lin = hdr_codes_to_linear(codes.copy(), transfer)
        assert np.all(np.diff(lin) > 0)
        back = linear_to_hdr_codes(lin, transfer)
        assert np.abs(back - codes).max() * 1023 < 0.05  # far inside one 10-bit code
    white = hdr_codes_to_linear(np.array([0.5807, 1.0], np.float32), "pq")
    assert white[0] == pytest.approx(1.0, abs=0.01)  # PQ 58 % is 203 cd/m2: reference white = 1.0
    assert white[1] == pytest.approx(10000 / HDR_REFERENCE_WHITE_NITS, rel=1e-4)  # values above 1 kept
    assert hdr_codes_to_linear(np.array([0.75], np.float32), "hlg")[0] == pytest.approx(1.0, abs=1e-6)


def test_hdr10_hevc_keeps_tags_and_side_data(tmp_path):
    src = tmp_path / "hdr10.mkv"
    ffmpeg(*pattern(), "-frames:v", "8", "-vf",
           "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv",
           "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
           "-x265-params", f"log-level=error:hdr10=1:master-display={MASTER}:max-cll=1000,400", src)
    info = probe_video(src)
    assert info.transfer == "pq" and info.hdr is not None and info.hdr.max_cll == 1000
    assert info.hdr.luminance == (0.0001, 1000.0)
    with VideoReader(src, channels="auto") as r:
        fmt = r.pixel_format
        first = next(iter(r))
    assert (fmt.space, fmt.dtype, fmt.transfer, fmt.bits) == ("linear", np.float32, "pq", None)
    assert first.dtype == np.float32 and first.max() > 1.0  # testsrc2's white is 10000 cd/m2 in PQ: 49x white
    out = tmp_path / "out.mkv"
    r = transcode(src, out)
    assert r.notes == []
    assert probe_video(out).codec == "hevc" and pixel_format(out) == "yuv420p10le"
    assert colour_tags(out) == colour_tags(src) == (9, 16, 9, 1)
    assert hdr_side_data(out) == hdr_side_data(src) and set(hdr_side_data(src)) == {"mastering", "cll"}


def test_hdr_metadata_to_other_encoders_is_said(tmp_path):
    src = tmp_path / "hdr10.mkv"
    ffmpeg(*pattern(), "-frames:v", "3", "-vf", "setparams=color_primaries=bt2020:color_trc=smpte2084:"
           "colorspace=bt2020nc:range=tv", "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
           "-x265-params", f"log-level=error:hdr10=1:master-display={MASTER}:max-cll=1000,400", src)
    r = transcode(src, tmp_path / "out.mkv", options=LOSSLESS)
    assert any("can't store the HDR mastering-display" in n for n in r.notes)
    assert colour_tags(tmp_path / "out.mkv")[:3] == (9, 16, 9)  # the tags themselves are kept (container)


@pytest.mark.parametrize("trc", ["smpte2084", "arib-std-b67"])
def test_hdr_ramp_round_trips_through_the_engine_within_one_code(gl_ctx, tmp_path, trc):
    """A 10-bit gray ramp tagged PQ (or HLG): decoded to linear float (values up to 49 for PQ), through the
    engine's identity in float, encoded back: every code within 1."""
    from gpu_deconv.gl.engine import Deconvolver

    src = tmp_path / "ramp.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:size=256x32:rate=24", "-frames:v", "2", "-vf",
           "format=yuv444p10le,geq=lum='64+X*876/255':cb=512:cr=512,"
           f"setparams=color_primaries=bt2020:color_trc={trc}:colorspace=bt2020nc:range=tv",
           "-c:v", "ffv1", "-pix_fmt", "yuv444p10le", src)
    y = native_planes(src)[0][0]
    assert y[0, 0] == 64 and y[0, -1] == 940  # the full ramp, black to 10000 cd/m2 (PQ)
    peak = []
    with Deconvolver(gl_ctx, DeconvParams(precision=32)) as dec:
        def gl(pixels, fmt):
            peak.append(float(pixels.max()))
            return dec.process(pixels, plan=Plan("identity"), space=fmt.space)

        transcode(src, tmp_path / "out.mkv", gl, options=LOSSLESS)
    if trc == "smpte2084":
        assert peak[0] == pytest.approx(10000 / HDR_REFERENCE_WHITE_NITS, rel=0.01)
    assert colour_tags(tmp_path / "out.mkv")[:3] == colour_tags(src)[:3]
    assert max(_max_plane_diff(src, tmp_path / "out.mkv")) <= 1


@pytest.mark.parametrize("codec,pix_fmt", [("ffv1", "yuva420p"), ("ffv1", "yuva444p10le"),
                                           ("prores_ks", "yuva444p10le")])
def test_alpha_plane_is_bit_exact(gl_ctx, tmp_path, plan, codec, pix_fmt):
    from gpu_deconv.gl.engine import Deconvolver

    src = tmp_path / f"alpha.{'mov' if codec == 'prores_ks' else 'mkv'}"
    profile = ["-profile:v", "4444"] if codec == "prores_ks" else []
    ffmpeg(*pattern(pix_fmt=pix_fmt), "-frames:v", "4", "-vf", "geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':"
           "a='mod(X*37+Y*11+N*5,256)'", "-c:v", codec, *profile, "-pix_fmt", pix_fmt, src)
    info = probe_video(src)
    assert info.has_alpha
    with Deconvolver(gl_ctx, DeconvParams(precision=32)) as dec:
        out = tmp_path / f"out{src.suffix}"
        transcode(src, out, lambda px, fmt: dec.process(px, plan=plan, space=fmt.space, bits=fmt.bits))
    assert pixel_format(out) == pixel_format(src)  # ProRes decodes to 12-bit and encodes 10: same both sides
    a, b = native_planes(src), native_planes(out)
    alpha = 3
    assert len(np.unique(a[0][alpha])) > 50  # a real alpha plane
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa[alpha], fb[alpha])


def test_vp9_alpha_is_kept(tmp_path):
    """WebM VP9 keeps alpha beside each frame (FFmpeg's own VP9 decoder drops it; libvpx reads it)."""
    src = tmp_path / "alpha.webm"
    ffmpeg(*pattern(pix_fmt="yuva420p"), "-frames:v", "4", "-vf", "geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':"
           "a='64+X*2'", "-c:v", "libvpx-vp9", src)
    info = probe_video(src)
    assert info.has_alpha and info.pix_fmt == "yuva420p"
    out = tmp_path / "out.webm"
    transcode(src, out)
    got = probe_video(out)
    assert got.has_alpha
    with VideoReader(src, channels=4) as r1, VideoReader(out, channels=4) as r2:
        for f1, f2 in zip(r1, r2, strict=True):
            assert np.abs(f1[..., 3].astype(int) - f2[..., 3]).max() <= 3  # VP9 codes alpha lossily


def test_gray_stays_gray_in_one_channel(tmp_path):
    src = tmp_path / "gray.mkv"
    ffmpeg(*smooth_src(), "-frames:v", "3", "-c:v", "ffv1", "-pix_fmt", "gray10le", src)
    seen = []

    def keep(pixels, fmt):
        seen.append((pixels.shape, pixels.dtype, fmt.bits))
        return pixels

    transcode(src, tmp_path / "out.mkv", keep)
    assert seen[0] == ((48, 64), np.uint16, 10)
    assert pixel_format(tmp_path / "out.mkv") == "gray10le"
    assert _max_plane_diff(src, tmp_path / "out.mkv") == [0]
