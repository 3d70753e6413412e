"""Exploration (docs/drive512.md): are Stage I's fragments the refiner's reading of the faint
lattice the DCGAN leaves between vessels? Zeroes coarse-mask values below a floor (soft units:
0 = background, 1 = all vessel; a 1 px vessel crossing a 4 x 4 block of the 512 px mask gives
0.25) before the refiner, and prints the vessel statistics relative to the 15 training masks
for N generated masks and for the real masks' coarse versions.

Usage: python experiments/coarse_floor.py GEOMETRY_RUN REFINER_RUN [N]   (expects the
prepared DRIVE split of scripts/drive512.sh in work/drive512/data or
$DRIVE512_DATA)
"""

import os
import sys

import torch

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
real_c = downsample(torch.from_numpy(data.masks)[:, None].float(), 128) * 2 - 1
real_c = torch.where(fovc, real_c, -1.0)
for name, c in (("generated", coarse), ("real coarse", real_c)):
    soft = ((c + 1) / 2)[fovc.expand_as(c)]
    print(name, "share of FOV pixels with soft value in (0.02, 0.25):",
          round(((soft > 0.02) & (soft < 0.25)).float().mean().item(), 4))  # fmt: skip
for name, c in (("generated", coarse), ("real coarse", real_c)):
    for floor in (0.0, 0.1, 0.2, 0.3):
        cut = torch.where((c + 1) / 2 < floor, -1.0, c)
        fov = (R.fov > 0.5).expand(len(c), 1, side, side)
        m = torch.cat(
            [
                R(refiner_condition(cut[i : i + 10], fov[i : i + 10])) > 0
                for i in range(0, len(c), 10)
            ]
        )
        m = (m & fov)[:, 0].numpy()
        st = compare_vessel_statistics(real_stats, vessel_statistics(m, fov[:, 0].numpy()))
        rel = {k: round(v["relative_difference_of_means"], 3) for k, v in st.items()}
        print(f"{name:12s} floor {floor:.1f}", rel, flush=True)
