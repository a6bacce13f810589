"""The interactive viewer, in a REAL glfw window under Xvfb (software OpenGL), driven in scripted mode.

Each GL test runs ``python -m gpu_deconv.apps.viewer.cli ... --frames N --screenshot out.png --check-gl
--stats stats.json`` against a private Xvfb server that a session fixture starts on a free display
(``-displayfd``) and stops by its own pid. Without Xvfb, glfw or imgui-bundle these tests skip with the
reason, unless ``GPU_DECONV_REQUIRE_GL=1`` (CI), which turns the skip into a failure.

Tolerance of the pixel comparison (test 1): the "after" view at zoom 1 is the engine's float output,
sRGB-encoded by the display shader and quantised by the 8-bit window framebuffer; the offscreen
``Deconvolver.process`` of the same 8-bit input encodes and quantises the same values in its own pass,
so the two may differ by rounding only: at most 1 code value (measured: 0). The NumPy reference
(:func:`gpu_deconv.core.reference.apply_plan`) is compared at fp32 intermediates, also within 1 code value.
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

from gpu_deconv.apps.viewer.keys import SHORTCUTS, parse_inject
from gpu_deconv.apps.viewer.sources import as_rgba
from gpu_deconv.apps.viewer.view import ViewGeometry

REQUIRE = os.environ.get("GPU_DECONV_REQUIRE_GL", "") not in ("", "0")
ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 60


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"GPU_DECONV_REQUIRE_GL=1 but {reason}")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------------
# no GL needed


def test_zoom_keeps_the_point_under_the_cursor() -> None:
    g = ViewGeometry()
    g.set_view(800, 600)
    g.set_image(400, 300)
    assert g.zoom == 1.0 and (g.ox, g.oy) == (200.0, 150.0)  # centred at whole pixels
    before = g.to_image(333.0, 222.0)
    for notches in (1, 1, 3, -2, 0.5):
        g.wheel(333.0, 222.0, notches)
        assert g.to_image(333.0, 222.0) == pytest.approx(before, abs=1e-9)
    g.wheel(333.0, 222.0, -3.5)  # back to zoom 1: lands exactly, on whole pixels
    assert g.zoom == 1.0 and g.ox == int(g.ox) and g.oy == int(g.oy)
    ref = g.to_image(333.0, 222.0)
    g.pan(10.0, -5.0)
    assert g.to_image(343.0, 217.0) == ref and not g.fit
    g.set_image(4000, 1000)
    assert g.zoom == pytest.approx(0.2) and g.fit


def test_split_divider_and_ab_toggle() -> None:
    g = ViewGeometry(mode="split", split=0.5)
    g.set_view(1000, 500)
    assert g.side_at(499) == "before" and g.side_at(501) == "after"
    assert g.near_divider(503) and not g.near_divider(520)
    g.drag_divider(-50)
    assert g.split == 0.0 and g.side_at(0) == "after"
    g.toggle_ab()
    assert g.mode == "before"
    g.toggle_ab()
    assert g.mode == "after"
    g.toggle_split()
    assert g.mode == "split"


def test_hidpi_coordinates() -> None:
    """Framebuffer twice the window size (Retina): cursor positions and the panel scale to framebuffer px."""
    from gpu_deconv.apps.viewer.app import ViewerApp, ViewerOptions
    from gpu_deconv.apps.viewer.panel import PANEL_WIDTH

    class FakeGlfw:
        @staticmethod
        def get_framebuffer_size(window):
            return (2400, 1600)

        @staticmethod
        def get_window_size(window):
            return (1200, 800)

    app = ViewerApp(ViewerOptions())
    app._glfw, app.window = FakeGlfw, object()
    assert app.to_fb(100.0, 50.0) == (200.0, 100.0)
    assert app.panel_px() == 2 * PANEL_WIDTH
    assert app.view_rect() == (0, 0, 2400 - 2 * PANEL_WIDTH, 1600)
    app._layout()
    app.geom.set_image(800, 600)
    x, y = app.to_fb(300.0, 200.0)  # the pointer, in window coordinates
    before = app.geom.to_image(x, y)
    app.geom.wheel(x, y, 2)
    assert app.geom.to_image(x, y) == pytest.approx(before)
    app.show_ui = False
    assert app.view_rect() == (0, 0, 2400, 1600)


def test_parse_inject_and_shortcut_table() -> None:
    ev = parse_inject("3:scroll:1,2,1; 1:key:right_bracket+shift;2:drag:0,0,5,5;4:drop:/x/y.png")
    assert [e.frame for e in ev] == [1, 2, 3, 4]
    assert ev[0].args == ("RIGHT_BRACKET", ("SHIFT",))
    assert ev[3].args == ("/x/y.png",)
    with pytest.raises(ValueError, match="bad --inject"):
        parse_inject("1:scroll:1,2")
    keys = " ".join(k for k, _ in SHORTCUTS)
    for k in ("F1", "Tab", "S", "A", "[ / ]", "F12", "Ctrl+S", "Space", "Esc"):
        assert k in keys


def test_as_rgba_layouts() -> None:
    g = np.arange(6, dtype=np.uint8).reshape(2, 3)
    a = as_rgba(g)
    assert a.shape == (2, 3, 4) and (a[..., 3] == 255).all() and (a[..., 0] == g).all()
    ga = np.stack([g, g + 1], axis=-1)
    assert (as_rgba(ga)[..., 3] == g + 1).all()
    f = np.random.default_rng(0).random((2, 3, 3), dtype=np.float32)
    r = as_rgba(f)
    assert r.dtype == np.float32 and (r[..., 3] == 1.0).all() and (r[..., :3] == f).all()


def test_response_curves() -> None:
    from gpu_deconv.apps.viewer.panel import response_curves
    from gpu_deconv.core.design import FilterDesigner
    from gpu_deconv.core.params import DeconvParams

    d = FilterDesigner().design(DeconvParams(sigma=1.0, noise=0.002))
    c = response_curves(d)
    assert set(c) == {"w", "blur", "achieved", "restored", "target"}
    assert c["blur"][0] == pytest.approx(1.0) and c["achieved"][0] == pytest.approx(1.0, abs=1e-3)
    assert c["achieved"].max() > 1.5  # it sharpens
    diag = response_curves(d, diagonal=True)
    assert diag["w"][-1] == pytest.approx(np.pi * np.sqrt(2))


def test_adaptive_curves_and_overlay_scales() -> None:
    """The adaptive plot's responses grow with the level; the overlays' colour scales are the core's ranges."""
    from gpu_deconv.apps.viewer.gpu import LEVEL_RANGE, SIGMA_RANGE, viridis
    from gpu_deconv.apps.viewer.panel import PLOT_LEVELS, adaptive_curves
    from gpu_deconv.core.adaptive import TABLE_SIZE, TABLE_START
    from gpu_deconv.core.design import FilterDesigner
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.core.sigma_map import MAX_SIGMA

    d = FilterDesigner().adaptive(DeconvParams(sigma=1.0, noise=0.004))
    c = adaptive_curves(d)
    k = d.table.size
    assert c["achieved"].shape == (len(PLOT_LEVELS), c["w"].size) and c["coefficients"].shape == (k, TABLE_SIZE)
    assert c["v"][0] == TABLE_START and c["v"][-1] == TABLE_START + TABLE_SIZE - 1
    np.testing.assert_allclose(c["achieved"][:, 0], 1.0, atol=1e-3)  # DC passes at every level
    peaks = c["achieved"].max(axis=1)
    assert np.all(np.diff(peaks) > -1e-9) and peaks[-1] > 3 and peaks[0] < 1 + 1e-6  # more signal, more restoration
    v0 = PLOT_LEVELS.index(0.0)  # A = sigma_n^2
    np.testing.assert_allclose(c["achieved"][v0], d.table.response(d.table.noise_var, c["w"], 0 * c["w"]))
    assert LEVEL_RANGE == (TABLE_START, TABLE_START + TABLE_SIZE - 1) and SIGMA_RANGE == (0.0, MAX_SIGMA)
    # the polynomial viridis stays within 0.015 of matplotlib's table at its ends and middle
    ref = np.array([[0.267004, 0.004874, 0.329415], [0.128729, 0.563265, 0.551229], [0.993248, 0.906157, 0.143936]])
    assert np.abs(viridis(np.array([0.0, 0.5, 1.0])) - ref).max() < 0.015


