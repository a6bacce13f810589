#!/usr/bin/env bash
# gpu_run.sh - run the engine and fused-compute benchmarks on a machine with an NVIDIA GPU, headless (EGL).
#
# Usage (from anywhere):  bash benchmarks/gpu_run.sh [bench_engine.py options, e.g. --quick or --json r.json]
#                         (--quick and --no-write are passed on to bench_compute.py as well)
#
# What it does, and why:
#   * checks the driver is there (nvidia-smi) and prints the GPU;
#   * points libglvnd's EGL loader at NVIDIA's vendor library when both Mesa and NVIDIA are installed -
#     otherwise EGL may pick Mesa's llvmpipe and the "GPU" numbers would be CPU numbers;
#   * installs the package's runtime dependencies if they are missing (no network needed when they are);
#   * refuses to report llvmpipe/software renderers unless ALLOW_SOFTWARE_GL=1;
#   * runs benchmarks/bench_engine.py (1080p and 4K RGBA; --quick for 1080p only) and prints its table;
#   * runs benchmarks/bench_distributed.py --quick (Ray, one worker actor per GPU) when Ray is installed
#     (pip install 'gpu_deconv[ray]'): the images/s per GPU worker that the scaling model in RESULTS.md needs.

#   * runs benchmarks/bench_compute.py --variants all: fragment vs every fused compute variant per method at
#     1080p and 4K, the outputs' largest difference, and what PathChooser picks on this driver.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"

if command -v nvidia-smi >/dev/null 2>&1; then
  echo "== GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
  echo "warning: nvidia-smi not found; continuing with whatever EGL driver is installed" >&2
fi

# Prefer NVIDIA's EGL vendor library (libglvnd) if present.
for f in /usr/share/glvnd/egl_vendor.d/10_nvidia.json /etc/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$f" ] && [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES="$f"
    echo "using EGL vendor file $f"
    break
  fi
done

if ! "$PY" -c "import moderngl, glcontext, numpy, scipy" >/dev/null 2>&1; then
  echo "== installing runtime dependencies"
  "$PY" -m pip install -q moderngl glcontext numpy scipy
fi

echo "== GL renderer"
RENDERER="$("$PY" - <<'PY'
import sys
sys.path.insert(0, ".")
from gpu_deconv.gl.context import create_headless_context
ctx = create_headless_context()
print(ctx.info["GL_RENDERER"], "|", ctx.info["GL_VERSION"])
PY
)"
echo "$RENDERER"
case "$RENDERER" in
  *llvmpipe*|*softpipe*|*SwiftShader*|*"Software"*)
    if [ "${ALLOW_SOFTWARE_GL:-0}" != "1" ]; then
      echo "error: EGL gave a software renderer; set __EGL_VENDOR_LIBRARY_FILENAMES to the GPU vendor's" \
           "EGL json (or ALLOW_SOFTWARE_GL=1 to benchmark it anyway)" >&2
      exit 2
    fi;;
esac

echo "== benchmark"
"$PY" benchmarks/bench_engine.py "$@"

echo "== distributed batch on Ray (quick)"
if "$PY" -c "import ray" >/dev/null 2>&1; then
  "$PY" benchmarks/bench_distributed.py --quick
else
  echo "Ray is not installed (pip install 'gpu_deconv[ray]'); skipped"
fi

echo "== fused compute path"
COMPUTE_ARGS=(--variants all)
for a in "$@"; do
  case "$a" in --quick|--no-write) COMPUTE_ARGS+=("$a");; esac
done
"$PY" benchmarks/bench_compute.py "${COMPUTE_ARGS[@]}"

echo "== adaptive mode: fragment passes vs fused dispatches (printed, not written: record it in RESULTS.md)"
# On GPUs fp16 bands round in the driver, so only precision 32 runs the fused adaptive dispatches there.
for p in 16 32; do
  "$PY" benchmarks/bench_adaptive.py --quick --no-write --precision "$p"
done
