"""Exploration (docs/drive512.md): how much does the segmenter gain from more *real* training
images? If going from 10 to 15 real images adds little, synthetic pairs (at best as good as
more real images) cannot add +0.01 either. Trains the evaluation's segmenter (same recipe and
budget as `evaluate utility`) on the first K of the 15 training images for each K, tests on the
5 held-out images at native size, prints mean ± std of F1 over the seeds.

Usage: python scripts/explore/learning_curve.py [K ...]   (default 5 10 15; SEEDS=2, BUDGET=cpu;
expects the prepared DRIVE split of scripts/drive512.sh in work/drive512/data)
"""

import json
import os
import sys

from synthmed.data.prepared import PreparedDataset
from synthmed.evaluation.utility import budget_recipe, evaluate_arm

train = PreparedDataset.load("work/drive512/data/train")
test = PreparedDataset.load("work/drive512/data/holdout")
recipe = budget_recipe(os.environ.get("BUDGET", "cpu"), train.resolution)
seeds = range(int(os.environ.get("SEEDS", "2")))
for k in map(int, sys.argv[1:] or ["5", "10", "15"]):
    first_k = train.subset(list(range(k)))
    r = evaluate_arm([first_k], test, recipe, seeds, progress=False, name=f"{k} real")
    f1 = [round(s["f1"], 4) for s in r["per_seed"]]
    print(json.dumps({"real_images": k, "f1_mean": round(r["mean"]["f1"], 4),
                      "f1_std": round(r["std"]["f1"], 4), "per_seed": f1}), flush=True)  # fmt: skip
