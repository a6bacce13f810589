"""Regenerate the viewer screenshots in docs/ with the viewer's scripted mode (so they stay current).

* ``docs/viewer.png``: the whole window - built-in chart in simulate mode (sigma 1 px, noise 0.004),
  split view degraded | restored, the control panel with the response plot and coefficients;
* ``docs/viewer_split.png``: no panel, zoomed 4x (nearest neighbour) on the chart's text and bars,
  divider in the middle.
* ``docs/viewer_level.png``: the adaptive mode's local level A(x) as a false-colour overlay (with its
  legend) on the restored chart, and the panel's plots of the table: responses at five levels and c_k(v).
* ``docs/viewer_sigma.png``: sigma 'auto': the blind estimate in the panel and the sigma per 64 px cell
  as an overlay (cells without a usable edge left clear).

Run: ``python docs/make_screenshots.py`` (uses $DISPLAY, or starts its own Xvfb when it is unset).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

#: The pointer is parked over the image (no hover effects in the panel's plots).
PARK = ["--inject", "0:move:5,5"]
SHOTS = {
    "viewer.png": ["--chart-size", "960x640", "--size", "1360x980", "--split", "0.45", "--sim-noise", "0.004", *PARK],
    "viewer_split.png": ["--chart-size", "1100x768", "--size", "1000x560", "--no-ui", "--split", "0.5", "--zoom", "4",
                         "--center", "410,485", "--sim-noise", "0.004"],
    "viewer_level.png": ["--chart-size", "960x640", "--size", "1360x980", "--show", "after", "--sim-noise", "0.004",
                         "--overlay", "level", *PARK],
    "viewer_sigma.png": ["--chart-size", "960x640", "--size", "1360x980", "--show", "after", "--sigma", "auto",
                         "--noise", "0.004", "--overlay", "sigma", *PARK],
}


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb on a free display (``-displayfd``), to be stopped by its own pid."""
    exe = shutil.which("Xvfb")
    if exe is None:
        sys.exit("no DISPLAY and no Xvfb (apt-get install -y xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1920x1200x24", "-nolisten", "tcp",
                             "-noreset"], pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    xvfb = None
    if not env.get("DISPLAY"):
        xvfb, env["DISPLAY"] = start_xvfb()
    try:
        for name, args in SHOTS.items():
            out = DOCS / name
            cmd = [sys.executable, "-m", "gpu_deconv.apps.viewer.cli", *args, "--frames", "6", "--screenshot", str(out),
                   "--check-gl"]
            r = subprocess.run(cmd, env=env, cwd=ROOT)
            if r.returncode != 0:
                print(f"failed ({r.returncode}): {' '.join(cmd)}", file=sys.stderr)
                return r.returncode
            print(f"wrote {out.relative_to(ROOT)}")
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
