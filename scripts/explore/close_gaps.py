"""Exploration (docs/drive512.md): are Stage I's pieces short gaps in vessels that a
morphological closing would mend? Prints the vessel statistics of the first N masks of a
synthetic set (relative to a real set) after closing with a disk of each radius.

Usage: python scripts/explore/close_gaps.py SYNTH_DIR REAL_DIR [N]
(e.g. work/exp/synth-adapt5 work/drive512-v5/data/train 40)
"""

import sys

import numpy as np
from skimage.morphology import closing, disk

from synthmed.data.sources import load_any
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics

synth_dir, real_dir = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
real = load_any(real_dir, 512)
synth = load_any(synth_dir, real.resolution)
real_stats = vessel_statistics(real.masks, real.fov)
for radius in (0, 1, 2, 3):
    masks = synth.masks[:n].astype(bool)
    if radius:
        masks = np.stack([closing(m, disk(radius)) for m in masks])
    rows = compare_vessel_statistics(real_stats, vessel_statistics(masks, synth.fov[:n]))
    print(
        f"closing radius {radius}:",
        "  ".join(f"{k} {v['relative_difference_of_means']:+.0%}" for k, v in rows.items()),
        flush=True,
    )
