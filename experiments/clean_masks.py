"""Exploration (docs/drive512.md): would cleaning generated masks afterwards bring Stage I's
statistics nearer the real ones? Prints the vessel statistics of the first N masks of a
synthetic set (relative to a real set) after dropping the connected components smaller than
each threshold, and after a morphological closing with a disk of each radius (are the pieces
short gaps in vessels?).

Usage: python experiments/clean_masks.py SYNTH_DIR REAL_DIR [N]
(e.g. work/exp/synth-adapt5 work/drive512-v5/data/train 50)
"""

import sys

import numpy as np
from scipy import ndimage
from skimage.morphology import closing, disk

from synthmed.data.sources import load_any
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics

synth_dir, real_dir = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
real = load_any(real_dir, 512)
synth = load_any(synth_dir, real.resolution)
real_stats = vessel_statistics(real.masks, real.fov)
eight = np.ones((3, 3), bool)


def report(label: str, masks: np.ndarray) -> None:
    rows = compare_vessel_statistics(real_stats, vessel_statistics(masks, synth.fov[:n]))
    changes = "  ".join(f"{k} {v['relative_difference_of_means']:+.0%}" for k, v in rows.items())
    print(f"{label}: {changes}", flush=True)


for min_px in (0, 10, 25, 50, 100):
    masks = synth.masks[:n].copy()
    for m in masks:
        labels, count = ndimage.label(m, structure=eight)
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
        m[np.isin(labels, np.flatnonzero(sizes < min_px) + 1)] = 0
    report(f"under {min_px:>3} px dropped", masks)
for radius in (1, 2, 3):
    report(
        f"closing radius {radius}",
        np.stack([closing(m, disk(radius)) for m in synth.masks[:n].astype(bool)]),
    )
