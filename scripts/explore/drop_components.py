"""Exploration (docs/drive512.md): would dropping small connected components from generated
masks bring Stage I's statistics nearer the real ones? Prints the vessel statistics of the
first N masks of a synthetic set (relative to a real set) after removing the components
smaller than each threshold.

Usage: python scripts/explore/drop_components.py SYNTH_DIR REAL_DIR [N]
(e.g. work/exp/synth-adapt5 work/drive512-v5/data/train 50)
"""

import sys

import numpy as np
from scipy import ndimage

from synthmed.data.sources import load_any
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics

synth_dir, real_dir = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
real = load_any(real_dir, 512)
synth = load_any(synth_dir, real.resolution)
real_stats = vessel_statistics(real.masks, real.fov)
eight = np.ones((3, 3), bool)
for min_px in (0, 10, 25, 50, 100):
    masks = synth.masks[:n].copy()
    for m in masks:
        labels, count = ndimage.label(m, structure=eight)
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
        m[np.isin(labels, np.flatnonzero(sizes < min_px) + 1)] = 0
    rows = compare_vessel_statistics(real_stats, vessel_statistics(masks, synth.fov[:n]))
    print(
        f"under {min_px:>3} px dropped:",
        "  ".join(f"{k} {v['relative_difference_of_means']:+.0%}" for k, v in rows.items()),
        flush=True,
    )
