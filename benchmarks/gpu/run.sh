#!/usr/bin/env bash
# The GPU run of VoxCast, on a machine with an NVIDIA GPU: installs VoxCast from this working
# tree with its GPU and benchmark extras, runs the GPU tests, then
#   voxcast bench --suite render,streaming
# and writes everything into one folder (default benchmarks/results/gpu-<gpu name>):
#   gpu-tests.log, gpu-tests.xml   the GPU tests (pytest -m gpu) and their JUnit report
#   results.json, report.md, plots/ and the suites' own reports, as any voxcast bench run
#   run.log                        this script's whole output
# Sized to finish in under 8 minutes on a machine with 16 cores (render frames: 10 a tool).
#
#   benchmarks/gpu/run.sh [OUT_DIR]
#
# Environment:
#   PYTHON=python3           the interpreter that makes the virtual environment
#   VENV=.venv-gpu           where it goes; reused when it is there
#   VOXCAST_GPU_NO_INSTALL=1 use $PYTHON as it is (VoxCast and its dependencies already
#                            installed, e.g. on a machine without a package index)
#   VOXCAST_TEST_DATA        the shared DICOM data (default ../shared/data)
#   BENCH_FRAMES=10          frames per tool in the render suite
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this script is for a machine with an NVIDIA GPU" >&2; exit 2; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cs 'A-Za-z0-9' '-' | sed 's/^-//; s/-$//' | tr 'A-Z' 'a-z')
out=${1:-benchmarks/results/gpu-${gpu:-nvidia}}
mkdir -p "$out"
exec > >(tee "$out/run.log") 2>&1
start=$(date +%s)
echo "GPU run into $out on: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"

PYTHON=${PYTHON:-python3}
if [ "${VOXCAST_GPU_NO_INSTALL:-0}" = 1 ]; then
  py=$PYTHON
else
  VENV=${VENV:-.venv-gpu}
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # cupy's wheel must match the CUDA driver: 12.x (cupy-cuda12x, the gpu extra) by default
  "$VENV/bin/python" -m pip install --quiet -e '.[gpu,bench,test]'
  py=$VENV/bin/python
fi
"$py" -c "from render_engine.kernels.backend import cupy_or_none as c; import sys; cp = c(); \
print('cupy', cp.__version__ if cp else None); sys.exit(0 if cp else 3)" \
  || { echo "cupy does not see the GPU: install the cupy wheel that matches the CUDA driver" >&2; exit 3; }
echo "installed in $(( $(date +%s) - start )) s"

# 1. the GPU tests: every GPU kernel against its CPU twin and the references
status=0
timeout 240 "$py" -m pytest -m gpu -q -p no:cacheprovider --junitxml="$out/gpu-tests.xml" tests \
  > "$out/gpu-tests.log" 2>&1 || status=$?
tail -3 "$out/gpu-tests.log"
echo "GPU tests: exit $status after $(( $(date +%s) - start )) s"

# 2. the benchmarks: VoxCast's CPU and GPU paths beside VTK and SimpleITK (render), a real
#    server's sessions beside the naive pydicom path (streaming); every path guarded first
bench=0
timeout 330 "$py" -m benchmarks.suite --suite render,streaming --frames "${BENCH_FRAMES:-10}" \
  --no-progress --out "$out" || bench=$?
echo "voxcast bench: exit $bench after $(( $(date +%s) - start )) s"
rm -rf "$out/voxcast-data"
[ "$status" = 0 ] && [ "$bench" = 0 ]
