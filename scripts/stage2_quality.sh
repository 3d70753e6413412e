#!/usr/bin/env bash
# Stage II quality of SynthMed's default preset against the paper preset, at equal training
# images (the README's performance section). Stage I is left out: each Stage II model draws
# images for the 15 real DRIVE training masks, and those pairs are judged with the
# evaluation commands (utility: a segmenter trained on them, tested on the 5 validation
# images; fidelity: KL of intensity histograms). Re-running skips finished steps.
# Usage: scripts/stage2_quality.sh [DRIVE_TRAINING_DIR] [WORK_DIR]
set -euo pipefail
DRIVE=${1:-../shared/datasets/DRIVE/training}
WORK=${2:-work/stage2-quality}
RES=${RES:-256}            # Stage II training resolution
IMAGES=${IMAGES:-1200}     # training images seen by every model (80 epochs of 15)
EVAL_RES=${EVAL_RES:-128}  # resolution of the utility segmenters
BUDGET=${BUDGET:-1500}
SEEDS=${SEEDS:-2}
# name:preset:extra flags
MODELS=${MODELS:-"paper:paper: default:default: default-ndf64:default:--ndf=64"}
mkdir -p "$WORK"
[ -d "$WORK/data$RES" ] || synthmed prepare drive "$DRIVE" --res "$RES" --val 5 --out "$WORK/data$RES"
[ -d "$WORK/data$EVAL_RES" ] || synthmed prepare drive "$DRIVE" --res "$EVAL_RES" --val 5 --out "$WORK/data$EVAL_RES"
[ -f "$WORK/real/utility.json" ] || synthmed evaluate utility --arms real --synthetic "$WORK/data$EVAL_RES/train" \
  --real-train "$WORK/data$EVAL_RES/train" --real-test "$WORK/data$EVAL_RES/val" \
  --res "$EVAL_RES" --budget "$BUDGET" --seeds "$SEEDS" --out "$WORK/real"
for spec in $MODELS; do
  IFS=: read -r name preset extra <<< "$spec"
  read -r batch precision <<< "$(python -c "from synthmed.presets import preset
p = preset('$preset', 'texture'); print(p['batch_size'], p['precision'])")"
  run="$WORK/$name"
  resume=(); [ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
  synthmed train texture --data "$WORK/data$RES/train" --out "$run" --preset "$preset" \
    --steps $((IMAGES / batch)) --grid-every 100 --checkpoint-every 100 ${extra//=/ } "${resume[@]}"
  [ -d "$WORK/$name-pairs" ] || synthmed generate --texture "$run" --masks "$WORK/data$RES/train" \
    --precision "$precision" --out "$WORK/$name-pairs"
  [ -f "$WORK/$name-utility/utility.json" ] || synthmed evaluate utility --arms synthetic \
    --synthetic "$WORK/$name-pairs" --real-train "$WORK/data$EVAL_RES/train" \
    --real-test "$WORK/data$EVAL_RES/val" --res "$EVAL_RES" --budget "$BUDGET" \
    --seeds "$SEEDS" --out "$WORK/$name-utility"
  [ -f "$WORK/$name-fidelity/fidelity.json" ] || synthmed evaluate fidelity --synthetic "$WORK/$name-pairs" \
    --real "$WORK/data$RES/train" --out "$WORK/$name-fidelity"
done
