#!/usr/bin/env bash
# One check of the CUDA path, in under 8 minutes on a machine with a CUDA GPU.
#
#   bash benchmarks/gpu_check.sh OUT_DIR                    # on the GPU machine
#   GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh OUT_DIR   # tiny CPU mode (tests the script)
#   bash benchmarks/gpu_check.sh OUT_DIR --cpu-tiny         # the same
#   GPU_CHECK_PARTS=tests (or bench) runs one of the two parts below alone
#   (scripts/gpu_session.sh runs the tests beside training, the bench after it).
#
# 1. The device tests on CUDA: every test parametrised by the `device` fixture
#    (its "cuda" cases) and tests/test_precision.py, `-m "not slow"`.
# 2. benchmarks/gpu_check.py: restore throughput (MP/s) in float32, float16
#    and bfloat16 with the difference from float32, the automatic tile from
#    free GPU memory, an out-of-memory request that falls back to smaller
#    tiles, Richardson-Lucy on the GPU, and float16/bfloat16 training.
#
# Results: OUT_DIR/tests.log, OUT_DIR/bench.log, OUT_DIR/results.json and
# OUT_DIR/results.md. The package is used from src/ (PYTHONPATH), so nothing
# is installed; PYTHON selects the interpreter (default python3). Exit status:
# 0 when the tests passed and every measurement ran.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR [--cpu-tiny]}"
TINY="${GPU_CHECK_TINY:-0}"
if [[ "${2:-}" == "--cpu-tiny" ]]; then TINY=1; fi
PY="${PYTHON:-python3}"
TEST_SECONDS="${GPU_CHECK_TEST_SECONDS:-270}"
BENCH_SECONDS="${GPU_CHECK_BENCH_SECONDS:-180}"
PARTS="${GPU_CHECK_PARTS:-all}"
case "$PARTS" in all | tests | bench) ;; *) echo "GPU_CHECK_PARTS must be all, tests or bench" >&2; exit 2 ;; esac

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
start=$(date +%s)

if [[ "$TINY" == "1" ]]; then
    export CUDA_VISIBLE_DEVICES=""
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
    SELECT="precision"
    BENCH_ARGS=(--tiny)
else
    if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check: torch sees no CUDA GPU; use GPU_CHECK_TINY=1 for the CPU mode" >&2
        exit 2
    fi
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
    SELECT="cuda or precision"
    BENCH_ARGS=()
fi

# Core test files only: the GPU image has no Qt or napari. A file that cannot
# be imported there (a missing package such as dask, zarr or PyWavelets) fails
# alone, not the run; carry such packages as wheels to run it too.
TESTS=(
    tests/test_precision.py tests/test_restore.py tests/test_classical.py
    tests/test_metrics.py tests/test_noise.py tests/test_training.py
    tests/test_persistence.py tests/test_deconv_restore.py tests/test_neighbor2neighbor.py
)
[[ -f tests/test_finetune.py ]] && TESTS+=(tests/test_finetune.py)
tests_rc=0
if [[ "$PARTS" != "bench" ]]; then
    echo "gpu_check: tests (-k '$SELECT', at most ${TEST_SECONDS} s)"
    # no third-party pytest plugins: on the H200 image one of them imported
    # zarr at start-up, which failed for want of google-crc32c, and no test ran
    export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
    timeout "$TEST_SECONDS" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -rfE \
        --continue-on-collection-errors -m "not slow" -k "$SELECT" "${TESTS[@]}" 2>&1 |
        tee "$OUT/tests.log"
    tests_rc=${PIPESTATUS[0]}
    echo "gpu_check: tests exit status $tests_rc"
    echo "$tests_rc" >"$OUT/tests.rc"
elif [[ -f "$OUT/tests.rc" ]]; then
    tests_rc=$(cat "$OUT/tests.rc")  # from an earlier GPU_CHECK_PARTS=tests run
fi

bench_rc=0
if [[ "$PARTS" != "tests" ]]; then
    echo "gpu_check: measurements (at most ${BENCH_SECONDS} s)"
    timeout "$BENCH_SECONDS" "$PY" "$ROOT/benchmarks/gpu_check.py" --out "$OUT" \
        --tests-rc "$tests_rc" "${BENCH_ARGS[@]}" 2>&1 | tee "$OUT/bench.log"
    bench_rc=${PIPESTATUS[0]}
fi

echo "gpu_check: done in $(( $(date +%s) - start )) s; results in $OUT"
if [[ "$tests_rc" != "0" || "$bench_rc" != "0" ]]; then exit 1; fi
exit 0
