"""The exported mpv user shader, run through the real mpv (vo=gpu, OpenGL via EGL) under a private Xvfb.

Recipe (measured on mpv 0.35.1, Mesa llvmpipe): ``--vo=gpu --gpu-api=opengl --gpu-context=x11egl`` with
nearest scaling, no dithering and the video unscaled renders user shaders pixel-exactly, and a Lua
script takes a ``screenshot-to-file ... video`` after ``playback-restart``. ``--vo=gpu-next``, encoding
mode and ``--vo=image`` do not apply the shader exactly (or at all), so they are not used.

mpv exits 0 even when a user shader fails to compile or its file is missing (it only logs an error and
shows the video unfiltered), so every run's ``--log-file`` is read and any error-level line fails the
test; :func:`test_log_check_catches_broken_shaders` proves that check sees such failures.

Expected output: :func:`gpu_deconv.core.reference.apply_plan` (float32) on the sRGB-decoded 8-bit input,
re-encoded to sRGB, clipped and rounded to 8 bits - what the shader computes, up to:

* ``--fbo-format=rgba32f``: float32 everywhere, so only float rounding (GPU ``pow``, fused multiply-add)
  that lands on the other side of a .5 boundary of the final 8-bit rounding remains: max 1 code value,
  mean < 0.01 (measured: max 1, mean <= 3e-4).
* mpv's default FBO format (rgba16f here, as on most GPUs): the linear input, every H texture and every
  stage output are stored with an 11-bit mantissa (~5e-4 relative), then scaled by the mixture weights
  (|d| up to ~40) and by the sRGB encode's slope, which is steep near black (12.92 x 255 code values per
  unit of linear light below 0.0031). Measured: max 1 code for the one-stage methods, 6 for the
  three-stage polyblur, whose fp16 stage outputs are multiplied by the Horner weights (4, -6, 4), all in
  pixels darker than 0.02 linear; mean 0.17-0.25. Asserted: max <= 2 where the reference is brighter
  than 0.03 linear, max <= 8 anywhere, mean < 0.5.

The locally adaptive export (:func:`gpu_deconv.apps.export.export_mpv_adaptive`) against
:func:`gpu_deconv.core.adaptive.apply_adaptive` at precision 32, same input and encoding:

* ``--fbo-format=rgba32f``: as above, max 1 code value, mean < 0.01 (measured: max 1, mean <= 1e-3).
* default FBO: the shader splits each stored lowpass sum into an fp16-exact high part and a remainder,
  so its own storage costs nothing measurable; what remains is the input itself, which mpv holds in
  rgba16f before any user shader runs (MAIN; measured: ~0.06 code values of rounding), and which the
  adaptive filter amplifies like any fine detail where the local level is high - up to ~10-20 code values
  in a few dark pixels at low noise. So the rule above is asserted on top of that unavoidable part,
  computed per pixel as the spread of the reference over the ways a half-float pipeline can hold the
  input (:func:`fp16_input_spread`): ``|got - want| - spread`` <= 2 where the reference is brighter than
  0.03 linear, <= 8 anywhere, and mean ``|got - want|`` < 0.5 (measured: excess <= 1 bright, <= 3 in dark
  pixels; mean 0.18-0.25). Without the split the same shader was off by up to 54 codes, mean 3.3.

Skips (with the reason) when mpv or Xvfb is missing or mpv cannot render here; set
``GPU_DECONV_REQUIRE_MPV=1`` (CI installs both) to turn those skips into failures.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from imagegen import textured_image

from gpu_deconv.apps.export import adaptive_description, design_description, export_mpv, export_mpv_adaptive
from gpu_deconv.core.adaptive import apply_adaptive
from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear
from gpu_deconv.core.design import FilterDesigner
from gpu_deconv.core.reference import apply_plan, to_float16

Image = pytest.importorskip("PIL.Image")

from test_export import ADAPTIVE_CASES, CASES, adaptive_case, scaled_table  # noqa: E402 - the GLSL tests' cases

MPV_FLAGS = (
    "--no-config", "--vo=gpu", "--gpu-api=opengl", "--gpu-context=x11egl", "--scale=nearest", "--cscale=nearest",
    "--dither-depth=no", "--video-unscaled=yes", "--no-hidpi-window-scale", "--keep-open=yes", "--no-osc",
    "--ytdl=no", "--really-quiet",
)

SHOT_LUA = """\
-- take one screenshot of the filtered video frame once it is shown, then quit
local out = mp.get_opt("gdc_shot")
mp.register_event("playback-restart", function()
    mp.commandv("screenshot-to-file", out, "video")
    mp.commandv("quit")
end)
"""


def _unavailable(reason: str) -> None:
    if "1" in (os.environ.get("GPU_DECONV_REQUIRE_MPV"), os.environ.get("GPU_DECONV_REQUIRE_GL")):
        pytest.fail(reason)
    pytest.skip(reason)


def mpv_log_problems(log: str) -> list[str]:
    """Error- and fatal-level lines of an mpv ``--log-file`` (shader compile errors, missing files...).

    mpv's log lines look like ``[   0.123][e][vo/gpu/opengl] message``; the level letter is f/e/w/i/v/d/t.
    A failed shader compile is logged at level e (the source listing, then "compile log (status=0)" and the
    compiler's messages), a missing shader file as "Cannot open file" at level e, an unknown ``//!``
    directive as "Unrecognized command" at level e.
    """
    return [ln for ln in log.splitlines() if re.match(r"\[\s*[\d.]+\]\[[fe]\]", ln)]


@pytest.fixture(scope="module")
def xdisplay(tmp_path_factory):
    """A private Xvfb, started directly (so the pid is its own) and stopped by that pid.

    ``-displayfd`` makes Xvfb pick a free display number itself and write it to the pipe once the server
    accepts connections: no race with other servers on this machine, no sleep.
    """
    if shutil.which("Xvfb") is None:
        _unavailable("Xvfb is not installed (apt-get install -y xvfb)")
    if shutil.which("mpv") is None:
        _unavailable("mpv is not installed (apt-get install -y mpv)")
    log = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    r, w = os.pipe()
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
        )
    os.close(w)
    try:
        buf = b""
        deadline = time.monotonic() + 20
        while not buf.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([r], [], [], 0.2)
            if ready:
                chunk = os.read(r, 64)
                if not chunk:
                    break
                buf += chunk
        if not buf.strip().isdigit():
            proc.kill()
            proc.wait()
            _unavailable(f"Xvfb did not start: {log.read_text(errors='replace').strip()[-300:]}")
        yield f":{buf.strip().decode()}"
    finally:
        os.close(r)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _input_image() -> np.ndarray:
    """37x53 RGB 8-bit sRGB: texture with hard edges plus +-20 code noise, touching all four borders."""
    lin = textured_image((64, 64), channels=3, seed=1)[:37, :53]
    enc = np.round(linear_to_srgb(lin) * 255).astype(np.int32)
    noise = np.random.default_rng(0).integers(-20, 21, enc.shape)
    return np.clip(enc + noise, 0, 255).astype(np.uint8)


def run_mpv(display: str, workdir: Path, image: np.ndarray, shader: str | None, fbo_format: str | None = None,
            shader_path: Path | None = None) -> tuple[np.ndarray | None, list[str], str]:
    """Show ``image`` in mpv with ``shader`` applied; return (screenshot RGB or None, log problems, log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "in.png"
    Image.fromarray(image).save(src)
    lua = workdir / "shot.lua"
    lua.write_text(SHOT_LUA)
    shot = workdir / "shot.png"
    logf = workdir / "mpv.log"
    for f in (shot, logf):
        f.unlink(missing_ok=True)
    cmd = ["mpv", *MPV_FLAGS, f"--script={lua}", f"--script-opts=gdc_shot={shot}", f"--log-file={logf}"]
    if shader is not None:
        shader_path = workdir / "deblur.glsl"
        shader_path.write_text(shader)
    if shader_path is not None:
        cmd.append(f"--glsl-shaders-append={shader_path}")
    if fbo_format is not None:
        cmd.append(f"--fbo-format={fbo_format}")
    cmd.append(str(src))
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY",)}
    env["DISPLAY"] = display
    proc = subprocess.run(cmd, env=env, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    log = logf.read_text(errors="replace") if logf.exists() else ""
    problems = mpv_log_problems(log)
    if proc.returncode != 0:
        problems.append(f"mpv exit status {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    got = np.asarray(Image.open(shot).convert("RGB")) if shot.exists() else None
    return got, problems, log


@pytest.fixture(scope="module")
def mpv_display(xdisplay, tmp_path_factory):
    """The display, once mpv has shown an image unfiltered and screenshotted it bit for bit."""
    img = _input_image()
    got, problems, log = run_mpv(xdisplay, tmp_path_factory.mktemp("probe"), img, None)
    if got is None:
        fatal = " | ".join(problems[-3:]) or log[-300:]
        _unavailable(f"mpv could not render headlessly here (vo=gpu, x11egl): {fatal}")
    assert not problems, problems
    np.testing.assert_array_equal(got, img)  # the pipeline around the shader is the identity
    return xdisplay


def _expected(image: np.ndarray, plan) -> tuple[np.ndarray, np.ndarray]:
    """Reference in linear light and its 8-bit sRGB encoding (what mpv should show)."""
    lin = srgb_to_linear(image.astype(np.float32) / np.float32(255))
    ref = apply_plan(lin, plan, precision=32)
    enc = np.round(np.clip(linear_to_srgb(ref), 0.0, 1.0) * 255)
    return ref, enc


@pytest.mark.parametrize("name", list(CASES))
def test_mpv_shader_float32_fbo_matches_reference(mpv_display, tmp_path, name):
    """With float32 hook textures the shader is the reference up to the final 8-bit rounding."""
    design = FilterDesigner().design(CASES[name])
    img = _input_image()
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, export_mpv(design.plan, design_description(design)),
                               fbo_format="rgba32f")
    assert not problems, "\n".join(problems[:20])
    assert got is not None and got.shape == img.shape
    _, want = _expected(img, design.plan)
    d = np.abs(got.astype(np.float64) - want)
    assert d.max() <= 1 and d.mean() < 0.01, f"{name}: max {d.max():g} mean {d.mean():.4f} code values"
    if name != "identity":  # the filter did act (guards against a silently skipped shader)
        assert np.mean(got != img) > 0.5


@pytest.mark.parametrize("name", ["comb2", "laplacian", "laplacian_wide", "fir", "unsharp", "polyblur"])
def test_mpv_shader_default_fbo_within_fp16_tolerance(mpv_display, tmp_path, name):
    """mpv's default (rgba16f) hook textures: see the module docstring for the tolerance and its reason."""
    design = FilterDesigner().design(CASES[name])
    img = _input_image()
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, export_mpv(design.plan, design_description(design)))
    assert not problems, "\n".join(problems[:20])
    assert got is not None
    ref, want = _expected(img, design.plan)
    d = np.abs(got.astype(np.float64) - want)
    bright = ref >= 0.03
    assert d[bright].max() <= 2, f"{name}: max {d[bright].max():g} code values where linear >= 0.03"
    assert d.max() <= 8 and d.mean() < 0.5, f"{name}: max {d.max():g}, mean {d.mean():.3f} code values"


def test_mpv_mirror_on_image_narrower_than_kernel(mpv_display, tmp_path):
    """A 9x6 image under radius-7 kernels: taps fold twice (period 2n), exactly as in the reference."""
    design = FilterDesigner().design(CASES["laplacian_wide"])
    img = np.ascontiguousarray(_input_image()[10:19, 20:26])
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, export_mpv(design.plan, "narrow"), fbo_format="rgba32f")
    assert not problems, "\n".join(problems[:20])
    _, want = _expected(img, design.plan)
    assert got is not None and np.abs(got - want).max() <= 1


def test_log_check_catches_broken_shaders(mpv_display, tmp_path):
    """mpv exits 0 and shows the frame unfiltered on these: only the log check notices."""
    img = _input_image()
    design = FilterDesigner().design(CASES["fir"])
    good = export_mpv(design.plan, "fir")
    broken = good.replace("return acc;", "return acc * undefined_gdc_symbol;", 1)
    assert broken != good
    got, problems, _ = run_mpv(mpv_display, tmp_path / "compile", img, broken)
    assert got is not None  # mpv still ran and showed the video...
    assert any("compile log (status=0)" in p or "error:" in p for p in problems), problems  # ...but we see it
    got, problems, _ = run_mpv(mpv_display, tmp_path / "missing", img, None,
                               shader_path=tmp_path / "missing" / "no_such_shader.glsl")
    assert got is not None
    np.testing.assert_array_equal(got, img)
    assert any("Cannot open file" in p or "Failed to open" in p for p in problems), problems


def test_mpv_param_directive_support(mpv_display, tmp_path):
    """Documents why strength is baked in: mpv 0.35 rejects //!PARAM (a newer mpv may accept it)."""
    shader = "\n".join([
        "//!PARAM strength", "//!TYPE float", "1.0", "",
        "//!HOOK MAIN", "//!BIND HOOKED", "//!DESC param probe",
        "vec4 hook() { return HOOKED_tex(HOOKED_pos) * strength * 0.5; }", "",
    ])
    img = _input_image()
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, shader)
    if not any("Unrecognized command" in p for p in problems):
        pytest.skip("this mpv accepts //!PARAM; the export still bakes strength in for mpv 0.35")
    assert got is not None
    np.testing.assert_array_equal(got, img)  # the whole file was dropped: the video is unfiltered
    assert "//!PARAM" not in export_mpv(FilterDesigner().design(CASES["fir"]).plan, "fir")


