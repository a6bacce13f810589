"""Smoke test of benchmarks/bench_solvers.py: a quick run times every solver and table row and leaves
RESULTS.md alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_solvers.py"


def test_quick_run_times_every_row(capsys):
    spec = importlib.util.spec_from_file_location("bench_solvers", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    results = _PATH.parent / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    try:
        spec.loader.exec_module(mod)
        timings = mod.main(["--quick"])
    finally:
        sys.modules.pop(spec.name, None)
    for basis in ("comb2", "comb3", "laplacian5"):
        for domain in ("1d", "2d"):
            assert timings[f"{basis} {domain} gauss-legendre"] > 0
            assert timings[f"{basis} {domain} table"] > timings[f"{basis} {domain} gauss-legendre"]
    out = capsys.readouterr().out
    assert out.count("table-32") == 6
    assert out.count(" met") + out.count(" MISSED") == 12  # every goal row has a verdict
    assert (results.read_bytes() if results.exists() else None) == before
