#!/usr/bin/env bash
# Train every shipped model at once on one CUDA GPU, in about 8 minutes of wall time.
#
#   bash scripts/train_gpu.sh OUT_DIR            # on a machine with a CUDA GPU
#   bash scripts/train_gpu.sh OUT_DIR --tiny     # the same code paths on the CPU, in ~minutes
#
# Six processes (denoise-2d, denoise-3d, deconv-2d, deconv-3d, salt-and-pepper, and
# denoise-2d-nl, the noise-conditioned denoiser fine-tuned from the shipped denoise-2d),
# each training through the package's engine (napari_deconvnet.core.fit), share
# the GPU; each has a time budget (its cosine schedule follows the clock) and a
# few CPU threads for data synthesis, which is the bottleneck on a GPU.
# Each writes OUT_DIR/<model>.safetensors, <model>.log.json (recipe and
# validation history) and <model>.out (its console). Checkpoints go to
# OUT_DIR/runs/<model>, so a killed run continues with the same command.
# Nothing is copied into the package: compare with benchmarks/quality.py first,
# then copy the weights that win into src/napari_deconvnet/weights/.
#
# Each model continues from its shipped weights with the recipe recorded in
# them (train_models.py --recipe shipped: the flags of the run that made them,
# without its budget, files and threads), since the shipped models carry hours
# of CPU training that a few GPU minutes from scratch would not repeat; the
# engine keeps the start when nothing beats it on validation. RECIPE=task
# trains from scratch with the script's defaults instead.
#
# CANDIDATES=1 also trains two deconv-3d recipes beside the shipped one (the
# CPU cannot afford them): deconv-3d-balanced (loss balanced-mse, which weighs
# every sample alike; under plain MSE volumes at <= 20 photons carry 1-3 % of
# the loss, see benchmarks/deconv3d_balance.py) and deconv-3d-planar (the
# same with anisotropic pooling, --planar-levels 1). Pick with
# benchmarks/deconv3d_balance.py and benchmarks/quality.py. A third,
# deconv-3d-mismatch, continues the shipped deconv-3d with 30 % of its samples
# given a PSF 0.7-1.45 times as wide as the blur's (--psf-mismatch: a network
# trained on exact PSFs over-sharpens with a PSF given too wide; see
# benchmarks/psf_mismatch.py for the 2D measurement). A fourth, denoise-3d-counts,
# continues the shipped denoise-3d with 15 % of its samples pure photon counts at
# 0.5-4 photons (--low-counts).
# MODELS="denoise-3d deconv-3d" trains only those of the six (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: train_gpu.sh OUT_DIR [--tiny]}
mode=${2:-}
python=${PYTHON:-python}
mkdir -p "$out"

if [ "$mode" = "--tiny" ]; then
    common=(--device cpu --threads 1 --steps 2 --val-every 1 --phantoms 2 --max-seconds 120)
else
    # 7 minutes of training + data preparation and saving: ~8 minutes in all
    common=(--device cuda --threads "${THREADS:-3}" --steps 200000 --val-every 500
            --max-seconds "${SECONDS_PER_MODEL:-420}")
fi

recipe=${RECIPE:-shipped}
case "$recipe" in shipped | task) ;; *) echo "RECIPE must be shipped or task" >&2; exit 2 ;; esac
pids=()
selected=" ${MODELS:-denoise-2d denoise-3d deconv-2d deconv-3d salt-and-pepper denoise-2d-nl} "
models=()
for model in denoise-2d denoise-3d deconv-2d deconv-3d salt-and-pepper; do
    [[ "$selected" == *" $model "* ]] || continue
    models+=("$model")
    extra=(--recipe "$recipe" --checkpoint "$out/runs/$model" --resume)
    "$python" scripts/train_models.py --model "$model" "${common[@]}" "${extra[@]}" \
        --out "$out/$model.safetensors" >"$out/$model.out" 2>&1 &
    pids+=($!)
done
# the noise-conditioned denoiser starts from the shipped blind one, widened
if [[ "$selected" == *" denoise-2d-nl "* ]]; then
    "$python" scripts/train_models.py --model denoise-2d --noise-channel \
        --init src/napari_deconvnet/weights/denoise-2d.safetensors --lr 2e-4 "${common[@]}" \
        --checkpoint "$out/runs/denoise-2d-nl" --resume --out "$out/denoise-2d-nl.safetensors" \
        >"$out/denoise-2d-nl.out" 2>&1 &
    pids+=($!)
    models+=(denoise-2d-nl)
fi
if [ "${CANDIDATES:-0}" = "1" ]; then
    for variant in balanced planar mismatch; do
        flags=(--loss balanced-mse)
        [ "$variant" = planar ] && flags+=(--planar-levels 1)
        # the shipped weights on, 30 % of the samples given a misjudged PSF
        [ "$variant" = mismatch ] && flags=(--recipe shipped --psf-mismatch 0.3)
        "$python" scripts/train_models.py --model deconv-3d "${flags[@]}" "${common[@]}" \
            --checkpoint "$out/runs/deconv-3d-$variant" --resume \
            --out "$out/deconv-3d-$variant.safetensors" >"$out/deconv-3d-$variant.out" 2>&1 &
        pids+=($!)
        models+=("deconv-3d-$variant")
    done
    # denoise-3d with photon counts at 0.5-4 photons (--low-counts), where the
    # shipped one loses to a Gaussian filter on sparse scenes
    "$python" scripts/train_models.py --model denoise-3d --recipe shipped --low-counts 0.15 \
        "${common[@]}" --checkpoint "$out/runs/denoise-3d-counts" --resume \
        --out "$out/denoise-3d-counts.safetensors" >"$out/denoise-3d-counts.out" 2>&1 &
    pids+=($!)
    models+=(denoise-3d-counts)
fi
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
for model in "${models[@]}"; do
    echo "== $model: $(tail -n 1 "$out/$model.out")"
done
exit $status