# ---------------------------------------------------------------------------------------------------------------
# The locally adaptive mode
# ---------------------------------------------------------------------------------------------------------------
def _codes(linear: np.ndarray) -> np.ndarray:
    return np.round(np.clip(linear_to_srgb(linear), 0.0, 1.0) * 255)


def _expected_adaptive(image: np.ndarray, table) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive reference (precision 32) in linear light and its 8-bit sRGB encoding."""
    ref = apply_adaptive(srgb_to_linear(image.astype(np.float32) / np.float32(255)), table, precision=32).output
    return ref, _codes(ref)


def fp16_input_spread(image: np.ndarray, table) -> np.ndarray:
    """Per pixel, the largest change (code values) of the reference's output when the input is held the
    way a half-float pipeline holds it: the sRGB values in fp16 (mpv's MAIN), then the decoded linear values
    in fp16 (the decode hook's texture), each rounded toward zero (Mesa) or to nearest (most GPUs)."""
    enc = image.astype(np.float32) / np.float32(255)
    want = _codes(apply_adaptive(srgb_to_linear(enc), table, precision=32).output)
    spread = np.zeros_like(want)
    for main in ("toward_zero", "nearest"):
        for lin in ("toward_zero", "nearest"):
            x = to_float16(srgb_to_linear(to_float16(enc, main).astype(np.float32)), lin).astype(np.float32)
            spread = np.maximum(spread, np.abs(_codes(apply_adaptive(x, table, precision=32).output) - want))
    return spread


@pytest.mark.parametrize("name", [*ADAPTIVE_CASES, "laplacian@0.5"])
def test_mpv_adaptive_float32_fbo_matches_reference(mpv_display, tmp_path, name):
    """Float32 hook textures: the adaptive reference up to the final 8-bit rounding (baked strength too)."""
    base, _, strength = name.partition("@")
    params, table = adaptive_case(base)
    s = float(strength or 1.0)
    img = _input_image()
    text = export_mpv_adaptive(table, adaptive_description(params, table), strength=s)
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, text, fbo_format="rgba32f")
    assert not problems, "\n".join(problems[:20])
    assert got is not None and got.shape == img.shape
    _, want = _expected_adaptive(img, scaled_table(table, s))
    d = np.abs(got.astype(np.float64) - want)
    assert d.max() <= 1 and d.mean() < 0.01, f"{name}: max {d.max():g} mean {d.mean():.4f} code values"
    assert np.mean(got != img) > 0.5  # the filter did act


@pytest.mark.parametrize("name", list(ADAPTIVE_CASES))
def test_mpv_adaptive_default_fbo_within_fp16_tolerance(mpv_display, tmp_path, name):
    """mpv's default (rgba16f) hook textures: the rule of the global export on top of the spread that mpv's
    half-float input causes (module docstring)."""
    params, table = adaptive_case(name)
    img = _input_image()
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, export_mpv_adaptive(table, adaptive_description(params,
                                                                                                        table)))
    assert not problems, "\n".join(problems[:20])
    assert got is not None
    ref, want = _expected_adaptive(img, table)
    d = np.abs(got.astype(np.float64) - want)
    excess = d - fp16_input_spread(img, table)
    bright = ref >= 0.03
    assert excess[bright].max() <= 2, f"{name}: {excess[bright].max():g} code values beyond the input's spread"
    assert excess.max() <= 8 and d.mean() < 0.5, f"{name}: excess {excess.max():g}, mean {d.mean():.3f} code values"


