"""The viewer's own cost per frame at 1080p: UI build, parameter solve, upload, engine passes, display,
UI render and swap, in the real glfw window (under Xvfb when there is no display).

Each scenario runs :class:`gpu_deconv.apps.viewer.app.ViewerApp` in scripted mode twice on a 1920 x 1080
8-bit image in a 1920 x 1080 window (and the scenarios repeat round-robin, keeping the best round, as
other work on a shared machine only ever adds time):

* *profiled*: ``glFinish`` after every phase, so each phase's time (CPU + GPU) is charged to it;
  the table shows per-phase medians;
* *free-running*: no extra synchronisation; frames per second = frames / wall time of the steady
  part (what a user sees, vsync off).

Scenarios: parameters steady (the common case: only the passes and the display run); sigma changed
every frame (a slider being dragged: one CPU re-solve per frame); simulate mode with sigma changed every
frame (also the blur + noise passes); and the panel hidden.

Run: ``python benchmarks/bench_viewer.py [--frames N] [--no-write]`` (starts its own Xvfb if DISPLAY is
unset). Writes the ``viewer`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine_line, update_section  # noqa: E402

from gpu_deconv.core.chart import blur_and_noise, test_chart  # noqa: E402
from gpu_deconv.core.colour import linear_to_srgb  # noqa: E402
from gpu_deconv.core.params import DeconvParams  # noqa: E402
from gpu_deconv.io.images import write_image  # noqa: E402

WARMUP = 4
PHASES = ("UI build (ImGui + ImPlot)", "parameter solve (CPU)", "clear + upload", "simulate", "engine passes",
          "display pass", "UI render", "swap", "frame total")


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display number (``-displayfd``); the caller stops it by its own pid."""
    exe = shutil.which("Xvfb")
    if exe is None:
        sys.exit("no DISPLAY and no Xvfb (apt-get install -y xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "2560x1440x24", "-nolisten", "tcp", "-noreset"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    num = b""
    while not num.endswith(b"\n"):
        chunk = os.read(r, 16)
        if not chunk:
            break
        num += chunk
    os.close(r)
    if not num.strip().isdigit():
        proc.kill()
        sys.exit("Xvfb did not start")
    return proc, f":{num.decode().strip()}"


def sigma_wiggle(frames: int) -> list:
    """Inject ']' and '[' alternately: sigma 1.00 <-> 1.05 px, a new solve every frame."""
    from gpu_deconv.apps.viewer.keys import InjectedEvent

    return [InjectedEvent(i, "key", ("RIGHT_BRACKET" if i % 2 else "LEFT_BRACKET", ())) for i in range(1, frames)]


def run_scenario(path: str, frames: int, *, ui: bool, wiggle: bool, simulate: bool, profile: bool):
    from gpu_deconv.apps.viewer.app import ViewerApp, ViewerOptions

    opts = ViewerOptions(path=path, params=DeconvParams(sigma=1.0, noise="auto"), size=(1920, 1080), frames=frames,
                         no_ui=not ui, simulate=simulate, vsync=False, profile=profile,
                         inject=sigma_wiggle(frames) if wiggle else [])
    app = ViewerApp(opts)
    rc = app.run()
    if rc != 0:
        sys.exit(f"viewer exited with {rc}")
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24, help="measured frames per scenario (after warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="round-robin repetitions (the best of them is kept)")
    ap.add_argument("--no-write", action="store_true", help="print only, don't update RESULTS.md")
    args = ap.parse_args()
    load0 = os.getloadavg()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb, disp = start_xvfb()
        os.environ["DISPLAY"] = disp
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lin = blur_and_noise(test_chart((1080, 1920)), 1.0, 0.004, seed=0)
            u8 = np.round(np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1) * 255).astype(np.uint8)
            path = str(Path(tmp) / "chart1080.png")
            write_image(path, u8)
            scenarios = [
                ("steady", dict(ui=True, wiggle=False, simulate=False)),
                ("sigma drag", dict(ui=True, wiggle=True, simulate=False)),
                ("simulate + drag", dict(ui=True, wiggle=True, simulate=True)),
                ("no panel", dict(ui=False, wiggle=False, simulate=False)),
            ]
            n = WARMUP + args.frames
            prof: dict[str, dict[str, float]] = {}
            fps: dict[str, float] = {}
            renderer = ""
            view = ""
            # round-robin rounds; per phase the smallest median over the rounds, and the best FPS: on a
            # shared machine other work only ever adds time
            for _ in range(args.rounds):
                for name, kw in scenarios:
                    app = run_scenario(path, n, profile=True, **kw)
                    renderer = app.renderer
                    for k, v in app.phase_ms.items():
                        if len(v) > WARMUP:
                            m = statistics.median(v[WARMUP:])
                            prof.setdefault(name, {})[k] = min(m, prof.get(name, {}).get(k, m))
                    if name == "steady":
                        view = f"view {app.geom.view_w}x{app.geom.view_h} px at zoom {app.geom.zoom:.3f}"
                    app = run_scenario(path, n, profile=False, **kw)
                    t = app.frame_starts[WARMUP:]
                    f = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0
                    fps[name] = max(f, fps.get(name, 0.0))
                    time.sleep(0.2)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)

    names = [s for s, _ in scenarios]
    lines = ["| phase (median ms, glFinish after each) | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for ph in PHASES:
        cells = [f"{prof[s][ph]:.2f}" if ph in prof[s] else "-" for s in names]
        label = f"**{ph}**" if ph == "frame total" else ph
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| **FPS free-running** (no glFinish, vsync off) | " + " | ".join(f"{fps[s]:.1f}" for s in names)
                 + " |")
    load = os.getloadavg()
    md = "\n".join([
        "## viewer (`benchmarks/bench_viewer.py`)",
        "",
        machine_line(renderer),
        "",
        f"Load average before/after: {load0[0]:.2f} / {load[0]:.2f} (a shared 2-core machine: other work inflates "
        "every row alike).",
        "",
        f"1920x1080 8-bit image in a 1920x1080 window under Xvfb ({view} with the panel), noise 'auto', "
        f"sigma 1 px (method auto -> laplacian), fp16 intermediates, {args.frames} frames after {WARMUP} warm-up; "
        f"best of {args.rounds} round-robin rounds (smallest median per phase, highest FPS).",
        "'sigma drag' re-solves every frame (as while dragging the slider); 'simulate + drag' also re-runs the "
        "blur + noise passes; 'no panel' hides the ImGui panel (the view is then the full window).",
        "",
        *lines,
    ])
    print(md)
    if not args.no_write:
        update_section("viewer", md)


if __name__ == "__main__":
    main()
