"""Stage I: a DCGAN that generates vessel masks from noise (Radford et al. 2016; paper Sec. 3.1).

The generator maps z to a 4x4 feature map, then doubles the resolution with
(transposed or resize-then-convolve) convolutions + batch norm + ReLU until the working
resolution, ending in tanh. The discriminator halves the resolution with strided
convolutions + batch norm + LeakyReLU down to 4x4 and outputs one logit per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from synthmed.models.upsample import NearestUpConv


@dataclass
class GeometryConfig:
    """Architecture of Stage I. Saved as ``config.json`` beside the weights."""

    resolution: int = 64  # output side in pixels, power of two >= 8
    channels: int = 1  # 1 = a vessel mask (Stage I); C + 1 = image and mask (single-GAN baseline)
    z_dim: int = 128  # latent size
    ngf: int = 32  # generator channels at full resolution (doubling per halving)
    ndf: int = 32  # discriminator channels at full resolution
    max_channels: int = 512  # cap on channels at low resolutions
    # "resize" (nearest x2 + 3x3 conv), "bilinear" (bilinear x2 + 3x3 conv) or "transpose"
    # (the paper's DCGAN). Resize is the default: transposed convolutions left a
    # checkerboard of isolated vessel pixels.
    upsample: str = "resize"
    # Group size of the discriminator's minibatch standard deviation feature (ProGAN); 0 =
    # off. Lets D see that a batch of fakes is too alike. Measured on DRIVE at 128 px, it did
    # not help: 200 coarse masks had a median nearest-neighbour Dice of 0.51 among
    # themselves with and without it (real masks: 0.21).
    minibatch_std: int = 0
    # Below the data's resolution: what the coarse masks encode, "soft" (area-averaged) or
    # "distance" (a clipped signed distance map; models.refiner.coarse_field). Its refiner
    # must be trained on the same kind.
    coarse_kind: str = "soft"
    # Distance maps only: how far outside a vessel, in full-resolution pixels, the distance
    # still counts before it is clipped (models.refiner.DISTANCE_OUT = 8 before it was a
    # setting). A wider clip makes wider valleys; the refiner must use the same clip.
    coarse_clip: float = 8.0
    # Side of the discriminator's extra patch head (0 = off): one more logit per cell of its
    # feature map of this side, judged like the whole-image logit. A whole-image logit rates
    # the layout; the patch logits rate every stretch of vessel on its own, where a break in
    # a thin vessel is a local flaw (at 128 px, side 16 sees 22 px windows).
    patch_side: int = 0
    # Learn every mask with its optic disc on the right (training masks whose disc is on the
    # left are mirrored, and not flipped at random), and mirror the samples of latents with
    # z[0] < 0: half the samples, the left eyes. With random flips instead, the layouts are
    # two modes (disc left, disc right), and a DCGAN's samples between them are nets of
    # vessels without a disc (docs/drive512.md, "Where Stage I's trees start").
    canonical_side: bool = False

    def channels_at(self, base: int, side: int) -> int:
        """Channel count at feature-map side ``side``: doubles each time the side halves."""
        return min(self.max_channels, base * self.resolution // side)


def _levels(resolution: int) -> int:
    n = int(math.log2(resolution))
    if 2**n != resolution or resolution < 8:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return n - 2  # number of doublings from 4x4


def _up(cin: int, cout: int, mode: str) -> nn.Module:
    if mode == "transpose":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
    if mode == "resize":
        return NearestUpConv(cin, cout)
    if mode == "bilinear":  # smoother than nearest: no blocky 2 x 2 phases to tile
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
        )
    raise ValueError(f"upsample must be 'transpose', 'resize' or 'bilinear', got {mode!r}")


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    # Batch statistics at train *and* sample time: running averages of a GAN generator
    # lag behind its weights, and eval-mode DCGAN samples are often garbage.
    return nn.BatchNorm2d(channels, track_running_stats=False)


class MaskGenerator(nn.Module):
    """z (N, z_dim) -> mask in [-1, 1], shape (N, channels, R, R); the mask is the last channel."""

    def __init__(self, cfg: GeometryConfig):
        super().__init__()
        self.cfg = cfg
        c4 = cfg.channels_at(cfg.ngf, 4)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim, c4, 4, 1, 0, bias=False),
            _batch_norm(c4),
            nn.ReLU(True),
        ]
        side = 4
        for i in range(_levels(cfg.resolution)):
            last = i == _levels(cfg.resolution) - 1
            cin, side = cfg.channels_at(cfg.ngf, side), side * 2
            cout = cfg.channels if last else cfg.channels_at(cfg.ngf, side)
            layers.append(_up(cin, cout, cfg.upsample))
            layers += [nn.Tanh()] if last else [_batch_norm(cout), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        # Field-of-view template learned from the training masks: generated vessels are
        # cut to it, since vessels outside the camera's field of view cannot exist.
        self.register_buffer("fov", torch.ones(1, 1, cfg.resolution, cfg.resolution))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The network's output as trained (with ``canonical_side``: every disc on the right)."""
        return self.net(z[:, :, None, None])

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Samples for use: the output, with ``canonical_side`` mirrored where z[0] < 0."""
        x = self(z)
        if not self.cfg.canonical_side:
            return x
        return torch.where((z[:, 0] < 0).view(-1, 1, 1, 1), x.flip(-1), x)

    def binary_masks(self, z: torch.Tensor, edge: float = 0.0) -> torch.Tensor:
        """Masks cut at ``edge`` (tanh output), limited to the field of view: (N, 1, R, R) bool."""
        return (self.sample(z)[:, -1:] > edge) & (self.fov > 0.5)


class MaskDiscriminator(nn.Module):
    """Mask (N, channels, R, R) in [-1, 1] -> one real/fake logit per image, shape (N,);
    ``judge`` adds the patch head's logits when ``cfg.patch_side`` is set."""

    def __init__(self, cfg: GeometryConfig):
        super().__init__()
        p = cfg.patch_side
        if p and not (p & (p - 1) == 0 and 8 <= p <= cfg.resolution // 2):
            raise ValueError(
                f"patch_side {p}: a power of two from 8 to half the resolution "
                f"({cfg.resolution // 2}), or 0 for none"
            )
        layers: list[nn.Module] = []
        side, cin = cfg.resolution, cfg.channels
        self.tap = -1  # index of the layer whose output the patch head reads
        for i in range(_levels(cfg.resolution)):
            cout = cfg.channels_at(cfg.ndf, side)
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i > 0:  # DCGAN: no batch norm on the discriminator's input layer
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            side, cin = side // 2, cout
            if side == p:
                self.tap, tapped = len(layers) - 1, cout
        if cfg.minibatch_std:
            layers.append(MinibatchStd(cfg.minibatch_std))
            cin += 1
        layers.append(nn.Conv2d(cin, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if p:  # made last, so the trunk starts from the same weights as without the head
            self.patch = nn.Conv2d(tapped, 1, 3, 1, 1)
            dcgan_init(self.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge(x)[0]

    def judge(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every head: the whole image's (N,), then with a patch head one per
        patch (N, P, P)."""
        patch = None
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i == self.tap:
                patch = self.patch(x)[:, 0]
        return [x.flatten()] if patch is None else [x.flatten(), patch]


class MinibatchStd(nn.Module):
    """Append one feature map: the standard deviation of the features across groups of
    ``group`` samples, averaged (Karras et al. 2018, ProGAN). A batch of near-identical
    fakes has a low value that real batches do not, so collapse is penalised."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(self.group, n)  # the largest group size that divides the batch
        y = x.float().reshape(g, n // g, c, h, w)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # (n // g,)
        feature = std.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)
        return torch.cat([x, feature], 1)


def dcgan_init(m: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