@pytest.mark.parametrize("shape", [(9, 6), (5, 3), (1, 4)])
def test_mpv_adaptive_mirror_on_tiny_images(mpv_display, tmp_path, shape):
    """Images narrower than the radius-7 lowpasses and odd sizes for the half-resolution window: taps fold
    (period 2n) at full and at half resolution exactly as in the reference."""
    params, table = adaptive_case("laplacian_wide")
    h, w = shape
    img = np.ascontiguousarray(_input_image()[10:10 + h, 20:20 + w])
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, export_mpv_adaptive(table, "tiny"), fbo_format="rgba32f")
    assert not problems, "\n".join(problems[:20])
    _, want = _expected_adaptive(img, table)
    assert got is not None and got.shape == img.shape
    assert np.abs(got - want).max() <= 1


def test_mpv_adaptive_limiter_and_strength(mpv_display, tmp_path):
    """Baked strength 1.5 and the halo limiter (margin 0.25) after it, float32 textures: the reference to 1 code."""
    params, table = adaptive_case("laplacian")
    img = _input_image()
    text = export_mpv_adaptive(table, "lim", strength=1.5, limiter=0.25)
    got, problems, _ = run_mpv(mpv_display, tmp_path, img, text, fbo_format="rgba32f")
    assert not problems, "\n".join(problems[:20])
    lin = srgb_to_linear(img.astype(np.float32) / np.float32(255))
    ref = apply_adaptive(lin, scaled_table(table, 1.5), precision=32, limiter=0.25).output
    unlimited = _codes(apply_adaptive(lin, scaled_table(table, 1.5), precision=32).output)
    want = _codes(ref)
    assert got is not None and np.abs(got - want).max() <= 1
    assert np.mean(want != unlimited) > 0.05  # the limiter acted
