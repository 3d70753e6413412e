"""Stage II training: pix2pix learns mask -> image (paper Sec. 3.2; Isola et al. 2017).

Loss = adversarial + lambda * L1 with lambda = 100; the PatchGAN sees cat(condition, image)
and its loss is halved, as in the reference implementation. Options from pix2pixHD (Wang et
al. 2018): discriminators at several scales and a feature-matching loss; and training on
random crops of full-resolution pairs, the generator being fully convolutional.

The same loop trains Stage I's refiner (``target="mask"``): soft low-resolution masks of
the DCGAN -> binary full-resolution masks (models/refiner.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import SoftDiceclDiceLoss
from torch import nn

from synthmed.data import provenance
from synthmed.data.prepared import PreparedDataset
from synthmed.device import autocast, pick_device, pick_precision
from synthmed.errors import UserError
from synthmed.grids import grid, to_uint8
from synthmed.models.conditioning import condition
from synthmed.models.loading import load_generator
from synthmed.models.pix2pix import (
    StyleEncoder,
    TextureConfig,
    UNetGenerator,
    mask_discriminator,
    patch_discriminator,
)
from synthmed.models.refiner import (
    break_coarse,
    coarse_encoding,
    coarse_field,
    coarse_masks,
    refiner_condition,
)
from synthmed.training.augment import augment_alike, diff_augment
from synthmed.training.geometry import fov_template
from synthmed.training.judge import VesselJudge
from synthmed.training.losses import R1_EVERY, check_loss, d_loss, g_loss, r1_penalty
from synthmed.training.options import TrainOptions
from synthmed.training.run import Stage, adam, random_flip, run_training, weight_average

SHEET = 4  # examples (condition, real, fake) in each grid
PRIOR_EVERY = 2000  # steps between fits of the style prior (and at the end)


def texture_model(model: dict, data: PreparedDataset, refine: bool, crop: int) -> dict:
    """TextureConfig fields for training on ``data``: ``model`` (preset + flags) completed with
    the data's resolution and channels, and a U-Net as deep as ``crop`` allows (down to 1 x 1
    on the crop, at most 8 levels) when it trains on crops and no depth is given."""
    channels = 1 if refine else data.channels
    model = {**model, "resolution": data.resolution, "out_channels": channels}
    if refine:
        model.setdefault("coarse", 64)
    if crop and not model.get("depth"):
        model["depth"] = min(8, crop.bit_length() - 1)
    return model


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing. Split when the stage's options become one dataclass.
def train_texture(
    data: PreparedDataset,
    out: str | Path,
    config: TextureConfig,
    opts: TrainOptions,
    resume: bool = False,
    l1_weight: float = 100.0,
    fm_weight: float = 0.0,
    target: str = "image",
    coarse_noise: float = 0.0,
    judge_weight: float = 0.0,
    judge_steps: int = 0,
    kl_weight: float = 0.01,
    topology_weight: float = 0.0,
    coarse_gaps: float = 0.0,
    coarse_specks: float = 0.0,
    adapt_geometry: str | None = None,
    adapt_weight: float = 0.0,
) -> Path:
    """Train the Stage II pix2pix on the (mask, image) pairs of ``data`` (or, with
    ``target="mask"``, the refiner on (soft coarse mask, mask) pairs).

    Args:
        l1_weight: lambda of the L1 term (pix2pix: 100).
        fm_weight: weight of the discriminator feature-matching loss (pix2pixHD: 10; 0 = off).
        coarse_noise: refiner only: std of Gaussian noise added to the coarse masks it is
            trained on, so that it cleans up the DCGAN's imperfect ones rather than trusting
            every grey level.
        judge_weight: Stage II only: weight of the vessel-judge loss (training/judge.py: a
            segmenter trained on the real pairs must find the mask's vessels in the
            generated image; 0 = off).
        judge_steps: training steps of that segmenter (0 = the evaluation's "cpu" budget).
        kl_weight: with ``config.style_dim``: weight of the KL term pulling the encoded style
            codes toward N(0, 1) (BicycleGAN: 0.01). Sampling draws from a Gaussian fitted
            to the training images' codes (every PRIOR_EVERY steps and at the end), since
            the KL term alone does not make them N(0, 1).
        topology_weight: refiner only: weight of a Dice + clDice loss (MONAI's
            SoftDiceclDiceLoss) between the refined and the real mask (0 = off). L1 alone
            makes uncertain pixels take their median, background, so thin vessels break
            into fragments; clDice rewards an unbroken centreline.
        coarse_gaps, coarse_specks: refiner only: probabilities of a cut-out 2 x 2 block
            and of a faint speck in the real coarse masks it is trained on
            (models.refiner.break_coarse), so that it learns to mend the DCGAN's broken
            vessels and stray dots rather than draw them as fragments (0 = off).
        adapt_geometry, adapt_weight: refiner only: a trained geometry run whose coarse
            masks the refiner also refines while training, judged by an unconditional
            PatchGAN against the real masks with this weight (0 = off). The paired losses
            only teach it the real coarse masks; this teaches it to make masks that look
            real from the DCGAN's own, lattice and breaks included (unpaired, as in
            CycleGAN-style domain adaptation).
    """
    stage = texture_stage(
        data,
        config,
        opts,
        l1_weight,
        fm_weight,
        target,
        coarse_noise,
        judge_weight,
        judge_steps,
        kl_weight,
        topology_weight,
        coarse_gaps,
        coarse_specks,
        adapt_geometry,
        adapt_weight,
    )
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    extra["trained_on"] = provenance.record(data)
    extra["stage"] = {"l1_weight": l1_weight, "fm_weight": fm_weight}
    if target == "mask":
        extra["stage"] |= {"coarse_noise": coarse_noise, "topology_weight": topology_weight}
        extra["stage"] |= {"coarse_gaps": coarse_gaps, "coarse_specks": coarse_specks}
        if adapt_weight:
            extra["stage"] |= {"adapt_geometry": adapt_geometry, "adapt_weight": adapt_weight}
    else:
        extra["stage"] |= {"judge_weight": judge_weight, "judge_steps": judge_steps}
        if config.style_dim:
            extra["stage"]["kl_weight"] = kl_weight
    return run_training(stage, opts, Path(out), resume, extra)


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing (its train_step too). Split when the stage's options become one
# dataclass.
def texture_stage(
    data: PreparedDataset,
    config: TextureConfig,
    opts: TrainOptions,
    l1_weight: float = 100.0,
    fm_weight: float = 0.0,
    target: str = "image",
    coarse_noise: float = 0.0,
    judge_weight: float = 0.0,
    judge_steps: int = 0,
    kl_weight: float = 0.01,
    topology_weight: float = 0.0,
    coarse_gaps: float = 0.0,
    coarse_specks: float = 0.0,
    adapt_geometry: str | Path | nn.Module | None = None,
    adapt_weight: float = 0.0,
) -> Stage:
    """Networks, optimisers and the training step of Stage II (also what the benchmark times;
    ``adapt_geometry`` may also be the DCGAN itself, as the benchmark passes one)."""
    if target not in ("image", "mask"):
        raise ValueError(f"target must be 'image' or 'mask', got {target!r}")
    refine = target == "mask"
    if refine and (judge_weight or config.style_dim):
        raise ValueError("judge_weight and style_dim are for Stage II (target='image') only")
    if (topology_weight or coarse_gaps or coarse_specks or adapt_weight) and not refine:
        raise ValueError(
            "topology_weight, coarse_gaps, coarse_specks and adapt_weight are for the refiner only"
        )
    if adapt_weight < 0 or (adapt_weight > 0) != bool(adapt_geometry):
        raise UserError("--adapt-weight (positive) and --adapt-geometry go together")
    if not (0 <= coarse_gaps < 1 and 0 <= coarse_specks < 1):
        raise UserError("coarse_gaps and coarse_specks are probabilities in [0, 1)")
    if config.out_channels != (1 if refine else data.channels):
        raise ValueError("config.out_channels must be 1 for masks, else the data's channels")
    if refine and not 8 <= config.coarse < data.resolution:
        raise ValueError("a refiner needs 8 <= config.coarse < the data's resolution")
    side = opts.crop or data.resolution
    if side > data.resolution or side % 2 ** config.levels():
        raise UserError(
            f"crop {side}: must be at most {data.resolution} and a multiple of "
            f"{2 ** config.levels()} (the U-Net's levels)"
        )
    smallest = side // 2 ** (config.num_d - 1)
    if smallest < 2 ** (config.d_layers + 2):
        raise UserError(
            f"num_d {config.num_d}: its smallest scale ({smallest} px of {side} px training "
            f"images) is too small for a PatchGAN of {config.d_layers} layers"
        )
    device = pick_device(opts.device)
    dtype = pick_precision(opts.precision, device)
    torch.manual_seed(opts.seed)
    G, D = UNetGenerator(config).to(device), patch_discriminator(config).to(device)
    if refine:
        G.fov.copy_(fov_template(data))
    E = StyleEncoder(config).to(device) if config.style_dim else None
    opt_g = adam(G if E is None else nn.ModuleList([G, E]), opts)  # E learns with G
    dcgan, D_mask = None, None
    if adapt_weight > 0:
        dcgan = frozen_geometry(adapt_geometry, config.coarse, device, coarse_encoding(config))
        D_mask = mask_discriminator(config).to(device)
    opt_d = adam(D if D_mask is None else nn.ModuleList([D, D_mask]), opts)
    G_ema = weight_average(G, opts.ema)
    vessel_judge = VesselJudge(data, judge_steps).to(device) if judge_weight > 0 else None
    # Skeletons of vessels up to ~10 px wide at 512 px need 5 soft-erosion steps.
    topology = SoftDiceclDiceLoss(iter_=5) if topology_weight > 0 else None
    sampler = G if G_ema is None else G_ema.module
    loss = check_loss(opts.loss)
    image_channels = slice(config.in_channels, config.in_channels + config.out_channels)
    aug = diff_augment(opts.augment, image_channels if config.out_channels == 3 else None)
    # Decoded once into uint8 tensors (float copies of a whole dataset at 512 px and above
    # would take gigabytes); a step only indexes, converts, crops and flips.
    masks = torch.from_numpy(data.masks)[:, None].to(device)
    fov = torch.from_numpy(data.fov)[:, None].to(device)
    if refine:  # condition: the coarse mask (what Stage I's DCGAN learns), upsampled
        coarse = coarse_field(masks, config.coarse, config.coarse_kind, config.coarse_clip)
    else:
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous().to(device)

    def batch(idx: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """cat(condition, target) of the samples ``idx`` as floats in [-1, 1]; with ``gen``
        (training), the refiner's coarse masks get their noise and breaks."""
        if not refine:
            return torch.cat([condition(masks[idx], fov[idx]), images[idx] / 127.5 - 1], 1)
        soft = coarse[idx]
        if gen is not None and coarse_noise > 0:
            soft = soft + coarse_noise * torch.randn(soft.shape, generator=gen).to(device)
        if gen is not None and (coarse_gaps or coarse_specks):
            soft = break_coarse(soft, coarse_gaps, coarse_specks, gen)
        return torch.cat([refiner_condition(soft, fov[idx]), masks[idx].float() * 2 - 1], 1)

    def judge(x: torch.Tensor) -> list[list[torch.Tensor]]:
        """D's features at every scale, logits last (one scale unless config.num_d > 1)."""
        with autocast(device, dtype):
            out = D(x)
        return out if config.num_d > 1 else [out]

    def train_step(gen: torch.Generator, step: int) -> dict[str, float]:
        if vessel_judge is not None:  # first step of the run (not again after --resume)
            with torch.random.fork_rng(devices=[]):
                vessel_judge.fit(data, opts.seed, device)
        idx = torch.randint(len(masks), (opts.batch_size,), generator=gen).to(device)
        pair = batch(idx, gen)
        if side < data.resolution:
            pair = random_crop(pair, side, gen)
        if opts.flip:
            pair = random_flip(pair, gen)  # condition and target flipped together
        cond, real = pair[:, : config.in_channels], pair[:, config.in_channels :]
        style, loss_kl = None, None
        if E is not None:  # cVAE-GAN: the real image's code, reparameterised
            with autocast(device, dtype):
                mu, logvar = (t.float() for t in E(real))
            eps = torch.randn(mu.shape, generator=gen).to(device)
            style = mu + torch.exp(0.5 * logvar) * eps
            loss_kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        with autocast(device, dtype):  # losses below are taken in float32
            fake = G(cond, style).float()

        opt_d.zero_grad(set_to_none=True)
        real_pair = aug(torch.cat([cond, real], 1))
        fake_pair = aug(torch.cat([cond, fake.detach()], 1))
        logits_real = [f[-1].float() for f in judge(real_pair)]
        logits_fake = [f[-1].float() for f in judge(fake_pair)]
        pairs = zip(logits_real, logits_fake, strict=True)
        loss_d = 0.5 * sum(d_loss(r, f, loss) for r, f in pairs)
        drawn = None
        if dcgan is not None:  # the DCGAN's coarse masks, refined; no target to pair with
            drawn_cond = dcgan_condition(dcgan, G.fov, len(cond), side, gen)
            with autocast(device, dtype):
                drawn = G(drawn_cond).float()
                logits_mask = D_mask(aug(torch.cat([real, drawn.detach()])))[-1].float()
            mask_real, mask_fake = logits_mask.chunk(2)
            loss_d_mask = 0.5 * d_loss(mask_real, mask_fake, loss)
            loss_d = loss_d + loss_d_mask
        loss_d.backward()
        if opts.r1 > 0 and step % R1_EVERY == 0:
            seen = real_pair.detach().requires_grad_(True)
            logits = sum(f[-1].float().sum() for f in judge(seen))
            (opts.r1 / 2 * R1_EVERY * r1_penalty(seen, logits)).backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        # A fresh augmentation; the real pair, for feature matching, gets the same one, so
        # that features are compared at the same places.
        pairs = [torch.cat([cond, fake], 1)] + ([torch.cat([cond, real], 1)] if fm_weight else [])
        seen = augment_alike(aug, *pairs)
        feats_fake = judge(seen[0])
        loss_gan = sum(g_loss(f[-1].float(), loss) for f in feats_fake)
        loss_l1 = (fake - real).abs().mean()
        losses = {"loss_D": loss_d.item(), "loss_G_gan": loss_gan.item()}
        losses["loss_G_L1"] = loss_l1.item()
        total = loss_gan + l1_weight * loss_l1
        if drawn is not None:
            with autocast(device, dtype):
                loss_adapt = g_loss(D_mask(aug(drawn))[-1].float(), loss)
            total = total + adapt_weight * loss_adapt
            losses |= {"loss_D_mask": loss_d_mask.item(), "loss_G_adapt": loss_adapt.item()}
        if loss_kl is not None:
            total = total + kl_weight * loss_kl
            losses["loss_KL"] = loss_kl.item()
        if vessel_judge is not None:
            with autocast(device, dtype):
                loss_judge = vessel_judge(fake, cond[:, :1] > 0)
            total = total + judge_weight * loss_judge
            losses["loss_G_judge"] = loss_judge.item()
        if topology is not None:  # on probabilities: tanh [-1, 1] -> [0, 1]
            loss_topo = topology((fake + 1) / 2, (real + 1) / 2)
            total = total + topology_weight * loss_topo
            losses["loss_G_topology"] = loss_topo.item()
        if fm_weight > 0:
            with torch.no_grad():
                feats_real = judge(seen[1])
            loss_fm = feature_matching(feats_fake, feats_real)
            total = total + fm_weight * loss_fm
            losses["loss_G_FM"] = loss_fm.item()
        total.backward()
        opt_g.step()
        if G_ema is not None:
            G_ema.update_parameters(G)
        return losses

    fixed = batch(torch.arange(min(SHEET, len(masks)), device=device))
    fixed_cond, fixed_real = fixed[:, : config.in_channels], fixed[:, config.in_channels :]

    def sheet(fake: torch.Tensor) -> np.ndarray:
        rows = np.concatenate(
            [to_uint8(fixed_cond[:, :1]), to_uint8(fixed_real), to_uint8(fake)], axis=2
        )
        return grid(rows, ncol=2)

    # Adapting, the sheet also shows the refiner on fixed DCGAN coarse masks (condition,
    # blank, refined): what Stage I will draw.
    fixed_drawn = None
    if dcgan is not None:
        seeded = torch.Generator().manual_seed(opts.seed)
        fixed_drawn = dcgan_condition(dcgan, G.fov, SHEET, data.resolution, seeded)

    @torch.no_grad()
    def fakes_sheet() -> np.ndarray:
        sampler.eval()
        with autocast(device, dtype):
            fake = sampler(fixed_cond).float()
            drawn = None if fixed_drawn is None else sampler(fixed_drawn).float()
        sampler.train()
        if drawn is None:
            return sheet(fake)
        coarse = to_uint8(fixed_drawn[:, :1])
        rows = np.concatenate([coarse, np.zeros_like(coarse), to_uint8(drawn)], axis=2)
        return np.concatenate([sheet(fake), grid(rows, ncol=2)])

    @torch.no_grad()
    def fit_style_prior(step: int) -> None:
        """Sampling draws style codes from a Gaussian fitted to the codes of the training
        images, seen as training saw them: crops of ``side`` px (a 3 x 3 grid of them
        per image), mirrored too. Refitted every PRIOR_EVERY steps and at the end (a fit of
        15 images at 512 px takes about 10 s on 2 CPU cores)."""
        if E is None or (step % PRIOR_EVERY and step < opts.steps):
            return
        starts = sorted({0, (data.resolution - side) // 2, data.resolution - side})
        codes, variances = [], []
        for i in range(len(images)):
            image = images[i : i + 1].float() / 127.5 - 1
            image = torch.cat([image, image.flip(-1)])
            for y in starts:
                for x in starts:
                    with autocast(device, dtype):
                        mu, logvar = E(image[..., y : y + side, x : x + side])
                    codes.append(mu.float())
                    variances.append(logvar.float().exp())
        for net in {G, sampler}:  # both: the weight average also averages buffers
            net.set_style_prior(torch.cat(codes), torch.cat(variances))

    stage = Stage(
        kind="refiner" if refine else "texture",
        config=config,
        modules={"G": G, "D": D}
        | ({} if G_ema is None else {"G_ema": G_ema})
        | ({} if vessel_judge is None else {"judge": vessel_judge})
        | ({} if E is None else {"E": E})
        | ({} if D_mask is None else {"D_mask": D_mask}),
        optimizers={"G": opt_g, "D": opt_d},
        train_step=train_step,
        fakes_sheet=fakes_sheet,
        reals_sheet=sheet(fixed_real),
        exported=sampler,
        before_export=fit_style_prior if E is not None else None,
    )
    return stage


def frozen_geometry(
    source: str | Path | nn.Module, coarse: int, device: torch.device, encoding: str = "soft"
) -> nn.Module:
    """The DCGAN of a geometry run folder (or the module itself, as the benchmark passes
    one), for the refiner's adaptation: frozen, on ``device``; its resolution must be the
    refiner's coarse side and its masks encoded as the refiner's (``coarse_encoding``)."""
    given = isinstance(source, nn.Module)
    net = source if given else load_generator(source, "geometry")[0]
    if net.cfg.resolution != coarse or net.cfg.channels != 1:
        raise UserError(
            f"{'the DCGAN' if given else source}: a geometry run of {net.cfg.resolution} px "
            f"masks; the refiner sharpens {coarse} px masks"
        )
    if coarse_encoding(net.cfg) != encoding:
        raise UserError(
            f"{'the DCGAN' if given else source}: makes {coarse_encoding(net.cfg)} coarse "
            f"masks; the refiner reads {encoding} ones (--coarse-kind, --coarse-clip)"
        )
    return net.to(device).eval().requires_grad_(False)


@torch.no_grad()
def dcgan_condition(
    dcgan: nn.Module, fov: torch.Tensor, n: int, side: int, gen: torch.Generator
) -> torch.Tensor:
    """The refiner's inputs for ``n`` of the DCGAN's coarse masks, as the pipeline makes them
    (``fov`` is the refiner's (1, 1, R, R) template), one random ``side`` px crop of each
    (``side`` = R: whole)."""
    z = torch.randn(n, dcgan.cfg.z_dim, generator=gen).to(fov.device)
    cond = refiner_condition(coarse_masks(dcgan, z), (fov > 0.5).expand(n, 1, *fov.shape[-2:]))
    return cond if side == fov.shape[-1] else random_crop(cond, side, gen)


def random_crop(x: torch.Tensor, side: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``side`` x ``side`` crop per item of (N, C, H, W), drawn from ``gen``."""
    n, _, h, w = x.shape
    top = torch.randint(h - side + 1, (n,), generator=gen).tolist()
    left = torch.randint(w - side + 1, (n,), generator=gen).tolist()
    corners = enumerate(zip(top, left, strict=True))
    return torch.stack([x[i, :, y : y + side, c : c + side] for i, (y, c) in corners])


def feature_matching(
    fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature-matching loss: L1 between D's intermediate features of fake and
    real pairs, averaged over layers, summed over scales."""
    total = torch.zeros(())
    for f_scale, r_scale in zip(fake, real, strict=True):
        layers = list(zip(f_scale[:-1], r_scale[:-1], strict=True))
        total = total + sum(F.l1_loss(f.float(), r.float()) for f, r in layers) / len(layers)
    return total
