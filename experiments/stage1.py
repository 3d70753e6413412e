"""Exploration (docs/drive512.md): where do Stage I's fragments, wide vessels and low
diversity come from? Prints the vessel statistics (relative to the 15 training masks) and
nearest-neighbour Dice of 200 masks from a geometry run + refiner, of the refiner applied to
the real masks' coarse 128 px versions, and with small components removed.

Usage: python experiments/stage1.py GEOMETRY_RUN REFINER_RUN   (RAW=1: the refiner's last
iterate from its checkpoint instead of the exported weight average). Expects the prepared
DRIVE split of scripts/drive512.sh in work/drive512/data or $DRIVE512_DATA.
"""

import os
import sys

import numpy as np
import torch
from scipy import ndimage

from synthmed.data.prepared import PreparedDataset
from synthmed.evaluation.memorisation import dice_matrix, nearest_neighbours
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics
from synthmed.models.loading import load_generator
from synthmed.models.refiner import coarse_field, refiner_condition

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

torch.set_grad_enabled(False)
geo_dir = sys.argv[1] if len(sys.argv) > 1 else "work/drive512/geometry"
ref_dir = sys.argv[2] if len(sys.argv) > 2 else "work/drive512/refiner"
G, _ = load_generator(geo_dir, "geometry")
R, _ = load_generator(ref_dir, "refiner")
if os.environ.get("RAW"):
    from safetensors.torch import load_file

    t = load_file(ref_dir + "/checkpoint.safetensors")
    R.load_state_dict({k[len("module.G.") :]: v for k, v in t.items() if k.startswith("module.G.")})
    print("refiner: raw G weights, not the EMA")
G.eval()
R.eval()
data = PreparedDataset.load(f"{DATA}/train")
hold = PreparedDataset.load(f"{DATA}/holdout")
real = torch.from_numpy(data.masks)[:, None].float()
real_c = coarse_field(real, G.cfg.resolution, G.cfg.coarse_kind, G.cfg.coarse_clip)
fovc = G.fov > 0.5
z = torch.randn(200, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
coarse = torch.cat([G(z[i : i + 50])[:, -1:] for i in range(0, 200, 50)])
coarse = torch.where(fovc, coarse, -1.0)
# value distributions inside the FOV
rv = real_c[fovc.expand_as(real_c)].numpy()
gv = coarse[fovc.expand_as(coarse)].numpy()
q = [0.5, 0.8, 0.9, 0.95, 0.99]
print("real coarse quantiles", np.round(np.quantile(rv, q), 3), "mean", rv.mean())
print("gen  coarse quantiles", np.round(np.quantile(gv, q), 3), "mean", gv.mean())


# diversity of coarse masks
def soft(x):
    return ((x + 1) / 2).flatten(1)


dg = dice_matrix(soft(coarse), soft(coarse)).fill_diagonal_(0).max(1).values
dr = dice_matrix(soft(real_c), soft(real_c)).fill_diagonal_(0).max(1).values
print("coarse NN dice gen->gen median", dg.median().item(), "real->real", dr.median().item())
side = R.cfg.resolution
fov = (R.fov > 0.5).expand(len(z), 1, side, side)


def refine(c):
    return torch.cat(
        [
            (R(refiner_condition(c[i : i + 10], fov[i : i + 10])) > 0) & fov[i : i + 10]
            for i in range(0, len(c), 10)
        ]
    )


def report(name, masks):
    m = masks[:, 0].numpy()
    f = fov[: len(m), 0].numpy()
    st = compare_vessel_statistics(
        vessel_statistics(data.masks.astype(bool), data.fov.astype(bool)), vessel_statistics(m, f)
    )
    print(name, {k: round(v["relative_difference_of_means"], 3) for k, v in st.items()})
    nn = nearest_neighbours((m, f), (data.masks.astype(bool), data.fov.astype(bool)))
    print(
        "   NN gen->gen",
        round(nn["generated_to_generated"]["median"], 3),
        "gen->train",
        round(nn["generated_to_train"]["median"], 3),
    )
    return m


m = report("as is", refine(coarse))
# refiner on the real coarse masks (its own ceiling)
fov15 = fov[:15]
rr = (R(refiner_condition(torch.where(fovc, real_c, -1.0), fov15)) > 0) & fov15
report("refiner on real coarse", rr)
for k in (16, 64):
    lab = [ndimage.label(mm, np.ones((3, 3)))[0] for mm in m]
    cleaned = np.stack([np.isin(lb, np.nonzero(np.bincount(lb.ravel()) >= k)[0][1:]) for lb in lab])
    report(f"as is, components >= {k} px", torch.from_numpy(cleaned)[:, None])
