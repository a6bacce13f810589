"""The embedding examples (``examples/``) and ``benchmarks/bench_embedding.py``, run as a user would run them.

Each example runs in a subprocess for a few frames - the glfw ones in a real window on a private Xvfb
server that a fixture starts on a free display (``-displayfd``) and stops by its own pid, the others
headless (EGL) - and must exit 0. Their pictures are then held to the engine's *offscreen* result for
the same input and filter, recomputed here with ``Deconvolver.process`` on the shared headless context:

* ``glfw_host.py``: the window screenshot's right half (``apply`` into the default framebuffer) against
  ``process(left half, plan=<the last frame's plan>, space='srgb')``; the left half is the host's exact
  copy of its scene texture, i.e. the input. Tolerance: <= 1 code value of 8 bits (measured: 0).
* ``moderngl_window_app.py`` (headless window, and a glfw window under Xvfb): the framebuffer read-back's
  right half against ``process(the example's float input, plan=...)``, sRGB-encoded and rounded here in
  float64 while the shader encodes in float32: <= 1 code value (measured: max 1 in < 0.3 % of pixels).
* ``video_loop.py``: the lossless ``--last-frame`` PNG against ``process`` of the same decoded frames with
  ``stats_latency=1`` (the statistics of frame n - 1 steer frame n in both): <= 1 code value (measured: 0);
  the window mode's screenshot equals its last frame (<= 1). The encoded H.264 file (CRF 18, 4:2:0) is
  lossy, so it is only held loosely: the right number of frames, and a mean error against the offscreen
  result below half of the deblurring's own mean change of the input.

Without Xvfb, glfw, moderngl-window, ffmpeg or an OpenGL context these tests skip with the reason,
unless ``GPU_DECONV_REQUIRE_GL=1``, which turns every such skip into a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xvfb import private_xvfb

from gpu_deconv.core.params import DeconvParams
from gpu_deconv.core.plan import MixtureStage, Plan

REQUIRE = os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 60


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"GPU_DECONV_REQUIRE_GL=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _env(display: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DISPLAY", None)
    if display is not None:
        env["DISPLAY"] = display
    return env


def _run(args: list[str], cwd: Path, display: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(display), capture_output=True, text=True,
                          timeout=TIMEOUT)
    if proc.returncode == 2 and ("could not open an OpenGL 3.3" in proc.stderr or "glfw.init() failed" in proc.stderr):
        _unavailable(f"no GL 3.3 window: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _plan(d: dict) -> Plan:
    stages = [MixtureStage(tuple(np.asarray(t, np.float32) for t in s["taps"]), np.asarray(s["weights"], np.float32),
                           s["src"]) for s in d["stages"]]
    return Plan(d["method"], tuple(stages))


def _read_png(path: Path) -> np.ndarray:
    from gpu_deconv.io.images import read_image

    return read_image(path).pixels


def _srgb8(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear.astype(np.float64), 0.0, 1.0)
    return np.round(255 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)).astype(np.int64)


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def display() -> str:
    """A private Xvfb server on a free display number, stopped by its own pid."""
    try:
        import glfw  # noqa: F401
    except ImportError as e:
        _unavailable(f"glfw missing: {e}")
    with private_xvfb(_unavailable) as d:
        yield d


@pytest.fixture(scope="module")
def ref(gl_ctx):
    """An engine for the offscreen references (own instance: the shared one's parameters are changed
    by other tests)."""
    from gpu_deconv.gl.engine import Deconvolver

    dec = Deconvolver(gl_ctx, DeconvParams(precision=16))
    yield dec
    dec.release()


# ---------------------------------------------------------------------------------------------------
# (a) raw glfw host


def test_glfw_host_window_matches_offscreen(display, ref, tmp_path) -> None:
    shot, stats = tmp_path / "shot.png", tmp_path / "stats.json"
    _run([str(EXAMPLES / "glfw_host.py"), "--size", "160x96", "--frames", "8", "--screenshot", str(shot),
          "--stats", str(stats)], tmp_path, display)
    st = json.loads(stats.read_text())
    assert st["gl_errors"] == []
    assert len(st["frames"]) == 8
    assert len({round(f["sigma"], 6) for f in st["frames"]}) == 8, "sigma must change every frame"
    assert st["compiles_after_warmup"] == 0 and st["allocations_after_warmup"] == 0
    assert all(f["method"] == "laplacian" for f in st["frames"])
    w, h = st["size"]
    img = _read_png(shot)
    assert img.shape == (h, 2 * w, 3)
    gl = img[::-1]  # GL row order, as the passes saw it
    left, right = np.ascontiguousarray(gl[:, :w]), gl[:, w:]
    ref.set_params(DeconvParams(precision=st["precision"]))
    expect = ref.process(left, plan=_plan(st["plan"]), space="srgb")
    diff = np.abs(expect.astype(np.int64) - right.astype(np.int64))
    assert diff.max() <= 1, f"window differs from the offscreen result by up to {diff.max()} codes"
    assert np.abs(right.astype(np.int64) - left.astype(np.int64)).mean() > 1.0  # it did deblur


# ---------------------------------------------------------------------------------------------------
# (b) moderngl-window


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # moderngl-window's `import glm`
@pytest.mark.parametrize("window", ["headless", "glfw"])
def test_moderngl_window_app_matches_offscreen(window, request, ref, tmp_path) -> None:
    try:
        import moderngl_window  # noqa: F401
    except ImportError as e:
        _unavailable(f"moderngl-window missing (pip install moderngl-window): {e}")
    disp = request.getfixturevalue("display") if window == "glfw" else None
    shot, stats = tmp_path / "shot.png", tmp_path / "stats.json"
    _run([str(EXAMPLES / "moderngl_window_app.py"), "--window", window, "--image-size", "160x112", "--frames", "5",
          "--screenshot", str(shot), "--stats", str(stats)], tmp_path, disp)
    st = json.loads(stats.read_text())
    assert st["gl_errors"] == [] and len(st["frames"]) == 5
    w, h = st["size"]
    app = _load_module("example_mglw_app", EXAMPLES / "moderngl_window_app.py")
    img = app.make_input((w, h), noise=st["noise"])  # top row first, like the screenshot
    ref.set_params(DeconvParams(precision=st["precision"]))
    expect = _srgb8(ref.process(img, plan=_plan(st["plan"]), space="linear")[..., :3])
    shot_px = _read_png(shot)
    assert shot_px.shape == (h, 2 * w, 3)
    right = shot_px[:, w:].astype(np.int64)
    diff = np.abs(expect - right)
    assert diff.max() <= 1, f"read-back differs from the offscreen result by up to {diff.max()} codes"
    assert np.abs(shot_px[:, :w].astype(np.int64) - _srgb8(img[..., :3])).max() <= 1  # left: the input
    assert np.abs(right - shot_px[:, :w]).mean() > 1.0


# ---------------------------------------------------------------------------------------------------
# (c) video loop


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A short blurred, noisy H.264 clip (the chart panning) and its decoded frames."""
    try:
        from gpu_deconv.io.video import VideoReader, VideoWriter, ffmpeg_exe

        ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - no ffmpeg binary means no video test
        _unavailable(f"no ffmpeg: {e}")
    from gpu_deconv.core.chart import blur_and_noise, test_chart

    w, h, n = 160, 96, 6
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    big = test_chart((h + 8, w + 3 * n))
    with VideoWriter(path, (w, h), 24) as vw:
        for i in range(n):
            lin = np.clip(blur_and_noise(big[4:4 + h, 3 * i:3 * i + w], 1.0, 0.004, seed=i), 0, 1)
            vw.write(_srgb8(lin).astype(np.uint8))
    with VideoReader(path, prefetch=0) as rd:
        frames = list(rd)
    assert len(frames) == n
    return path, frames


