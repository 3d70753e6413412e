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
from synthmed.training.augment import augment_alike, diff_augment, parse_policy, random_dihedral
from synthmed.training.geometry import fov_template
from synthmed.training.judge import VesselJudge
from synthmed.training.losses import R1_EVERY, check_loss, d_loss, g_loss, r1_penalty
from synthmed.training.options import TextureStageOptions, TrainOptions
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


def train_texture(
    data: PreparedDataset,
    out: str | Path,
    config: TextureConfig,
    opts: TrainOptions,
    resume: bool = False,
    options: TextureStageOptions | None = None,
    target: str = "image",
) -> Path:
    """Train the Stage II pix2pix on the (mask, image) pairs of ``data`` (or, with
    ``target="mask"``, the refiner on (soft coarse mask, mask) pairs); return the generator's
    folder. ``options``: the loss weights (default: :class:`TextureStageOptions`'s)."""
    options = options or TextureStageOptions()
    stage = texture_stage(data, config, opts, options, target)
    extra = {"data": data.meta.get("source", "?"), "resolution": data.resolution}
    extra["trained_on"] = provenance.record(data)
    extra["stage"] = options.recorded(target == "mask", bool(config.style_dim))
    return run_training(stage, opts, Path(out), resume, extra)


def texture_stage(
    data: PreparedDataset,
    config: TextureConfig,
    opts: TrainOptions,
    options: TextureStageOptions | None = None,
    target: str = "image",
) -> Stage:
    """Networks, optimisers and the training step of Stage II, or with ``target="mask"`` of
    the refiner (also what the benchmark times)."""
    options = options or TextureStageOptions()
    check_texture_stage(data, config, opts, options, target)
    run = TextureTraining(data, config, opts, options, refine=target == "mask")
    return Stage(
        kind="refiner" if run.refine else "texture",
        config=config,
        modules=run.modules(),
        optimizers={"G": run.opt_g, "D": run.opt_d},
        train_step=run.train_step,
        fakes_sheet=run.fakes_sheet,
        reals_sheet=run.sheet(run.fixed_real),
        exported=run.sampler,
        before_export=run.fit_style_prior if run.E is not None else None,
    )


def check_texture_stage(
    data: PreparedDataset,
    config: TextureConfig,
    opts: TrainOptions,
    options: TextureStageOptions,
    target: str,
) -> None:
    """Refuse a target, options, network or crop that do not fit together or the data,
    before anything is built."""
    if target not in ("image", "mask"):
        raise ValueError(f"target must be 'image' or 'mask', got {target!r}")
    refine, o = target == "mask", options
    if refine and (o.judge_weight or config.style_dim):
        raise ValueError("judge_weight and style_dim are for Stage II (target='image') only")
    if (o.topology_weight or o.coarse_gaps or o.coarse_specks or o.adapt_weight) and not refine:
        raise ValueError(
            "topology_weight, coarse_gaps, coarse_specks and adapt_weight are for the refiner only"
        )
    if o.adapt_weight < 0 or (o.adapt_weight > 0) != bool(o.adapt_geometry):
        raise UserError("--adapt-weight (positive) and --adapt-geometry go together")
    if not (0 <= o.coarse_gaps < 1 and 0 <= o.coarse_specks < 1):
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


