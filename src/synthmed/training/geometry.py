"""Stage I training: the DCGAN learns the distribution of vessel masks (paper Sec. 3.1).

With ``config.channels = C + 1`` the same loop trains the single-GAN baseline of the paper's
comparison: one DCGAN emitting image and mask together (``synthmed train single``).

Real masks are exactly binary while the generator's tanh output is continuous, so a plain
DCGAN discriminator wins at once by looking at pixel values and the generator answers with
speckle (measured: D loss < 0.01 within a few hundred steps at 64-128 px). Both of the
discriminator's inputs are therefore blurred slightly and get Gaussian instance noise that
fades to zero over the run (Sonderby et al. 2017; Arjovsky & Bottou 2017).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthmed.data import provenance
from synthmed.data.prepared import PreparedDataset
from synthmed.device import autocast, pick_device, pick_precision
from synthmed.grids import grid, to_uint8
from synthmed.models.dcgan import GeometryConfig, MaskDiscriminator, MaskGenerator
from synthmed.models.refiner import coarse_field, downsample
from synthmed.models.vessel_geometry import disc_side_weights
from synthmed.training.augment import diff_augment, parse_policy, random_dihedral
from synthmed.training.losses import (
    R1_EVERY,
    check_loss,
    d_loss,
    g_loss,
    mode_seeking_loss,
    r1_penalty,
)
from synthmed.training.options import GeometryStageOptions, TrainOptions
from synthmed.training.run import Stage, adam, random_flip, run_training, weight_average

SHEET = 16  # samples in each grid
View = Callable[[torch.Tensor], torch.Tensor]  # what the discriminator sees of a batch


def fov_template(data: PreparedDataset, side: int | None = None) -> torch.Tensor:
    """Pixels inside the field of view of at least half the training images: (1, 1, S, S),
    at the data's resolution or ``side``."""
    mean = torch.from_numpy(data.fov.mean(axis=0, dtype=np.float32))[None, None]
    return (downsample(mean, side or data.resolution) >= 0.5).float()


def disc_on_left(masks: np.ndarray) -> np.ndarray:
    """Per binary mask (N, H, W): whether its optic disc lies on the left of the field, i.e.
    whether the thick vessels weigh more on the left (``disc_side_weights``)."""
    sides = [disc_side_weights(m) for m in masks.astype(bool)]
    return np.array([left > right for left, right in sides], dtype=bool)


def discriminator_view(x: torch.Tensor, noise: float, blur: bool) -> torch.Tensor:
    """What the discriminator sees: a 3x3 binomial blur, then Gaussian noise of std ``noise``."""
    if blur:
        k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
        c = x.shape[1]  # depthwise: each channel blurred on its own
        kernel = (k[:, None] * k[None] / 16).expand(c, 1, 3, 3)
        x = F.conv2d(x, kernel, padding=1, groups=c)
    return x + noise * torch.randn_like(x) if noise > 0 else x


def train_geometry(
    data: PreparedDataset,
    out: str | Path,
    config: GeometryConfig,
    opts: TrainOptions,
    resume: bool = False,
    options: GeometryStageOptions | None = None,
) -> Path:
    """Train the Stage I DCGAN on the masks of ``data``; return the generator's folder.

    When ``config.channels`` is the image's channels + 1, train the single-GAN baseline on
    cat(image, mask) instead. ``options``: the discriminator's noise and the loss weights
    (default: :class:`GeometryStageOptions`'s).
    """
    options = options or GeometryStageOptions()
    stage = geometry_stage(data, config, opts, options)
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    extra["trained_on"] = provenance.record(data)
    extra["stage"] = options.recorded(opts.steps)
    if isinstance(data.meta.get("mask_kind"), dict):  # recorded by prepare: what the masks are
        extra["mask_kind"] = data.meta["mask_kind"]["kind"]  # (the tree repair is for vessels)
    if config.canonical_side:
        extra["mirrored_to_the_right"] = int(disc_on_left(data.masks).sum())
    return run_training(stage, opts, Path(out), resume, extra)


