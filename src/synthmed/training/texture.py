"""Stage II training: pix2pix learns mask -> image (paper Sec. 3.2; Isola et al. 2017).

Loss = adversarial + lambda * L1 with lambda = 100; the PatchGAN sees cat(condition, image)
and its loss is halved, as in the reference implementation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthmed.data.prepared import PreparedDataset
from synthmed.device import autocast, pick_device, pick_precision
from synthmed.grids import grid, to_uint8
from synthmed.models.pix2pix import TextureConfig, UNetGenerator, patch_discriminator
from synthmed.training.augment import diff_augment
from synthmed.training.options import TrainOptions
from synthmed.training.run import Stage, adam, random_flip, run_training, weight_average

SHEET = 4  # examples (condition, real, fake) in each grid


def condition(masks: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """The generator's input: cat(vessel mask, field of view) as floats in [-1, 1]."""
    return torch.cat([masks, fov], 1).float() * 2 - 1


def train_texture(
    data: PreparedDataset,
    out: str | Path,
    config: TextureConfig,
    opts: TrainOptions,
    resume: bool = False,
    l1_weight: float = 100.0,
) -> Path:
    """Train the Stage II pix2pix on the (mask, image) pairs of ``data``."""
    stage = texture_stage(data, config, opts, l1_weight)
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    extra["stage"] = {"l1_weight": l1_weight}
    return run_training(stage, opts, Path(out), resume, extra)


def texture_stage(
    data: PreparedDataset, config: TextureConfig, opts: TrainOptions, l1_weight: float = 100.0
) -> Stage:
    """Networks, optimisers and the training step of Stage II (also what the benchmark times)."""
    if config.out_channels != data.channels:
        raise ValueError("config.out_channels must equal the data's channels")
    device = pick_device(opts.device)
    dtype = pick_precision(opts.precision, device)
    torch.manual_seed(opts.seed)
    G, D = UNetGenerator(config).to(device), patch_discriminator(config).to(device)
    opt_g, opt_d = adam(G, opts), adam(D, opts)
    G_ema = weight_average(G, opts.ema)
    sampler = G if G_ema is None else G_ema.module
    image_channels = slice(config.in_channels, config.in_channels + config.out_channels)
    aug = diff_augment(opts.augment, image_channels if config.out_channels == 3 else None)
    # Decoded once into uint8 tensors; a step only indexes, converts and flips.
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(device)
    masks = torch.from_numpy(data.masks)[:, None].to(device)
    fov = torch.from_numpy(data.fov)[:, None].to(device)
    bce = nn.BCEWithLogitsLoss()

    def train_step(gen: torch.Generator, step: int) -> dict[str, float]:
        idx = torch.randint(len(images), (opts.batch_size,), generator=gen).to(device)
        pair = torch.cat([condition(masks[idx], fov[idx]), images[idx].float() / 127.5 - 1], 1)
        if opts.flip:
            pair = random_flip(pair, gen)  # mask and image flipped together
        cond, real = pair[:, : config.in_channels], pair[:, config.in_channels :]
        with autocast(device, dtype):  # losses below are taken in float32
            fake = G(cond).float()

        opt_d.zero_grad(set_to_none=True)
        seen_real, seen_fake = aug(torch.cat([cond, real], 1)), aug(torch.cat([cond, fake], 1))
        with autocast(device, dtype):
            pred_real = D(seen_real)[-1].float()
            pred_fake = D(seen_fake.detach())[-1].float()
        loss_d = 0.5 * (
            bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake))
        )
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            pred = D(aug(torch.cat([cond, fake], 1)))[-1].float()  # fresh augmentation
        loss_gan = bce(pred, torch.ones_like(pred))
        loss_l1 = (fake - real).abs().mean()
        (loss_gan + l1_weight * loss_l1).backward()
        opt_g.step()
        if G_ema is not None:
            G_ema.update_parameters(G)
        return {"loss_D": loss_d.item(), "loss_G_gan": loss_gan.item(), "loss_G_L1": loss_l1.item()}

    n = min(SHEET, len(images))
    fixed_cond = condition(masks[:n], fov[:n])
    fixed_real = images[:n].float() / 127.5 - 1

    def sheet(fake: torch.Tensor) -> np.ndarray:
        mask_rgb = to_uint8(fixed_cond[:, :1])
        rows = np.concatenate([mask_rgb, to_uint8(fixed_real), to_uint8(fake)], axis=2)
        return grid(rows, ncol=2)

    @torch.no_grad()
    def fakes_sheet() -> np.ndarray:
        sampler.eval()
        with autocast(device, dtype):
            fake = sampler(fixed_cond).float()
        sampler.train()
        return sheet(fake)

    stage = Stage(
        kind="texture",
        config=config,
        modules={"G": G, "D": D} | ({} if G_ema is None else {"G_ema": G_ema}),
        optimizers={"G": opt_g, "D": opt_d},
        train_step=train_step,
        fakes_sheet=fakes_sheet,
        reals_sheet=sheet(fixed_real),
        exported=sampler,
    )
    return stage
