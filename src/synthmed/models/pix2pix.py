"""Stage II: pix2pix (Isola et al. 2017; paper Sec. 3.2) turning a mask into an image.

Generator: a U-Net whose encoder halves the resolution with 4x4 stride-2 convolutions
(LeakyReLU 0.2) and whose decoder doubles it back (ReLU), with skip connections between
mirrored levels and dropout in the three innermost decoder levels as the noise source.
Discriminator: the 70x70 PatchGAN, taken from MONAI, seeing the pair cat(mask, image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from synthmed.models.dcgan import _up, dcgan_init

if TYPE_CHECKING:
    from monai.networks.nets import PatchDiscriminator


@dataclass
class TextureConfig:
    """Architecture of Stage II. Saved as ``config.json`` beside the weights."""

    resolution: int = 256  # training side; the generator is fully convolutional
    in_channels: int = 2  # condition channels: vessel mask + field of view
    out_channels: int = 3  # image channels (3 for RGB, 1 for grayscale domains)
    # Defaults: a narrower U-Net than pix2pix's (ngf 64, cap 512: 54 M weights, most of them
    # in 1x1..4x4 bottleneck levels whose updates are memory-bound) with resize-convolution
    # upsampling, and a half-width PatchGAN (at ndf 64 it is three quarters of a step's
    # FLOPs). Measured on DRIVE at equal training images: the same segmentation utility as
    # the paper's shapes, without their checkerboard (docs/speed.md). The
    # paper's shapes are the "paper" preset (synthmed.presets).
    ngf: int = 32  # generator channels at the first level (pix2pix: 64)
    ndf: int = 32  # discriminator channels at the first level (pix2pix: 64)
    max_channels: int = 256  # generator channel cap (pix2pix: 8 * 64)
    depth: int = 0  # U-Net levels; 0 = down to 1x1 but at most 8 (pix2pix's U-Net-256)
    dropout: float = 0.5  # decoder dropout in the three innermost levels
    upsample: str = "resize"  # "resize" (no checkerboard), "bilinear" or "transpose" (paper)
    d_layers: int = 3  # PatchGAN strided layers; 3 gives the 70x70 receptive field
    num_d: int = 1  # PatchGANs at 1, 1/2, 1/4 ... of the resolution (pix2pixHD uses 2-3)
    coarse: int = 0  # refiner only: side of the coarse Stage I masks it brings to full size
    coarse_kind: str = "soft"  # refiner only: "soft" or "distance" (models.refiner.coarse_field)
    coarse_clip: float = 8.0  # refiner only, distance maps: clip outside vessels (GeometryConfig)
    # Length of a per-image style code z given to the generator as constant input channels
    # (BicycleGAN's cVAE-GAN: while training, z is encoded from the real image; sampling draws
    # z from a Gaussian fitted to the training images' codes, see UNetGenerator). 0 = off:
    # dropout is then pix2pix's only noise.
    style_dim: int = 0

    def levels(self) -> int:
        """Number of U-Net levels for this resolution."""
        return self.depth or min(8, int(math.log2(self.resolution)))


class _Level(nn.Module):
    """One U-Net level: down, the inner levels, up, concatenated with its input (skip)."""

    def __init__(self, cfg: TextureConfig, i: int, inner: nn.Module | None, cin: int):
        super().__init__()
        outermost, innermost = i == 0, inner is None
        c = min(cfg.max_channels, cfg.ngf * 2**i)
        c_inner_out = c if innermost else 2 * c  # the inner level returns cat(skip, up)
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(cin, c, 4, 2, 1))
        if not (outermost or innermost):  # pix2pix: no norm at the ends of the encoder
            down.append(nn.InstanceNorm2d(c, affine=True))
        cout = cfg.out_channels if outermost else cin
        up: list[nn.Module] = [nn.ReLU(True), _up(c_inner_out, cout, cfg.upsample)]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(nn.InstanceNorm2d(cout, affine=True))
            if cfg.dropout > 0 and i >= cfg.levels() - 4 and not innermost:
                up.append(nn.Dropout(cfg.dropout))
        self.outermost = outermost
        self.down, self.inner, self.up = nn.Sequential(*down), inner, nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.inner is not None:
            y = self.inner(y)
        y = self.up(y)
        return y if self.outermost else torch.cat([x, y], 1)


class UNetGenerator(nn.Module):
    """Condition (N, in_channels, H, W) in [-1, 1] -> image (N, out_channels, H, W) in [-1, 1].

    H and W must be multiples of 2**levels.
    """

    def __init__(self, cfg: TextureConfig):
        super().__init__()
        self.cfg = cfg
        n = cfg.levels()
        block: nn.Module | None = None
        for i in reversed(range(n)):
            first = cfg.in_channels + cfg.style_dim
            cin = first if i == 0 else min(cfg.max_channels, cfg.ngf * 2 ** (i - 1))
            block = _Level(cfg, i, block, cin)
        self.net = block
        self.apply(dcgan_init)
        if cfg.coarse:  # a refiner keeps the field-of-view template of its training masks
            self.register_buffer("fov", torch.ones(1, 1, cfg.resolution, cfg.resolution))
        if cfg.style_dim:
            # The distribution sampling draws style codes from: mean + scale @ N(0, I). The
            # KL term alone leaves the training images' codes far from N(0, 1) (measured:
            # one coordinate centred at 1.2, others with spread 0.3), and codes drawn from
            # N(0, 1) rendered colours unlike any photo (intensity KL 0.70, 3.3x the
            # real-vs-real floor; 0.16 with the fitted Gaussian). Training fits it
            # (training/texture.py); N(0, 1) for models saved without it.
            self.register_buffer("style_mean", torch.zeros(cfg.style_dim))
            self.register_buffer("style_scale", torch.eye(cfg.style_dim))

    def forward(self, mask: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """``style`` (N, style_dim): the style codes; None = the sampling prior's mean."""
        if self.cfg.style_dim:
            n, _, h, w = mask.shape
            if style is None:
                style = self.style_mean.expand(n, -1)
            planes = style.to(mask.dtype)[:, :, None, None].expand(n, -1, h, w)
            mask = torch.cat([mask, planes], 1)
        return self.net(mask)

    def random_style(self, n: int, device: torch.device) -> torch.Tensor | None:
        """``n`` style codes from the sampling prior (global RNG), or None without a style."""
        if not self.cfg.style_dim:
            return None
        eps = torch.randn(n, self.cfg.style_dim, device=device)
        return self.style_mean.float() + eps @ self.style_scale.float().T

    @torch.no_grad()
    def set_style_prior(self, codes: torch.Tensor, variances: torch.Tensor) -> None:
        """Fit the sampling prior to the training images' style codes: the Gaussian with the
        mean and covariance of the aggregate posterior (codes (N, style_dim): the encoder's
        means; variances (N, style_dim): its variances)."""
        codes, variances = codes.float(), variances.float()
        cov = torch.cov(codes.T).reshape(self.cfg.style_dim, -1) if len(codes) > 1 else 0
        cov = cov + torch.diag(variances.mean(0))
        jitter = 1e-6 * torch.eye(self.cfg.style_dim, device=cov.device)
        self.style_mean.copy_(codes.mean(0))
        self.style_scale.copy_(torch.linalg.cholesky(cov + jitter))


