"""The interactive viewer: a glfw window, the engine on the window's GL context, Dear ImGui controls.

Every frame: input -> UI state -> CPU re-solve (only when the parameters changed) -> upload (only when
the frame changed) -> simulate (only when its inputs changed) -> engine GPU passes -> display -> UI.

The window is GL 3.3 core (forward-compatible, for macOS), vsync'd, resizable and HiDPI-correct: the
image view works in framebuffer pixels, cursor positions arrive in window coordinates and are scaled
by ``framebuffer size / window size``. The engine borrows the window's moderngl context.

Scripted mode (``frames``) renders a fixed number of frames, optionally saves the window framebuffer
as a PNG and exits; scripted input (``inject``) goes through the same callbacks glfw calls, so tests
exercise the real event path.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.params import METHODS, DeconvParams
from ...core.temporal import TemporalSmoother
from ...errors import one_line
from .gpu import LEVEL_RANGE, OVERLAYS, SIGMA_RANGE
from .keys import InjectedEvent
from .panel import PANEL_WIDTH, Panel
from .sources import Source, as_rgba, open_source
from .view import ViewGeometry

PROG = "gpu-deconv view"
DEFAULT_WINDOW = (1600, 900)


class ViewerError(RuntimeError):
    """The viewer could not start (no display, no GL 3.3, missing packages); one-line message."""


@dataclass
class ViewerOptions:
    """How to start the viewer (the command line, parsed).

    Attributes
    ----------
    path : str or None
        Image, folder or video; None shows the built-in test chart.
    params : DeconvParams
        Start-up parameters (``R`` returns to them).
    size : (int, int) or None
        Window size ``(width, height)`` in window coordinates; default fits the image and the panel.
    frames : int or None
        Scripted mode: render this many frames, then exit.
    screenshot : str or None
        Scripted mode: save the window framebuffer here (PNG) after the last frame.
    no_ui : bool
        Start with the control panel hidden (the view fills the window; for pixel comparisons).
    mode : {'split', 'before', 'after'}
    split : float
        Divider position as a fraction of the view width (0: all "after").
    zoom : float or None
        Initial zoom; None fits the image (zoom 1 when it fits).
    center : (float, float) or None
        Image point ``(x, y)`` (pixels) to put at the centre of the view initially.
    simulate : bool or None
        Start in simulate mode; None: on for the sharp test chart, off for files.
    sim_noise : float
        Noise the simulation adds while the deconvolution noise is 'auto' (linear std).
    seed : int
        Seed of the simulated noise.
    check_gl : bool
        Check ``ctx.error`` every frame; errors make the exit code 3.
    inject : list of InjectedEvent
        Scripted input (tests).
    stats_path : str or None
        Write counters and timings as JSON at exit (tests, benchmark).
    vsync : bool
    params_path : str
        File for Ctrl+S / Ctrl+O.
    screenshot_dir : str
        Folder for F12 screenshots.
    chart_size : (int, int) or None
        ``(height, width)`` of the test chart.
    profile : bool
        Finish the GL queue after every phase of a frame and record per-phase times in
        ``ViewerApp.phase_ms`` (the benchmark; slows the loop down a little).
    overlay : {'none', 'level', 'sigma'}
        False-colour overlay on the view: the adaptive mode's local level ``v = log2(A / sigma^2)``, or the
        blind sigma estimate per map cell (with ``sigma='auto'``).
    overlay_alpha : float
        Opacity of the overlay, in [0, 1].
    """

    path: str | None = None
    params: DeconvParams = field(default_factory=DeconvParams)
    size: tuple[int, int] | None = None
    frames: int | None = None
    screenshot: str | None = None
    no_ui: bool = False
    mode: str = "split"
    split: float = 0.5
    zoom: float | None = None
    center: tuple[float, float] | None = None
    simulate: bool | None = None
    sim_noise: float = 0.005
    seed: int = 0
    check_gl: bool = False
    inject: list[InjectedEvent] = field(default_factory=list)
    stats_path: str | None = None
    vsync: bool = True
    params_path: str = "gpu_deconv_params.json"
    screenshot_dir: str = "."
    chart_size: tuple[int, int] | None = None
    profile: bool = False
    overlay: str = "none"
    overlay_alpha: float = 0.6


def _import_window_libs() -> tuple[Any, Any, Any, Any]:
    """Import imgui-bundle *before* glfw, so pyGLFW loads the libglfw imgui-bundle's backend uses."""
    try:
        from imgui_bundle import imgui, implot
    except ImportError as e:
        raise ViewerError(f"the viewer needs imgui-bundle (pip install 'gpu_deconv[viewer]'): {e}") from None
    try:
        import glfw
    except ImportError as e:
        raise ViewerError(f"the viewer needs glfw (pip install 'gpu_deconv[viewer]'): {e}") from None
    import moderngl

    return imgui, implot, glfw, moderngl


def _glfw_error(glfw) -> str:
    """``": <glfw's last error description>"`` or ``""``."""
    try:
        desc = glfw.get_error()[1]
    except Exception:
        return ""
    if isinstance(desc, bytes):
        desc = desc.decode("utf-8", "replace")
    return f": {desc}" if desc else ""


