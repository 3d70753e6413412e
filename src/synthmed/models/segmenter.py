"""The vessel segmenter and its training recipe: a MONAI U-Net trained on patches with Dice +
cross-entropy.

Two layers train it: the evaluation (``synthmed.evaluation.utility``: one segmenter per arm
and seed, scored on held-out real images) and Stage II's training (``synthmed.training.judge``:
a frozen segmenter whose reading of the generated images is a loss). It lives here, below
both, so that training imports no evaluation code and the two use one recipe.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet, UNet
from torch import nn
from tqdm import tqdm

from synthmed.data.prepared import PreparedDataset
from synthmed.device import pick_device
from synthmed.errors import UserError


@dataclass
class SegmentationRecipe:
    """How every arm's segmenter is trained: identical across arms, so only the data differs."""

    steps: int = 3000  # optimiser steps: the budget, equal for every arm
    batch_size: int = 8  # patches per step
    patch: int = 64  # training patch side and inference window, working-resolution pixels
    lr: float = 1e-3  # Adam learning rate
    network: str = "basicunet"  # MONAI "basicunet" or "unet"
    features: tuple[int, ...] = (16, 16, 32, 64, 128, 16)  # BasicUNet features / UNet channels
    overlap: float = 0.5  # sliding-window overlap at inference
    threshold: float = 0.5  # vessel probability cut for F1, accuracy, sensitivity, specificity
    # Brightness and contrast jitter of the training patches (jitter_intensity), on top of the
    # flips and 90-degree rotations every patch gets: 0 = off (vessels), None = by the mask
    # kind, resolved by the evaluation (compact objects: COMPACT_INTENSITY).
    intensity: float | None = None


COMPACT_INTENSITY = 0.2  # microscopy: +-20 % brightness, contrast x 0.8-1.2


def recipe_for_kind(recipe: SegmentationRecipe, kind: str) -> SegmentationRecipe:
    """``recipe`` with its intensity jitter resolved for masks of ``kind`` (when None): none
    for "vessel" (the recipe DRIVE's figures were taken with), :data:`COMPACT_INTENSITY` for
    "compact" (microscopy: the illumination varies from image to image)."""
    if recipe.intensity is not None:
        return recipe
    return replace(recipe, intensity=COMPACT_INTENSITY if kind == "compact" else 0.0)


def budget_recipe(budget: str | int, res: int) -> SegmentationRecipe:
    """The recipe for a named budget (or a number of steps) at working resolution ``res``.

    * "smoke": 120 steps, enough to learn the phantom's vessels (F1 ~0.7 on its training
      masks at 64 px, ~15 s on one busy core); for tests and demos.
    * "cpu": 3,000 steps of 8 patches of 64 px, fewer for larger patches so that the pixels
      seen stay the same (1,333 of 96 px at 256, 750 of 128 px from 512): ~5 min per arm and
      seed on one core of this machine (measured 10.5 steps/s at 64 px, 4.4 at 256 px).
    * "full": 20,000 steps of 16 patches, an overnight GPU run.
    * an integer: that many steps, otherwise the "cpu" recipe.
    """
    # Patches of 64 px see a vessel's surroundings at <= 128 px; larger images need more context.
    patch = min(64, res) if res <= 128 else 96 if res <= 256 else 128
    cpu_steps = round(3000 * (64 / patch) ** 2)  # about the same CPU time at every resolution
    if isinstance(budget, str) and budget.isdigit():
        budget = int(budget)
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget < 1:
            raise UserError(f"--budget {budget}: need at least one step")
        return SegmentationRecipe(steps=budget, patch=patch)
    if budget == "smoke":
        return SegmentationRecipe(steps=120, batch_size=8, patch=patch, lr=3e-3)
    if budget == "cpu":
        return SegmentationRecipe(steps=cpu_steps, patch=patch)
    if budget == "full":
        return SegmentationRecipe(steps=20_000, batch_size=16, patch=patch)
    raise UserError(f"--budget {budget}: use smoke, cpu, full or a number of steps")


def build_network(recipe: SegmentationRecipe, in_channels: int) -> nn.Module:
    """The segmenter: a MONAI U-Net with two output channels (background, vessel)."""
    if recipe.network == "basicunet":
        return BasicUNet(2, in_channels, 2, features=tuple(recipe.features))
    if recipe.network == "unet":
        strides = (2,) * (len(recipe.features) - 1)
        return UNet(2, in_channels, 2, channels=recipe.features, strides=strides, num_res_units=2)
    raise UserError(f"network {recipe.network!r}: use basicunet or unet")


def check_compatible(sets: Sequence[PreparedDataset], what: str) -> None:
    """Refuse sets a single network cannot train or be tested on together."""
    if any(len(s) == 0 for s in sets):
        raise UserError(f"{what}: empty dataset")
    res = {s.resolution for s in sets}
    channels = {s.channels for s in sets}
    if len(res) > 1:
        raise UserError(f"{what}: resolutions differ ({', '.join(map(str, sorted(res)))} px)")
    if len(channels) > 1:
        raise UserError(f"{what}: channel counts differ ({', '.join(map(str, sorted(channels)))})")


