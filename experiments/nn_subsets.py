"""Exploration (docs/drive512.md): is the generated masks' high nearest-neighbour Dice
among themselves only because each has 199 candidates where a real mask has 14? Compares
random subsets of equal size.

Usage: python experiments/nn_subsets.py SYNTHETIC_DIR   (a `synthmed generate` folder)
"""

import os
import sys

import numpy as np
import torch

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.memorisation import _soft, dice_matrix

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

torch.set_num_threads(1)
synth = load_any(sys.argv[1], 512)
real = PreparedDataset.load(f"{DATA}/train")
hold = PreparedDataset.load(f"{DATA}/holdout")
g = _soft(synth.masks.astype(bool), synth.fov.astype(bool))
r = _soft(
    np.concatenate([real.masks, hold.masks]).astype(bool),
    np.concatenate([real.fov, hold.fov]).astype(bool),
)


def nn_median(x):
    return dice_matrix(x, x).fill_diagonal_(0).max(1).values.median().item()


rng = np.random.default_rng(0)
for k in (5, 15, 20):
    gs = [nn_median(g[rng.choice(len(g), k, replace=False)]) for _ in range(50)]
    print(f"subsets of {k}: generated {np.mean(gs):.3f}", end="")
    if k <= len(r):
        rs = [nn_median(r[rng.choice(len(r), k, replace=False)]) for _ in range(50)]
        print(f"  real (train+held-out) {np.mean(rs):.3f}")
    else:
        print()
