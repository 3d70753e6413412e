"""Exploration (docs/drive512.md, "Mending Stage I's masks"): the vessel statistics of 200
masks of a geometry run + refiner (relative to the 15 training masks; the 5 held-out masks as
a reference), as the refiner draws them and after synthmed.models.tree_repair, with
nearest-neighbour Dice; and each step of the repair alone.

Usage: python experiments/tree_repair.py GEOMETRY_RUN REFINER_RUN [N]. Expects the prepared
DRIVE split of scripts/drive512.sh in work/drive512/data or $DRIVE512_DATA.
"""

import os
import sys
from dataclasses import replace

import numpy as np
import torch

from synthmed.data.prepared import PreparedDataset
from synthmed.evaluation.memorisation import nearest_neighbours
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics
from synthmed.models.loading import load_generator
from synthmed.models.refiner import coarse_masks, refiner_condition
from synthmed.models.tree_repair import TreeRepair, repair_trees

DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")
torch.set_grad_enabled(False)
G, _ = load_generator(sys.argv[1], "geometry")
R, _ = load_generator(sys.argv[2], "refiner")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
G.eval()
R.eval()
train = PreparedDataset.load(f"{DATA}/train")
hold = PreparedDataset.load(f"{DATA}/holdout")
real = (train.masks.astype(bool), train.fov.astype(bool))
real_stats = vessel_statistics(*real)
z = torch.randn(n, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
side = R.cfg.resolution
fov = (R.fov > 0.5).expand(10, 1, side, side)
chunks = [z[i : i + 10] for i in range(0, n, 10)]
raw = torch.cat([R(refiner_condition(coarse_masks(G, c), fov[: len(c)])) for c in chunks])
raw = raw[:, 0].numpy()
fovs = np.broadcast_to(fov[0, 0].numpy(), raw.shape)


def report(name: str, masks: np.ndarray, f: np.ndarray = fovs, nn: bool = False) -> None:
    rows = compare_vessel_statistics(real_stats, vessel_statistics(masks, f))
    line = "  ".join(f"{k} {v['relative_difference_of_means']:+.0%}" for k, v in rows.items())
    if nn:
        d = nearest_neighbours((masks, f), real)
        gg, gt = d["generated_to_generated"]["median"], d["generated_to_train"]["median"]
        line += f"  NN Dice gen->gen {gg:.2f} gen->train {gt:.2f}"
    print(f"{name:28s} {line}", flush=True)


report("held-out real", hold.masks.astype(bool), hold.fov.astype(bool))
report("as drawn (edge 0)", (raw > 0) & fovs, nn=True)
full = TreeRepair()
report("repaired (defaults)", repair_trees(raw > full.edge, fovs, full), nn=True)
# Each step alone (the others off), at the default edge.
off = replace(full, dot_px=0, hole_px=0, spur_px=0, gap_px=0, speck_px=0)
for step in ("dot_px", "hole_px", "spur_px", "gap_px", "speck_px"):
    only = replace(off, **{step: getattr(full, step)})
    report(f"only {step}", repair_trees(raw > full.edge, fovs, only))
report("repaired at edge 0", repair_trees(raw > 0, fovs, replace(full, edge=0.0)))
