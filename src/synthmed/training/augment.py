"""Differentiable augmentation of everything a discriminator sees (DiffAugment, Zhao et al.
2020), with kornia.

With 20 training images a discriminator memorises the real set within a few hundred steps;
augmenting real *and* generated samples the same way, differentiably, lets it see more
variety without the generator learning the augmentations. Operations (``--augment``, a comma
list):

* ``translation``: shift by up to 1/8 of the side (edges repeated: they are background);
* ``cutout``: one square of half the side set to 0 (mid-grey in [-1, 1]);
* ``color``: brightness, contrast and saturation jitter, image channels only;
* ``flip``: horizontal flip with probability 1/2;
* ``rot90``: rotation by a random multiple of 90 degrees (for masks; fundus photographs have
  an orientation).

Geometric operations transform all channels of a sample alike, so a (condition, image) pair
stays aligned. Randomness comes from torch's global generator, which checkpoints save and
``--resume`` restores.
"""

from __future__ import annotations

from collections.abc import Callable

import kornia.augmentation as K
import torch

from synthmed.errors import UserError

OPERATIONS = ("translation", "cutout", "color", "flip", "rot90")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); "" -> (); unknown names fail."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        raise UserError(
            f"--augment {policy}: unknown {', '.join(unknown)}; use some of {', '.join(OPERATIONS)}"
        )
    return names


def diff_augment(
    policy: str, color_channels: slice | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function (N, C, H, W) in [-1, 1] -> the same, augmented, differentiable.

    Args:
        policy: comma-separated operations (see the module docstring); "" = identity.
        color_channels: the channels ``color`` jitters (an RGB image inside a pair); None
            means colour jitter does not apply (masks, grayscale images).
    """
    names = parse_policy(policy)
    geometric = []
    if "flip" in names:
        geometric.append(K.RandomHorizontalFlip(p=0.5))
    if "rot90" in names:
        geometric.append(K.RandomRotation90(times=(0, 3), p=1.0))
    if "translation" in names:
        geometric.append(
            K.RandomAffine(degrees=0, translate=(0.125, 0.125), p=1.0, padding_mode="border")
        )
    cutout = (
        K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=1.0)
        if "cutout" in names
        else None
    )
    jitter = (
        K.ColorJiggle(brightness=0.2, contrast=0.3, saturation=0.3, p=1.0)
        if "color" in names and color_channels is not None
        else None
    )

    def augment(x: torch.Tensor) -> torch.Tensor:
        if jitter is not None:
            rgb = jitter((x[:, color_channels] + 1) / 2) * 2 - 1  # kornia works in [0, 1]
            head, tail = x[:, : color_channels.start], x[:, color_channels.stop :]
            x = torch.cat([head, rgb, tail], 1)
        for op in geometric:
            x = op(x)
        if cutout is not None:
            x = cutout(x)
        return x

    return augment


def augment_alike(
    augment: Callable[[torch.Tensor], torch.Tensor], *xs: torch.Tensor
) -> list[torch.Tensor]:
    """Apply ``augment`` to each of ``xs`` with the same random draws (the same shift, cutout
    and jitter for item i of every tensor), e.g. to compare a discriminator's features of a
    real and a generated pair at the same places (feature matching)."""
    cuda = torch.cuda.is_available()
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if cuda else None
    out = []
    for x in xs:
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        out.append(augment(x))
    return out