class ViewerApp:
    """The viewer; ``run()`` returns the exit code.

    Attributes used by the panel and the tests: ``params`` (what the UI asks for), ``applied`` (what
    the engine last accepted), ``geom`` (:class:`~gpu_deconv.apps.viewer.view.ViewGeometry`), ``source``,
    ``uploads``, ``solves``, ``frames_drawn``, ``gl_errors``, ``message``.
    """

    def __init__(self, opts: ViewerOptions) -> None:
        self.opts = opts
        self.start_params = opts.params
        self.params = opts.params
        self.applied: DeconvParams | None = None
        #: Integer depth of the frame the engine reads (None: float), passed to the engine as ``bits=``.
        self.frame_bits: int | None = None
        self.param_error: str | None = None
        self.message: str | None = None
        self.simulate = False
        self.show_original = False
        self.sim_noise = float(opts.sim_noise)
        self.seed = int(opts.seed)
        self.show_ui = not opts.no_ui
        self.ui_scale = 1.0
        self.show_help = False
        self.plot_diagonal = False
        self.overlay = opts.overlay
        self.overlay_alpha = float(opts.overlay_alpha)
        #: Why the chosen overlay is not drawn (None while it is, or when none is chosen).
        self.overlay_note: str | None = None
        #: The drawn overlay's colour scale ``(label, lo, hi)`` for the legend; None when nothing is drawn.
        self.overlay_scale: tuple[str, float, float] | None = None
        #: The blind sigma map of the last statistics (:class:`~gpu_deconv.core.sigma_map.TileMap`), made while
        #: the sigma overlay is shown.
        self.tile_map = None
        #: Simulate mode with sigma 'auto': the sharp input is blurred with the last numeric sigma asked for.
        self.sim_sigma = float(opts.params.sigma) if not opts.params.sigma_is_auto else 1.0
        self.geom = ViewGeometry(mode=opts.mode, split=float(opts.split))
        self.params_path = opts.params_path
        self.open_path = opts.path or ""
        # counters (tests assert on them)
        self.frames_drawn = 0
        self.uploads = 0
        self.solves = 0
        self.gl_errors: list[str] = []
        self.screenshots: list[str] = []
        # timings
        self.fps = 0.0
        self.cpu_ms = 0.0
        self.solve_ms = 0.0
        self.display_gpu_ms: float | None = None
        self._last_t: float | None = None
        self.phase_ms: dict[str, list[float]] = {}
        #: perf_counter() at the start of every frame (scripted mode only; for throughput).
        self.frame_starts: list[float] = []
        self._phase_t = 0.0
        # GL objects (made in run)
        self.window = None
        self.ctx = None
        self.engine = None
        self.source: Source | None = None
        self._src_tex = None
        self._src_key: tuple | None = None
        self._rgba_buf: np.ndarray | None = None
        self._after_tex = None
        self._after_fbo = None
        self._sim = None
        self._sim_key: tuple | None = None
        self._encoder = None
        self._enc_key: tuple | None = None
        self._display = None
        self._overlay = None
        self._level_tex = None
        self._level_fbo = None
        self._tile_tex = None
        self._tile_stats = None  # the statistics tile_map was made from
        self._tile_t = 0.0
        self._timer = None
        self._want_view_shot = False
        self._quit = False
        # mouse
        self._cursor = (0.0, 0.0)  # window coordinates
        self._drag: str | None = None  # 'pan' | 'divider'
        self._title = ""
        self.renderer = ""

    # ------------------------------------------------------------------------------------------------
    # start-up and shutdown
    def run(self) -> int:
        """Open the window, loop until closed (or ``frames`` are drawn), clean up; the exit code."""
        imgui, implot, glfw, moderngl = _import_window_libs()
        self._imgui, self._implot, self._glfw = imgui, implot, glfw
        glfw.ERROR_REPORTING = "ignore"  # failures become one-line ViewerErrors with glfw's description
        if not glfw.init():
            raise ViewerError(f"cannot initialise glfw (no display? DISPLAY={os.environ.get('DISPLAY')!r})"
                              + _glfw_error(glfw))
        try:
            return self._run(imgui, implot, glfw, moderngl)
        finally:
            self._shutdown()
            glfw.terminate()

    def _create_window(self, glfw) -> None:
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.RESIZABLE, True)
        glfw.window_hint(glfw.SCALE_TO_MONITOR, True)
        if self.opts.frames is not None:
            glfw.window_hint(glfw.FOCUS_ON_SHOW, False)
        w, h = self.opts.size or DEFAULT_WINDOW
        self.window = glfw.create_window(int(w), int(h), PROG, None, None)
        if not self.window:
            raise ViewerError("cannot open a window with an OpenGL 3.3 core context (driver too old, or no display)"
                              + _glfw_error(glfw))
        glfw.make_context_current(self.window)
        glfw.swap_interval(1 if self.opts.vsync else 0)

    def _run(self, imgui, implot, glfw, moderngl) -> int:
        self._create_window(glfw)
        self.ctx = moderngl.create_context()
        if self.ctx.version_code < 330:
            raise ViewerError(f"OpenGL {self.ctx.version_code / 100:.1f} context; 3.3 core is needed")
        self.renderer = self.ctx.info.get("GL_RENDERER", "?")
        self._addr = ctypes.cast(self.window, ctypes.c_void_p).value
        imgui.create_context()
        implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename(None)  # no imgui.ini next to the user's files
        # UI scale: the monitor's content scale, unless the window already counts in points
        # (macOS Retina: framebuffer = 2 x window size, and ImGui's backend handles that itself)
        ww, _ = glfw.get_window_size(self.window)
        fbw, _ = glfw.get_framebuffer_size(self.window)
        scale = max(glfw.get_window_content_scale(self.window)[0] * ww / max(fbw, 1), 1.0)
        if scale != 1.0:
            imgui.get_style().scale_all_sizes(scale)
            imgui.get_style().font_scale_dpi = scale
        self.ui_scale = scale
        imgui.backends.glfw_init_for_opengl(self._addr, False)
        imgui.backends.opengl3_init("#version 330")
        self._install_callbacks(glfw)

        from ...gl.context import raw_gl
        from ...gl.engine import Deconvolver
        from ...gl.timing import GpuTimer
        from .gpu import Display, Encoder, Overlay, Simulator

        # stats_latency=1: a frame's statistics steer the next one, so no frame waits on a GPU read-back
        # temporal: the noise and level estimates are smoothed over frames (video, or a still that is redrawn
        # with fresh simulated noise), restarting at scene cuts and whenever another image is shown
        self.engine = Deconvolver(ctx=self.ctx, params=self.params, stats_latency=1, temporal=TemporalSmoother())
        self._sim = Simulator(self.ctx)
        self._display = Display(self.ctx)
        self._overlay = Overlay(self.ctx)
        self._encoder = Encoder(self.ctx)
        self._timer = GpuTimer(self.ctx, raw_gl(self.ctx))
        self.open(self.opts.path, initial=True)
        if self.opts.size is None:
            self._size_window_to_image(glfw)
        self._layout()
        if self.opts.zoom is not None:
            self.geom.zoom_at(self.geom.view_w / 2, self.geom.view_h / 2, self.opts.zoom / self.geom.zoom)
        if self.opts.center is not None:
            cx, cy = self.geom.to_view(*self.opts.center)
            self.geom.pan(self.geom.view_w / 2 - cx, self.geom.view_h / 2 - cy)
        self.panel = Panel(self)
        inject = list(self.opts.inject)
        while not glfw.window_should_close(self.window) and not self._quit:
            if self.opts.frames is not None and self.frames_drawn >= self.opts.frames:
                break
            glfw.poll_events()
            while inject and inject[0].frame <= self.frames_drawn:
                self._inject(inject.pop(0))
            self.frame()
        if self.opts.screenshot:
            self._write_final_screenshot()
        if self.opts.stats_path:
            self._write_stats(self.opts.stats_path)
        if self.gl_errors and self.opts.check_gl:
            return 3
        return 0

    def _shutdown(self) -> None:
        imgui = getattr(self, "_imgui", None)
        if self.source is not None:
            self.source.close()
        for name in ("_after_fbo", "_after_tex", "_src_tex", "_level_fbo", "_level_tex", "_tile_tex"):
            o = getattr(self, name)
            if o is not None:
                o.release()
                setattr(self, name, None)
        for name in ("_sim", "_encoder", "_display", "_overlay", "_timer", "engine"):
            o = getattr(self, name)
            if o is not None:
                o.release()
                setattr(self, name, None)
        if imgui is not None and self.window is not None and getattr(self, "_addr", None):
            try:
                imgui.backends.opengl3_shutdown()
                imgui.backends.glfw_shutdown()
                self._implot.destroy_context()
                imgui.destroy_context()
            except Exception:  # a failed start may not have created them all
                pass
        if self.window is not None:
            self._glfw.destroy_window(self.window)
            self.window = None

    # ------------------------------------------------------------------------------------------------
    # sources
    def open(self, path: str | None, initial: bool = False) -> bool:
        """Show ``path`` (None: the chart). On failure the error is shown and the old source kept."""
        try:
            src = open_source(path, self.opts.chart_size)
        except Exception as e:  # open_source itself only fails on programming errors; stay open anyway
            self.report(one_line(e, path))
            return False
        if src.error and src.frame is None and not initial and src.kind != "folder":
            self.report(src.error)
            src.close()
            return False
        if self.source is not None:
            self.source.close()
        self.source = src
        self._new_scene()
        self.open_path = path or ""
        if src.error:
            self.report(src.error)
        else:
            self.message = None
        if self.opts.simulate is None:  # the sharp chart starts in simulate mode, files do not
            self.simulate = src.sharp
        elif initial:
            self.simulate = bool(self.opts.simulate)
        if src.frame is not None:
            h, w = src.frame.shape[:2]
            self.geom.set_image(w, h)
        return src.error is None

    def report(self, msg: str) -> None:
        """Show a one-line error in the window and print it on the terminal."""
        self.message = msg
        print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)

    def _size_window_to_image(self, glfw) -> None:
        """Default window: the image at 100% plus the panel, within 90% of the monitor's work area."""
        if self.source is None or self.source.frame is None:
            return
        h, w = self.source.frame.shape[:2]
        mon = glfw.get_primary_monitor()
        area = glfw.get_monitor_workarea(mon) if mon else (0, 0, *DEFAULT_WINDOW)
        fbw, fbh = glfw.get_framebuffer_size(self.window)
        ww, wh = glfw.get_window_size(self.window)
        sx = fbw / max(ww, 1)
        panel = PANEL_WIDTH * self.ui_scale if self.show_ui else 0
        want_w = int(w / sx + panel)
        want_h = int(h / sx)
        max_w, max_h = int(area[2] * 0.9), int(area[3] * 0.9)
        min_h = 760 if self.show_ui else 360  # room for the panel
        glfw.set_window_size(self.window, max(min(want_w, max_w), 480), min(max(want_h, min_h), max_h))

    # ------------------------------------------------------------------------------------------------
    # layout and coordinates
    def fb_size(self) -> tuple[int, int]:
        return self._glfw.get_framebuffer_size(self.window)

    def panel_px(self) -> int:
        """Panel width in framebuffer pixels (0 when hidden)."""
        if not self.show_ui:
            return 0
        fbw, _ = self.fb_size()
        ww, _ = self._glfw.get_window_size(self.window)
        return int(round(PANEL_WIDTH * self.ui_scale * fbw / max(ww, 1)))

    def view_rect(self) -> tuple[int, int, int, int]:
        """``(x, y_top, w, h)`` of the image view in framebuffer pixels."""
        fbw, fbh = self.fb_size()
        return 0, 0, max(fbw - self.panel_px(), 1), max(fbh, 1)

    def _layout(self) -> None:
        _, _, w, h = self.view_rect()
        self.geom.set_view(w, h)

    def to_fb(self, x: float, y: float) -> tuple[float, float]:
        """Window coordinates -> framebuffer pixels (HiDPI)."""
        fbw, fbh = self.fb_size()
        ww, wh = self._glfw.get_window_size(self.window)
        return x * fbw / max(ww, 1), y * fbh / max(wh, 1)

    # ------------------------------------------------------------------------------------------------
    # glfw callbacks: forwarded to Dear ImGui, then to the viewer unless ImGui wants the event
    def _install_callbacks(self, glfw) -> None:
        w = self.window
        glfw.set_key_callback(w, self.on_key)
        glfw.set_char_callback(w, self.on_char)
        glfw.set_mouse_button_callback(w, self.on_mouse_button)
        glfw.set_cursor_pos_callback(w, self.on_cursor_pos)
        glfw.set_scroll_callback(w, self.on_scroll)
        glfw.set_framebuffer_size_callback(w, self.on_framebuffer_size)
        glfw.set_window_focus_callback(w, self.on_focus)
        glfw.set_cursor_enter_callback(w, self.on_cursor_enter)
        glfw.set_drop_callback(w, self.on_drop)

    def on_focus(self, window, focused) -> None:
        self._imgui.backends.glfw_window_focus_callback(self._addr, int(focused))

    def on_cursor_enter(self, window, entered) -> None:
        self._imgui.backends.glfw_cursor_enter_callback(self._addr, int(entered))

    def on_char(self, window, codepoint) -> None:
        self._imgui.backends.glfw_char_callback(self._addr, int(codepoint))

    def on_framebuffer_size(self, window, w, h) -> None:
        self._layout()

    def on_drop(self, window, paths) -> None:
        if paths:
            self.open(paths[0])

    def _ui_has_mouse(self) -> bool:
        x, _ = self.to_fb(*self._cursor)
        return self.show_ui and (self._imgui.get_io().want_capture_mouse or x >= self.view_rect()[2])

    def on_cursor_pos(self, window, x, y) -> None:
        self._imgui.backends.glfw_cursor_pos_callback(self._addr, float(x), float(y))
        px, py = self.to_fb(*self._cursor)
        self._cursor = (float(x), float(y))
        fx, fy = self.to_fb(x, y)
        if self._drag == "pan":
            self.geom.pan(fx - px, fy - py)
        elif self._drag == "divider":
            self.geom.drag_divider(fx)

    def on_mouse_button(self, window, button, action, mods) -> None:
        glfw = self._glfw
        self._imgui.backends.glfw_mouse_button_callback(self._addr, button, action, mods)
        if button != glfw.MOUSE_BUTTON_LEFT:
            return
        if action == glfw.RELEASE:
            self._drag = None
            return
        if action == glfw.PRESS and not self._ui_has_mouse():
            fx, _ = self.to_fb(*self._cursor)
            self._drag = "divider" if self.geom.near_divider(fx) else "pan"

    def on_scroll(self, window, dx, dy) -> None:
        self._imgui.backends.glfw_scroll_callback(self._addr, float(dx), float(dy))
        if self._ui_has_mouse() or not dy:
            return
        fx, fy = self.to_fb(*self._cursor)
        self.geom.wheel(fx, fy, float(dy))

    def on_key(self, window, key, scancode, action, mods) -> None:
        imgui, glfw = self._imgui, self._glfw
        imgui.backends.glfw_key_callback(self._addr, key, scancode, action, mods)
        if action not in (glfw.PRESS, glfw.REPEAT) or imgui.get_io().want_text_input:
            return
        self.handle_key(key, mods)

    # the shortcut table lives in keys.SHORTCUTS; keep the two in step
    def handle_key(self, key: int, mods: int) -> None:
        """Apply one shortcut (see :data:`gpu_deconv.apps.viewer.keys.SHORTCUTS`)."""
        g = self._glfw
        shift = bool(mods & g.MOD_SHIFT)
        ctrl = bool(mods & (g.MOD_CONTROL | g.MOD_SUPER))
        p = self.params
        src = self.source
        if ctrl and key == g.KEY_S:
            self.save_params(self.params_path)
        elif ctrl and key == g.KEY_O:
            self.load_params(self.params_path)
        elif ctrl:
            return
        elif key in (g.KEY_F1, g.KEY_H):
            self.show_help = not self.show_help
        elif key == g.KEY_ESCAPE:
            if self.show_help:
                self.show_help = False
            else:
                self._quit = True
        elif key == g.KEY_Q:
            self._quit = True
        elif key == g.KEY_TAB:
            self.show_ui = not self.show_ui
            self._layout()
        elif key == g.KEY_S:
            self.geom.toggle_split()
        elif key == g.KEY_A:
            self.geom.toggle_ab()
        elif key in (g.KEY_F, g.KEY_0):
            self.geom.fit = True
            self.geom.fit_image()
        elif key == g.KEY_1:
            self.geom.actual_size()
        elif key in (g.KEY_LEFT_BRACKET, g.KEY_RIGHT_BRACKET):  # from 'auto': steps from the sigma it used
            step = (0.25 if shift else 0.05) * (1 if key == g.KEY_RIGHT_BRACKET else -1)
            self.set_param(sigma=round(min(max(self.sigma_used() + step, 0.1), 4.0), 4))
        elif key == g.KEY_U:
            self.set_param(sigma=round(self.sigma_used(), 4) if p.sigma_is_auto else "auto")
        elif key == g.KEY_D:
            self.set_param(mode="global" if p.mode == "adaptive" else "adaptive")
        elif key == g.KEY_V:
            self.overlay = OVERLAYS[(OVERLAYS.index(self.overlay) + 1) % len(OVERLAYS)]
        elif key in (g.KEY_MINUS, g.KEY_EQUAL):
            base = self.sim_noise if p.noise_is_auto else float(p.noise)
            f = 1.25 if key == g.KEY_EQUAL else 1 / 1.25
            self.set_param(noise=float(min(max(base * f, 1e-4), 0.2)))
        elif key == g.KEY_N:
            self.set_param(noise=(self.sim_noise if p.noise_is_auto else "auto"))
        elif key == g.KEY_M:
            i = METHODS.index(p.method)
            self.set_param(method=METHODS[(i + (-1 if shift else 1)) % len(METHODS)])
        elif key == g.KEY_G:
            order = ("auto", "srgb", "linear")
            self.set_param(space=order[(order.index(p.space) + 1) % 3])
        elif key == g.KEY_P:
            self.set_param(precision=32 if p.precision == 16 else 16)
        elif key == g.KEY_I:
            self.simulate = not self.simulate
        elif key == g.KEY_O:
            self.show_original = not self.show_original
        elif key == g.KEY_R:
            self.params = self.start_params
            self.param_error = None
        elif key == g.KEY_SPACE and src is not None and src.kind == "video":
            src.toggle_play()  # type: ignore[attr-defined]
        elif key == g.KEY_L and src is not None and src.kind == "video":
            src.loop = not src.loop  # type: ignore[attr-defined]
        elif key in (g.KEY_RIGHT, g.KEY_PERIOD, g.KEY_PAGE_DOWN) and src is not None:
            if src.kind == "video" and key == g.KEY_PAGE_DOWN:
                return
            src.next()
            self.after_navigation()
        elif key in (g.KEY_LEFT, g.KEY_COMMA, g.KEY_PAGE_UP) and src is not None:
            src.prev()
            self.after_navigation()
        elif key in (g.KEY_F12, g.KEY_C):
            self.request_view_screenshot()

    def request_view_screenshot(self) -> None:
        """Save the view (image area only) after the next frame is drawn."""
        self._want_view_shot = True

    def _new_scene(self) -> None:
        if self.engine is not None and self.engine.temporal is not None:
            self.engine.temporal.reset()

    def after_navigation(self) -> None:
        src = self.source
        if src is None:
            return
        if src.kind == "folder":  # another image; a video's steps continue its scene
            self._new_scene()
        if src.error:
            self.report(src.error)
        else:
            self.message = None
        if src.frame is not None and src.kind == "folder":
            h, w = src.frame.shape[:2]
            self.geom.set_image(w, h, keep_view=True)

    def _inject(self, ev: InjectedEvent) -> None:
        """Feed one scripted event through the glfw callbacks."""
        g = self._glfw
        w = self.window
        if ev.kind == "key":
            name, mods_names = ev.args
            key = getattr(g, f"KEY_{name}", None)
            if key is None:
                raise ValueError(f"--inject: no glfw key KEY_{name}")
            mods = 0
            for m in mods_names:
                mods |= getattr(g, f"MOD_{'CONTROL' if m == 'CTRL' else m}")
            self.on_key(w, key, 0, g.PRESS, mods)
            self.on_key(w, key, 0, g.RELEASE, mods)
        elif ev.kind == "move":
            self.on_cursor_pos(w, *ev.args)
        elif ev.kind == "scroll":
            x, y, n = ev.args
            self.on_cursor_pos(w, x, y)
            self.on_scroll(w, 0.0, n)
        elif ev.kind == "click":
            self.on_cursor_pos(w, *ev.args)
            self.on_mouse_button(w, g.MOUSE_BUTTON_LEFT, g.PRESS, 0)
            self.on_mouse_button(w, g.MOUSE_BUTTON_LEFT, g.RELEASE, 0)
        elif ev.kind == "drag":
            x0, y0, x1, y1 = ev.args
            self.on_cursor_pos(w, x0, y0)
            self.on_mouse_button(w, g.MOUSE_BUTTON_LEFT, g.PRESS, 0)
            for t in (0.25, 0.5, 0.75, 1.0):
                self.on_cursor_pos(w, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            self.on_mouse_button(w, g.MOUSE_BUTTON_LEFT, g.RELEASE, 0)
        elif ev.kind == "drop":
            self.on_drop(w, [ev.args[0]])

    # ------------------------------------------------------------------------------------------------
    # parameters
    def set_param(self, **changes: Any) -> bool:
        """Ask for new parameters (validated now; applied to the engine at the next frame)."""
        try:
            self.params = self.params.replace(**changes)
        except (TypeError, ValueError) as e:
            self.param_error = " ".join(str(e).split())
            return False
        return True

    def sigma_used(self) -> float:
        """The numeric sigma (px) in force: the requested one, or with 'auto' the one the engine last used."""
        p = self.applied or self.params
        if not p.sigma_is_auto:
            return float(p.sigma)
        d = self.engine.design if self.engine is not None else None
        return float(d.params.sigma) if d is not None and not d.params.sigma_is_auto else self.sim_sigma

    def save_params(self, path: str) -> None:
        try:
            (self.applied or self.params).save(path)
        except OSError as e:
            self.report(one_line(e, path))
            return
        self.message = None
        print(f"{PROG}: parameters saved to {path}", file=sys.stderr, flush=True)
        self.params_path = path

    def load_params(self, path: str) -> None:
        try:
            self.params = DeconvParams.load(path)
        except ValueError as e:
            self.report(" ".join(str(e).split()))
            return
        self.message = None
        self.params_path = path

    def _solve(self) -> None:
        """CPU re-solve when (and only when) the requested parameters differ from the applied ones."""
        if self.params == self.applied:
            return
        t0 = time.perf_counter()
        try:  # set_blur re-solves now (CPU only), so a combination the method refuses shows up here
            if self.params.sigma_is_auto:  # the blind sigma needs a frame's statistics: solved in apply()
                self.engine.designer.validate(self.params)
                self.engine.set_params(self.params)
            else:
                self.engine.set_blur(**self.params.to_dict(), bits=self.frame_bits)
        except (TypeError, ValueError) as e:
            self._reject(e)
            return
        self.solve_ms = (time.perf_counter() - t0) * 1e3
        self.solves += 1
        self.applied = self.params
        self.param_error = None
        if not self.params.sigma_is_auto:
            self.sim_sigma = float(self.params.sigma)

    def _reject(self, err: BaseException) -> None:
        """Parameters the engine refused: show why and go back to the last ones that worked."""
        self.param_error = " ".join(str(err).split())
        fallback = self.applied if self.applied is not None and self.applied != self.params else DeconvParams()
        self.params = self.applied = fallback  # the UI snaps back to what still works
        self.engine.set_params(fallback)

    # ------------------------------------------------------------------------------------------------
    # GPU work
    def _frame_spaces(self) -> tuple[bool, bool, bool]:
        """``(src_is_srgb, before_linear, after_linear)`` for the current frame and parameters.

        ``space`` says how the input's values are to be read: sRGB-encoded input is decoded to linear
        light before filtering; 'linear' filters the values as they are (for 8-bit input that is
        processing in the sRGB gamma domain). The display shows integer input as its codes, encodes
        linear float input, and encodes the output whenever it is linear light.
        """
        frame = self.source.frame
        integer = frame.dtype.kind in "ui"
        space = (self.applied or self.params).space
        srgb_in = space == "srgb" or (space == "auto" and integer)
        before_linear = not integer and not srgb_in
        return srgb_in, before_linear, before_linear or srgb_in

    def _upload(self) -> bool:
        """Upload the source frame when it changed; True when there is something to show."""
        src = self.source
        if src is None or src.frame is None:
            return False
        key = (src.serial, src.generation)
        if key == self._src_key:
            return True
        frame = src.frame
        limit = int(self.ctx.info.get("GL_MAX_TEXTURE_SIZE", 16384))
        if max(frame.shape[:2]) > limit:
            if self._src_key != ("too big", key):
                self.report(f"{src.status()}: {frame.shape[1]}x{frame.shape[0]} is larger than this GPU's "
                            f"{limit} px textures; 'gpu-deconv run' processes it in tiles")
                self._src_key = ("too big", key)
            return False
        rgba = as_rgba(frame, self._rgba_buf)
        self._rgba_buf = rgba
        h, w = rgba.shape[:2]
        dtype = {"u1": "f1", "u2": "nu2"}.get(rgba.dtype.str[1:], "f4")
        if rgba.dtype.kind == "f" and rgba.dtype != np.float32:
            rgba = rgba.astype(np.float32)
        t = self._src_tex
        if t is None or t.size != (w, h) or t.dtype != dtype:
            if t is not None:
                t.release()
            self._src_tex = t = self.ctx.texture((w, h), 4, dtype=dtype)
            if self._after_fbo is not None:
                self._after_fbo.release()
                self._after_tex.release()
            self._after_tex = self.ctx.texture((w, h), 4, dtype="f1")
            self._after_fbo = self.ctx.framebuffer([self._after_tex])
            self.geom.set_image(w, h, keep_view=True)
        t.write(np.ascontiguousarray(rgba))
        self.uploads += 1
        self._src_key = key
        self._sim_key = None
        return True

    def _set_bits(self) -> None:
        """Design for the bit depth of what the engine reads: the file's 8/16 bits, or float when simulating.

        ``apply`` gets it as ``bits=``, exactly as ``process`` (and so ``gpu-deconv run``) derives it from
        uint8/uint16 input, so the viewer's "after" is the batch tool's output, pixel for pixel.
        """
        if self.source is None or self.source.frame is None:
            return
        dt = self.source.frame.dtype
        bits = None if (self.simulate or dt.kind not in "ui") else 8 * dt.itemsize
        if bits != self.frame_bits:
            self.frame_bits = bits
            self.applied = None  # re-solve for the new bit depth (this frame)

    def _encoded(self, tex):
        """Display copy (sRGB RGBA8) of a linear texture, re-encoded only when its content changed."""
        key = (id(tex), self._src_key, self._sim_key if tex is not self._src_tex else None)
        if key != self._enc_key:
            self._encoder.run(tex)
            self._enc_key = key
        return self._encoder.out

    def sim_noise_std(self) -> float:
        """Noise the simulation adds: the deconvolution's noise, or ``sim_noise`` while that is 'auto'."""
        p = self.applied or self.params
        return self.sim_noise if p.noise_is_auto else float(p.noise)

    def _simulated(self, srgb_in: bool):
        """The degraded input in simulate mode (re-rendered only when its inputs change)."""
        from ...core.blur import make_blur

        p = self.applied or self.params
        integer = self.source.frame.dtype.kind in "ui"
        encoded = integer or srgb_in  # the simulation writes the source's own encoding
        frame_index = self.source.generation if self.source.kind == "video" else 0  # new noise per video frame
        sigma = self.sim_sigma if p.sigma_is_auto else p.sigma
        key = (self._src_key, p.blur, sigma, p.binomial_order, self.sim_noise_std(), self.seed, frame_index,
               encoded)
        if key != self._sim_key:
            taps = make_blur(p.blur, sigma, p.binomial_order).taps
            self._sim.run(self._src_tex, taps, self.sim_noise_std(), self.seed, src_srgb=encoded,
                          encode_out=encoded, src_key=self._src_key, frame_index=frame_index)
            self._sim_key = key
        return self._sim.out

    def frame(self) -> None:
        """Draw one frame (see the module docstring for the order of work)."""
        imgui = self._imgui
        t0 = time.perf_counter()
        if self._last_t is not None:
            dt = t0 - self._last_t
            self.fps = 0.9 * self.fps + 0.1 / dt if self.fps and dt > 0 else (1.0 / dt if dt > 0 else 0.0)
        self._last_t = t0
        self._phase_t = t0
        if self.opts.frames is not None:
            self.frame_starts.append(t0)
        if self.source is not None and self.source.poll(t0):
            if self.source.error:
                self.report(self.source.error)
        imgui.backends.opengl3_new_frame()
        imgui.backends.glfw_new_frame()
        imgui.new_frame()
        self.panel.draw()
        self._phase("UI build (ImGui + ImPlot)")
        self._set_bits()
        self._solve()
        self._phase("parameter solve (CPU)")
        self._layout()
        fbw, fbh = self.fb_size()
        screen = self.ctx.screen
        have = self._upload()
        screen.use()
        self.ctx.viewport = (0, 0, fbw, fbh)
        vx, _, vw, _ = self.view_rect()
        if have and vw < fbw:  # the display pass covers the view; clear only under the panel
            self.ctx.scissor = (vx + vw, 0, fbw - vw, fbh)
        if not have or vw < fbw:
            self.ctx.clear(0.08, 0.08, 0.09, 1.0)
        self.ctx.scissor = None
        self._phase("clear + upload")
        if have:
            srgb_in, before_linear, after_linear = self._frame_spaces()
            src = self._simulated(srgb_in) if self.simulate else self._src_tex
            self._phase("simulate")
            try:  # linear output is sRGB-encoded by the engine's last pass into the RGBA8 "after"
                self.engine.apply(src, self._after_fbo, src_is_srgb=srgb_in, encode_srgb=after_linear,
                                  bits=self.frame_bits)
            except ValueError as e:  # a design that fails only with this frame's statistics
                self._reject(e)
            self._phase("engine passes")
            before = self._src_tex if (self.simulate and self.show_original) else src
            if before_linear:
                before = self._encoded(before)
            screen.use()
            self._timer.begin()
            g = self.geom
            self._display.draw(
                before, self._after_tex, fb_size=(fbw, fbh), view_rect=self.view_rect(),
                image_origin=(g.ox, g.oy), zoom=g.zoom, divider=g.divider_x, mode=g.mode,
            )
            self._draw_overlay((fbw, fbh))
            self._phase("display pass")
            if self._want_view_shot:
                self._want_view_shot = False
                self._write_view_screenshot()
        else:
            self._timer.begin()
        imgui.render()
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        self._timer.end()
        self._phase("UI render")
        self.display_gpu_ms = self._timer.latest()
        self._check_gl()
        self._update_title()
        self.frames_drawn += 1
        self.cpu_ms = (time.perf_counter() - t0) * 1e3
        if not (self.opts.screenshot and self.opts.frames is not None and self.frames_drawn >= self.opts.frames):
            self._glfw.swap_buffers(self.window)
        self._phase("swap")
        if self.opts.profile:
            self.phase_ms.setdefault("frame total", []).append((time.perf_counter() - t0) * 1e3)

    def _draw_overlay(self, fb_size: tuple[int, int]) -> None:
        """Blend the chosen overlay over the view (nothing, with a note saying why, when it does not apply)."""
        self.overlay_scale = self.overlay_note = None
        if self.overlay == "none":
            return
        w, h = self._after_tex.size
        if self.overlay == "level":
            if self._level_tex is None or self._level_tex.size != (w, h):
                if self._level_tex is not None:
                    self._level_fbo.release()
                    self._level_tex.release()
                self._level_tex = self.ctx.texture((w, h), 4, dtype="f4")
                self._level_fbo = self.ctx.framebuffer([self._level_tex])
            if not self.engine.draw_level_map(self._level_fbo):
                self.overlay_note = "level map: only in the adaptive mode (method auto / comb / laplacian)"
                return
            tex, tiles, cell = self._level_tex, False, 1.0
            scale = ("local level v = log2(A / noise var)", *LEVEL_RANGE)
        else:
            tex = self._tile_texture(w, h)
            if tex is None:
                return
            from ...core.sigma_map import MAP_CELL

            tiles, cell = True, float(MAP_CELL)
            scale = ("blind sigma per 64 px cell (px)", *SIGMA_RANGE)
        self.ctx.screen.use()
        g = self.geom
        self._overlay.draw(tex, tiles=tiles, cell=cell, value_range=scale[1:], alpha=self.overlay_alpha,
                           image_size=(w, h), fb_size=fb_size, view_rect=self.view_rect(),
                           image_origin=(g.ox, g.oy), zoom=g.zoom)
        self.overlay_scale = scale

    def _tile_texture(self, w: int, h: int):
        """The blind sigma cells of the engine's last statistics as a ``(cells_x, cells_y)`` RG32F texture
        (``r`` sigma px, ``g`` 1 where the cell had a usable edge); None, with a note, when there are none.

        Re-fitted when the statistics change (every frame for video or with fresh simulated noise), at most
        4 times a second: the fit runs on the CPU over a grid of 16 px tiles, ~8000 of them at 1080p.
        """
        from ...core.blur_estimation import TileEnergies
        from ...core.sigma_map import map_from_tiles

        p = self.applied or self.params
        st = self.engine.last_blur_stats
        if not p.sigma_is_auto:
            self.overlay_note = "sigma map: only with sigma 'auto' (checkbox, or key U)"
            return None
        if st is None or st.band_block_sums is None:
            self.overlay_note = "sigma map: no blind estimate yet"
            return None
        now = time.perf_counter()
        if st is not self._tile_stats and (self._tile_stats is None or now - self._tile_t >= 0.25):
            d = self.engine.design
            noise = d.blur_estimate.noise_std if d is not None and d.blur_estimate is not None else None
            energies = TileEnergies(st.band_block_sums, st.hh_block_sums, st.block_counts, None, st.block,
                                    st.channels)
            self.tile_map = tm = map_from_tiles(energies, h, w, noise_std=noise, bits=self.frame_bits)
            cells = np.zeros(tm.cell_sigma.shape + (2,), np.float32)
            cells[..., 0] = np.nan_to_num(tm.cell_sigma)
            cells[..., 1] = tm.cell_weight > 0
            size = (cells.shape[1], cells.shape[0])
            if self._tile_tex is None or self._tile_tex.size != size:
                if self._tile_tex is not None:
                    self._tile_tex.release()
                self._tile_tex = self.ctx.texture(size, 2, dtype="f4")
            self._tile_tex.write(cells.tobytes())
            self._tile_stats, self._tile_t = st, now
        return self._tile_tex

    def _phase(self, name: str) -> None:
        """Profiling: finish the GL queue and charge the time since the last mark to ``name``."""
        if not self.opts.profile:
            return
        self.ctx.finish()
        t = time.perf_counter()
        self.phase_ms.setdefault(name, []).append((t - self._phase_t) * 1e3)
        self._phase_t = t

    def _check_gl(self) -> None:
        """With ``check_gl``: record (and print) a pending GL error."""
        if not self.opts.check_gl:
            return
        err = self.ctx.error
        if err != "GL_NO_ERROR":
            self.gl_errors.append(f"frame {self.frames_drawn}: {err}")
            print(f"{PROG}: GL error in frame {self.frames_drawn}: {err}", file=sys.stderr, flush=True)

    def _update_title(self) -> None:
        src = self.source
        name = src.status() if src is not None else ""
        p = self.applied or self.params
        sigma = f"auto ({self.sigma_used():.2f})" if p.sigma_is_auto else f"{p.sigma:g}"
        title = f"{PROG} - {name} - sigma {sigma} px, noise {p.noise if p.noise_is_auto else f'{p.noise:g}'}"
        if title != self._title:
            self._glfw.set_window_title(self.window, title)
            self._title = title

    # ------------------------------------------------------------------------------------------------
    # output
    def read_framebuffer(self, rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """RGB uint8 of the window's back buffer (top row first); ``rect = (x, y_top, w, h)`` in fb px."""
        fbw, fbh = self.fb_size()
        x, y_top, w, h = rect or (0, 0, fbw, fbh)
        self._check_gl()
        data = self.ctx.screen.read(viewport=(x, fbh - y_top - h, w, h), components=4, alignment=1)
        # moderngl's read of the default framebuffer calls glReadBuffer(GL_COLOR_ATTACHMENT0), which that
        # framebuffer rejects with GL_INVALID_OPERATION; the read itself uses the back buffer and is right.
        _ = self.ctx.error
        a = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 4)
        return np.ascontiguousarray(a[::-1, :, :3])

    def _write_png(self, path: str, rgb: np.ndarray) -> bool:
        from ...io.images import write_image

        try:
            write_image(path, rgb, format="png", overwrite=True)
        except Exception as e:
            self.report(one_line(e, path))
            return False
        self.screenshots.append(path)
        return True

    def _write_view_screenshot(self) -> None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        path = str(Path(self.opts.screenshot_dir) / f"gpu_deconv_view_{stamp}.png")
        if self._write_png(path, self.read_framebuffer(self.view_rect())):
            print(f"{PROG}: screenshot {path}", file=sys.stderr, flush=True)

    def _write_final_screenshot(self) -> None:
        self._write_png(self.opts.screenshot, self.read_framebuffer())

    def stats(self) -> dict[str, Any]:
        """Counters and timings (for tests and the benchmark)."""
        d = self.engine.design if self.engine is not None else None
        fbw, fbh = self.fb_size() if self.window is not None else (0, 0)
        ww, wh = self._glfw.get_window_size(self.window) if self.window is not None else (0, 0)
        return {
            "frames": self.frames_drawn,
            "uploads": self.uploads,
            "solves": self.solves,
            "sim_runs": self._sim.runs if self._sim is not None else 0,
            "gl_errors": self.gl_errors,
            "message": self.message,
            "param_error": self.param_error,
            "params": (self.applied or self.params).to_dict(),
            "design": d.summary() if d is not None else None,
            "engine_gpu_ms": getattr(self.engine, "last_gpu_ms", None),
            "display_gpu_ms": self.display_gpu_ms,
            "fps": self.fps,
            "cpu_ms": self.cpu_ms,
            "renderer": self.renderer,
            "framebuffer": [fbw, fbh],
            "window": [ww, wh],
            "view": {"mode": self.geom.mode, "split": self.geom.split, "zoom": self.geom.zoom,
                     "origin": [self.geom.ox, self.geom.oy]},
            "simulate": self.simulate,
            "screenshots": self.screenshots,
            "source": self.source.status() if self.source is not None else None,
            "mode": None if d is None else ("adaptive" if d.adaptive else "global"),
            "method": None if d is None else d.method,
            "sigma_used": None if d is None or d.params.sigma_is_auto else float(d.params.sigma),
            "sigma_hat": None if d is None or d.blur_estimate is None else float(d.blur_estimate.sigma),
            "blur_estimate": None if d is None or d.blur_estimate is None else d.blur_estimate.summary(),
            "overlay": self.overlay,
            "overlay_drawn": self.overlay_scale is not None,
            "overlay_note": self.overlay_note,
            "sigma_map": self._sigma_map_stats(),
        }

    def _sigma_map_stats(self) -> dict[str, Any] | None:
        """The sigma overlay's cells: edge px, sigma per cell (px, 0 where unusable) and the usable flags."""
        tm = self.tile_map
        if tm is None:
            return None
        from ...core.sigma_map import MAP_CELL

        usable = tm.cell_weight > 0
        return {"cell": MAP_CELL, "sigma": np.where(usable, np.nan_to_num(tm.cell_sigma), 0.0).tolist(),
                "usable": usable.tolist(), "cells": int(usable.sum())}

    def _write_stats(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.stats(), indent=2, default=str) + "\n", encoding="utf-8")


def run_viewer(opts: ViewerOptions) -> int:
    """Run the viewer; the exit code (errors that stop it from starting raise :class:`ViewerError`)."""
    return ViewerApp(opts).run()
