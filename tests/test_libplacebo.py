"""The exported mpv hook in ffmpeg's ``libplacebo`` filter on Mesa's lavapipe Vulkan: a pure-ffmpeg batch path.

Recipe (Debian's ffmpeg 5.1 + libplacebo 4.208 + mesa-vulkan-drivers; MEASURED.md):

    ffmpeg -init_hw_device vulkan=vk -filter_hw_device vk -i IN -vf \\
        "format=rgba,hwupload,libplacebo=custom_shader_path=deblur.hook:format=rgba,hwdownload,format=rgba" OUT

(``hwupload``/``hwdownload`` are needed: without them ffmpeg fails with "Impossible to convert between the
formats"; ``rgb24`` has no Vulkan format, ``rgba`` works). libplacebo stores the hook textures in half
floats, so the tolerance is the one of mpv's default FBO format (tests/test_mpv.py): max 2 code values where
the reference is brighter than 0.03 linear, mean < 0.5.

The locally adaptive export (:func:`gpu_deconv.apps.export.export_mpv_adaptive`: its table an RGBA32F
``//!TEXTURE``, a half-resolution hook) runs there too, held to the rule of its default-FBO mpv test
(tests/test_mpv.py): the global rule on top of the spread that a half-float input causes. Measured: max 10
code values in a dark pixel (laplacian, sigma 1, noise 0.005), excess over the spread <= 1 where brighter than
0.03 linear, mean 0.28.

Also here: the ``//!PARAM strength`` export (runtime strength for newer players), checked in NumPy: its last
hook computes ``x + s (F_1 x - x)``, which equals the plan designed at strength ``s`` (for the adaptive mode:
the table scaled by ``s``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from imagegen import textured_image

from gpu_deconv.apps.export import adaptive_description, design_description, export_mpv, export_mpv_adaptive
from gpu_deconv.apps.export_cli import adaptive_table
from gpu_deconv.core.adaptive import apply_adaptive
from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.reference import apply_plan

Image = pytest.importorskip("PIL.Image")

from test_export import scaled_table  # noqa: E402 - helpers shared with the GLSL and mpv tests
from test_mpv import fp16_input_spread  # noqa: E402

VF = "format=rgba,hwupload,libplacebo=custom_shader_path={hook}:format=rgba,hwdownload,format=rgba"


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    reason = None
    if exe is None:
        reason = "Debian's ffmpeg is not installed (apt-get install -y ffmpeg mesa-vulkan-drivers)"
    elif "libplacebo" not in subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True,
                                            text=True).stdout:
        reason = "this ffmpeg has no libplacebo filter"
    if reason:
        if os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)
    return exe


def _placebo(tmp: Path, hook_text: str, src: Path, out: Path, extra: tuple[str, ...] = ()) -> None:
    hook = tmp / "deblur.hook"
    hook.write_text(hook_text)
    cmd = [_ffmpeg(), "-v", "error", "-y", "-init_hw_device", "vulkan=vk", "-filter_hw_device", "vk", "-i", str(src),
           "-vf", VF.format(hook=hook), *extra, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        msg = f"ffmpeg libplacebo on lavapipe failed: {proc.stderr.strip()[-400:]}"
        if os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0"):
            pytest.fail(msg)
        pytest.skip(msg)


def _image() -> np.ndarray:
    lin = textured_image((64, 64), channels=3, seed=1)[:37, :54]
    enc = np.round(linear_to_srgb(lin) * 255).astype(np.int32)
    return np.clip(enc + np.random.default_rng(0).integers(-20, 21, enc.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method, sigma", [("laplacian", 1.0), ("comb", 0.4), ("unsharp", 1.2)])
def test_hook_in_ffmpeg_libplacebo_matches_reference(tmp_path, method, sigma):
    design = FilterDesigner().design(DeconvParams(sigma=sigma, noise=0.005, method=method, level=2e-3))
    img = _image()
    Image.fromarray(img).save(tmp_path / "in.png")
    _placebo(tmp_path, export_mpv(design.plan, design_description(design)), tmp_path / "in.png",
             tmp_path / "out.png", ("-frames:v", "1"))
    got = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(np.float64)
    ref = apply_plan(srgb_to_linear(img.astype(np.float32) / 255), design.plan, 32)
    want = np.round(np.clip(linear_to_srgb(ref), 0, 1) * 255)
    d = np.abs(got - want)
    assert d[ref >= 0.03].max() <= 2 and d.max() <= 8 and d.mean() < 0.5, (d.max(), d.mean())
    assert np.mean(got != img) > 0.5  # the filter acted


@pytest.mark.parametrize("method, sigma", [("laplacian", 1.0), ("comb", 0.4)])
def test_adaptive_hook_in_ffmpeg_libplacebo(tmp_path, method, sigma):
    """The adaptive export (//!TEXTURE table, half-resolution hook of an even width: 54 -> 27) in libplacebo."""
    params = DeconvParams(sigma=sigma, noise=0.005, method=method)
    table = adaptive_table(params)
    img = _image()
    Image.fromarray(img).save(tmp_path / "in.png")
    _placebo(tmp_path, export_mpv_adaptive(table, adaptive_description(params, table)), tmp_path / "in.png",
             tmp_path / "out.png", ("-frames:v", "1"))
    got = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(np.float64)
    ref = apply_adaptive(srgb_to_linear(img.astype(np.float32) / 255), table, precision=32).output
    want = np.round(np.clip(linear_to_srgb(ref), 0, 1) * 255)
    d = np.abs(got - want)
    excess = d - fp16_input_spread(img, table)
    assert excess[ref >= 0.03].max() <= 2 and excess.max() <= 8 and d.mean() < 0.5, (excess.max(), d.mean())
    assert np.mean(got != img) > 0.5  # the filter acted


@pytest.mark.parametrize("mode", ["global", "adaptive"])
def test_pure_ffmpeg_video_batch(tmp_path, mode):
    """The documented one-liner on a video: every frame filtered, as gpu-deconv's own engine would."""
    exe = _ffmpeg()
    src = tmp_path / "clip.mkv"
    subprocess.run([exe, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-t", "0.5",
                    "-c:v", "ffv1", "-pix_fmt", "rgb24", str(src)], check=True, timeout=120)
    params = DeconvParams(sigma=1.0, noise=0.005, method="laplacian", level=2e-3)
    if mode == "global":
        design = FilterDesigner().design(params)
        hook = export_mpv(design.plan, design_description(design))

        def reference(x: np.ndarray) -> np.ndarray:
            return apply_plan(x, design.plan, 32)
    else:
        table = adaptive_table(params)
        hook = export_mpv_adaptive(table, adaptive_description(params, table))

        def reference(x: np.ndarray) -> np.ndarray:
            return apply_adaptive(x, table, precision=32).output
    _placebo(tmp_path, hook, src, tmp_path / "out.mkv", ("-c:v", "ffv1"))

    def frames(path: Path) -> np.ndarray:
        raw = subprocess.run([exe, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True, timeout=120).stdout
        return np.frombuffer(raw, np.uint8).reshape(-1, 64, 96, 3)

    inp, out = frames(src), frames(tmp_path / "out.mkv")
    assert out.shape == inp.shape and out.shape[0] == 5
    for a, b in zip(inp, out, strict=True):
        want = np.round(np.clip(linear_to_srgb(reference(srgb_to_linear(a.astype(np.float32) / 255))), 0, 1) * 255)
        assert np.abs(b - want).mean() < 0.5 and np.mean(b != a) > 0.3


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.0, 2.5])
def test_runtime_strength_blend_equals_the_baked_plan(strength):
    params = DeconvParams(sigma=1.0, noise=0.005, method="laplacian", level=2e-3)
    designer = FilterDesigner()
    full, baked = designer.design(params.replace(strength=1.0)), designer.design(params.replace(strength=strength))
    x = srgb_to_linear(_image().astype(np.float32) / 255)
    f1 = apply_plan(x, full.plan, 32)
    np.testing.assert_allclose(x + np.float32(strength) * (f1 - x), apply_plan(x, baked.plan, 32), atol=2e-5)


