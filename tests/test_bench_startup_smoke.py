"""Smoke tests of benchmarks/bench_startup.py: its /usr/bin/time parsing, both ways of measuring a process,
and one quick end-to-end run (tiny photos, one repeat; RESULTS.md is never written)."""

from __future__ import annotations

import os
import sys

import pytest
from bench_support import BENCHMARKS, loaded_benchmark

_ALLOCATE_80MB = "b = bytearray(80_000_000); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(0.05)"


@pytest.fixture(scope="module")
def bench():
    with loaded_benchmark("bench_startup.py", "bench_startup") as mod:
        yield mod


def test_parse_gnu_time_report(bench):
    report = ("\tCommand being timed: \"convert a.png b.png\"\n\tUser time (seconds): 0.61\n"
              "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n"
              "\tMaximum resident set size (kbytes): 59392\n\tExit status: 0\n")
    s = bench.parse_time_v(report)
    assert s.wall_s == pytest.approx(62.5)
    assert s.peak_mib == pytest.approx(58.0)
    assert bench.parse_time_v(report.replace("1:02.50", "1:00:01.25")).wall_s == pytest.approx(3601.25)
    with pytest.raises(ValueError, match="GNU time"):
        bench.parse_time_v("Command exited with non-zero status 1")


@pytest.mark.parametrize("use_time_binary", [True, False], ids=["usr-bin-time", "getrusage"])
def test_measure_sees_peak_memory_and_wall_time(bench, use_time_binary):
    use_time_binary = use_time_binary and os.access(bench.TIME_BINARY, os.X_OK)  # (without it: the fallback)
    s = bench.measure([sys.executable, "-c", _ALLOCATE_80MB], dict(os.environ), use_time_binary)
    assert 76 <= s.peak_mib < 400
    assert 0.04 <= s.wall_s < 60


def test_measure_reports_a_failing_command(bench):
    with pytest.raises(RuntimeError, match="exited with 3: boom"):
        bench.measure([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                      dict(os.environ))


def test_quick_run_measures_every_command(bench, capsys):
    results = BENCHMARKS / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    # the checkout itself as the side-by-side baseline: the rows and ratios exist (their values mean nothing here)
    med = bench.main(["--quick", "--no-write", "--baseline", str(BENCHMARKS.parent)])["median"]
    for key in ("help", "import", "default", "identity", "folder", "base_default", "base_folder"):
        assert med[key].wall_s > 0 and med[key].peak_mib > 5, key
    assert med["default"].peak_mib > med["help"].peak_mib * 0.5  # a real run, not an error exit
    table = capsys.readouterr().out
    assert "| `gpu-deconv --help` |" in table and "folder of 3 320x180 PNGs" in table
    assert "| folder, baseline checkout |" in table and ">= 2 x baseline img/s" in table
    assert (results.read_bytes() if results.exists() else None) == before