def geometry_stage(
    data: PreparedDataset,
    config: GeometryConfig,
    opts: TrainOptions,
    options: GeometryStageOptions | None = None,
) -> Stage:
    """Networks, optimisers and the training step of Stage I (also what the benchmark times)."""
    options = options or GeometryStageOptions()
    if config.resolution > data.resolution:
        raise ValueError("config.resolution must not exceed the data's resolution")
    if options.mode_seeking and opts.batch_size < 2:
        raise ValueError("the mode-seeking term needs a batch of at least 2")
    joint = config.channels > 1
    if joint and config.channels != data.channels + 1:
        raise ValueError("a single GAN needs channels = image channels + 1")
    if config.coarse_kind != "soft" and (joint or config.resolution >= data.resolution):
        raise ValueError("coarse_kind 'distance' is for a coarse mask-only Stage I")
    run = GeometryTraining(data, config, opts, options)
    return Stage(
        kind="single" if joint else "geometry",
        config=config,
        modules={"G": run.G, "D": run.D} | ({} if run.G_ema is None else {"G_ema": run.G_ema}),
        optimizers={"G": run.opt_g, "D": run.opt_d},
        train_step=run.train_step,
        fakes_sheet=run.fakes_sheet,
        reals_sheet=run.sheet(run.reals[:SHEET]),
        exported=run.sampler,
    )


def geometry_reals(data: PreparedDataset, config: GeometryConfig) -> torch.Tensor:
    """Stage I's real samples (N, C, r, r) in [-1, 1] at ``config.resolution``: the masks (the
    single GAN: cat(image, mask)), each disc on the right with ``config.canonical_side``.

    Converted once, so that a step only indexes and flips. Below the data's resolution the
    DCGAN learns coarse (area-averaged or distance) masks, which a refiner
    (models/refiner.py) turns back into full-resolution binary masks.
    """
    reals = torch.from_numpy(data.masks)[:, None].float()
    if config.channels > 1:
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
        reals = torch.cat([images, reals], 1)
    if config.canonical_side:  # every disc on the right; the sampler mirrors half
        left = torch.from_numpy(disc_on_left(data.masks))[:, None, None, None]
        reals = torch.where(left, reals.flip(-1), reals)
    return coarse_field(reals, config.resolution, config.coarse_kind, config.coarse_clip)


