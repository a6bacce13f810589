"""Smoke test of benchmarks/bench_adaptive.py on a toy frame (never writes RESULTS.md)."""

from __future__ import annotations

from bench_support import loaded_benchmark


def test_bench_adaptive_smoke(gl_ctx, capsys):
    with loaded_benchmark("bench_adaptive.py", "bench_adaptive") as mod:
        assert mod.main(["--size", "96x64", "--reps", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    for row in ("passthrough", "adaptive laplacian", "adaptive comb", "global stats", "table solve"):
        assert row in out
    assert "adaptive laplacian, statistics included" in out  # the goal lines are printed
