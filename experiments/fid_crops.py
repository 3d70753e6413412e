"""Probe: a domain encoder trained on native-resolution crops, features per FOV tile.
(docs/drive512.md, "Rendering in windows"). Reads a scripts/drive512.sh folder:
$DRIVE512_WORK, default work/drive512-v11.

Usage: python experiments/fid_crops.py CROP STEPS SEED  (128 300 0)
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

from synthmed.data.sources import load_any
from synthmed.evaluation import features as fe

V = os.environ.get("DRIVE512_WORK", "work/drive512-v11")
real = load_any(f"{V}/data/train", 512)
hold = load_any(f"{V}/data/holdout", 512)
sets = {n: load_any(f"{V}/synth-{n}", 512).resized(512).images for n in ("dual", "single", "plain")}


def blur(imgs, k):
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    x = F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


extra = {
    "holdout": hold.images,
    "blur3-hold": blur(hold.images, 3),
    "blur5-hold": blur(hold.images, 5),
    "blur9-hold": blur(hold.images, 9),
    "blur9-train": blur(real.images, 9),
}
P = int(sys.argv[1])
steps = int(sys.argv[2])
seed = int(sys.argv[3])
R = 512
torch.manual_seed(seed)
model = fe.DomainEncoder(3, P)
model._scales = lambda images, m=model: _scales(m, images)


def _scales(m, images):
    x = images.float() / 127.5 - 1.0
    maps = []
    for block in m.blocks:
        x = block(x)
        maps.append(x)
    return maps


imgs = torch.from_numpy(real.images).permute(0, 3, 1, 2).contiguous()
masks = torch.from_numpy(real.masks).float()[:, None]
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
gen = torch.Generator().manual_seed(seed)
for _s in range(steps):
    idx = torch.randint(len(imgs), (16,), generator=gen)
    ys = torch.randint(R - P + 1, (16,), generator=gen)
    xs = torch.randint(R - P + 1, (16,), generator=gen)
    spots = list(zip(idx, ys, xs, strict=True))
    x = torch.stack([imgs[i, :, y : y + P, xx : xx + P] for i, y, xx in spots])
    t = torch.stack([masks[i, :, y : y + P, xx : xx + P] for i, y, xx in spots])
    if torch.rand((), generator=gen) < 0.5:
        x, t = x.flip(-1), t.flip(-1)
    maps = model._scales(x)
    logits = torch.stack(
        [
            F.interpolate(h(m), size=(P, P), mode="bilinear")
            for h, m in zip(model.heads, maps, strict=True)
        ]
    ).sum(0)
    loss = F.binary_cross_entropy_with_logits(logits, t)
    opt.zero_grad()
    loss.backward()
    opt.step()
print("final loss", loss.item(), flush=True)
model.eval()
n = R // P
cover = torch.from_numpy(real.fov).float().mean(0)
tiles = [
    (i * P, j * P)
    for i in range(n)
    for j in range(n)
    if cover[i * P : (i + 1) * P, j * P : (j + 1) * P].mean() >= 0.5
]
print(len(tiles), "tiles", flush=True)


@torch.no_grad()
def feats(images, mode):
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    out = []
    for i in range(0, len(x), 8):
        crops = torch.cat([x[i : i + 8, :, y : y + P, xx : xx + P] for y, xx in tiles])
        maps = model._scales(crops)
        f = (
            [maps[-1].mean((2, 3))]
            if mode == "mean"
            else [m.std((2, 3)) for m in maps] + [maps[-1].mean((2, 3))]
        )
        out.append(torch.cat(f, 1))
    return torch.cat(out).double()


for mode in ("mean", "meanstd"):
    fr = feats(real.images, mode)
    mu, sd = fr.mean(0), fr.std(0).clamp_min(1e-8)
    row = {}
    for nme, im in {**extra, **sets}.items():
        a, b = (fr - mu) / sd, (feats(im, mode) - mu) / sd
        ma, mb = a.mean(0), b.mean(0)
        ca, cb = torch.cov(a.T), torch.cov(b.T)
        ev = torch.linalg.eigvals(ca @ cb).real.clamp_min(0).sqrt().sum()
        f = ((ma - mb) ** 2).sum() + ca.trace() + cb.trace() - 2 * ev
        d = a.shape[1]

        def k(x, y, d=d):
            return (x @ y.T / d + 1) ** 3

        m_, n_ = len(a), len(b)
        kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
        kid = (
            (kaa.sum() - kaa.trace()) / (m_ * (m_ - 1))
            + (kbb.sum() - kbb.trace()) / (n_ * (n_ - 1))
            - 2 * kab.mean()
        )
        row[nme] = (round(f.item(), 1), round(kid.item(), 3))
    print(P, steps, seed, mode, json.dumps(row), flush=True)
