"""Exploration (docs/drive512.md, "Mending the masks"): where the extra end and branch points
of Stage I's masks come from. For the real training masks and N masks of a geometry run +
refiner (as drawn, edge 0), per mask: end and branch points, end points within 6 px of a
junction (spurs), and background holes under 10 px (pinholes, each a loop).

Usage: python experiments/mask_flaws.py GEOMETRY_RUN REFINER_RUN [N]   (DRIVE512_DATA as
for stage1.py)
"""

import os
import sys

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

from synthmed.data.prepared import PreparedDataset
from synthmed.models.loading import load_generator
from synthmed.models.refiner import coarse_masks, refiner_condition

DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")
torch.set_grad_enabled(False)
G, _ = load_generator(sys.argv[1], "geometry")
R, _ = load_generator(sys.argv[2], "refiner")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 30
G.eval()
R.eval()
z = torch.randn(n, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
fov = (R.fov > 0.5).expand(n, 1, R.cfg.resolution, R.cfg.resolution)
drawn = ((R(refiner_condition(coarse_masks(G, z), fov)) > 0) & fov)[:, 0].numpy()
real = PreparedDataset.load(f"{DATA}/train").masks.astype(bool)
ring = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8)


def flaws(masks: np.ndarray, label: str) -> None:
    rows = []
    for m in masks:
        sk = skeletonize(m)
        nb = np.where(sk, ndimage.convolve(sk.astype(np.uint8), ring, mode="constant"), 0)
        junctions, count = ndimage.label(nb >= 3, np.ones((3, 3)))
        centres = ndimage.center_of_mass(junctions > 0, junctions, range(1, count + 1))
        ends = np.argwhere(nb == 1)
        near = cKDTree(np.array(centres)).query(ends)[0] <= 6 if count else np.zeros(len(ends))
        holes, _ = ndimage.label(~m)
        sizes = np.bincount(holes.ravel())[1:]
        rows.append([count, len(ends), near.sum(), (sizes < 10).sum()])
    mean = np.mean(rows, 0)
    print(
        f"{label}: per mask {mean[0]:.0f} branch points, {mean[1]:.0f} end points, "
        f"{mean[2]:.0f} end points within 6 px of a junction, {mean[3]:.0f} holes under 10 px"
    )


flaws(real, "real (15)")
flaws(drawn, f"as drawn ({n})")