def _video_reference(gl_ctx, frames: list[np.ndarray]) -> list[np.ndarray]:
    from gpu_deconv.gl.engine import Deconvolver

    with Deconvolver(gl_ctx, DeconvParams(sigma=1.0, noise="auto"), stats_latency=1) as dec:
        return [dec.process(f) for f in frames]


def test_video_loop_headless_encode(gl_ctx, clip, tmp_path) -> None:
    from gpu_deconv.io.video import VideoReader

    path, frames = clip
    out, last, stats = tmp_path / "out.mp4", tmp_path / "last.png", tmp_path / "stats.json"
    proc = _run([str(EXAMPLES / "video_loop.py"), str(path), "--output", str(out), "--sigma", "1.0",
                 "--last-frame", str(last), "--stats", str(stats)], tmp_path)
    assert "wrote" in proc.stdout
    st = json.loads(stats.read_text())
    assert st["gl_errors"] == [] and len(st["frames"]) == len(frames)
    assert all(f["noise_std"] is not None and f["noise_std"] > 0 for f in st["frames"])  # measured per frame
    expect = _video_reference(gl_ctx, frames)
    diff = np.abs(_read_png(last).astype(np.int64) - expect[-1].astype(np.int64))
    assert diff.max() <= 1, f"last frame differs from the offscreen result by up to {diff.max()} codes"
    with VideoReader(out, prefetch=0) as rd:
        encoded = list(rd)
    assert len(encoded) == len(frames)
    for e, x, f in zip(encoded, expect, frames, strict=True):
        err = np.abs(e.astype(np.int64) - x.astype(np.int64)).mean()
        change = np.abs(x.astype(np.int64) - f.astype(np.int64)).mean()
        assert err < 0.5 * change, (err, change)


def test_video_loop_window(display, gl_ctx, clip, tmp_path) -> None:
    path, frames = clip
    shot, last = tmp_path / "shot.png", tmp_path / "last.png"
    _run([str(EXAMPLES / "video_loop.py"), str(path), "--frames", "4", "--no-pace", "--screenshot", str(shot),
          "--last-frame", str(last)], tmp_path, display)
    got, lastpx = _read_png(shot), _read_png(last)
    assert got.shape == lastpx.shape == frames[0].shape
    assert np.abs(got.astype(np.int64) - lastpx.astype(np.int64)).max() <= 1  # 1:1 display of the output
    expect = _video_reference(gl_ctx, frames[:4])[-1]
    assert np.abs(lastpx.astype(np.int64) - expect.astype(np.int64)).max() <= 1


# ---------------------------------------------------------------------------------------------------
# the per-frame cost benchmark (tiny frame: the real size is for humans)


def test_bench_embedding_smoke(gl_ctx, tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_embedding.py"), "--size", "96x64",
                           "--reps", "2", "--solve-reps", "5", "--no-results"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GL renderer" in proc.stdout and "set_blur + apply" in proc.stdout
    assert proc.stdout.count("GL objects created during the timed frames: none") == 2
