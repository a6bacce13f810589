"""Smoke test of benchmarks/bench_codecs.py on toy sizes (the real run writes RESULTS.md; this never does)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_codecs.py"


def test_bench_codecs_quick(capsys):
    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location("bench_codecs", _PATH)
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
