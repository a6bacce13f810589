"""Smoke test of the blind-sigma rows of benchmarks/bench_adaptive.py (issue #12) on a toy frame (never writes
RESULTS.md)."""

from __future__ import annotations

from bench_support import loaded_benchmark


def test_bench_adaptive_blind_sigma_rows(gl_ctx, capsys):
    from gpu_deconv.gl.compute import compute_available

    with loaded_benchmark("bench_adaptive.py", "bench_adaptive") as mod:
        assert mod.main(["--size", "96x64", "--reps", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    rows = ["global stats (7 passes)", "blind estimator (engine path)", "adaptive frame, sigma auto"]
    if compute_available(gl_ctx):  # the fused rows need OpenGL 4.3
        rows += ["stats fused (1 dispatch)", "stats fused, stride 1x1 (blind)", "stats fused, stride 4x1"]
    for row in rows:
        assert row in out
    goal = [line for line in out.splitlines() if "the estimator <= 2 units per frame" in line]
    assert len(goal) == 1 and goal[0].startswith(("- PASS", "- MISS"))
