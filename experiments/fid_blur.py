"""Probe: feature variants of the domain encoder; does FID see blur, and how does it rank sets?
(docs/drive512.md, "Rendering in windows"). Reads a scripts/drive512.sh folder:
$DRIVE512_WORK, default work/drive512-v11.

Usage: python experiments/fid_blur.py RES STEPS SEED  (the report's extractor: 128 300 0)
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
    "blur5-hold": blur(hold.images, 5),
    "blur9-hold": blur(hold.images, 9),
    "blur9-train": blur(real.images, 9),
}
res = int(sys.argv[1])
steps = int(sys.argv[2])
seed = int(sys.argv[3])
fe.DOMAIN_MAX_RESOLUTION = res
ex = fe.train_domain_extractor(real, steps=steps, seed=seed)


@torch.no_grad()
def feats(imgs, mode):
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    out = []
    for i in range(0, len(x), 32):
        maps = ex._scales(x[i : i + 32])
        if mode == "mean":
            f = [maps[-1].mean((2, 3))]
        elif mode == "meanstd":
            f = [m.std((2, 3)) for m in maps] + [maps[-1].mean((2, 3))]
        out.append(torch.cat(f, 1))
    return torch.cat(out).double()


for mode in ("mean", "meanstd"):
    fr = feats(real.images, mode)
    mu, sd = fr.mean(0), fr.std(0).clamp_min(1e-8)  # per-dimension standardisation

    def norm(f, mu=mu, sd=sd):
        return (f - mu) / sd

    row = {}
    for n, imgs in {**extra, **sets}.items():
        a, b = norm(fr), norm(feats(imgs, mode))
        # Frechet distance via torchmetrics' formula on small sets: use the means + traces
        ma, mb = a.mean(0), b.mean(0)
        ca, cb = torch.cov(a.T), torch.cov(b.T)
        ev = torch.linalg.eigvals(ca @ cb).real.clamp_min(0).sqrt().sum()
        f = ((ma - mb) ** 2).sum() + ca.trace() + cb.trace() - 2 * ev
        # KID, unbiased, cubic kernel, all samples
        d = a.shape[1]

        def k(x, y, d=d):
            return (x @ y.T / d + 1) ** 3

        m, nn_ = len(a), len(b)
        kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
        kid = (
            (kaa.sum() - kaa.trace()) / (m * (m - 1))
            + (kbb.sum() - kbb.trace()) / (nn_ * (nn_ - 1))
            - 2 * kab.mean()
        )
        row[n] = (round(f.item(), 1), round(kid.item(), 3))
    print(res, steps, seed, mode, json.dumps(row), flush=True)
