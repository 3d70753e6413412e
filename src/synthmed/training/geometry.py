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
from synthmed.training.augment import diff_augment
from synthmed.training.losses import (
    R1_EVERY,
    check_loss,
    d_loss,
    g_loss,
    mode_seeking_loss,
    r1_penalty,
)
from synthmed.training.options import TrainOptions
from synthmed.training.run import Stage, adam, random_flip, run_training, weight_average

SHEET = 16  # samples in each grid


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


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing. Split when the stage's options become one dataclass.
def train_geometry(
    data: PreparedDataset,
    out: str | Path,
    config: GeometryConfig,
    opts: TrainOptions,
    resume: bool = False,
    instance_noise: float = 0.3,
    blur: bool = True,
    noise_fade_steps: int | None = None,
    mode_seeking: float = 0.0,
) -> Path:
    """Train the Stage I DCGAN on the masks of ``data``; return the generator's folder.

    When ``config.channels`` is the image's channels + 1, train the single-GAN baseline on
    cat(image, mask) instead.

    Args:
        instance_noise: std of the noise added to the discriminator's inputs at step 0,
            decreasing linearly to 0 at ``noise_fade_steps`` (0 = the plain DCGAN recipe).
        blur: blur the discriminator's inputs with a 3x3 binomial kernel.
        noise_fade_steps: when the noise reaches 0; default ``opts.steps``. Recorded with the
            run, so a resumed run keeps its schedule even when ``--steps`` grows.
        mode_seeking: weight of MSGAN's mode-seeking term in the generator's loss (0 = off).
    """
    fade = noise_fade_steps or opts.steps
    stage = geometry_stage(data, config, opts, instance_noise, blur, fade, mode_seeking)
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    extra["trained_on"] = provenance.record(data)
    extra["stage"] = {"instance_noise": instance_noise, "blur": blur, "noise_fade_steps": fade}
    extra["stage"]["mode_seeking"] = mode_seeking
    if config.canonical_side:
        extra["mirrored_to_the_right"] = int(disc_on_left(data.masks).sum())
    return run_training(stage, opts, Path(out), resume, extra)


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing. Split when the stage's options become one dataclass.
def geometry_stage(
    data: PreparedDataset,
    config: GeometryConfig,
    opts: TrainOptions,
    instance_noise: float,
    blur: bool,
    fade: int,
    mode_seeking: float = 0.0,
) -> Stage:
    """Networks, optimisers and the training step of Stage I (also what the benchmark times)."""
    if config.resolution > data.resolution:
        raise ValueError("config.resolution must not exceed the data's resolution")
    if mode_seeking and opts.batch_size < 2:
        raise ValueError("the mode-seeking term needs a batch of at least 2")
    device = pick_device(opts.device)
    dtype = pick_precision(opts.precision, device)
    torch.manual_seed(opts.seed)
    G, D = MaskGenerator(config).to(device), MaskDiscriminator(config).to(device)
    G.fov.copy_(fov_template(data, config.resolution))
    opt_g, opt_d = adam(G, opts), adam(D, opts)
    joint = config.channels > 1
    G_ema = weight_average(G, opts.ema)
    sampler = G if G_ema is None else G_ema.module
    color = slice(0, 3) if config.channels == 4 else None  # the single GAN's RGB channels
    aug = diff_augment(opts.augment, color)
    if joint and config.channels != data.channels + 1:
        raise ValueError("a single GAN needs channels = image channels + 1")
    # Real samples in [-1, 1], converted once: a step only indexes and flips. Below the
    # data's resolution the DCGAN learns area-averaged (soft) masks, which a refiner
    # (models/refiner.py) turns back into full-resolution binary masks.
    reals_all = torch.from_numpy(data.masks)[:, None].float()
    if joint:
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
        reals_all = torch.cat([images, reals_all], 1)
    if config.canonical_side:  # every disc on the right; the sampler mirrors half
        left = torch.from_numpy(disc_on_left(data.masks))[:, None, None, None]
        reals_all = torch.where(left, reals_all.flip(-1), reals_all)
    flip = opts.flip and not config.canonical_side
    if config.coarse_kind != "soft" and (joint or config.resolution >= data.resolution):
        raise ValueError("coarse_kind 'distance' is for a coarse mask-only Stage I")
    reals_all = coarse_field(reals_all, config.resolution, config.coarse_kind, config.coarse_clip)
    reals_all = reals_all.to(device)
    loss = check_loss(opts.loss)
    fixed_z = torch.randn(SHEET, config.z_dim, generator=torch.Generator().manual_seed(opts.seed))

    def train_step(gen: torch.Generator, step: int) -> dict[str, float]:
        noise = instance_noise * max(0.0, 1 - step / fade)

        def view(x: torch.Tensor) -> torch.Tensor:
            return discriminator_view(aug(x), noise, blur)

        idx = torch.randint(len(reals_all), (opts.batch_size,), generator=gen)
        real = reals_all[idx.to(device)]
        if flip:
            real = random_flip(real, gen)
        z = torch.randn(opts.batch_size, config.z_dim, generator=gen).to(device)
        with autocast(device, dtype):  # losses below are taken in float32
            fake = G(z).float()

        opt_d.zero_grad(set_to_none=True)
        seen_real, seen_fake = view(real), view(fake.detach())
        with autocast(device, dtype):
            pred_real, pred_fake = D.judge(seen_real), D.judge(seen_fake)
        # Mean over D's heads (the whole image, and its patches if it has a patch head).
        heads = zip(pred_real, pred_fake, strict=True)
        loss_d = sum(d_loss(r.float(), f.float(), loss) for r, f in heads) / len(pred_real)
        loss_d.backward()
        if opts.r1 > 0 and step % R1_EVERY == 0:
            penalty = r1(real, view)
            penalty.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        seen = view(fake)
        with autocast(device, dtype):
            pred = D.judge(seen)
        loss_g = sum(g_loss(p.float(), loss) for p in pred) / len(pred)
        logs = {}
        if mode_seeking:
            loss_ms = mode_seeking_loss(fake, z)
            logs["loss_MS"] = loss_ms.item()
            loss_g = loss_g + mode_seeking * loss_ms
        loss_g.backward()
        opt_g.step()
        if G_ema is not None:
            G_ema.update_parameters(G)
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()} | logs

    def r1(real: torch.Tensor, view: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        # Lazy R1 (StyleGAN2): every R1_EVERY steps, scaled up to the same average strength.
        seen = view(real).detach().requires_grad_(True)
        with autocast(device, dtype):
            heads = D.judge(seen)
        # One score per image: the sum over heads of each head's mean logit.
        pred = sum(h.float().reshape(len(h), -1).mean(1) for h in heads)
        return opts.r1 / 2 * R1_EVERY * r1_penalty(seen, pred)

    def sheet(x: torch.Tensor) -> np.ndarray:
        if not joint:
            return grid(to_uint8(x), ncol=4)
        both = np.concatenate([to_uint8(x[:, -1:]), to_uint8(x[:, :-1])], axis=2)
        return grid(both, ncol=4)

    soft = config.resolution < data.resolution  # coarse masks are shown as they are

    @torch.no_grad()
    def fakes_sheet() -> np.ndarray:
        fake = sampler(fixed_z.to(device)) * sampler.fov - (1 - sampler.fov)
        mask = sampler.binary_masks(fixed_z.to(device)).float() * 2 - 1
        return sheet(torch.cat([fake[:, :-1], fake[:, -1:] if soft else mask], 1))

    stage = Stage(
        kind="single" if joint else "geometry",
        config=config,
        modules={"G": G, "D": D} | ({} if G_ema is None else {"G_ema": G_ema}),
        optimizers={"G": opt_g, "D": opt_d},
        train_step=train_step,
        fakes_sheet=fakes_sheet,
        reals_sheet=sheet(reals_all[:SHEET]),
        exported=sampler,
    )
    return stage
