"""Interactive real-time viewer: ``gpu-deconv view [PATH]``.

A glfw window with a GL 3.3 core context runs :class:`gpu_deconv.gl.engine.Deconvolver` on the window's
own moderngl context every frame; Dear ImGui (imgui-bundle, with ImPlot) draws the controls. Modules:

* :mod:`.app` - the window, the per-frame loop and the glfw callbacks (:class:`ViewerApp`);
* :mod:`.panel` - the ImGui control panel, response plot, help overlay and error banner;
* :mod:`.gpu` - the viewer's own GL passes (simulated blur + noise, the zoomable split display);
* :mod:`.view` - zoom / pan / split geometry (no GL);
* :mod:`.sources` - chart, image, folder and video sources (no GL);
* :mod:`.keys` - the shortcut table and scripted input for tests;
* :mod:`.cli` - the command line (``add_view_parser``, ``run_view``).

Nothing here imports glfw or imgui-bundle until the viewer starts, so the rest of the package (and
``gpu-deconv --help``) works without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .app import ViewerApp, ViewerOptions, run_viewer

__all__ = ["ViewerApp", "ViewerOptions", "run_viewer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'gpu_deconv.apps.viewer' has no attribute {name!r}")
