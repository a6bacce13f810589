"""Smoke test of benchmarks/bench_video.py (--quick: toy sizes; RESULTS.md is never written from a test)."""

from __future__ import annotations

import pytest
from bench_support import run_quick


@pytest.mark.usefixtures("gl_ctx")
def test_bench_video_quick(tmp_path):
    pytest.importorskip("skimage")
    out = run_quick("bench_video.py", tmp_path)
    assert "GL renderer" in out and "| gpu_deconv --method identity |" in out
    for row in ("ffmpeg decode + libx264 encode", "ffmpeg -vf unsharp", "ffmpeg -vf cas"):
        assert row in out
    assert "Identity pipeline / ffmpeg decode+encode" in out
