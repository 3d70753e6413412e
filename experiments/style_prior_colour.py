"""Probe: where do the pale v11 renderings come from? Codes of the training images, and
renderings of the same masks under different style priors (KL + per-image colour).
(docs/drive512.md, "Rendering in windows"). Reads a scripts/drive512.sh folder:
$DRIVE512_WORK, default work/drive512-v11.

Usage: python experiments/style_prior_colour.py [N_MASKS]  (60)
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open

from synthmed.data.sources import load_any
from synthmed.models.pix2pix import StyleEncoder, TextureConfig
from synthmed.pipeline import TextureModel

V = os.environ.get("DRIVE512_WORK", "work/drive512-v11")
real = load_any(f"{V}/data/train", 512)
synth = load_any(f"{V}/synth-dual", 512)
opts = json.load(open(f"{V}/texture/options.json"))
cfg = TextureConfig(**opts["model"])
E = StyleEncoder(cfg)
f = safe_open(f"{V}/texture/checkpoint.safetensors", "pt")
E.load_state_dict(
    {k[len("module.E.") :]: f.get_tensor(k) for k in f.keys() if k.startswith("module.E.")}
)
E.eval()
side = opts["train"]["crop"]
starts = sorted({0, (512 - side) // 2, 512 - side})
codes, var = [], []
with torch.no_grad():
    for i in range(len(real)):
        im = torch.from_numpy(real.images[i : i + 1]).permute(0, 3, 1, 2).float() / 127.5 - 1
        im = torch.cat([im, im.flip(-1)])
        cs = []
        for y in starts:
            for x in starts:
                mu, lv = E(im[..., y : y + side, x : x + side])
                cs.append(mu)
                var.append(lv.exp())
        codes.append(torch.stack(cs))  # (9, 2, 8)
codes = torch.stack(codes)  # (15, 9, 2, 8)
flat = codes.reshape(len(real), -1, 8)
img_mean = flat.mean(1)
print("total var per dim", flat.reshape(-1, 8).var(0).numpy().round(3))
print("between-image var", img_mean.var(0).numpy().round(3))
print("within-image var", flat.var(1).mean(0).numpy().round(3))
print("posterior var mean", torch.cat(var).mean(0).numpy().round(3))

model = TextureModel.load(f"{V}/texture", device="cpu")
G = model.texture
n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
masks, fov = synth.masks[:n], synth.fov[:n]


def fov_mean_colour(imgs, fv):
    return np.stack([imgs[i][fv[i] > 0].mean(0) for i in range(len(imgs))])


rc = fov_mean_colour(real.images, real.fov)
print("real per-image mean RGB: mean", rc.mean(0).round(1), "std", rc.std(0).round(1))
m0, s0 = G.style_mean.clone(), G.style_scale.clone()
variants = {
    "fitted (v11)": (m0, s0),
    "fitted x0.7": (m0, 0.7 * s0),
    "image means": None,
}
cov = torch.cov(img_mean.T) + torch.diag(torch.cat(var).mean(0))
variants["image means"] = (img_mean.mean(0), torch.linalg.cholesky(cov + 1e-6 * torch.eye(8)))
cov2 = torch.cov(img_mean.T) + 1e-6 * torch.eye(8)
variants["image means, no posterior var"] = (img_mean.mean(0), torch.linalg.cholesky(cov2))
for name, (m, s) in variants.items():
    G.style_mean.copy_(m)
    G.style_scale.copy_(s)
    imgs = model.translate(masks, fov, seed=0)
    sc = fov_mean_colour(imgs, fov)
    from synthmed.evaluation.fidelity import _smoothed_kl, intensity_histograms

    hr = intensity_histograms(real.images, real.fov)
    hs = intensity_histograms(imgs, fov)
    kl = _smoothed_kl(hr, hs, 1e-6)
    print(
        f"{name:32s} KL {np.mean(kl):.3f} per-ch {np.round(kl, 3)}",
        f"| mean RGB {sc.mean(0).round(1)} std {sc.std(0).round(1)}",
        flush=True,
    )
    np.save(f"/tmp/style_{name.split()[0]}_{len(name)}.npy", imgs[:12])
