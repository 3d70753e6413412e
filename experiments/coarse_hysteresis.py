"""Exploration (docs/drive512.md): would hysteresis on the DCGAN's coarse masks remove the
pieces the refiner draws from its faint lattice while keeping faint vessels that join a
strong one? Keeps coarse values above LOW only where they connect to values above HIGH
(skimage's apply_hysteresis_threshold, soft units 0..1), zeroes the rest, refines, and
prints the vessel statistics of N generated masks relative to the real training masks.

Usage: python experiments/coarse_hysteresis.py GEOMETRY_RUN REFINER_RUN REAL_TRAIN [N]
(e.g. work/drive512-v5/geometry work/drive512-v5/refiner work/drive512-v5/data/train 40)
"""

import sys

import numpy as np
import torch
from skimage.filters import apply_hysteresis_threshold

from synthmed.data.prepared import PreparedDataset
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics
from synthmed.models.loading import load_generator
from synthmed.models.refiner import coarse_masks, refiner_condition

torch.set_grad_enabled(False)
G, _ = load_generator(sys.argv[1], "geometry")
R, _ = load_generator(sys.argv[2], "refiner")
data = PreparedDataset.load(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 40
G.eval()
R.eval()
real_stats = vessel_statistics(data.masks.astype(bool), data.fov.astype(bool))
side = R.cfg.resolution
z = torch.randn(n, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
coarse = torch.cat([coarse_masks(G, z[i : i + 20]) for i in range(0, n, 20)])
soft = ((coarse + 1) / 2).numpy()
fov = (R.fov > 0.5).expand(n, 1, side, side)
for low, high in ((None, None), (0.05, 0.3), (0.05, 0.5), (0.1, 0.3), (0.1, 0.5), (0.15, 0.5)):
    cut = coarse
    if low is not None:
        keep = np.stack([apply_hysteresis_threshold(s[0], low, high) for s in soft])[:, None]
        cut = torch.where(torch.from_numpy(keep), coarse, -1.0)
    masks = torch.cat(
        [R(refiner_condition(cut[i : i + 10], fov[i : i + 10])) > 0 for i in range(0, n, 10)]
    )
    masks = (masks & fov)[:, 0].numpy()
    rows = compare_vessel_statistics(real_stats, vessel_statistics(masks, fov[:, 0].numpy()))
    print(
        "as generated:" if low is None else f"hysteresis {low} / {high}:",
        "  ".join(f"{k} {v['relative_difference_of_means']:+.0%}" for k, v in rows.items()),
        flush=True,
    )
