"""Probe: keep the synthetic pairs whose image a segmenter trained on the real images
segments most like its mask (consistency filtering). Generates N_GEN pairs from a saved
pipeline (the first 200 are the script's set: same seeds), trains the evaluation's "cpu"
segmenter on the real training pairs (seed 100, not one of the evaluation's), scores each
synthetic pair by the Dice of the prediction with its mask inside the field of view, and
saves the best N_KEEP as a prepared dataset for `synthmed evaluate utility`
(docs/drive512.md, "Wider samples and filtered pairs").

Usage: python experiments/consistency_filter.py PIPELINE REAL_TRAIN OUT [N_GEN N_KEEP]
"""

import sys
from pathlib import Path

import numpy as np

from synthmed.data.sources import load_any
from synthmed.evaluation.utility import budget_recipe, predict, train_segmenter
from synthmed.generation import generate_dataset
from synthmed.pipeline import SynthMedPipeline

folder, real_train, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n_gen, n_keep = (int(a) for a in sys.argv[4:6]) if len(sys.argv) > 5 else (400, 200)
pool = out.with_name(out.name + "-pool")
if not pool.exists():
    generate_dataset(SynthMedPipeline.load(folder), n_gen, pool)
synth = load_any(pool, 512)
real = load_any(real_train, 512)
recipe = budget_recipe("cpu", 512)
model = train_segmenter([real], recipe, seed=100, desc="filter segmenter")
pred = predict(model, synth, roi=recipe.patch, overlap=recipe.overlap) > recipe.threshold
fov, truth = synth.fov.astype(bool), synth.masks.astype(bool)
inter = (pred & truth & fov).sum((1, 2))
dice = 2 * inter / ((pred & fov).sum((1, 2)) + (truth & fov).sum((1, 2)) + 1e-9)
order = np.argsort(-dice)
keep = sorted(order[:n_keep].tolist())
print(
    f"Dice of the {n_gen} pairs: median {np.median(dice):.3f}, range {dice.min():.3f}-"
    f"{dice.max():.3f}; kept >= {dice[order[n_keep - 1]]:.3f}; "
    f"{sum(k < 200 for k in keep)} of the kept are among the first 200"
)
np.save(out.with_name(out.name + "-dice.npy"), dice)
synth.subset(keep).save(out)