class StyleEncoder(nn.Module):
    """Image (N, C, H, W) in [-1, 1] -> mean and log-variance (N, style_dim) of its style code.

    Strided convolutions and a global average, so any crop size works; used only while
    training (not exported): it makes the generator's z carry what differs between photos.
    """

    def __init__(self, cfg: TextureConfig, layers: int = 5):
        super().__init__()
        convs: list[nn.Module] = []
        c_in = cfg.out_channels
        for i in range(layers):
            c = min(cfg.max_channels, cfg.ndf * 2**i)
            convs += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            c_in = c
        self.convs = nn.Sequential(*convs)
        self.head = nn.Linear(c_in, 2 * cfg.style_dim)
        self.apply(dcgan_init)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.convs(image).mean((2, 3))).chunk(2, 1)
        return mu, logvar.clamp(-10, 10)


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale discriminator: the same PatchGAN design applied to the input
    and to 2x, 4x ... average-pooled copies of it; the coarse ones judge global structure.

    (MONAI's MultiScalePatchDiscriminator deepens each scale instead of downsampling.)
    Returns one MONAI feature list (logits last) per scale.
    """

    def __init__(self, cfg: TextureConfig):
        super().__init__()
        self.scales = nn.ModuleList(_patchgan(cfg) for _ in range(cfg.num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(d(x))
        return out


def patch_discriminator(cfg: TextureConfig) -> nn.Module:
    """The 70x70 PatchGAN over cat(condition, image) (MONAI's: returns its feature list,
    logits last), or with ``cfg.num_d`` > 1 the multi-scale one (a list of such lists)."""
    return MultiScaleDiscriminator(cfg) if cfg.num_d > 1 else _patchgan(cfg)


def mask_discriminator(cfg: TextureConfig) -> nn.Module:
    """An unconditional 70x70 PatchGAN over the generated output alone (the refiner's
    adaptation to the DCGAN's coarse masks, which have no paired target to condition on)."""
    return _patchgan(cfg, cfg.out_channels)


def _patchgan(cfg: TextureConfig, in_channels: int | None = None) -> PatchDiscriminator:
    """One MONAI PatchGAN of ``cfg``'s width and depth, DCGAN-initialised."""
    # Imported here: ``import monai`` loads every MONAI subpackage (its losses included,
    # seconds on a CPU), and only training builds discriminators; sampling needs none.
    from monai.networks.nets import PatchDiscriminator

    d = PatchDiscriminator(
        spatial_dims=2,
        channels=cfg.ndf,
        in_channels=in_channels or cfg.in_channels + cfg.out_channels,
        out_channels=1,
        num_layers_d=cfg.d_layers,
        norm="INSTANCE",  # batch-size independent; SyncBatchNorm is GPU-only
    )
    d.apply(dcgan_init)
    return d
