"""A private Xvfb server for the window tests (viewer, examples): started directly so the pid is its own,
on a display number Xvfb picks itself (``-displayfd``), stopped by that pid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def private_xvfb(unavailable: Callable[[str], None], screen: str = "1280x1024x24") -> Iterator[str]:
    """Yield ``':N'``; call ``unavailable(reason)`` (which skips or fails) when Xvfb cannot run."""
    if not sys.platform.startswith("linux"):
        unavailable("the window tests use Xvfb (Linux only)")
    exe = shutil.which("Xvfb")
    if exe is None:
        unavailable("Xvfb is not installed (apt-get install -y xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    number = b""
    deadline = time.monotonic() + 15
    try:
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(r, 16)
            if not chunk:
                break
            number += chunk
    finally:
        os.close(r)
    try:
        if not number.strip().isdigit():
            unavailable("Xvfb did not start")
        yield f":{number.decode().strip()}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