class GeometryTraining:
    """Stage I's networks, optimisers and real samples, and its training step."""

    def __init__(
        self,
        data: PreparedDataset,
        config: GeometryConfig,
        opts: TrainOptions,
        options: GeometryStageOptions,
    ) -> None:
        self.config, self.opts, self.options = config, opts, options
        self.fade = options.noise_fade_steps or opts.steps
        self.device = pick_device(opts.device)
        self.dtype = pick_precision(opts.precision, self.device)
        torch.manual_seed(opts.seed)  # the networks' initial weights
        self.G = MaskGenerator(config).to(self.device)
        self.D = MaskDiscriminator(config).to(self.device)
        self.G.fov.copy_(fov_template(data, config.resolution))
        self.opt_g, self.opt_d = adam(self.G, opts), adam(self.D, opts)
        self.G_ema = weight_average(self.G, opts.ema)
        self.sampler = self.G if self.G_ema is None else self.G_ema.module
        color = slice(0, 3) if config.channels == 4 else None  # the single GAN's RGB channels
        image = slice(0, config.channels - 1) if config.channels > 1 else None  # not the mask
        self.aug = diff_augment(opts.augment, color, image)
        # Like the flips: a canonical side (every disc on the right) is kept, not rotated away.
        self.dihedral = "dihedral" in parse_policy(opts.augment) and not config.canonical_side
        self.reals = geometry_reals(data, config).to(self.device)
        self.flip = opts.flip and not config.canonical_side
        self.loss_kind = check_loss(opts.loss)
        seeded = torch.Generator().manual_seed(opts.seed)
        self.fixed_z = torch.randn(SHEET, config.z_dim, generator=seeded)
        self.soft = config.resolution < data.resolution  # coarse masks are shown as they are

    def train_step(self, gen: torch.Generator, step: int) -> dict[str, float]:
        """One step: a batch of real masks and latents, D's step, G's step, the average."""
        noise = self.options.instance_noise * max(0.0, 1 - step / self.fade)

        def view(x: torch.Tensor) -> torch.Tensor:
            return discriminator_view(self.aug(x), noise, self.options.blur)

        real, z = self.sample(gen)
        with autocast(self.device, self.dtype):  # losses below are taken in float32
            fake = self.G(z).float()
        loss_d = self.d_step(real, fake, view, step)
        loss_g, logs = self.g_step(fake, z, view)
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()} | logs

    def sample(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of real samples (flipped at random) and of latents, drawn from ``gen``."""
        idx = torch.randint(len(self.reals), (self.opts.batch_size,), generator=gen)
        real = self.reals[idx.to(self.device)]
        if self.flip:
            real = random_flip(real, gen)
        if self.dihedral:  # drawn only when asked: other runs' batches are unchanged
            real = random_dihedral(real, gen)
        z = torch.randn(self.opts.batch_size, self.config.z_dim, generator=gen)
        return real, z.to(self.device)

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, view: View, step: int) -> torch.Tensor:
        """The discriminator's update (with lazy R1 when asked); returns its loss."""
        self.opt_d.zero_grad(set_to_none=True)
        seen_real, seen_fake = view(real), view(fake.detach())
        with autocast(self.device, self.dtype):
            pred_real, pred_fake = self.D.judge(seen_real), self.D.judge(seen_fake)
        # Mean over D's heads (the whole image, and its patches if it has a patch head).
        heads = zip(pred_real, pred_fake, strict=True)
        loss = sum(d_loss(r.float(), f.float(), self.loss_kind) for r, f in heads) / len(pred_real)
        loss.backward()
        if self.opts.r1 > 0 and step % R1_EVERY == 0:
            self.r1(real, view).backward()
        self.opt_d.step()
        return loss

    def r1(self, real: torch.Tensor, view: View) -> torch.Tensor:
        """Lazy R1 (StyleGAN2): every R1_EVERY steps, scaled up to the same average strength."""
        seen = view(real).detach().requires_grad_(True)
        with autocast(self.device, self.dtype):
            heads = self.D.judge(seen)
        # One score per image: the sum over heads of each head's mean logit.
        pred = sum(h.float().reshape(len(h), -1).mean(1) for h in heads)
        return self.opts.r1 / 2 * R1_EVERY * r1_penalty(seen, pred)

    def g_step(
        self, fake: torch.Tensor, z: torch.Tensor, view: View
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The generator's update; returns its loss and the mode-seeking term's, if on."""
        self.opt_g.zero_grad(set_to_none=True)
        seen = view(fake)
        with autocast(self.device, self.dtype):
            pred = self.D.judge(seen)
        loss = sum(g_loss(p.float(), self.loss_kind) for p in pred) / len(pred)
        logs = {}
        if self.options.mode_seeking:
            loss_ms = mode_seeking_loss(fake, z)
            logs["loss_MS"] = loss_ms.item()
            loss = loss + self.options.mode_seeking * loss_ms
        loss.backward()
        self.opt_g.step()
        return loss, logs

    def sheet(self, x: torch.Tensor) -> np.ndarray:
        """A grid of samples in [-1, 1]; the single GAN's as (mask, image) side by side."""
        if self.config.channels == 1:
            return grid(to_uint8(x), ncol=4)
        both = np.concatenate([to_uint8(x[:, -1:]), to_uint8(x[:, :-1])], axis=2)
        return grid(both, ncol=4)

    @torch.no_grad()
    def fakes_sheet(self) -> np.ndarray:
        """The sampler's grid of the fixed latents: its masks binarised, unless coarse."""
        sampler, z = self.sampler, self.fixed_z.to(self.device)
        fake = sampler(z) * sampler.fov - (1 - sampler.fov)
        mask = sampler.binary_masks(z).float() * 2 - 1
        return self.sheet(torch.cat([fake[:, :-1], fake[:, -1:] if self.soft else mask], 1))
