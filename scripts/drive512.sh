#!/usr/bin/env bash
# The DRIVE recipe at 512 px (issue 5; docs/drive512.md) under issue 29's split discipline:
# DRIVE's 20 training images split 15 / 5 by name, train = 21-35, val = 36-40. The preset's
# settings were chosen on val (36-40), so every figure this script writes on val is a
# validation figure, after selection (docs/evaluation.md). The test split is DRIVE's
# official test set: pass its folder as TEST=... and the script scores it once, at the end,
# into $WORK/report-test; without it there is no test figure.
# The dual pipeline (Stage I = DCGAN on 128 px distance maps of the masks + a refiner to
# 512 px adapted to the DCGAN's maps; Stage II = pix2pix on 256 px crops) trains on train
# with `--preset drive512`; then `synthmed evaluate all`: utility (segmenters trained on real,
# synthetic, real + synthetic with SHARE of its patches synthetic) and fidelity, with the
# single-GAN baseline and the plain pipeline of issue 3 beside it on fidelity and samples;
# last, Stage II alone on the real training masks (utility of the translated pairs).
# Re-running skips finished steps and resumes interrupted training.
# Usage: [TEST=DRIVE/test] scripts/drive512.sh [DRIVE_TRAINING_DIR] [WORK_DIR]
set -euo pipefail
DRIVE=${1:-../shared/datasets/DRIVE/training}
WORK=${2:-work/drive512}
N=${N:-200}          # synthetic pairs per set
BUDGET=${BUDGET:-cpu}
SEEDS=${SEEDS:-2}
SHARE=${SHARE:-0.1}  # synthetic share of the real + synthetic arm's patches (README: 0.5 hurt)
mkdir -p "$WORK"
log() { echo "$(date -u +%FT%TZ) $*" | tee -a "$WORK/times.txt"; }
train() {  # train STAGE RUN [flags...]: skipped when finished, resumed when interrupted
  local stage=$1 run=$2; shift 2
  [ -f "$run/done" ] && return
  local resume=(); [ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
  log "train $stage -> $run"
  synthmed train "$stage" --out "$run" "${resume[@]}" "$@"
  touch "$run/done"
  log "done $stage"
}
# prepare writes a split as one unit (train/ and val/ together).
[ -f "$WORK/data/val/dataset.json" ] || synthmed prepare drive "$DRIVE" --res 512 --val 5 --out "$WORK/data"
# The recipe (the README's training time is the sum of these three runs). The refiner
# adapts to the trained DCGAN's own coarse masks, so it comes after it.
train geometry "$WORK/geometry" --preset drive512 --data "$WORK/data/train"
train refiner "$WORK/refiner" --preset drive512 --data "$WORK/data/train" \
  --adapt-geometry "$WORK/geometry"
train texture "$WORK/texture" --preset drive512 --data "$WORK/data/train"
# --repair-tree mends Stage I's masks into trees (README: every vessel statistic within 10 %).
# Stage II renders in 256 px windows, the crop it trained on (generate --tile's default).
[ -d "$WORK/synth-dual" ] || { log generate; synthmed generate --geometry "$WORK/geometry" \
  --refiner "$WORK/refiner" --texture "$WORK/texture" --n "$N" --repair-tree \
  --out "$WORK/synth-dual" --save-pipeline "$WORK/pipeline"; log "done generate"; }
# Baselines for the side-by-side: the single GAN (128 px pairs: it has no refiner) and the
# plain pipeline of issue 3 (default preset: no DiffAugment / EMA / refiner) at 128 px.
[ -f "$WORK/data128/val/dataset.json" ] || synthmed prepare drive "$DRIVE" --res 128 --val 5 --out "$WORK/data128"
train single "$WORK/single" --preset drive512 --data "$WORK/data/train" --steps 600
train geometry "$WORK/plain-geometry" --data "$WORK/data128/train" --steps 600
train texture "$WORK/plain-texture" --data "$WORK/data128/train" --steps 1000
[ -d "$WORK/synth-single" ] || synthmed generate --single "$WORK/single" --n "$N" \
  --out "$WORK/synth-single"
[ -d "$WORK/synth-plain" ] || synthmed generate --geometry "$WORK/plain-geometry" \
  --texture "$WORK/plain-texture" --n "$N" --out "$WORK/synth-plain"
[ -f "$WORK/report/metrics.json" ] || { log evaluate; synthmed evaluate all --synthetic "$WORK/synth-dual" \
  --real-train "$WORK/data/train" --real-test "$WORK/data/val" --res 512 \
  --budget "$BUDGET" --seeds "$SEEDS" --synthetic-share "$SHARE" \
  --runs "geometry=$WORK/geometry" "refiner=$WORK/refiner" "texture=$WORK/texture" \
  --compare "single GAN (128 px)=$WORK/synth-single" \
  "plain pipeline (128 px)=$WORK/synth-plain" --out "$WORK/report"; log "done evaluate"; }
# Diagnostic: Stage II alone on the real training masks (README: it sets the ceiling).
[ -d "$WORK/translated" ] || synthmed generate --texture "$WORK/texture" \
  --masks "$WORK/data/train" --out "$WORK/translated"
[ -d "$WORK/util-translated" ] || { log "evaluate translated"; synthmed evaluate utility \
  --synthetic "$WORK/translated" --real-train "$WORK/data/train" --real-test "$WORK/data/val" \
  --budget "$BUDGET" --seeds "$SEEDS" --arms synthetic --out "$WORK/util-translated"; log "done"; }
# The test split, scored once: the same command on DRIVE's official test images, which no
# choice of the recipe has seen (prepared with --role test; evaluate refuses it if any of
# its images trained a model).
if [ -n "${TEST:-}" ]; then
  [ -f "$WORK/test/dataset.json" ] || synthmed prepare drive "$TEST" --split test --res 512 \
    --role test --out "$WORK/test"
  [ -f "$WORK/report-test/metrics.json" ] || { log "evaluate test"; synthmed evaluate all \
    --synthetic "$WORK/synth-dual" --real-train "$WORK/data/train" --real-test "$WORK/test" \
    --res 512 --budget "$BUDGET" --seeds "$SEEDS" --synthetic-share "$SHARE" \
    --out "$WORK/report-test"; log "done evaluate test"; }
fi
