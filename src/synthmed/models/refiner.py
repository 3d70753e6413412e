"""Stage I at full resolution: a coarse DCGAN, then a refiner.

A DCGAN does not learn 512 px vessel trees from 15 masks in CPU hours (measured: blocky
fragments or dashed textures at 128 px after 700 steps). It learns the *soft* masks of a
low resolution (area-averaged: 64 px holds the tree's layout and the widths of the large
vessels as grey levels) in minutes. The refiner, a pix2pix U-Net trained on real masks,
turns such a soft coarse mask, upsampled, into a binary mask at full resolution: sharp
edges, realistic widths, the thin vessels the coarse mask can only hint at. Conditional
training on 15 masks is what pix2pix is good at; generating trees from noise is not. The
coarse masks can also be distance maps (``coarse_field``), which keep thin vessels visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

if TYPE_CHECKING:
    from synthmed.models.dcgan import GeometryConfig, MaskGenerator
    from synthmed.models.pix2pix import TextureConfig

# How a coarse mask encodes the vessels (GeometryConfig / TextureConfig ``coarse_kind``):
# "soft" = area-averaged binary mask; "distance" = area-averaged signed distance to the
# nearest vessel edge, clipped to [-DISTANCE_IN, clip] full-resolution pixels (``clip`` is
# the configs' ``coarse_clip``, DISTANCE_OUT before it was a setting) and mapped to [1, -1]
# (vessel centre 1, far background -1). A 1 px vessel is a quarter-pixel
# grey line in a 128 px soft mask but a valley several coarse pixels wide in the distance
# map, a smooth field that the DCGAN breaks less often (on DRIVE at 512 px: a third fewer
# pieces, the tree's full length; docs/drive512.md).
COARSE_KINDS = ("soft", "distance")
DISTANCE_IN, DISTANCE_OUT = 4.0, 8.0


def downsample(x: torch.Tensor, side: int) -> torch.Tensor:
    """Area-average (N, C, R, R) to (N, C, side, side): binary masks become soft masks."""
    return x if x.shape[-1] == side else F.interpolate(x.float(), size=(side, side), mode="area")


def coarse_field(
    masks: torch.Tensor, side: int, kind: str = "soft", clip: float = DISTANCE_OUT
) -> torch.Tensor:
    """Binary masks (N, 1, R, R) -> what a coarse Stage I learns: (N, 1, side, side) in
    [-1, 1], vessels high, as the area-averaged mask ("soft") or the area-averaged signed
    distance to the vessel edges clipped to [-DISTANCE_IN, clip] px ("distance", see
    COARSE_KINDS above)."""
    if kind not in COARSE_KINDS:
        raise ValueError(f"coarse kind {kind!r}: choose one of {', '.join(COARSE_KINDS)}")
    if clip <= 0:
        raise ValueError(f"coarse clip {clip}: must be a positive distance in pixels")
    if kind == "soft":
        return downsample(masks, side) * 2 - 1
    fields = []
    for m in (masks[:, 0] > 0.5).cpu().numpy():
        if not m.any():  # no vessel: far from one everywhere
            fields.append(np.full(m.shape, clip))
            continue
        # Outside distance to the vessels minus inside distance to the background.
        signed = ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m)
        fields.append(np.clip(signed, -DISTANCE_IN, clip))
    field = torch.from_numpy(np.stack(fields)[:, None]).float().to(masks.device)
    return 1 - 2 * (downsample(field, side) + DISTANCE_IN) / (DISTANCE_IN + clip)


def coarse_encoding(cfg: GeometryConfig | TextureConfig) -> str:
    """How a geometry or refiner config's coarse masks encode the vessels, as compared
    between a DCGAN and its refiner and named in errors: "soft" or "distance, clip N px"."""
    return "soft" if cfg.coarse_kind == "soft" else f"distance, clip {cfg.coarse_clip:g} px"


def coarse_masks(dcgan: MaskGenerator, z: torch.Tensor) -> torch.Tensor:
    """A coarse geometry DCGAN's soft masks (N, 1, r, r) in [-1, 1] for latents ``z``, with
    nothing outside its field-of-view template: what the refiner gets."""
    return torch.where(dcgan.fov > 0.5, dcgan.sample(z)[:, -1:].float(), -1.0)


def refiner_condition(coarse: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """The refiner's input: cat(soft coarse mask (N, 1, r, r) in [-1, 1] bilinearly upsampled
    to the field of view's size, field of view (N, 1, R, R) as [-1, 1])."""
    up = F.interpolate(coarse.float(), size=fov.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([up, fov.float() * 2 - 1], 1)


def break_coarse(
    coarse: torch.Tensor, gaps: float, specks: float, gen: torch.Generator
) -> torch.Tensor:
    """Give real soft coarse masks (N, 1, r, r) in [-1, 1] the DCGAN's two flaws, for the
    refiner's training: each 2 x 2 block is cut out with probability ``gaps`` (breaks along
    the vessels) and each pixel gets a faint speck (soft value 0.1 to 0.5) with probability
    ``specks`` (isolated dots). Trained on such inputs against the unbroken real mask, the
    refiner learns to bridge short gaps and to drop specks instead of drawing both as
    fragments. Random numbers come from ``gen`` (on the CPU), so runs are reproducible."""
    n, _, r, _ = coarse.shape
    soft = (coarse.float() + 1) / 2
    if gaps > 0:
        half = (r + 1) // 2
        keep = (torch.rand(n, 1, half, half, generator=gen) >= gaps).float()
        keep = keep.repeat_interleave(2, -1).repeat_interleave(2, -2)[..., :r, :r]
        soft = soft * keep.to(soft.device)
    if specks > 0:
        where = torch.rand(n, 1, r, r, generator=gen) < specks
        dots = where * (0.1 + 0.4 * torch.rand(n, 1, r, r, generator=gen))
        soft = torch.maximum(soft, dots.to(soft.device))
    return soft * 2 - 1
