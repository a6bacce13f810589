"""Benchmark scripts (benchmarks/*.py are scripts, not a package) loaded as modules for their smoke tests."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def loaded_benchmark(filename: str, name: str) -> Iterator[ModuleType]:
    """``benchmarks/<filename>`` imported as module ``name`` for the ``with`` block."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / filename)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def run_quick(filename: str, cwd: Path) -> str:
    """Run ``benchmarks/<filename> --quick`` in a fresh process (in ``cwd``, with this checkout first on the
    path); assert that it exits 0 and leaves RESULTS.md as it was, and return its standard output."""
    results = BENCHMARKS / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    root = str(BENCHMARKS.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / filename), "--quick"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (results.read_bytes() if results.exists() else None) == before
    return proc.stdout
