"""Probe: does the refiner (also trained on 256 px crops) draw other masks when run in windows?
(docs/drive512.md, "Rendering in windows"). Reads a scripts/drive512.sh folder:
$DRIVE512_WORK, default work/drive512-v11.

Usage: python experiments/refiner_windows.py
"""

import os

import numpy as np
import torch

from synthmed.data.sources import load_any
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics
from synthmed.models.refiner import coarse_masks, refiner_condition
from synthmed.models.tree_repair import TreeRepair
from synthmed.pipeline import SynthMedPipeline, render

V = os.environ.get("DRIVE512_WORK", "work/drive512-v11")
real = load_any(f"{V}/data/train", 512)
ref = vessel_statistics(real.masks, real.fov)
for tile in (0, 256):
    for repair in (None, TreeRepair()):
        pipe = SynthMedPipeline.from_folders(
            f"{V}/geometry", f"{V}/texture", f"{V}/refiner", repair, device="cpu", tile=0
        )

        def masks(z, pipe=pipe, tile=tile):
            g = pipe.geometry
            coarse = coarse_masks(g, z)
            side = pipe.refiner.cfg.resolution
            fov = (pipe.refiner.fov > 0.5).expand(len(z), 1, side, side)
            m = (
                render(pipe.refiner, refiner_condition(coarse, fov), None, tile) > pipe._edge
            ) & fov
            return pipe._repaired(m, fov), fov

        pipe.masks = masks
        ms, fs = [], []
        gen = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            for _b in range(0, 96, 16):
                z = torch.randn(16, g_dim := pipe.geometry.cfg.z_dim, generator=gen)
                m, f = pipe.masks(z)
                ms.append(m[:, 0].numpy())
                fs.append(f[:, 0].numpy())
        cmp = compare_vessel_statistics(
            ref, vessel_statistics(np.concatenate(ms), np.concatenate(fs))
        )
        print(
            "tile",
            tile,
            "repair",
            repair is not None,
            {k: f"{v['relative_difference_of_means']:+.0%}" for k, v in cmp.items()},
            flush=True,
        )
