"""Exploration (docs/drive512.md): does drawing Stage II's style codes from the
Gaussian fitted to the training images' codes (what training now exports), rather than from
N(0, 1), bring the synthetic intensity histograms closer to the photographs'? Renders 100
masks of work/drive512/synth-style-9k with work/drive512/texture-style-9k both ways and prints
the KL per channel.

Usage: python experiments/prior.py   (after scripts/drive512.sh, the 9k Stage II run and
`synthmed train texture --resume` on it, which exports the fit)
"""

import os

import torch

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.fidelity import intensity_kl
from synthmed.pipeline import TextureModel

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

N = 100
real = PreparedDataset.load(f"{DATA}/train")
masks = load_any("work/drive512/synth-style-9k", 512).subset(list(range(N)))
model = TextureModel.load("work/drive512/texture-style-9k", device="cpu")
g = model.texture


def kl_of_renderings() -> dict:
    images = model.translate(masks.masks, masks.fov)
    rendered = PreparedDataset(images, masks.masks, masks.fov, masks.names, masks.meta)
    return intensity_kl(real, rendered)


fitted = kl_of_renderings()
g.style_mean.zero_()  # the prior BicycleGAN samples from
g.style_scale.copy_(torch.eye(len(g.style_mean)))
standard = kl_of_renderings()
for name, kl in (("N(0, 1)", standard), ("fitted Gaussian", fitted)):
    print(f"{name}: intensity KL {kl['mean']:.3f} per channel {kl['per_channel']}")
