"""Exploration (docs/drive512.md): does hysteresis thresholding of the refiner's output (keep a
weak vessel pixel only where it connects to a strong one, as in Canny edge detection) remove
Stage I's isolated fragments without cutting the tree? Prints the vessel statistics (relative
to the 15 training masks) of N generated masks and of the refiner applied to the real masks'
soft 128 px versions, for the plain threshold at 0 and for several (low, high) pairs.

Usage: python experiments/hysteresis.py GEOMETRY_RUN REFINER_RUN [N]   (expects the
prepared DRIVE split of scripts/drive512.sh in work/drive512/data or
$DRIVE512_DATA)
"""

import os
import sys

import numpy as np
import torch
from skimage.filters import apply_hysteresis_threshold

from synthmed.data.prepared import PreparedDataset
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics
from synthmed.models.loading import load_generator
from synthmed.models.refiner import downsample, refiner_condition

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

torch.set_grad_enabled(False)
G, _ = load_generator(sys.argv[1], "geometry")
R, _ = load_generator(sys.argv[2], "refiner")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 60
G.eval()
R.eval()
data = PreparedDataset.load(f"{DATA}/train")
real_stats = vessel_statistics(data.masks.astype(bool), data.fov.astype(bool))
fovc = G.fov > 0.5
side = R.cfg.resolution
z = torch.randn(n, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
coarse = torch.where(fovc, torch.cat([G(z[i : i + 20])[:, -1:] for i in range(0, n, 20)]), -1.0)
real_c = torch.where(
    fovc, downsample(torch.from_numpy(data.masks)[:, None].float(), 128) * 2 - 1, -1.0
)


def refine(c: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The refiner's continuous output (tanh, N x R x R) and the field of view."""
    fov = (R.fov > 0.5).expand(len(c), 1, side, side)
    out = torch.cat(
        [R(refiner_condition(c[i : i + 10], fov[i : i + 10])) for i in range(0, len(c), 10)]
    )
    return out[:, 0].numpy(), fov[:, 0].numpy()


for name, c in (("generated", coarse), ("refiner on real coarse", real_c)):
    out, fov = refine(c)
    for low, high in ((0.0, 0.0), (-0.5, 0.0), (-0.5, 0.5), (-0.3, 0.3), (-0.7, 0.5), (0.0, 0.7)):
        if low == high:
            m = (out > low) & fov
        else:
            m = np.stack([apply_hysteresis_threshold(o, low, high) for o in out]) & fov
        st = compare_vessel_statistics(real_stats, vessel_statistics(m, fov))
        rel = {k: round(v["relative_difference_of_means"], 3) for k, v in st.items()}
        print(f"{name:24s} low {low:+.1f} high {high:+.1f}", rel, flush=True)
