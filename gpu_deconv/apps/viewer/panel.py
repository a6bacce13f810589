"""The Dear ImGui control panel, help overlay, error banner and the response plot (ImPlot).

The panel only edits the app's *requested* state (``app.params``, ``app.simulate``, ``app.geom``...);
the app applies it after the UI is built (re-solving only when the parameters changed). All sizes are
in window coordinates, which Dear ImGui's glfw backend uses (HiDPI scaling is its business).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ...core.params import ADAPTIVE_METHODS, BLURS, METHODS, MODES, TARGETS, DeconvParams
from ..plotting import PLOT_LEVELS, adaptive_curves
from .gpu import OVERLAYS, viridis
from .keys import SHORTCUTS

#: Control panel width in window coordinates (scaled by the monitor's content scale).
PANEL_WIDTH = 400


class PanelHost(Protocol):
    """What the panel may read and change on the app that hosts it (the viewer's :class:`ViewerApp`).

    The panel edits requested state (``params``, ``simulate``, ``geom``...) and calls the few actions
    below; it never reaches into the app's internals, and the app is not imported here.
    """

    params: DeconvParams
    start_params: DeconvParams
    param_error: str | None
    message: str | None
    simulate: bool
    show_original: bool
    show_ui: bool
    show_help: bool
    plot_diagonal: bool
    overlay: str
    overlay_alpha: float
    overlay_note: str | None
    overlay_scale: tuple[str, float, float] | None
    tile_map: Any
    sim_noise: float
    seed: int
    ui_scale: float
    geom: Any
    source: Any
    engine: Any
    renderer: str
    open_path: str
    params_path: str
    fps: float
    cpu_ms: float
    display_gpu_ms: float | None
    solve_ms: float
    solves: int
    uploads: int

    def set_param(self, **changes: Any) -> bool: ...
    def open(self, path: str | None, initial: bool = False) -> bool: ...
    def save_params(self, path: str) -> None: ...
    def load_params(self, path: str) -> None: ...
    def after_navigation(self) -> None: ...
    def request_view_screenshot(self) -> None: ...
    def fb_size(self) -> tuple[int, int]: ...
    def sigma_used(self) -> float: ...

_RED = (1.0, 0.45, 0.4, 1.0)
_DIM = (0.65, 0.65, 0.68, 1.0)
#: Points of the response plot over [0, pi].
PLOT_POINTS = 256
_SPACES = ("auto", "srgb", "linear")
_SPACE_LABELS = ("auto (integer = sRGB)", "sRGB: decode to linear light", "linear: filter values as they are")
_TARGET_METHODS = ("auto", "comb", "laplacian", "fir", "unsharp")
#: Margin the limiter starts with when switched on in the panel (a fraction of the local range).
DEFAULT_LIMITER = 0.5
_OVERLAY_LABELS = ("none", "level map A(x) (adaptive)", "blind sigma per cell (sigma auto)")


def response_curves(design: Any, diagonal: bool = False, n: int = PLOT_POINTS) -> dict[str, np.ndarray]:
    """Blur, target, achieved and restored (achieved x blur) responses along x or the diagonal.

    Parameters
    ----------
    design : gpu_deconv.core.design.Design
    diagonal : bool
        Slice along ``wx = wy`` (the x axis is then the radial frequency ``|w| = sqrt(2) t``).

    Returns
    -------
    dict
        ``'w'`` (rad/px) and float64 curves ``'blur'``, ``'achieved'``, ``'restored'`` and, when the
        method has one, ``'target'``.
    """
    t = np.linspace(0.0, math.pi, n)
    wx, wy = (t, t) if diagonal else (t, np.zeros_like(t))
    blur = np.asarray(design.blur.response2d(wx, wy), dtype=np.float64)
    achieved = np.asarray(design.response(wx, wy), dtype=np.float64)
    out = {"w": t * math.sqrt(2.0) if diagonal else t, "blur": blur, "achieved": achieved,
           "restored": achieved * blur}
    if design.target is not None:
        out["target"] = np.asarray(design.target.response(design.blur, wx, wy), dtype=np.float64)
    return out


class Panel:
    """Builds the UI each frame for one :class:`PanelHost` (the viewer app)."""

    def __init__(self, app: PanelHost) -> None:
        from imgui_bundle import imgui, implot

        self.app = app
        self.imgui = imgui
        self.implot = implot
        self._curves_key: tuple | None = None
        self._curves: dict[str, np.ndarray] = {}
        self._open_path = app.open_path
        self._params_path = app.params_path

    # ------------------------------------------------------------------------------------------------
    def draw(self) -> None:
        """All UI of one frame (call between ``imgui.new_frame()`` and ``imgui.render()``)."""
        app = self.app
        if app.show_ui:  # no UI: the view alone, pixel for pixel (tests, --no-ui screenshots)
            self._panel()
            self._labels()
            if app.overlay_scale is not None:
                self._legend()
        self._banner()
        if app.show_help:
            self._help()

    # ------------------------------------------------------------------------------------------------
    def _panel(self) -> None:
        imgui, app = self.imgui, self.app
        io = imgui.get_io()
        w = PANEL_WIDTH * app.ui_scale
        imgui.set_next_window_pos((io.display_size.x - w, 0.0), imgui.Cond_.always)
        imgui.set_next_window_size((w, io.display_size.y), imgui.Cond_.always)
        flags = (imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_collapse
                 | imgui.WindowFlags_.no_saved_settings)
        imgui.begin("gpu-deconv", None, flags)
        imgui.push_item_width(-150 * app.ui_scale)
        self._file_section()
        self._blur_section()
        self._method_section()
        self._response_section()
        self._processing_section()
        self._view_section()
        self._timing_section()
        imgui.pop_item_width()
        imgui.end()

    def _file_section(self) -> None:
        imgui, app = self.imgui, self.app
        src = app.source
        if not imgui.collapsing_header("Input", imgui.TreeNodeFlags_.default_open):
            return
        if src is not None:
            imgui.text_wrapped(src.status())
            if src.frame is not None:
                f = src.frame
                ch = 1 if f.ndim == 2 else f.shape[2]
                imgui.text_colored(_DIM, f"{f.shape[1]} x {f.shape[0]}, {ch} ch, {f.dtype}")
        _, self._open_path = imgui.input_text("##open", self._open_path)
        imgui.same_line()
        if imgui.button("Open"):
            app.open(self._open_path or None)
        imgui.set_item_tooltip("image, folder or video; empty = the test chart (or drop a file on the window)")
        if src is not None and src.kind == "folder":
            if imgui.button("< Prev"):
                src.prev()
                app.after_navigation()
            imgui.same_line()
            if imgui.button("Next >"):
                src.next()
                app.after_navigation()
        if src is not None and src.kind == "video":
            if imgui.button("Pause" if src.playing else "Play"):  # type: ignore[attr-defined]
                src.toggle_play()  # type: ignore[attr-defined]
            imgui.same_line()
            if imgui.button("Step"):
                src.playing = False  # type: ignore[attr-defined]
                src.step()  # type: ignore[attr-defined]
            imgui.same_line()
            _, src.loop = imgui.checkbox("loop", src.loop)  # type: ignore[attr-defined]

    def _blur_section(self) -> None:
        imgui, app = self.imgui, self.app
        p = app.params
        if not imgui.collapsing_header("Blur and noise", imgui.TreeNodeFlags_.default_open):
            return
        ch, i = imgui.combo("blur model", BLURS.index(p.blur), list(BLURS))
        if ch:  # a box is at least 1 px wide; only a Gaussian is estimated blind
            app.set_param(blur=BLURS[i], **({"sigma": max(app.sigma_used(), 1.0)} if BLURS[i] == "box" else {}))
        if p.blur == "binomial":
            half = p.binomial_order // 2
            ch, n = imgui.slider_int("binomial order", half, 1, 15, format=f"{2 * half}")
            if ch:
                app.set_param(binomial_order=2 * n)
        else:
            self._sigma_controls(p)
        auto = p.noise_is_auto
        ch, auto2 = imgui.checkbox("noise auto", auto)
        if ch:
            app.set_param(noise="auto" if auto2 else app.sim_noise)
        imgui.same_line()
        if auto:
            d = app.engine.design if app.engine is not None else None
            imgui.text_colored(_DIM, f"estimated {d.noise_std:.4g}" if d is not None else "estimating...")
        else:
            ch, v = imgui.slider_float("noise (linear std)", float(p.noise), 0.0, 0.1, "%.4f",
                                       imgui.SliderFlags_.logarithmic)
            if ch:
                app.set_param(noise=max(v, 0.0))
        ch, app.simulate = imgui.checkbox("simulate: blur + noise the input first", app.simulate)
        imgui.set_item_tooltip("degrade a sharp input with this blur and noise, then restore it (key I)")
        if app.simulate:
            if auto:
                _, app.sim_noise = imgui.slider_float("simulated noise", app.sim_noise, 0.0, 0.1, "%.4f",
                                                      imgui.SliderFlags_.logarithmic)
            _, seed = imgui.input_int("noise seed", app.seed)
            app.seed = max(int(seed), 0)
            _, app.show_original = imgui.checkbox("before side shows the sharp original (O)", app.show_original)

    def _sigma_controls(self, p: DeconvParams) -> None:
        """The sigma slider and, for the Gaussian, the 'auto' checkbox (slider greyed while auto, showing
        the sigma the engine used), the blind estimate sigma-hat and its summary."""
        imgui, app = self.imgui, self.app
        label = "sigma (px)" if p.blur == "gaussian" else "box width (px)"
        lo, hi = (0.1, 4.0) if p.blur == "gaussian" else (1.0, 8.0)
        auto = p.sigma_is_auto
        if p.blur == "gaussian":
            ch, on = imgui.checkbox("sigma auto", auto)
            imgui.set_item_tooltip("estimate the blur blind from each frame's edges (key U)")
            if ch:
                app.set_param(sigma="auto" if on else round(app.sigma_used(), 4))
            imgui.same_line()
        imgui.begin_disabled(auto)
        ch, s = imgui.slider_float(label, app.sigma_used(), lo, hi, "%.3f")
        imgui.end_disabled()
        if ch and not auto:
            app.set_param(sigma=round(s, 4))
        if auto:
            d = app.engine.design if app.engine is not None else None
            est = None if d is None else d.blur_estimate
            if est is None:
                imgui.text_colored(_DIM, "estimating...")
            else:
                imgui.text(f"sigma-hat {est.sigma:.2f} px   used {app.sigma_used():.2f} px")
                imgui.set_item_tooltip(est.summary())
                imgui.text_colored(_DIM, f"{est.tiles} edge tiles, confidence {est.confidence:.2f}")
                imgui.set_item_tooltip(est.summary())

    def _method_section(self) -> None:
        imgui, app = self.imgui, self.app
        p = app.params
        if not imgui.collapsing_header("Method", imgui.TreeNodeFlags_.default_open):
            return
        self._choice("method", "method", METHODS)
        d = app.engine.design if app.engine is not None else None
        if p.method == "auto" and d is not None:
            imgui.same_line()
            imgui.text_colored(_DIM, f"-> {d.method}")
        m = d.method if (p.method == "auto" and d is not None) else p.method
        imgui.text("mode")
        has_mode = p.method in ADAPTIVE_METHODS
        imgui.begin_disabled(not has_mode)
        for mode in MODES:
            imgui.same_line()
            if imgui.radio_button(mode, p.mode == mode):
                app.set_param(mode=mode)
        imgui.end_disabled()
        imgui.set_item_tooltip("adaptive: coefficients per pixel from the local signal level (edges restored, flat "
                               "areas kept clean); global: one filter for the frame (cheaper). Key D. "
                               + ("" if has_mode else f"Only for {', '.join(ADAPTIVE_METHODS)}."))
        on = p.limiter is not None
        ch, on2 = imgui.checkbox("halo limiter", on)
        imgui.set_item_tooltip("keep each output within its input neighbourhood's range, widened by the margin "
                               "(a fraction of that range; 0 = hard clamp)")
        if ch:
            app.set_param(limiter=DEFAULT_LIMITER if on2 else None)
        if on:
            imgui.same_line()
            ch, lim = imgui.slider_float("margin", float(p.limiter), 0.0, 4.0, "%.2f")
            if ch:
                app.set_param(limiter=round(max(lim, 0.0), 3))
        if m == "comb":
            ch, lv = imgui.slider_int("comb levels", p.comb_levels, 2, 3)
            if ch:
                app.set_param(comb_levels=lv)
        if m == "fir":
            taps = p.fir_taps or 0
            ch, k = imgui.slider_int("fir taps (0 = auto)", taps // 2, 0, 15, format=str(taps) if taps else "auto")
            if ch:
                app.set_param(fir_taps=2 * k + 1 if k else None)
        if m == "unsharp":
            self._optional_float("unsharp radius", "unsharp_radius", 0.1, 4.0, default=max(p.sigma, 0.3))
            self._optional_float("unsharp amount", "unsharp_amount", 0.0, 20.0, default=1.0, fmt="%.2f")
        if m == "polyblur":
            ch, a = imgui.slider_float("polyblur alpha", p.polyblur_alpha, 0.0, 8.0, "%.2f")
            if ch:
                app.set_param(polyblur_alpha=a)
            ch, b = imgui.slider_float("polyblur beta", p.polyblur_beta, 0.0, 8.0, "%.2f")
            if ch:
                app.set_param(polyblur_beta=b)
        if m != "identity":
            ch, s = imgui.slider_float("strength", p.strength, 0.0, 2.0, "%.2f")
            if ch:
                app.set_param(strength=s)
        if m in _TARGET_METHODS and not (m == "unsharp" and p.unsharp_amount is not None):
            self._choice("target", "target", TARGETS)
            ch, g = imgui.slider_float("min gain", p.min_gain, 0.0, 1.0, "%.2f")
            if ch:
                app.set_param(min_gain=g)
            self._optional_float("max gain", "max_gain", 1.0, 20.0, default=4.0, fmt="%.2f", none_label="none")
        if app.param_error:
            imgui.push_style_color(imgui.Col_.text, _RED)
            imgui.text_wrapped(app.param_error)
            imgui.pop_style_color()

    def _choice(self, label: str, name: str, choices: tuple, labels: tuple | None = None) -> None:
        """A combo editing the parameter ``name`` among ``choices`` (shown as ``labels``)."""
        ch, i = self.imgui.combo(label, choices.index(getattr(self.app.params, name)), list(labels or choices))
        if ch:
            self.app.set_param(**{name: choices[i]})

    def _optional_float(self, label: str, name: str, lo: float, hi: float, *, default: float, fmt: str = "%.3f",
                        none_label: str = "auto") -> None:
        imgui, app = self.imgui, self.app
        v = getattr(app.params, name)
        ch, on = imgui.checkbox(f"{label}: {none_label}", v is None)
        if ch:
            app.set_param(**{name: None if on else default})
        if v is not None:
            ch, x = imgui.slider_float(label, float(v), lo, hi, fmt)
            if ch:
                app.set_param(**{name: x})

    def _processing_section(self) -> None:
        imgui, app = self.imgui, self.app
        p = app.params
        if not imgui.collapsing_header("Processing", imgui.TreeNodeFlags_.default_open):
            return
        self._choice("input values", "space", _SPACES, _SPACE_LABELS)
        imgui.set_item_tooltip("sRGB input is decoded to linear light before filtering (where blur is a "
                               "convolution); 'linear' filters the stored values directly (key G)")
        imgui.text("intermediates")
        imgui.same_line()
        if imgui.radio_button("fp16", p.precision == 16):
            app.set_param(precision=16)
        imgui.same_line()
        if imgui.radio_button("fp32", p.precision == 32):
            app.set_param(precision=32)
        _, self._params_path = imgui.input_text("##params", self._params_path)
        imgui.same_line()
        if imgui.button("Save"):
            app.save_params(self._params_path)
        imgui.same_line()
        if imgui.button("Load"):
            app.load_params(self._params_path)
        imgui.set_item_tooltip("parameter JSON, the file 'gpu-deconv run --params' reads (Ctrl+S / Ctrl+O)")
        if imgui.button("Reset parameters (R)"):
            app.params = app.start_params
            app.param_error = None

    def _view_section(self) -> None:
        imgui, app = self.imgui, self.app
        g = app.geom
        if not imgui.collapsing_header("View", imgui.TreeNodeFlags_.default_open):
            return
        for mode, label in (("split", "split"), ("before", "before (A)"), ("after", "after (B)")):
            if imgui.radio_button(label, g.mode == mode):
                g.mode = mode
            imgui.same_line()
        imgui.new_line()
        if g.mode == "split":
            _, g.split = imgui.slider_float("divider", g.split, 0.0, 1.0, "%.3f")
        imgui.text(f"zoom {g.zoom * 100:.4g}%")
        imgui.same_line()
        if imgui.button("Fit (F)"):
            g.fit = True
            g.fit_image()
        imgui.same_line()
        if imgui.button("1:1"):
            g.actual_size()
        imgui.same_line()
        if imgui.button("Screenshot"):
            app.request_view_screenshot()
        _, app.plot_diagonal = imgui.checkbox("plot the diagonal slice", app.plot_diagonal)
        self._overlay_controls()

    def _response_section(self) -> None:
        imgui, implot, app = self.imgui, self.implot, self.app
        if not imgui.collapsing_header("Response", imgui.TreeNodeFlags_.default_open):
            return
        d = app.engine.design if app.engine is not None else None
        if d is None:
            imgui.text_colored(_DIM, "no design yet")
            return
        if d.adaptive:
            self._adaptive_plot(d)
            return
        c = self._cached_curves((id(d), app.plot_diagonal), lambda: response_curves(d, app.plot_diagonal))
        xlabel = "|w| along the diagonal (rad/px)" if app.plot_diagonal else "wx (rad/px), wy = 0"
        if c and implot.begin_plot("##response", (-1, 210 * app.ui_scale)):
            implot.setup_axes(xlabel, "gain", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.setup_legend(implot.Location_.north, implot.LegendFlags_.outside | implot.LegendFlags_.horizontal)
            w = c["w"]
            implot.plot_line("blur B", w, c["blur"])
            if "target" in c:
                implot.plot_line("target T", w, c["target"])
            implot.plot_line("achieved F", w, c["achieved"])
            implot.plot_line("F x B", w, c["restored"])
            implot.end_plot()
        imgui.text_wrapped(d.summary())
        res = d.result
        if res is not None and getattr(res, "coefficients", None) is not None:
            coef = ", ".join(f"{v:+.4f}" for v in np.asarray(res.coefficients).ravel())
            imgui.text_wrapped(f"coefficients c: [{coef}]")
            peak = getattr(res, "peak_gain", None)
            if peak is not None:
                imgui.text(f"peak gain {float(peak):.3f}")
        for k, st in enumerate(d.plan.stages):
            wts = ", ".join(f"{v:+.4f}" for v in np.asarray(st.weights).ravel())
            taps = "/".join(str(t.size) for t in st.taps)
            imgui.text_wrapped(f"stage {k + 1} ({st.src}): d = [{wts}], taps {taps}")

    def _cached_curves(self, key: tuple, compute: Callable[[], dict]) -> dict:
        """The plotted curves, computed again only when ``key`` (the design, the axis) changes."""
        if key != self._curves_key:
            try:
                self._curves = compute()
            except Exception as e:  # a plot must never take the viewer down
                self._curves = {}
                self.imgui.text_colored(_RED, f"plot: {e}")
            self._curves_key = key
        return self._curves

    def _adaptive_plot(self, d: Any) -> None:
        """Adaptive mode: the response at :data:`PLOT_LEVELS` and the coefficients ``c_k(v)`` of the table."""
        imgui, implot, app = self.imgui, self.implot, self.app
        c = self._cached_curves((id(d.table), id(d.blur), app.plot_diagonal),
                                lambda: adaptive_curves(d, app.plot_diagonal))
        if not c:
            return
        xlabel = "|w| along the diagonal (rad/px)" if app.plot_diagonal else "wx (rad/px), wy = 0"
        if implot.begin_plot("##adaptive_response", (-1, 210 * app.ui_scale)):
            implot.setup_axes(xlabel, "gain", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
            implot.setup_legend(implot.Location_.north, implot.LegendFlags_.outside | implot.LegendFlags_.horizontal)
            implot.plot_line("blur B", c["w"], c["blur"])
            for v, row in zip(PLOT_LEVELS, c["achieved"], strict=True):
                implot.plot_line(f"F v={v:g}", c["w"], row)
            implot.end_plot()
        if implot.begin_plot("##coefficients", (-1, 170 * app.ui_scale)):
            implot.setup_axes("level v = log2(A / noise var)", "c_k", implot.AxisFlags_.auto_fit,
                              implot.AxisFlags_.auto_fit)
            implot.setup_legend(implot.Location_.north, implot.LegendFlags_.outside | implot.LegendFlags_.horizontal)
            for k, row in enumerate(c["coefficients"]):
                implot.plot_line(f"c{k + 1}", c["v"], row)
            if d.level is not None and d.noise_var > 0 and d.level > 0:  # the frame's mean level
                implot.plot_inf_lines("frame mean", np.array([math.log2(d.level / d.noise_var)]))
            implot.end_plot()
        imgui.text_wrapped(d.summary())

    def _overlay_controls(self) -> None:
        imgui, app = self.imgui, self.app
        ch, i = imgui.combo("overlay (V)", OVERLAYS.index(app.overlay), list(_OVERLAY_LABELS))
        if ch:
            app.overlay = OVERLAYS[i]
        if app.overlay != "none":
            _, app.overlay_alpha = imgui.slider_float("overlay opacity", app.overlay_alpha, 0.0, 1.0, "%.2f")
        if app.overlay_note:
            imgui.text_colored(_DIM, app.overlay_note)
        tm = app.tile_map
        if app.overlay == "sigma" and tm is not None:
            usable = int((tm.cell_weight > 0).sum())
            imgui.text_colored(_DIM, f"{usable} of {tm.cell_weight.size} cells with a usable edge; "
                                     f"map {tm.map.range[0]:.2f}-{tm.map.range[1]:.2f} px")

    def _timing_section(self) -> None:
        imgui, app = self.imgui, self.app
        if not imgui.collapsing_header("Timing", imgui.TreeNodeFlags_.default_open):
            return
        gpu = getattr(app.engine, "last_gpu_ms", None)
        disp = app.display_gpu_ms
        imgui.text(f"{app.fps:6.1f} FPS   frame CPU {app.cpu_ms:6.2f} ms")
        imgui.text(f"engine GPU {'-' if gpu is None else f'{gpu:.2f}'} ms   "
                   f"display+UI GPU {'-' if disp is None else f'{disp:.2f}'} ms")
        imgui.text(f"last solve {app.solve_ms:.2f} ms   solves {app.solves}   uploads {app.uploads}")
        imgui.text_colored(_DIM, app.renderer)
        imgui.text_colored(_DIM, "F1: help")

    # ------------------------------------------------------------------------------------------------
    def _labels(self) -> None:
        """'before' / 'after' captions on the view."""
        imgui, app = self.imgui, self.app
        g = app.geom
        if app.source is None or app.source.frame is None:
            return
        dl = imgui.get_foreground_draw_list()
        sx = app.fb_size()[0] / max(imgui.get_io().display_size.x, 1.0)
        col = imgui.get_color_u32((1.0, 1.0, 1.0, 0.9))
        before = "original" if (app.simulate and app.show_original) else ("degraded" if app.simulate else "before")
        after = "restored" if app.simulate else "after"
        if g.mode == "split":
            x = g.divider_x / sx
            if 0.0 < g.split < 1.0:
                dl.add_line((x, 0.0), (x, g.view_h / sx), imgui.get_color_u32((1.0, 1.0, 1.0, 0.6)), 1.0)
            tw = imgui.calc_text_size(before).x
            if g.split > 0.0:
                dl.add_text((x - tw - 8, 6), col, before)
            if g.split < 1.0:
                dl.add_text((x + 8, 6), col, after)
        else:
            dl.add_text((8, 6), col, before if g.mode == "before" else after)

    def _legend(self) -> None:
        """The overlay's colour bar with its end values, at the bottom left of the view."""
        imgui, app = self.imgui, self.app
        dl = imgui.get_foreground_draw_list()
        sx = app.fb_size()[0] / max(imgui.get_io().display_size.x, 1.0)
        label, lo, hi = app.overlay_scale
        steps = 32
        colours = viridis(np.linspace(0.0, 1.0, steps))
        w, h = 220.0, 12.0
        x0, y0 = 10.0, app.geom.view_h / sx - h - 30.0
        dl.add_rect_filled((x0 - 6, y0 - 22), (x0 + w + 6, y0 + h + 22), imgui.get_color_u32((0.0, 0.0, 0.0, 0.6)))
        for k, (r, g, b) in enumerate(colours):
            dl.add_rect_filled((x0 + w * k / steps, y0), (x0 + w * (k + 1) / steps, y0 + h),
                               imgui.get_color_u32((float(r), float(g), float(b), 1.0)))
        white = imgui.get_color_u32((1.0, 1.0, 1.0, 0.95))
        dl.add_text((x0, y0 - 18), white, label)
        dl.add_text((x0, y0 + h + 2), white, f"{lo:g}")
        hi_s = f"{hi:g}"
        dl.add_text((x0 + w - imgui.calc_text_size(hi_s).x, y0 + h + 2), white, hi_s)

    def _banner(self) -> None:
        imgui, app = self.imgui, self.app
        if not app.message:
            return
        imgui.set_next_window_pos((10, 30), imgui.Cond_.always)
        imgui.set_next_window_bg_alpha(0.85)
        io = imgui.get_io()
        imgui.set_next_window_size_constraints((200, 0), (max(io.display_size.x - 20, 200), 400))
        flags = (imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.always_auto_resize
                 | imgui.WindowFlags_.no_saved_settings | imgui.WindowFlags_.no_focus_on_appearing
                 | imgui.WindowFlags_.no_nav)
        imgui.begin("##error", None, flags)
        imgui.push_text_wrap_pos(max(io.display_size.x - 40, 200))
        imgui.text_colored(_RED, f"error: {app.message}")
        imgui.pop_text_wrap_pos()
        if imgui.small_button("dismiss"):
            app.message = None
        imgui.end()

    def _help(self) -> None:
        imgui, app = self.imgui, self.app
        io = imgui.get_io()
        imgui.set_next_window_pos((io.display_size.x / 2, io.display_size.y / 2), imgui.Cond_.always, (0.5, 0.5))
        imgui.set_next_window_bg_alpha(0.92)
        flags = imgui.WindowFlags_.always_auto_resize | imgui.WindowFlags_.no_saved_settings
        expanded, still_open = imgui.begin("Shortcuts (F1 / H / Esc to close)", True, flags)
        if expanded and imgui.begin_table("##keys", 2):
            for keys_, what in SHORTCUTS:
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(keys_)
                imgui.table_next_column()
                imgui.text(what)
            imgui.end_table()
        imgui.end()
        if still_open is False:
            app.show_help = False
