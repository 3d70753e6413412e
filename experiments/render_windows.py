"""Exploration (docs/drive512.md, "Rendering in windows"): is Stage II brighter on whole images
than on the crops it trained on? Each training image's style code (the mean of its encoder's
codes over a 3 x 3 grid of training-size crops and their mirrors) renders the image's own mask
whole and in half-overlapping windows of the crop size (pipeline.render); prints the mean colour
inside the field of view of the photographs and of both renderings.

Usage: python experiments/render_windows.py WORK   (a scripts/drive512.sh folder: needs
WORK/data/train and the texture run WORK/texture, whose checkpoint holds the style encoder)
"""

import sys

import numpy as np
import torch
from safetensors import safe_open

from synthmed.data.sources import load_any
from synthmed.files import read_json
from synthmed.models.conditioning import condition
from synthmed.models.pix2pix import StyleEncoder, TextureConfig
from synthmed.pipeline import TextureModel, render

work = sys.argv[1]
real = load_any(f"{work}/data/train", 512)
options = read_json(f"{work}/texture/options.json")
side, res = options["train"]["crop"], options["resolution"]
encoder = StyleEncoder(TextureConfig(**options["model"]))
ckpt = safe_open(f"{work}/texture/checkpoint.safetensors", "pt")
prefix = "module.E."
encoder.load_state_dict(
    {k[len(prefix) :]: ckpt.get_tensor(k) for k in ckpt.keys() if k.startswith(prefix)}
)
encoder.eval()
generator = TextureModel.load(f"{work}/texture", device="cpu").texture.float()
starts = sorted({0, (res - side) // 2, res - side})


def fov_colour(image: np.ndarray, fov: np.ndarray) -> np.ndarray:
    return image[fov > 0].mean(0)


def to_pixels(t: torch.Tensor) -> np.ndarray:
    return (t[0].permute(1, 2, 0).numpy() + 1) * 127.5


rows = []
with torch.no_grad():
    for i in range(len(real)):
        photo = torch.from_numpy(real.images[i : i + 1]).permute(0, 3, 1, 2).float() / 127.5 - 1
        photo = torch.cat([photo, photo.flip(-1)])
        crops = [photo[..., y : y + side, x : x + side] for y in starts for x in starts]
        code = torch.cat([encoder(c)[0] for c in crops]).mean(0, keepdim=True)
        mask = torch.from_numpy(real.masks[i : i + 1])[:, None].float()
        fov = torch.from_numpy(real.fov[i : i + 1])[:, None].float()
        cond = condition(mask, fov)
        whole, windows = generator(cond, code), render(generator, cond, code, side)
        fv = real.fov[i]
        rows.append(
            [
                fov_colour(real.images[i].astype(float), fv),
                fov_colour(to_pixels(whole), fv),
                fov_colour(to_pixels(windows), fv),
            ]
        )
r = np.array(rows)  # (images, photo / whole / windows, RGB)
print("mean RGB inside the FOV: photos", r[:, 0].mean(0).round(1))
print(
    "  rendered whole          ",
    r[:, 1].mean(0).round(1),
    "mean |difference| per image",
    np.abs(r[:, 1] - r[:, 0]).mean(0).round(1),
)
print(
    f"  rendered in {side} px windows",
    r[:, 2].mean(0).round(1),
    "mean |difference| per image",
    np.abs(r[:, 2] - r[:, 0]).mean(0).round(1),
)
