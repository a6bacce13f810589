"""Smoke test of benchmarks/bench_codecs.py on toy sizes (the real run writes RESULTS.md; this never does)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, _BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_bench_jpeg_noise_quick(capsys):
    try:
        _load("bench_jpeg_noise").main(["--quick"])
    finally:
        sys.modules.pop("bench_jpeg_noise", None)
    out = capsys.readouterr().out
    assert "| camera | 75 | 75 | gray |" in out and "| coffee | 90 | 90 | 4:2:0 |" in out


def test_bench_codecs_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_codecs", _BENCH / "bench_codecs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        mod.main(["--quick"])
    finally:
        sys.modules.pop(spec.name, None)
        sys.modules.pop("gpu_deconv.io._images_before", None)
    out = capsys.readouterr().out
    assert "| PNG 16-bit |" in out and "| AVIF 10-bit lossless |" in out
    assert "after read + write" in out and "| 96x64 | png |" in out
