"""Keyboard and mouse shortcuts (one table, shown by the help overlay) and scripted input for tests.

:data:`SHORTCUTS` is the single list the help overlay prints and the README quotes; the app's key
handler dispatches on the same action names. :func:`parse_inject` turns a ``--inject`` script into
events that the app feeds to the very callbacks glfw calls (key, cursor, button, scroll, drop).
"""

from __future__ import annotations

from dataclasses import dataclass

#: (keys, what they do) in the order the help overlay lists them.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("F1 / H", "show or hide this help"),
    ("Tab", "show or hide the control panel"),
    ("S", "split view on/off (before | after)"),
    ("A", "A/B: flip the whole view between before and after"),
    ("drag the divider", "move the split"),
    ("wheel", "zoom around the cursor (nearest neighbour when magnified)"),
    ("drag", "pan"),
    ("F / 0", "fit the image to the window"),
    ("1", "actual pixels (100%)"),
    ("[ / ]", "blur sigma -/+ 0.05 px (with Shift: 0.25 px)"),
    ("- / =", "noise /1.25 or x1.25 (leaves 'auto')"),
    ("U", "blur sigma auto (blind estimate per frame) on/off"),
    ("N", "noise auto on/off"),
    ("D", "mode: adaptive (per-pixel level) <-> global (one filter)"),
    ("V", "overlay: none -> level map A(x) -> blind sigma per cell"),
    ("M / Shift+M", "next / previous method"),
    ("G", "input interpretation: auto -> sRGB -> linear"),
    ("P", "intermediate precision fp16 <-> fp32"),
    ("I", "simulate: blur + noise the sharp input first"),
    ("O", "simulate: before side shows the sharp original / the degraded input"),
    ("Space", "video: play / pause"),
    ("Right / .", "video: step one frame; folder: next image"),
    ("Left / ,", "folder: previous image"),
    ("PageDown / PageUp", "folder: next / previous image"),
    ("L", "video: loop on/off"),
    ("F12 / C", "screenshot of the view to PNG"),
    ("Ctrl+S / Ctrl+O", "save / load parameters (JSON, as read by 'gpu-deconv run --params')"),
    ("R", "reset parameters to the start-up ones"),
    ("drop a file", "open it"),
    ("Esc / Q", "close help / quit"),
)


@dataclass(frozen=True)
class InjectedEvent:
    """One scripted input event, applied before frame ``frame`` is drawn.

    kind is ``'key'`` (args: key name as in ``glfw.KEY_<NAME>``, mods), ``'scroll'`` (x, y, notches),
    ``'drag'`` (x0, y0, x1, y1, left button), ``'click'`` (x, y), ``'move'`` (x, y) or ``'drop'``
    (path). Coordinates are window coordinates (what glfw's cursor callback reports).
    """

    frame: int
    kind: str
    args: tuple


def parse_inject(spec: str) -> list[InjectedEvent]:
    """Parse ``"FRAME:KIND:ARGS;..."``, e.g. ``"2:key:RIGHT_BRACKET+SHIFT;3:scroll:200,150,2;4:drag:9,9,60,9"``.

    Raises
    ------
    ValueError
        With the offending item.
    """
    out: list[InjectedEvent] = []
    for item in (s.strip() for s in spec.split(";")):
        if not item:
            continue
        try:
            frame_s, kind, arg = item.split(":", 2)
            frame = int(frame_s)
            if frame < 0:
                raise ValueError("negative frame")
            if kind == "key":
                name, *mods = arg.upper().split("+")
                args: tuple = (name, tuple(mods))
            elif kind in ("scroll", "drag", "click", "move"):
                nums = tuple(float(v) for v in arg.split(","))
                need = {"scroll": 3, "drag": 4, "click": 2, "move": 2}[kind]
                if len(nums) != need:
                    raise ValueError(f"{kind} takes {need} numbers")
                args = nums
            elif kind == "drop":
                args = (arg,)
            else:
                raise ValueError(f"unknown event kind {kind!r}")
        except ValueError as e:
            raise ValueError(f"bad --inject item {item!r}: {e}") from None
        out.append(InjectedEvent(frame, kind, args))
    return sorted(out, key=lambda e: e.frame)
