"""Smoke test of benchmarks/bench_adaptive.py on a toy frame (never writes RESULTS.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_adaptive.py"


def test_bench_adaptive_smoke(gl_ctx, capsys):
    spec = importlib.util.spec_from_file_location("bench_adaptive", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        assert mod.main(["--size", "96x64", "--reps", "1", "--no-write"]) == 0
    finally:
        sys.modules.pop(spec.name, None)
    out = capsys.readouterr().out
    for row in ("passthrough", "adaptive laplacian", "adaptive comb", "global stats", "table solve"):
        assert row in out
    assert "adaptive laplacian, statistics included" in out  # the goal lines are printed
