"""Probe: the optic disc's lateralisation (models.vessel_geometry.disc_side_weights: |L - R| /
(L + R) of the thick vessels' weight in the left and right 40 % of the width) of mask sets,
at 512 px and, for the real sets and Stage I DCGANs, at the DCGAN's 128 px (distance maps
with a 12 px clip cut at 0; 200 samples of latents seeded 0). Prints the mean and the share
of masks below 0.2 (a net of vessels with no disc at a side) per set
(docs/drive512.md, "One layout mode").

Usage: python experiments/lateralisation.py --sets SET ... [--geometry RUN ...]
"""

import argparse

import numpy as np
import torch

from synthmed.data.sources import load_any
from synthmed.models.loading import load_generator
from synthmed.models.refiner import coarse_field
from synthmed.models.vessel_geometry import disc_side_weights


def lateralisation(masks: np.ndarray) -> np.ndarray:
    """Per binary mask (N, H, W), |L - R| / (L + R) (0 without vessels)."""
    out = []
    for m in masks.astype(bool):
        left, right = disc_side_weights(m)
        out.append(abs(left - right) / (left + right) if left + right else 0.0)
    return np.array(out)


def show(name: str, lat: np.ndarray) -> None:
    print(f"{name}: n={len(lat)} mean {lat.mean():.3f}, below 0.2 {np.mean(lat < 0.2):.0%}")


parser = argparse.ArgumentParser()
parser.add_argument("--sets", nargs="+", default=[])
parser.add_argument("--geometry", nargs="*", default=[])
args = parser.parse_args()
for path in args.sets:
    data = load_any(path, 512)
    show(f"{path} at 512", lateralisation(data.masks))
    if "synth" not in path:  # real sets: also as the DCGAN learns them
        masks = torch.from_numpy(data.masks)[:, None].float()
        coarse = coarse_field(masks, 128, "distance", 12.0)[:, 0].numpy()
        show(f"{path} at 128", lateralisation(coarse > 0))
for run in args.geometry:
    g = load_generator(run, "geometry")[0].eval()
    z = torch.randn(200, g.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        coarse = g.sample(z)[:, 0].numpy()
    show(f"{run} at 128", lateralisation((coarse > 0) & (g.fov[0, 0].numpy() > 0.5)))
