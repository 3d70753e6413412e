#!/usr/bin/env bash
# Reproduces the README's DRIVE results table: the 20 DRIVE training images split 15 / 5
# (36-40: the validation split, prepare --val 5), both stages and the single-GAN baseline trained on the 15, then
# `synthmed evaluate all`. Usage: scripts/drive_results.sh [DRIVE_TRAINING_DIR] [WORK_DIR]
set -euo pipefail
DRIVE=${1:-../shared/datasets/DRIVE/training}
WORK=${2:-work/drive-results}
RES=${RES:-64}
GAN_STEPS=${GAN_STEPS:-800}
BUDGET=${BUDGET:-1500}
SEEDS=${SEEDS:-3}
mkdir -p "$WORK"
synthmed prepare drive "$DRIVE" --res "$RES" --val 5 --out "$WORK/data"
synthmed train geometry --data "$WORK/data/train" --out "$WORK/geo" --steps "$GAN_STEPS" \
  --batch-size 16 --ngf 16 --ndf 16
synthmed train single --data "$WORK/data/train" --out "$WORK/single" --steps "$GAN_STEPS" \
  --batch-size 16 --ngf 16 --ndf 16
synthmed train texture --data "$WORK/data/train" --out "$WORK/tex" --steps "$GAN_STEPS" \
  --batch-size 4 --ngf 32 --ndf 32
synthmed generate --geometry "$WORK/geo" --texture "$WORK/tex" --n 200 --out "$WORK/synth-dual"
synthmed generate --single "$WORK/single" --n 200 --out "$WORK/synth-single"
synthmed evaluate all --synthetic "$WORK/synth-dual" --baseline "$WORK/synth-single" \
  --real-train "$WORK/data/train" --real-test "$WORK/data/val" \
  --budget "$BUDGET" --seeds "$SEEDS" \
  --runs "geometry=$WORK/geo" "texture=$WORK/tex" "single=$WORK/single" \
  --out "$WORK/report"
