"""Smoke test of benchmarks/bench_per_channel.py (--quick: toy sizes; RESULTS.md is never written from a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("gl_ctx")
def test_bench_per_channel_quick(tmp_path):
    pytest.importorskip("skimage")
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_per_channel.py"), "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "GL renderer" in out and "| astronaut | 0.005, float |" in out
    for row in ("| passthrough |", "|   pass 5 (fragment), one sigma |", "|   pass 5 (fragment), per-channel sigma |",
                "|   pass 5 (fused), per-channel sigma |", "| adaptive (fused), per-channel sigma |"):
        assert row in out
    assert (results.read_bytes() if results.exists() else None) == before
