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
  an orientation);
* ``brightness``, ``contrast``: brightness shift (+-0.2 of the range) and contrast factor
  (0.7-1.3) of the image channels, the same for every channel (no hue shift; grayscale
  images too, where ``color`` does nothing), never of masks;
* ``dihedral``: not a DiffAugment operation but data augmentation: every real training sample
  (a mask, or a mask and its image together) is drawn in one of the 8 orientations of the
  square (90-degree rotations and flips), for images without an orientation (microscopy).

Named policies: ``microscopy`` = :data:`MICROSCOPY` (90-degree rotations and flips of the
training pairs; brightness and contrast for the discriminator: masks stay binary and aligned);
``auto`` (:func:`resolve_policy`, given the data) = ``microscopy`` for compact masks, the
preset's own policy for vessels. Runs record the operations, not the name.

Geometric operations transform all channels of a sample alike, so a (condition, image) pair
stays aligned. DiffAugment's randomness comes from torch's global generator, which checkpoints
save and ``--resume`` restores; ``dihedral`` draws from the batch generator.
"""

from __future__ import annotations

from collections.abc import Callable

import kornia.augmentation as K
import torch

from synthmed.errors import UserError

OPERATIONS = (
    "translation",
    "cutout",
    "color",
    "flip",
    "rot90",
    "brightness",
    "contrast",
    "dihedral",
)
MICROSCOPY = "dihedral,brightness,contrast"  # the named policy "microscopy"
NAMED = {"microscopy": MICROSCOPY}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); "" -> (); a named policy
    ("microscopy") -> its operations; unknown names (and "auto", which needs the data:
    :func:`resolve_policy`) fail."""
    names = tuple(p.strip() for p in NAMED.get(policy, policy).split(",") if p.strip())
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        choices = ", ".join([*OPERATIONS, *NAMED, "auto"])
        raise UserError(f"--augment {policy}: unknown {', '.join(unknown)}; use some of {choices}")
    return names


def resolve_policy(policy: str, mask_kind: str, preset_policy: str = "") -> str:
    """The policy a run records: ``auto`` -> :data:`MICROSCOPY` for ``mask_kind`` "compact"
    (blob-like objects: microscopy has no up or left), else ``preset_policy`` (the preset's
    own: DRIVE's runs are unchanged); a named policy -> its operations; anything else as
    given (so that existing runs record what they always did)."""
    if policy == "auto":
        return MICROSCOPY if mask_kind == "compact" else preset_policy
    return NAMED.get(policy, policy)


def random_dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each sample of ``x`` (N, C, S, S) in one of the 8 orientations of the square, drawn
    from ``gen``: transposed, then flipped along each axis, each with probability 1/2. All
    channels of a sample alike, so masks stay binary and aligned with their images."""
    bits = (torch.rand((3, x.shape[0]), generator=gen) < 0.5).to(x.device)
    pick = [b.view(-1, 1, 1, 1) for b in bits]
    x = torch.where(pick[0], x.transpose(-1, -2), x)
    x = torch.where(pick[1], x.flip(-1), x)
    return torch.where(pick[2], x.flip(-2), x)


def _intensity_ops(names: tuple[str, ...]) -> list[K.IntensityAugmentationBase2D]:
    """The ``brightness`` and ``contrast`` operations of a policy, in that order."""
    ops: list[K.IntensityAugmentationBase2D] = []
    if "brightness" in names:
        ops.append(K.RandomBrightness(brightness=(0.8, 1.2), p=1.0))  # adds -0.2 ... 0.2
    if "contrast" in names:
        ops.append(K.RandomContrast(contrast=(0.7, 1.3), p=1.0))
    return ops


def _on_channels(
    x: torch.Tensor, channels: slice, ops: list[Callable[[torch.Tensor], torch.Tensor]]
) -> torch.Tensor:
    """``x`` with ``ops`` applied, in [0, 1] as kornia works, to ``channels`` only."""
    part = (x[:, channels] + 1) / 2
    for op in ops:
        part = op(part)
    return torch.cat([x[:, : channels.start], part * 2 - 1, x[:, channels.stop :]], 1)


def diff_augment(
    policy: str, color_channels: slice | None = None, intensity_channels: slice | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function (N, C, H, W) in [-1, 1] -> the same, augmented, differentiable.

    Args:
        policy: comma-separated operations (see the module docstring); "" = identity.
        color_channels: the channels ``color`` jitters (an RGB image inside a pair); None
            means colour jitter does not apply (masks, grayscale images).
        intensity_channels: the channels ``brightness`` and ``contrast`` change (an image
            inside a pair, grayscale or colour); None: they do not apply (masks).
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
    intensity = _intensity_ops(names) if intensity_channels is not None else []

    def augment(x: torch.Tensor) -> torch.Tensor:
        if jitter is not None:
            rgb = jitter((x[:, color_channels] + 1) / 2) * 2 - 1  # kornia works in [0, 1]
            head, tail = x[:, : color_channels.start], x[:, color_channels.stop :]
            x = torch.cat([head, rgb, tail], 1)
        if intensity:
            x = _on_channels(x, intensity_channels, intensity)
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