class TextureTraining:
    """Stage II's (or the refiner's) networks, optimisers and training pairs, and its
    training step."""

    def __init__(
        self,
        data: PreparedDataset,
        config: TextureConfig,
        opts: TrainOptions,
        options: TextureStageOptions,
        refine: bool,
    ) -> None:
        self.data, self.config, self.opts, self.options = data, config, opts, options
        self.refine = refine
        self.side = opts.crop or data.resolution  # of the training pairs
        self.device = pick_device(opts.device)
        self.dtype = pick_precision(opts.precision, self.device)
        self._build_networks()
        self.loss_kind = check_loss(opts.loss)
        image_channels = slice(config.in_channels, config.in_channels + config.out_channels)
        # Brightness and contrast only ever touch an image (Stage II's), never a mask.
        intensity = None if refine else image_channels
        colour = image_channels if config.out_channels == 3 else None
        self.aug = diff_augment(opts.augment, colour, intensity)
        self.dihedral = "dihedral" in parse_policy(opts.augment)
        # Decoded once into uint8 tensors (float copies of a whole dataset at 512 px and above
        # would take gigabytes); a step only indexes, converts, crops and flips.
        self.masks = torch.from_numpy(data.masks)[:, None].to(self.device)
        self.fov = torch.from_numpy(data.fov)[:, None].to(self.device)
        self.coarse, self.images = None, None
        if refine:  # condition: the coarse mask (what Stage I's DCGAN learns), upsampled
            self.coarse = coarse_field(
                self.masks, config.coarse, config.coarse_kind, config.coarse_clip
            )
        else:
            images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
            self.images = images.to(self.device)
        fixed = self.pairs(torch.arange(min(SHEET, len(self.masks)), device=self.device))
        self.fixed_cond, self.fixed_real = self.split(fixed)
        # Adapting, the sheet also shows the refiner on fixed DCGAN coarse masks (condition,
        # blank, refined): what Stage I will draw.
        self.fixed_drawn = None
        if self.dcgan is not None:
            seeded = torch.Generator().manual_seed(opts.seed)
            side = data.resolution
            self.fixed_drawn = dcgan_condition(self.dcgan, self.G.fov, SHEET, side, seeded)

    def _build_networks(self) -> None:
        """G and D, the style encoder, the adaptation's DCGAN and D, the vessel judge (each
        when used, in this order: the order their initial weights are drawn in), and the
        optimisers and the weight average."""
        config, opts, options, device = self.config, self.opts, self.options, self.device
        torch.manual_seed(opts.seed)
        self.G = UNetGenerator(config).to(device)
        self.D = patch_discriminator(config).to(device)
        if self.refine:
            self.G.fov.copy_(fov_template(self.data))
        self.E = StyleEncoder(config).to(device) if config.style_dim else None
        self.opt_g = adam(self.G if self.E is None else nn.ModuleList([self.G, self.E]), opts)
        self.dcgan, self.D_mask = None, None
        if options.adapt_weight > 0:
            encoding = coarse_encoding(config)
            self.dcgan = frozen_geometry(options.adapt_geometry, config.coarse, device, encoding)
            self.D_mask = mask_discriminator(config).to(device)
        both_d = self.D if self.D_mask is None else nn.ModuleList([self.D, self.D_mask])
        self.opt_d = adam(both_d, opts)
        self.G_ema = weight_average(self.G, opts.ema)
        self.sampler = self.G if self.G_ema is None else self.G_ema.module
        self.vessel_judge = None
        if options.judge_weight > 0:
            self.vessel_judge = VesselJudge(self.data, options.judge_steps).to(device)
        # Skeletons of vessels up to ~10 px wide at 512 px need 5 soft-erosion steps.
        self.topology = SoftDiceclDiceLoss(iter_=5) if options.topology_weight > 0 else None

    def modules(self) -> dict[str, nn.Module]:
        """What a checkpoint saves: G and D, and the average, judge, encoder and mask D
        when used."""
        optional = {"G_ema": self.G_ema, "judge": self.vessel_judge, "E": self.E}
        optional["D_mask"] = self.D_mask
        return {"G": self.G, "D": self.D} | {k: m for k, m in optional.items() if m is not None}

    def train_step(self, gen: torch.Generator, step: int) -> dict[str, float]:
        """One step: a batch of pairs, D's step, G's step, the weight average."""
        if self.vessel_judge is not None:  # first step of the run (not again after --resume)
            with torch.random.fork_rng(devices=[]):
                self.vessel_judge.fit(self.data, self.opts.seed, self.device)
        cond, real = self.sample(gen)
        style, loss_kl = self.encode_style(real, gen)
        with autocast(self.device, self.dtype):  # losses below are taken in float32
            fake = self.G(cond, style).float()
        losses, drawn = self.d_step(cond, real, fake, gen, step)
        losses |= self.g_step(cond, real, fake, drawn, loss_kl)
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        return losses

    def pairs(self, idx: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """cat(condition, target) of the samples ``idx`` as floats in [-1, 1]; with ``gen``
        (training), the refiner's coarse masks get their noise and breaks."""
        masks, fov, o = self.masks, self.fov, self.options
        if not self.refine:
            return torch.cat([condition(masks[idx], fov[idx]), self.images[idx] / 127.5 - 1], 1)
        soft = self.coarse[idx]
        if gen is not None and o.coarse_noise > 0:
            soft = soft + o.coarse_noise * torch.randn(soft.shape, generator=gen).to(self.device)
        if gen is not None and (o.coarse_gaps or o.coarse_specks):
            soft = break_coarse(soft, o.coarse_gaps, o.coarse_specks, gen)
        return torch.cat([refiner_condition(soft, fov[idx]), masks[idx].float() * 2 - 1], 1)

    def split(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(condition, target) of a batch of pairs."""
        return pair[:, : self.config.in_channels], pair[:, self.config.in_channels :]

    def sample(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch (condition, target), cropped and flipped (with ``dihedral``: in
        any of 8 orientations) at random from ``gen``."""
        idx = torch.randint(len(self.masks), (self.opts.batch_size,), generator=gen)
        pair = self.pairs(idx.to(self.device), gen)
        if self.side < self.data.resolution:
            pair = random_crop(pair, self.side, gen)
        if self.opts.flip:
            pair = random_flip(pair, gen)  # condition and target flipped together
        if self.dihedral:  # drawn only when asked: other runs' batches are unchanged
            pair = random_dihedral(pair, gen)
        return self.split(pair)

    def encode_style(
        self, real: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """cVAE-GAN: the real images' style codes, reparameterised, and their KL term; (None,
        None) without a style encoder."""
        if self.E is None:
            return None, None
        with autocast(self.device, self.dtype):
            mu, logvar = (t.float() for t in self.E(real))
        eps = torch.randn(mu.shape, generator=gen).to(self.device)
        style = mu + torch.exp(0.5 * logvar) * eps
        loss_kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        return style, loss_kl

    def d_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """D's features at every scale, logits last (one scale unless config.num_d > 1)."""
        with autocast(self.device, self.dtype):
            out = self.D(x)
        return out if self.config.num_d > 1 else [out]

    def d_step(
        self,
        cond: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        gen: torch.Generator,
        step: int,
    ) -> tuple[dict[str, float], torch.Tensor | None]:
        """The discriminators' update (with lazy R1 when asked). Returns their losses and,
        adapting, the refined DCGAN masks that G's step is judged on too."""
        self.opt_d.zero_grad(set_to_none=True)
        real_pair = self.aug(torch.cat([cond, real], 1))
        fake_pair = self.aug(torch.cat([cond, fake.detach()], 1))
        logits_real = [f[-1].float() for f in self.d_features(real_pair)]
        logits_fake = [f[-1].float() for f in self.d_features(fake_pair)]
        pairs = zip(logits_real, logits_fake, strict=True)
        loss = 0.5 * sum(d_loss(r, f, self.loss_kind) for r, f in pairs)
        losses, drawn = {}, None
        if self.dcgan is not None:  # the DCGAN's coarse masks, refined; no target to pair with
            drawn_cond = dcgan_condition(self.dcgan, self.G.fov, len(cond), self.side, gen)
            with autocast(self.device, self.dtype):
                drawn = self.G(drawn_cond).float()
                logits_mask = self.D_mask(self.aug(torch.cat([real, drawn.detach()])))
            mask_real, mask_fake = logits_mask[-1].float().chunk(2)
            loss_mask = 0.5 * d_loss(mask_real, mask_fake, self.loss_kind)
            loss = loss + loss_mask
            losses["loss_D_mask"] = loss_mask.item()
        loss.backward()
        if self.opts.r1 > 0 and step % R1_EVERY == 0:
            seen = real_pair.detach().requires_grad_(True)
            logits = sum(f[-1].float().sum() for f in self.d_features(seen))
            (self.opts.r1 / 2 * R1_EVERY * r1_penalty(seen, logits)).backward()
        self.opt_d.step()
        return {"loss_D": loss.item()} | losses, drawn

    def g_step(
        self,
        cond: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        drawn: torch.Tensor | None,
        loss_kl: torch.Tensor | None,
    ) -> dict[str, float]:
        """The generator's (and style encoder's) update: adversarial + L1, and each extra
        term that is on. Returns the terms."""
        o = self.options
        self.opt_g.zero_grad(set_to_none=True)
        # A fresh augmentation; the real pair, for feature matching, gets the same one, so
        # that features are compared at the same places.
        pairs = [torch.cat([cond, fake], 1)] + ([torch.cat([cond, real], 1)] if o.fm_weight else [])
        seen = augment_alike(self.aug, *pairs)
        feats_fake = self.d_features(seen[0])
        loss_gan = sum(g_loss(f[-1].float(), self.loss_kind) for f in feats_fake)
        loss_l1 = (fake - real).abs().mean()
        losses = {"loss_G_gan": loss_gan.item(), "loss_G_L1": loss_l1.item()}
        total = loss_gan + o.l1_weight * loss_l1
        if drawn is not None:
            with autocast(self.device, self.dtype):
                loss_adapt = g_loss(self.D_mask(self.aug(drawn))[-1].float(), self.loss_kind)
            total = total + o.adapt_weight * loss_adapt
            losses["loss_G_adapt"] = loss_adapt.item()
        if loss_kl is not None:
            total = total + o.kl_weight * loss_kl
            losses["loss_KL"] = loss_kl.item()
        if self.vessel_judge is not None:
            with autocast(self.device, self.dtype):
                loss_judge = self.vessel_judge(fake, cond[:, :1] > 0)
            total = total + o.judge_weight * loss_judge
            losses["loss_G_judge"] = loss_judge.item()
        if self.topology is not None:  # on probabilities: tanh [-1, 1] -> [0, 1]
            loss_topo = self.topology((fake + 1) / 2, (real + 1) / 2)
            total = total + o.topology_weight * loss_topo
            losses["loss_G_topology"] = loss_topo.item()
        if o.fm_weight > 0:
            with torch.no_grad():
                feats_real = self.d_features(seen[1])
            loss_fm = feature_matching(feats_fake, feats_real)
            total = total + o.fm_weight * loss_fm
            losses["loss_G_FM"] = loss_fm.item()
        total.backward()
        self.opt_g.step()
        return losses

    def sheet(self, fake: torch.Tensor) -> np.ndarray:
        """A grid of the fixed examples: condition, real target and ``fake`` side by side."""
        rows = [to_uint8(self.fixed_cond[:, :1]), to_uint8(self.fixed_real), to_uint8(fake)]
        return grid(np.concatenate(rows, axis=2), ncol=2)

    @torch.no_grad()
    def fakes_sheet(self) -> np.ndarray:
        """The sampler on the fixed examples' conditions (adapting, also on the fixed DCGAN
        masks)."""
        sampler = self.sampler
        sampler.eval()
        with autocast(self.device, self.dtype):
            fake = sampler(self.fixed_cond).float()
            drawn = None if self.fixed_drawn is None else sampler(self.fixed_drawn).float()
        sampler.train()
        if drawn is None:
            return self.sheet(fake)
        coarse = to_uint8(self.fixed_drawn[:, :1])
        rows = np.concatenate([coarse, np.zeros_like(coarse), to_uint8(drawn)], axis=2)
        return np.concatenate([self.sheet(fake), grid(rows, ncol=2)])

    @torch.no_grad()
    def fit_style_prior(self, step: int) -> None:
        """Sampling draws style codes from a Gaussian fitted to the codes of the training
        images, seen as training saw them: crops of ``side`` px (a 3 x 3 grid of them
        per image), mirrored too. Refitted every PRIOR_EVERY steps and at the end (a fit of
        15 images at 512 px takes about 10 s on 2 CPU cores)."""
        if self.E is None or (step % PRIOR_EVERY and step < self.opts.steps):
            return
        side, resolution = self.side, self.data.resolution
        starts = sorted({0, (resolution - side) // 2, resolution - side})
        codes, variances = [], []
        for i in range(len(self.images)):
            image = self.images[i : i + 1].float() / 127.5 - 1
            image = torch.cat([image, image.flip(-1)])
            for y in starts:
                for x in starts:
                    with autocast(self.device, self.dtype):
                        mu, logvar = self.E(image[..., y : y + side, x : x + side])
                    codes.append(mu.float())
                    variances.append(logvar.float().exp())
        for net in {self.G, self.sampler}:  # both: the weight average also averages buffers
            net.set_style_prior(torch.cat(codes), torch.cat(variances))


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
