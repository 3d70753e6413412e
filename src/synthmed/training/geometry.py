"""Stage I training: the DCGAN learns the distribution of vessel masks (paper Sec. 3.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthmed.data.prepared import PreparedDataset
from synthmed.device import pick_device
from synthmed.grids import grid, to_uint8
from synthmed.models.dcgan import GeometryConfig, MaskDiscriminator, MaskGenerator
from synthmed.training.options import TrainOptions
from synthmed.training.run import Stage, adam, random_flip, run_training

SHEET = 16  # samples in each grid


def fov_template(data: PreparedDataset) -> torch.Tensor:
    """Pixels inside the field of view of at least half the training images: (1, 1, R, R)."""
    return torch.from_numpy((data.fov.mean(axis=0) >= 0.5).astype(np.float32))[None, None]


def train_geometry(
    data: PreparedDataset,
    out: str | Path,
    config: GeometryConfig,
    opts: TrainOptions,
    resume: bool = False,
) -> Path:
    """Train the Stage I DCGAN on the masks of ``data``; return the generator's folder."""
    if config.resolution != data.resolution:
        raise ValueError("config.resolution must equal the data's resolution")
    device = pick_device(opts.device)
    torch.manual_seed(opts.seed)
    G, D = MaskGenerator(config).to(device), MaskDiscriminator(config).to(device)
    G.fov.copy_(fov_template(data))
    opt_g, opt_d = adam(G, opts), adam(D, opts)
    masks = torch.from_numpy(data.masks)[:, None].to(device)  # uint8 {0,1}, decoded once
    bce = nn.BCEWithLogitsLoss()
    ones = torch.ones(opts.batch_size, device=device)
    zeros = torch.zeros(opts.batch_size, device=device)
    fixed_z = torch.randn(SHEET, config.z_dim, generator=torch.Generator().manual_seed(opts.seed))

    def train_step(gen: torch.Generator) -> dict[str, float]:
        idx = torch.randint(len(masks), (opts.batch_size,), generator=gen)
        real = masks[idx.to(device)].float() * 2 - 1
        if opts.flip:
            real = random_flip(real, gen)
        fake = G(torch.randn(opts.batch_size, config.z_dim, generator=gen).to(device))

        opt_d.zero_grad(set_to_none=True)
        loss_d = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(D(fake), ones)  # non-saturating generator loss
        loss_g.backward()
        opt_g.step()
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    @torch.no_grad()
    def fakes_sheet() -> np.ndarray:
        fake = G.binary_masks(fixed_z.to(device)).float() * 2 - 1
        return grid(to_uint8(fake), ncol=4)

    reals = masks[:SHEET].float() * 2 - 1
    stage = Stage(
        kind="geometry",
        config=config,
        modules={"G": G, "D": D},
        optimizers={"G": opt_g, "D": opt_d},
        train_step=train_step,
        fakes_sheet=fakes_sheet,
        reals_sheet=grid(to_uint8(reals), ncol=4),
    )
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    return run_training(stage, opts, Path(out), resume, extra)
