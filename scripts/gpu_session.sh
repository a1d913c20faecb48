#!/usr/bin/env bash
# Everything one GPU lease is for, in one command of about 8 minutes:
#
#   bash scripts/gpu_session.sh OUT_DIR           # on a machine with a CUDA GPU
#   bash scripts/gpu_session.sh OUT_DIR --tiny    # the same code paths on the CPU
#
# 1. scripts/train_gpu.sh trains the shipped models (and, with CANDIDATES=1,
#    the default here, the deconv-3d candidates) in the background, each for
#    SECONDS_PER_MODEL seconds (default 280);
# 2. meanwhile the CUDA tests of benchmarks/gpu_check.sh run (correctness, so
#    sharing the card with training costs them nothing but time);
# 3. once training has ended, the measurements of benchmarks/gpu_check.sh run
#    on an idle card (throughput, automatic tiles, out-of-memory fallback,
#    Richardson-Lucy, mixed-precision training).
#
# OUT_DIR receives gpu_check's files (tests.log, bench.log, results.json,
# results.md, nvidia-smi.txt) and trained.tgz: the trained weights, their
# logs (.log.json, .out) and train.log, without checkpoints. Nothing is
# copied into the package: compare the weights with benchmarks/quality.py
# first. The package is used from src/ (PYTHONPATH); PYTHON picks the
# interpreter (default python3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out=${1:?usage: gpu_session.sh OUT_DIR [--tiny]}
mode=${2:-}
py=${PYTHON:-python3}
work=${GPU_SESSION_WORK:-$(mktemp -d)}
mkdir -p "$out" "$work/train"
out=$(cd "$out" && pwd)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)

if [ "$mode" = "--tiny" ]; then
    train_mode=--tiny
    export GPU_CHECK_TINY=1
else
    train_mode=
fi

(
    PYTHON=$py SECONDS_PER_MODEL=${SECONDS_PER_MODEL:-280} CANDIDATES=${CANDIDATES:-1} \
        bash scripts/train_gpu.sh "$work/train" $train_mode
    echo "train_gpu.sh exit status $?"
) >"$work/train/train.log" 2>&1 &
train_pid=$!

GPU_CHECK_PARTS=tests PYTHON=$py GPU_CHECK_TEST_SECONDS=${GPU_CHECK_TEST_SECONDS:-240} \
    bash benchmarks/gpu_check.sh "$out" >/dev/null 2>&1
echo "gpu_session: tests done at $(( $(date +%s) - start )) s, exit status $(cat "$out/tests.rc")"
wait "$train_pid"
echo "gpu_session: training done at $(( $(date +%s) - start )) s"
tail -n 12 "$work/train/train.log"

GPU_CHECK_PARTS=bench PYTHON=$py GPU_CHECK_BENCH_SECONDS=${GPU_CHECK_BENCH_SECONDS:-150} \
    bash benchmarks/gpu_check.sh "$out" >/dev/null 2>&1
bench_rc=$?
echo "gpu_session: measurements done at $(( $(date +%s) - start )) s, exit status $bench_rc"
tar czf "$out/trained.tgz" -C "$work/train" --exclude=runs .
ls -la "$out"
tail -n 30 "$out/results.md" 2>/dev/null
