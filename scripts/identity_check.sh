#!/usr/bin/env bash
# Behaviour unchanged by a restructuring: run each drive512 stage for STEPS steps on DRIVE
# (train 21-35) with the source tree SRC, generate pairs from the dual pipeline (with the
# tree repair) and the single GAN, and write the sha256 of every weight file and PNG.
# Run it on two checkouts and diff OUT/weights.sha256 and OUT/pairs.sha256 (CPU only).
# Usage: SRC=OTHER/src OUT=work/id-a [STEPS=10] [DRIVE=...] scripts/identity_check.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
PY=$(realpath "$PY"); SRC=$(realpath "$SRC")
S() { PYTHONPATH=$SRC $PY -m synthmed "$@"; }
STEPS=${STEPS:-10}
DRIVE=${DRIVE:-../shared/datasets/DRIVE/training}
mkdir -p $OUT
[ -f $OUT/data/val/dataset.json ] || S prepare drive $DRIVE --res 512 --val 5 --out $OUT/data
S train geometry --out $OUT/geometry --preset drive512 --data $OUT/data/train --steps $STEPS --device cpu
S train refiner --out $OUT/refiner --preset drive512 --data $OUT/data/train --adapt-geometry $OUT/geometry --steps $STEPS --device cpu
S train texture --out $OUT/texture --preset drive512 --data $OUT/data/train --steps $STEPS --device cpu
S train single --out $OUT/single --preset drive512 --data $OUT/data/train --steps $STEPS --device cpu
S generate --geometry $OUT/geometry --refiner $OUT/refiner --texture $OUT/texture --n 4 --repair-tree --out $OUT/synth --save-pipeline $OUT/pipeline --device cpu
S generate --single $OUT/single --n 4 --out $OUT/synth-single --device cpu
cd $OUT && find geometry refiner texture single -name model.safetensors | sort | xargs sha256sum > weights.sha256
find synth synth-single -name '*.png' | sort | xargs sha256sum > pairs.sha256
echo DONE
