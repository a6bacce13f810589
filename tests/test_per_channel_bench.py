"""Smoke test of benchmarks/bench_per_channel.py (--quick: toy sizes; RESULTS.md is never written from a test)."""

from __future__ import annotations

import pytest
from bench_support import run_quick


@pytest.mark.usefixtures("gl_ctx")
def test_bench_per_channel_quick(tmp_path):
    pytest.importorskip("skimage")
    out = run_quick("bench_per_channel.py", tmp_path)
    assert "GL renderer" in out and "| astronaut | 0.005, float |" in out
    for row in ("| passthrough |", "|   pass 5 (fragment), one sigma |", "|   pass 5 (fragment), per-channel sigma |",
                "|   pass 5 (fused), per-channel sigma |", "| adaptive (fused), per-channel sigma |"):
        assert row in out