def test_runtime_strength_export_declares_the_param():
    design = FilterDesigner().design(DeconvParams(sigma=1.0, noise=0.005, method="fir"))
    text = export_mpv(design.plan, "fir", runtime_strength=0.7)
    head = text[text.index("\n//!PARAM strength\n") + 1:].splitlines()[:6]
    assert head == ["//!PARAM strength", head[1], "//!TYPE float", "//!MINIMUM 0.0", "//!MAXIMUM 4.0", "0.7"]
    assert text.count("strength * (acc - base)") == 1
    assert "//!PARAM" not in export_mpv(design.plan, "fir")  # the default stays loadable by mpv 0.35
    with pytest.raises(ValueError):
        export_mpv(design.plan, "fir", runtime_strength=9.0)


@pytest.mark.parametrize("strength", [0.0, 0.4, 2.5])
def test_adaptive_runtime_strength_blend_equals_the_baked_table(strength):
    """The adaptive runtime strength (x + s (F_1 x - x) in the last hook) is the export at a baked strength s."""
    table = adaptive_table(DeconvParams(sigma=1.0, noise=0.005, method="laplacian"))
    x = srgb_to_linear(_image().astype(np.float32) / 255)
    f1 = apply_adaptive(x, table, precision=32).output
    baked = apply_adaptive(x, scaled_table(table, strength), precision=32).output
    np.testing.assert_allclose(x + np.float32(strength) * (f1 - x), baked, rtol=0, atol=2e-5)