# ---------------------------------------------------------------------------------------------------
# real window under Xvfb


@pytest.fixture(scope="session")
def display() -> str:
    """A private Xvfb server on a free display number; stopped by its own pid."""
    missing = [m for m in ("imgui_bundle", "glfw") if importlib.util.find_spec(m) is None]
    if missing:
        _unavailable(f"viewer packages missing: {', '.join(missing)} (pip install -e '.[viewer]')")
    with private_xvfb(_unavailable) as d:
        yield d


def _view(display: str, tmp: Path, *args: str, frames: int = 3, name: str = "shot") -> tuple:
    """Run the viewer in scripted mode; returns (CompletedProcess, screenshot array, stats dict)."""
    shot, stats = tmp / f"{name}.png", tmp / f"{name}.json"
    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "gpu_deconv.apps.viewer.cli", *args, "--frames", str(frames),
           "--screenshot", str(shot), "--check-gl", "--stats", str(stats)]
    proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if proc.returncode != 0 and "OpenGL 3.3" in proc.stderr:
        _unavailable(f"no GL 3.3 window: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    from gpu_deconv.io.images import read_image

    return proc, read_image(shot).pixels, json.loads(stats.read_text())


@pytest.fixture(scope="module")
def test_png(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A blurred, slightly noisy 8-bit sRGB chart, 256 x 192."""
    from gpu_deconv.core.chart import blur_and_noise, test_chart
    from gpu_deconv.core.colour import linear_to_srgb
    from gpu_deconv.io.images import write_image

    lin = blur_and_noise(test_chart((192, 256)), 1.0, 0.003, seed=1)
    u8 = np.round(np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1) * 255).astype(np.uint8)
    p = tmp_path_factory.mktemp("viewer_input") / "chart.png"
    write_image(p, u8)
    return p, u8


PARAMS = ("--sigma", "1.0", "--noise", "0.004", "--method", "laplacian", "--mode", "global")


def test_after_view_matches_offscreen_engine(display: str, tmp_path: Path, test_png) -> None:
    """(1) + (3): the full "after" view at zoom 1 equals Deconvolver.process of the same file."""
    from gpu_deconv.core.colour import decode_lut, linear_to_srgb
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.core.reference import apply_plan
    from gpu_deconv.gl.engine import Deconvolver

    path, u8 = test_png
    h, w = u8.shape[:2]
    for precision in (16, 32):
        proc, shot, st = _view(display, tmp_path, str(path), *PARAMS, "--precision", str(precision),
                               "--size", f"{w}x{h}", "--no-ui", "--split", "0", frames=4, name=f"fp{precision}")
        assert st["gl_errors"] == [] and st["message"] is None
        if st["framebuffer"] != [w, h]:  # a HiDPI display would scale the window; not under Xvfb
            pytest.skip(f"framebuffer {st['framebuffer']} is not the window size {w}x{h}")
        assert st["view"]["zoom"] == 1.0 and st["view"]["origin"] == [0.0, 0.0]
        assert st["uploads"] == 1, "an unchanged image must be uploaded once, not every frame"
        assert st["solves"] == 1
        params = DeconvParams(sigma=1.0, noise=0.004, method="laplacian", precision=precision, mode="global")
        with Deconvolver(params=params) as eng:
            ref = eng.process(u8)
            plan = eng.design.plan
        diff = np.abs(shot.astype(int) - ref[..., :3].astype(int))
        assert diff.max() <= 1, f"fp{precision}: max diff {diff.max()}, {np.mean(diff > 0):.2%} of samples differ"
        assert np.abs(shot.astype(int) - u8.astype(int)).max() > 20  # it did sharpen
    # the NumPy mirror of the passes at fp32 (at fp16 the mixture's large weights, |d| ~ 100, amplify
    # single-ulp differences of the fp16 intermediates into many code values at a few pixels)
    lin = apply_plan(decode_lut(8)[u8], plan, precision=32)
    ref2 = np.round(np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1) * 255).astype(int)
    assert np.abs(shot.astype(int) - ref2).max() <= 1


ADAPTIVE = ("--sigma", "1.0", "--noise", "0.004", "--method", "laplacian")  # mode: the default, adaptive


def test_mode_toggle_adaptive_and_global_match_the_engine(display: str, tmp_path: Path, test_png) -> None:
    """The default adaptive view equals Deconvolver.process in the adaptive mode; key D switches to the global
    mode, whose view equals process with mode='global'; the two pictures differ."""
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    path, u8 = test_png
    h, w = u8.shape[:2]
    base = (str(path), *ADAPTIVE, "--size", f"{w}x{h}", "--no-ui", "--split", "0")
    _, adaptive, st_a = _view(display, tmp_path, *base, frames=3, name="adaptive")
    _, globl, st_g = _view(display, tmp_path, *base, "--inject", "1:key:D", frames=3, name="global")
    if st_a["framebuffer"] != [w, h]:
        pytest.skip(f"framebuffer {st_a['framebuffer']} is not the window size {w}x{h}")
    assert st_a["mode"] == "adaptive" and st_g["mode"] == "global" and st_g["params"]["mode"] == "global"
    assert st_a["sigma_used"] == 1.0 and st_a["sigma_hat"] is None
    for mode, shot in (("adaptive", adaptive), ("global", globl)):
        with Deconvolver(params=DeconvParams(sigma=1.0, noise=0.004, method="laplacian", mode=mode)) as eng:
            ref = eng.process(u8)
        diff = np.abs(shot.astype(int) - ref[..., :3].astype(int))
        assert diff.max() <= 1, f"{mode}: max diff {diff.max()}"
    assert np.abs(adaptive.astype(int) - globl.astype(int)).max() > 5


def test_level_overlay_shows_the_level_map(display: str, tmp_path: Path, test_png, gl_ctx) -> None:
    """--overlay level blends viridis((v + 10) / 31) of Deconvolver.draw_level_map over the after view at
    opacity 0.5: within 2 code values of that blend computed here (8-bit framebuffer rounding twice)."""
    from gpu_deconv.apps.viewer.gpu import LEVEL_RANGE, viridis
    from gpu_deconv.core.params import DeconvParams
    from gpu_deconv.gl.engine import Deconvolver

    path, u8 = test_png
    h, w = u8.shape[:2]
    base = (str(path), *ADAPTIVE, "--size", f"{w}x{h}", "--no-ui", "--split", "0")
    _, plain, _ = _view(display, tmp_path, *base, frames=3, name="plain")
    _, shot, st = _view(display, tmp_path, *base, "--overlay", "level", "--overlay-alpha", "0.5", frames=3,
                        name="level")
    if st["framebuffer"] != [w, h]:
        pytest.skip(f"framebuffer {st['framebuffer']} is not the window size {w}x{h}")
    assert st["overlay"] == "level" and st["overlay_drawn"] and st["overlay_note"] is None
    eng = Deconvolver(ctx=gl_ctx, params=DeconvParams(sigma=1.0, noise=0.004, method="laplacian"))
    tex = gl_ctx.texture((w, h), 4, dtype="f4")
    try:
        eng.process(u8)
        assert eng.draw_level_map(tex)
        v = np.frombuffer(tex.read(), np.float32).reshape(h, w, 4)[..., 0]  # row 0: the image top, as uploaded
    finally:
        tex.release()
        eng.release()
    lo, hi = LEVEL_RANGE
    expected = 255 * (0.5 * viridis((v - lo) / (hi - lo)) + 0.5 * plain / 255.0)
    diff = np.abs(shot.astype(float) - expected)
    assert diff.max() <= 2, f"max diff {diff.max():.2f} at {np.unravel_index(diff.argmax(), diff.shape)}"
    assert np.abs(shot.astype(int) - plain.astype(int)).max() > 20
    assert np.ptp(v) > 4  # the chart has flat and busy areas: the map is not one colour


def test_sigma_auto_shows_the_estimate_and_its_cells(display: str, tmp_path: Path, test_png) -> None:
    """sigma 'auto': the stats carry sigma-hat and the sigma used; the sigma overlay colours the usable cells
    by viridis(sigma / 4) and leaves the others untouched. The full panel renders with it, GL-error free."""
    from gpu_deconv.apps.viewer.gpu import SIGMA_RANGE, viridis

    path, u8 = test_png
    h, w = u8.shape[:2]
    base = (str(path), "--sigma", "auto", "--noise", "0.004", "--method", "laplacian", "--mode", "global",
            "--size", f"{w}x{h}", "--no-ui", "--split", "0")
    _, plain, st0 = _view(display, tmp_path, *base, frames=3, name="auto_plain")
    _, shot, st = _view(display, tmp_path, *base, "--overlay", "sigma", "--overlay-alpha", "0.5", frames=3,
                        name="auto_sigma")
    for s_ in (st0, st):
        assert s_["params"]["sigma"] == "auto" and s_["param_error"] is None
        assert 0.6 < s_["sigma_hat"] < 1.4, s_["blur_estimate"]  # the chart was blurred by 1 px
        assert 0.0 < s_["sigma_used"] < s_["sigma_hat"]  # the cautious deconvolution sigma
        assert "deconvolve with" in s_["blur_estimate"]
    if st["framebuffer"] != [w, h]:
        pytest.skip(f"framebuffer {st['framebuffer']} is not the window size {w}x{h}")
    m = st["sigma_map"]
    assert st["overlay_drawn"] and m is not None and 0 < m["cells"] < np.size(m["usable"])
    cell = m["cell"]
    sig = np.kron(np.asarray(m["sigma"]), np.ones((cell, cell)))[:h, :w]
    use = np.kron(np.asarray(m["usable"], float), np.ones((cell, cell)))[:h, :w].astype(bool)
    expected = 255 * (0.5 * viridis(sig / SIGMA_RANGE[1]) + 0.5 * plain / 255.0)
    assert np.abs(shot[use].astype(float) - expected[use]).max() <= 2
    assert np.array_equal(shot[~use], plain[~use])
    # the adaptive mode with the full panel: sigma 'auto' via key U, then the level overlay via key V
    proc, _, st2 = _view(display, tmp_path, str(path), "--noise", "0.004", "--size", "1280x800",
                         "--inject", "1:key:U;2:key:V", frames=4, name="auto_panel")
    assert st2["mode"] == "adaptive" and st2["params"]["sigma"] == "auto" and st2["sigma_hat"] > 0
    assert st2["overlay"] == "level" and st2["overlay_drawn"] and st2["gl_errors"] == []
    assert proc.stderr.strip() == ""
    # the adaptive mode with noise 'auto' (the defaults) and one frame of statistics latency: the blind
    # estimate's per-tile statistics survive the adaptive pass, so the sigma overlay draws there too
    _, _, st3 = _view(display, tmp_path, str(path), "--sigma", "auto", "--size", f"{w}x{h}", "--no-ui",
                      "--overlay", "sigma", frames=4, name="auto_adaptive")
    assert st3["mode"] == "adaptive" and st3["params"]["noise"] == "auto" and st3["param_error"] is None
    assert st3["overlay_drawn"] and st3["sigma_map"] is not None and st3["sigma_map"]["cells"] > 0


def test_scripted_keys_and_mouse_change_the_view(display: str, tmp_path: Path, test_png) -> None:
    """(2): key and mouse events through the glfw callbacks change sigma, the split and the zoom."""
    path, u8 = test_png
    h, w = u8.shape[:2]
    base = (str(path), *PARAMS, "--size", f"{w}x{h}", "--no-ui", "--show", "after")
    _, after, st0 = _view(display, tmp_path, *base, name="base")
    # Shift+] raises sigma by 0.25 px: a re-solve (one only) and a different picture
    _, sharper, st1 = _view(display, tmp_path, *base, "--inject", "1:key:RIGHT_BRACKET+SHIFT", name="sigma")
    assert st1["params"]["sigma"] == pytest.approx(1.25)
    assert st1["solves"] == 2 and st1["uploads"] == 1
    assert np.abs(sharper.astype(int) - after.astype(int)).max() > 5
    # S turns the split on (divider at the middle): the left half is the input, bit for bit
    _, split, st2 = _view(display, tmp_path, *base, "--inject", "1:key:S", name="split")
    assert st2["view"]["mode"] == "split" and st2["view"]["split"] == 0.5
    half = w // 2
    assert np.array_equal(split[:, :half], u8[:, :half])
    assert np.array_equal(split[:, half:], after[:, half:])
    # drag the divider to 1/4, zoom in 4 notches (x2) around the divider, F12 writes a view screenshot,
    # Ctrl+S saves the parameters
    ev = f"1:key:S;1:drag:{half},50,{w // 4},50;2:scroll:{w // 4},{h // 2},4;2:key:F12;2:key:S+CONTROL"
    _, zoomed, st3 = _view(display, tmp_path, *base, "--inject", ev, "--screenshot-dir", str(tmp_path), name="zoom")
    v = st3["view"]
    assert v["split"] == pytest.approx(0.25) and v["zoom"] == 2.0
    # the image point under the cursor stayed put: (w/4, h/2) -> origin = cursor - cursor * 2
    assert v["origin"] == [-(w // 4), -(h // 2)]
    assert len(st3["screenshots"]) == 2 and all(Path(p).is_file() for p in st3["screenshots"])
    from gpu_deconv.core.params import DeconvParams

    saved = DeconvParams.load(tmp_path / "gpu_deconv_params.json")
    assert saved == DeconvParams(sigma=1.0, noise=0.004, method="laplacian", mode="global")
    # nearest neighbour at zoom 2: every displayed pixel is repeated 2 x 2
    assert np.array_equal(zoomed[0::2, 0::2], zoomed[1::2, 1::2])
    for s in (st0, st1, st2, st3):
        assert s["gl_errors"] == []


def test_ui_frame_and_help_overlay_render_cleanly(display: str, tmp_path: Path) -> None:
    """(3): the full UI (panel, plot, help overlay) on the built-in chart in simulate mode, no GL error."""
    proc, shot, st = _view(display, tmp_path, "--size", "1280x800", "--inject", "1:key:F1", frames=5)
    assert st["gl_errors"] == [] and st["simulate"] and st["sim_runs"] == 1 and st["uploads"] == 1
    assert st["design"] is not None and shot.shape == (800, 1280, 3)
    assert proc.stderr.strip() == ""


def test_bad_file_keeps_the_viewer_open(display: str, tmp_path: Path, test_png) -> None:
    """(4): a file that fails to open: one line on the terminal, a message in the window, still running."""
    bad = tmp_path / "broken.png"
    bad.write_text("this is not a PNG\n")
    good, _ = test_png
    proc, shot, st = _view(display, tmp_path, str(bad), "--size", "800x600", frames=4)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "error" in lines[0]
    assert str(bad) in st["message"] and st["frames"] == 4 and st["uploads"] == 0
    banner = shot[25:75, 10:300].astype(int)  # the red error text at the top left of the view
    assert ((banner[..., 0] > 200) & (banner[..., 1] < 160)).sum() > 50
    # the window stays usable: dropping a good file afterwards opens it and clears the message
    proc, shot, st = _view(display, tmp_path, str(bad), "--size", "800x600", "--inject", f"2:drop:{good}",
                           frames=4, name="recovered")
    assert st["message"] is None and st["uploads"] == 1 and st["gl_errors"] == []


def test_folder_and_video_navigation(display: str, tmp_path: Path, test_png) -> None:
    """Folder next/previous (past an unreadable file) and video play / pause / step."""
    from gpu_deconv.io.images import write_image

    _, u8 = test_png
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_image(folder / "a.png", u8)
    (folder / "b.png").write_text("broken")
    write_image(folder / "c.png", u8[::-1].copy())
    proc, _, st = _view(display, tmp_path, str(folder), "--no-ui", "--inject", "1:key:RIGHT;2:key:RIGHT",
                        frames=4, name="folder")
    assert "c.png" in st["source"] and st["uploads"] == 2 and st["message"] is None
    assert sum("b.png" in ln for ln in proc.stderr.splitlines()) == 1
    try:
        from gpu_deconv.io.video import VideoWriter, ffmpeg_exe

        ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - the video part needs imageio-ffmpeg's binary
        pytest.skip(f"no ffmpeg for the video part: {e}")
    clip = tmp_path / "clip.mp4"
    wr = VideoWriter(clip, (u8.shape[1], u8.shape[0]), 25)
    for i in range(6):
        wr.write(np.roll(u8, 8 * i, axis=1))
    wr.close()
    # Space pauses at once, then two single steps: exactly three frames shown and uploaded
    _, _, st = _view(display, tmp_path, str(clip), "--no-ui", "--inject", "0:key:SPACE;2:key:PERIOD;3:key:RIGHT",
                     frames=5, name="video")
    assert "frame 3/" in st["source"] and "paused" in st["source"] and st["uploads"] == 3


def test_docs_list_every_shortcut() -> None:
    """docs/viewer.md's shortcut table is the help overlay's table (keys.SHORTCUTS), row for row."""
    doc = (ROOT / "docs" / "viewer.md").read_text(encoding="utf-8")
    for keys_, what in SHORTCUTS:
        row = f"| {keys_.replace('|', chr(92) + '|')} | {what.replace('|', chr(92) + '|')} |"
        assert row in doc, f"docs/viewer.md lacks the shortcut row {row!r}"


def test_simulation_equals_blur_and_noise(gl_ctx) -> None:
    """The viewer's GPU "simulate" passes give chart.blur_and_noise (same taps, same seeded noise)."""
    from gpu_deconv.apps.viewer.gpu import Simulator
    from gpu_deconv.core.chart import blur_and_noise, gaussian_taps, test_chart
    from gpu_deconv.core.colour import linear_to_srgb, srgb_to_linear

    img = test_chart((96, 128))
    rgba = np.ones((96, 128, 4), np.float32)
    rgba[..., :3] = img
    src = gl_ctx.texture((128, 96), 4, rgba.tobytes(), dtype="f4")
    u8 = np.round(np.clip(linear_to_srgb(img), 0, 1) * 255).astype(np.uint8)
    r8 = np.full((96, 128, 4), 255, np.uint8)
    r8[..., :3] = u8
    src8 = gl_ctx.texture((128, 96), 4, r8.tobytes(), dtype="f1")
    sim = Simulator(gl_ctx)
    try:
        out = sim.run(src, gaussian_taps(1.3), 0.01, 5, src_srgb=False, encode_out=False)
        gpu = np.frombuffer(out.read(), np.float32).reshape(96, 128, 4)[..., :3]
        np.testing.assert_allclose(gpu, blur_and_noise(img, 1.3, 0.01, 5), atol=1e-6)
        out = sim.run(src8, gaussian_taps(0.7), 0.003, 2, src_srgb=True, encode_out=True, src_key=1)
        gpu = np.frombuffer(out.read(), np.float32).reshape(96, 128, 4)[..., :3]
        ref = linear_to_srgb(blur_and_noise(srgb_to_linear(u8 / np.float32(255)), 0.7, 0.003, 2))
        np.testing.assert_allclose(gpu, ref, atol=2e-6)
        assert gl_ctx.error == "GL_NO_ERROR"
    finally:
        sim.release()
        src.release()
        src8.release()
