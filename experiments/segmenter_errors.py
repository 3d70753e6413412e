"""Exploration (docs/drive512.md): where does a segmenter trained on synthetic pairs err on the
held-out photographs, compared with one trained on the real pairs? Trains both with the
evaluation's recipe (one seed), predicts the held-out images at working resolution and splits
the errors inside the field of view: false positives next to a true vessel (within 2 px: a
width disagreement) or away from any (spurious vessels); missed vessel pixels on thin vessels
(local width <= 2 px, from the distance transform of the true mask) or on wider ones.

Usage: python experiments/segmenter_errors.py SYNTHETIC_DIR [BUDGET]   (expects the
prepared DRIVE split of scripts/drive512.sh in work/drive512/data or
$DRIVE512_DATA)
"""

import os
import sys

import numpy as np
from scipy import ndimage

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.utility import budget_recipe, predict, train_segmenter

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

train = PreparedDataset.load(f"{DATA}/train")
test = PreparedDataset.load(f"{DATA}/holdout")
synthetic = load_any(sys.argv[1], train.resolution)
recipe = budget_recipe(sys.argv[2] if len(sys.argv) > 2 else "cpu", train.resolution)
truth, fov = test.masks.astype(bool), test.fov.astype(bool)
near = np.stack([ndimage.distance_transform_edt(~t) <= 2 for t in truth])
# Local vessel width: twice the distance to the background at the centreline, spread over
# the vessel by taking the largest value within 2 px.
width = np.stack(
    [ndimage.maximum_filter(2 * ndimage.distance_transform_edt(t), size=5) * t for t in truth]
)
for name, sets in {"real": [train], "synthetic": [synthetic]}.items():
    model = train_segmenter(sets, recipe, seed=0, device="cpu", progress=False)
    pred = predict(model, test, "cpu", recipe.patch, recipe.overlap) > 0.5
    fp, fn = pred & ~truth & fov, ~pred & truth & fov
    n_fov, n_vessel = fov.sum(), (truth & fov).sum()
    thin = truth & fov & (width <= 2)
    print(
        f"{name:>9}: FP next to a vessel {(fp & near).sum() / n_fov:.4f}, away "
        f"{(fp & ~near).sum() / n_fov:.4f} of FOV pixels; missed thin-vessel pixels "
        f"{(fn & thin).sum() / thin.sum():.3f} of {thin.sum() / n_vessel:.2f} of vessel pixels, "
        f"wider {(fn & ~thin).sum() / (truth & fov & ~thin).sum():.3f}",
        flush=True,
    )
