#!/usr/bin/env bash
# The DRIVE recipe at 512 px (issue 5; README "Results on DRIVE at 512 px"): the 20 DRIVE
# training images split 15 / 5 (36-40 held out), the dual pipeline (Stage I = DCGAN on
# 64 px soft masks + refiner to 512; Stage II = pix2pix on 256 px crops) and the single-GAN
# baseline trained on the 15 with `--preset drive512`, then `synthmed evaluate all`.
# Re-running skips finished steps and resumes interrupted training.
# Usage: scripts/drive512.sh [DRIVE_TRAINING_DIR] [WORK_DIR]
set -euo pipefail
DRIVE=${1:-../shared/datasets/DRIVE/training}
WORK=${2:-work/drive512}
N=${N:-200}          # synthetic pairs per set
BUDGET=${BUDGET:-cpu}
SEEDS=${SEEDS:-2}
mkdir -p "$WORK"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$WORK/times.txt"; }
[ -d "$WORK/data" ] || synthmed prepare drive "$DRIVE" --res 512 --holdout 5 --out "$WORK/data"
for stage in texture refiner geometry single; do
  run="$WORK/$stage"
  [ -f "$run/generator/model.safetensors" ] && [ -f "$run/done" ] && continue
  resume=(); [ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
  log "train $stage"
  synthmed train "$stage" --preset drive512 --data "$WORK/data/train" --out "$run" "${resume[@]}"
  touch "$run/done"
  log "done $stage"
done
[ -d "$WORK/synth-dual" ] || { log generate; synthmed generate --geometry "$WORK/geometry" \
  --refiner "$WORK/refiner" --texture "$WORK/texture" --n "$N" --out "$WORK/synth-dual" \
  --save-pipeline "$WORK/pipeline"; }
[ -d "$WORK/synth-single" ] || synthmed generate --single "$WORK/single" --n "$N" \
  --out "$WORK/synth-single"
# For the side-by-side only (not part of the recipe): the plain pipeline of issue 3, i.e. the
# default preset without DiffAugment / EMA / refiner, at 128 px where a CPU can train it.
[ -d "$WORK/data128" ] || synthmed prepare drive "$DRIVE" --res 128 --holdout 5 --out "$WORK/data128"
for stage in geometry texture; do
  [ -f "$WORK/plain-$stage/done" ] && continue
  rm -rf "$WORK/plain-$stage"
  steps=700; [ "$stage" = texture ] && steps=1500
  synthmed train "$stage" --data "$WORK/data128/train" --out "$WORK/plain-$stage" --steps "$steps"
  touch "$WORK/plain-$stage/done"
done
[ -d "$WORK/synth-plain" ] || synthmed generate --geometry "$WORK/plain-geometry" \
  --texture "$WORK/plain-texture" --n "$N" --out "$WORK/synth-plain"
log evaluate
synthmed evaluate all --synthetic "$WORK/synth-dual" --baseline "$WORK/synth-single" \
  --real-train "$WORK/data/train" --real-test "$WORK/data/holdout" --res 512 \
  --budget "$BUDGET" --seeds "$SEEDS" \
  --runs "geometry=$WORK/geometry" "refiner=$WORK/refiner" "texture=$WORK/texture" \
  "single=$WORK/single" --compare "plain pipeline (128 px)=$WORK/synth-plain" --out "$WORK/report"
log "done evaluate"
