"""Exploration (docs/drive512.md): does Stage II draw each vessel at its mask's width and with
a photograph's contrast? A segmenter trained on the real training pairs (the evaluation's
recipe, one seed) reads Stage II's images of the real training masks and the photographs of the
same masks; compares what it sees (F1 against the mask, vessel fraction, mean width, recall of
thin vessels) on both. Note the segmenter was trained on these photographs, so it reads them
better than unseen ones: the comparison is between the two columns, not with held-out scores.

Usage: python experiments/rendered_widths.py TRANSLATED_DIR   (`synthmed generate --texture
RUN --masks work/drive512/data/train --out TRANSLATED_DIR`; expects the prepared DRIVE split of
scripts/drive512.sh in work/drive512/data or
$DRIVE512_DATA)
"""

import os
import sys

import numpy as np
from scipy import ndimage

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.utility import budget_recipe, predict, train_segmenter
from synthmed.evaluation.vessels import vessel_statistics

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

train = PreparedDataset.load(f"{DATA}/train")
rendered = load_any(sys.argv[1], train.resolution)
assert np.array_equal(rendered.masks.astype(bool), train.masks.astype(bool)), "not the same masks"
recipe = budget_recipe("cpu", train.resolution)
model = train_segmenter([train], recipe, seed=0, device="cpu", progress=False)
truth, fov = train.masks.astype(bool), train.fov.astype(bool)
width = np.stack(
    [ndimage.maximum_filter(2 * ndimage.distance_transform_edt(t), size=5) * t for t in truth]
)
thin = truth & fov & (width <= 2)
truth_stats = vessel_statistics(truth, fov)
print(f"{'masks':>12}: fraction {truth_stats['vessel_fraction'].mean():.4f}, "
      f"mean width {truth_stats['mean_width'].mean():.2f}")  # fmt: skip
for name, data in {"photographs": train, "Stage II": rendered}.items():
    pred = (predict(model, data, "cpu", recipe.patch, recipe.overlap) > 0.5) & fov
    tp = (pred & truth).sum()
    f1 = 2 * tp / (pred.sum() + (truth & fov).sum())
    st = vessel_statistics(pred, fov)
    print(
        f"{name:>12}: F1 {f1:.3f}, fraction {st['vessel_fraction'].mean():.4f}, mean width "
        f"{st['mean_width'].mean():.2f}, thin-vessel recall {(pred & thin).sum() / thin.sum():.3f}",
        flush=True,
    )
