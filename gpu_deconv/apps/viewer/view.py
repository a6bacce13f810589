"""The image view's geometry: zoom around a point, pan, fit, and the split divider (no OpenGL here).

Coordinates are *framebuffer pixels* with the origin at the top-left of the view rectangle and y
pointing down (window coordinates times the HiDPI scale, see :class:`ViewGeometry`). An image pixel
``(u, v)`` (column, row; row 0 at the top) lands at ``(ox + u * zoom, oy + v * zoom)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Zoom limits (screen pixels per image pixel).
MIN_ZOOM = 1.0 / 32.0
MAX_ZOOM = 64.0
#: One wheel notch multiplies the zoom by this factor.
WHEEL_STEP = 2.0 ** 0.25
#: Distance (framebuffer px) within which a press grabs the split divider.
DIVIDER_GRAB_PX = 6.0

VIEW_MODES = ("split", "before", "after")


@dataclass
class ViewGeometry:
    """Zoom, pan and split of the image view.

    Attributes
    ----------
    view_w, view_h : int
        Size of the view rectangle in framebuffer pixels.
    image_w, image_h : int
        Size of the displayed image in pixels.
    zoom : float
        Framebuffer pixels per image pixel.
    ox, oy : float
        Framebuffer position of the image's top-left corner inside the view.
    fit : bool
        While True the view re-fits on every resize; any user zoom or pan clears it.
    mode : {'split', 'before', 'after'}
        What the view shows: before | after around the divider, or one side alone.
    split : float
        Divider position as a fraction of the view width (0: all "after", 1: all "before").
    """

    view_w: int = 1
    view_h: int = 1
    image_w: int = 1
    image_h: int = 1
    zoom: float = 1.0
    ox: float = 0.0
    oy: float = 0.0
    fit: bool = True
    mode: str = "split"
    split: float = 0.5

    # -- layout ---------------------------------------------------------------------------------------
    def set_view(self, w: int, h: int) -> None:
        """Resize the view rectangle, keeping the image point at the view centre where it was."""
        w, h = max(int(w), 1), max(int(h), 1)
        if (w, h) == (self.view_w, self.view_h):
            return
        cx, cy = self.view_w / 2.0, self.view_h / 2.0
        u, v = self.to_image(cx, cy)
        self.view_w, self.view_h = w, h
        if self.fit:
            self.fit_image()
        else:
            self.ox = w / 2.0 - u * self.zoom
            self.oy = h / 2.0 - v * self.zoom
            self._snap()

    def set_image(self, w: int, h: int, keep_view: bool = False) -> None:
        """Show an image of ``w x h``; re-fits unless ``keep_view`` and the size is unchanged."""
        same = (int(w), int(h)) == (self.image_w, self.image_h)
        self.image_w, self.image_h = max(int(w), 1), max(int(h), 1)
        if not (keep_view and same):
            self.fit = True
            self.fit_image()

    def fit_image(self) -> None:
        """Zoom 1 and centred when the image fits the view, else the largest zoom that shows it all."""
        z = min(self.view_w / self.image_w, self.view_h / self.image_h)
        self.zoom = 1.0 if z >= 1.0 else max(z, MIN_ZOOM)
        self.ox = (self.view_w - self.image_w * self.zoom) / 2.0
        self.oy = (self.view_h - self.image_h * self.zoom) / 2.0
        self._snap()

    def actual_size(self) -> None:
        """Zoom 1 (one image pixel per framebuffer pixel), keeping the view centre."""
        self.zoom_at(self.view_w / 2.0, self.view_h / 2.0, 1.0 / self.zoom)

    def _snap(self) -> None:
        """At integer zooms keep the image on whole pixels, so zoom 1 shows pixels exactly."""
        if abs(self.zoom - round(self.zoom)) < 1e-9:
            self.zoom = float(round(self.zoom))
            self.ox = float(math.floor(self.ox + 0.5))
            self.oy = float(math.floor(self.oy + 0.5))

    # -- mapping --------------------------------------------------------------------------------------
    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Image coordinates (pixels, fractional) of the view point ``(x, y)``."""
        return (x - self.ox) / self.zoom, (y - self.oy) / self.zoom

    def to_view(self, u: float, v: float) -> tuple[float, float]:
        """View position of image coordinates ``(u, v)``."""
        return self.ox + u * self.zoom, self.oy + v * self.zoom

    # -- interaction ----------------------------------------------------------------------------------
    def zoom_at(self, x: float, y: float, factor: float) -> None:
        """Multiply the zoom by ``factor`` keeping the image point under ``(x, y)`` fixed."""
        u, v = self.to_image(x, y)
        z = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        # Land exactly on powers of two (1:1, 2:1, ...) when a wheel walk passes near them.
        k = round(math.log2(z) * 4.0)
        if abs(math.log2(z) * 4.0 - k) < 1e-6:
            z = 2.0 ** (k / 4.0)
        self.zoom = z
        self.ox = x - u * z
        self.oy = y - v * z
        self.fit = False
        self._snap()

    def wheel(self, x: float, y: float, notches: float) -> None:
        """Mouse-wheel zoom around the cursor; positive ``notches`` zoom in."""
        self.zoom_at(x, y, WHEEL_STEP ** notches)

    def pan(self, dx: float, dy: float) -> None:
        """Move the image by ``(dx, dy)`` framebuffer pixels."""
        self.ox += dx
        self.oy += dy
        self.fit = False
        self._snap()

    @property
    def divider_x(self) -> float:
        """View x of the split divider."""
        return self.split * self.view_w

    def near_divider(self, x: float) -> bool:
        """True when ``x`` is close enough to grab the divider (split mode only)."""
        return self.mode == "split" and abs(x - self.divider_x) <= DIVIDER_GRAB_PX

    def drag_divider(self, x: float) -> None:
        """Put the divider at view x (clamped to the view)."""
        self.split = min(max(x / self.view_w, 0.0), 1.0)

    def toggle_split(self) -> None:
        """Split view on/off (off shows "after")."""
        self.mode = "after" if self.mode == "split" else "split"

    def toggle_ab(self) -> None:
        """A/B flip: whole view "before" <-> "after" (from split, go to "before")."""
        self.mode = "before" if self.mode != "before" else "after"

    def side_at(self, x: float) -> str:
        """Which image, 'before' or 'after', the view shows at x."""
        if self.mode != "split":
            return self.mode
        return "before" if x < self.divider_x else "after"
