"""Exploration (README, "DRIVE at 512 px"): does drawing Stage II's style codes from a Gaussian
fitted to the training images' codes, rather than N(0, 1), bring the synthetic intensity
histograms closer to the photographs'? Renders 100 masks of work/drive512/synth-style-9k with
the Stage II run work/drive512/texture-style-9k both ways and prints the KL per channel.

Usage: python scripts/explore/prior.py   (after scripts/drive512.sh and the 9k run there)
"""

import json

import torch
from safetensors.torch import load_file

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.fidelity import _kl_between
from synthmed.models.pix2pix import StyleEncoder, TextureConfig
from synthmed.pipeline import TextureModel

torch.set_grad_enabled(False)
run = "work/drive512/texture-style-9k"
cfg = TextureConfig(**json.load(open(run + "/options.json"))["model"])
E = StyleEncoder(cfg)
t = load_file(run + "/checkpoint.safetensors")
E.load_state_dict({k[len("module.E.") :]: v for k, v in t.items() if k.startswith("module.E.")})
E.eval()
d = PreparedDataset.load("work/drive512/data/train")
x = torch.from_numpy(d.images).permute(0, 3, 1, 2).float() / 127.5 - 1
crops = [x[..., a : a + 256, b : b + 256] for a in (0, 128, 256) for b in (0, 128, 256)]
mus, var = [], []
for c in crops + [x.flip(-1)[..., a : a + 256, b : b + 256] for a in (0, 256) for b in (0, 256)]:
    mu, lv = E(c)
    mus.append(mu)
    var.append(lv.exp())
mu = torch.cat(mus)
mean = mu.mean(0)
cov = torch.cov(mu.T) + torch.diag(torch.cat(var).mean(0))
chol = torch.linalg.cholesky(cov)
print("mean", mean.numpy().round(2))
print("std", cov.diag().sqrt().numpy().round(2))
synth = load_any("work/drive512/synth-style-9k", 512)
tm = TextureModel.from_folder(run, "cpu")
real = d


def kl(imgs):
    return _kl_between(real.images, real.fov, imgs, synth.fov[: len(imgs)], 64, 1e-6)


n = 100
tm.texture.style_mean.zero_()  # the exported generator now carries the fit: undo it here
tm.texture.style_scale.copy_(torch.eye(len(tm.texture.style_mean)))
base = tm.translate(synth.masks[:n], synth.fov[:n])
print("N(0,1) prior KL", kl(base).round(3), kl(base).mean().round(3))
g = tm.texture
g.random_style = lambda k, device: (mean + torch.randn(k, len(mean)) @ chol.T).to(device)
fitted = tm.translate(synth.masks[:n], synth.fov[:n])
print("fitted prior KL", kl(fitted).round(3), kl(fitted).mean().round(3))
g.random_style = lambda k, device: (mean + 0 * torch.randn(k, len(mean))).to(device)
m0 = tm.translate(synth.masks[:n], synth.fov[:n])
print("posterior mean only KL", kl(m0).round(3), kl(m0).mean().round(3))
