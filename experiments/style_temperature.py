"""Probe: do wider samples make the synthetic pairs more useful beside the real ones?
Generates N pairs from a saved pipeline with Stage II's style prior spread times T_STYLE and
Stage I's latents times T_Z (1 1 = as trained); evaluate them with `synthmed evaluate
utility` (docs/drive512.md, "Wider samples").

Usage: python experiments/style_temperature.py PIPELINE T_STYLE T_Z OUT [N]  (N = 200)
"""

import sys

import torch

from synthmed.generation import generate_dataset
from synthmed.pipeline import SynthMedPipeline

folder, t_style, t_z, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 200
pipe = SynthMedPipeline.load(folder)
with torch.no_grad():
    pipe.texture.style_scale.mul_(t_style)
stage_one = pipe.masks
pipe.masks = lambda z: stage_one(z * t_z)  # sample() draws z ~ N(0, 1), then Stage I
generate_dataset(pipe, n, out)
print(f"{n} pairs (style x {t_style}, z x {t_z}) written to {out}")