def _dihedral(t: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Per sample, one of the 8 flips / 90-degree rotations: transpose, then flip each axis."""
    pick = [b.view(-1, 1, 1, 1) for b in bits]
    t = torch.where(pick[0], t.transpose(-1, -2), t)
    t = torch.where(pick[1], t.flip(-1), t)
    return torch.where(pick[2], t.flip(-2), t)


def jitter_intensity(x: torch.Tensor, amount: float, rng: torch.Generator) -> torch.Tensor:
    """Per patch, brightness and contrast jitter of float images (B, C, p, p) in [0, 1]:
    contrast x U(1 - amount, 1 + amount) about the patch's mean, then brightness
    + U(-amount, amount); the same for every channel (no hue shift), clamped to [0, 1]."""
    draws = torch.rand((2, x.shape[0], 1, 1, 1), generator=rng).to(x.device) * 2 - 1
    contrast, brightness = 1 + amount * draws[0], amount * draws[1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).clamp(0, 1)


def sample_patches(
    images: list[torch.Tensor],
    masks: list[torch.Tensor],
    batch: int,
    patch: int,
    rng: torch.Generator,
    weights: Sequence[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of augmented patches: uint8 images (B, C, p, p) and masks (B, 1, p, p).

    Each patch first picks a set (with probabilities ``weights``; equal when None), then an
    image and a position uniformly. So in the real + synthetic arm the real images' share of
    the patches is their set's weight, whatever the number of synthetic pairs, and the
    comparison does not hinge on the synthetic set's size.
    """
    if weights is None:
        which = torch.randint(len(images), (batch,), generator=rng)
    else:
        p = torch.tensor(weights, dtype=torch.float64)
        which = torch.multinomial(p, batch, replacement=True, generator=rng)
    u = torch.rand((3, batch), generator=rng, dtype=torch.float64)
    bits = torch.rand((3, batch), generator=rng) < 0.5
    span = images[0].shape[-1] - patch + 1
    xs, ys = [], []
    for k, s in enumerate(which.tolist()):
        i = int(u[0, k] * len(images[s]))
        top, left = int(u[1, k] * span), int(u[2, k] * span)
        xs.append(images[s][i, :, top : top + patch, left : left + patch])
        ys.append(masks[s][i, :, top : top + patch, left : left + patch])
    return _dihedral(torch.stack(xs), bits), _dihedral(torch.stack(ys), bits)


def train_segmenter(
    train_sets: Sequence[PreparedDataset],
    recipe: SegmentationRecipe,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "segmenter",
    weights: Sequence[float] | None = None,
) -> nn.Module:
    """Train a segmenter on patches of ``train_sets``; deterministic given ``seed`` (on CPU).

    ``weights``: the share of patches drawn from each set (equal when None).

    Input is every channel scaled to [0, 1]; the loss is Dice + cross-entropy (MONAI's
    DiceCELoss), optimised with Adam; with ``recipe.intensity`` the patches' brightness and
    contrast are jittered too (:func:`jitter_intensity`). Returns the network in eval mode.
    """
    check_compatible(train_sets, "training sets")
    device = pick_device(str(device))
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching callers
        torch.manual_seed(seed)
        model = build_network(recipe, train_sets[0].channels).to(device)
    rng = torch.Generator().manual_seed(seed)
    images = [torch.from_numpy(s.images).permute(0, 3, 1, 2) for s in train_sets]
    masks = [torch.from_numpy(s.masks)[:, None] for s in train_sets]
    patch = min(recipe.patch, train_sets[0].resolution)
    depth = 4 if recipe.network == "basicunet" else len(recipe.features) - 1
    if patch % 2**depth:  # every down-sampling halves the patch, which must stay whole
        raise UserError(f"patch {patch}: must be a multiple of {2**depth} for this network")
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    model.train()
    start, smooth = time.perf_counter(), None
    bar = tqdm(range(recipe.steps), desc=desc, unit="step", disable=not progress, leave=False)
    for step in bar:
        x, y = sample_patches(images, masks, recipe.batch_size, patch, rng, weights)
        x, y = x.to(device).float() / 255.0, y.to(device).long()
        if recipe.intensity:  # draws only when on: the vessel recipe's stream is unchanged
            x = jitter_intensity(x, recipe.intensity, rng)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if progress and (step % 10 == 0 or step == recipe.steps - 1):  # .item() syncs a GPU
            smooth = loss.item() if smooth is None else 0.7 * smooth + 0.3 * loss.item()
            rate = (step + 1) * recipe.batch_size / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{smooth:.3f}", img_s=f"{rate:.1f}")
    return model.eval()
