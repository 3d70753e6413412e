"""Downstream utility: does a segmenter trained on synthetic pairs work on real images?

After Guibas et al. 2017 (a U-Net trained on synthetic DRIVE-like pairs scored F1 0.8877
against 0.8988 when trained on the real pairs): train the same segmentation network with
the same recipe and step budget on (a) the real training pairs, (b) the synthetic pairs and
(c) both, then score each on held-out real images with the DRIVE protocol
(:mod:`synthmed.evaluation.protocol`). Compare the arms as ratios, not raw numbers across
papers (FIELD_NOTES.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet, UNet
from torch import nn
from tqdm import tqdm

from synthmed.data.prepared import PreparedDataset
from synthmed.device import pick_device
from synthmed.errors import UserError
from synthmed.evaluation.protocol import load_native_truths, score_images

ARMS = ("real", "synthetic", "real+synthetic")


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


def _check_compatible(sets: Sequence[PreparedDataset], what: str) -> None:
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
    DiceCELoss), optimised with Adam. Returns the network in eval mode.
    """
    _check_compatible(train_sets, "training sets")
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
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if progress and (step % 10 == 0 or step == recipe.steps - 1):  # .item() syncs a GPU
            smooth = loss.item() if smooth is None else 0.7 * smooth + 0.3 * loss.item()
            rate = (step + 1) * recipe.batch_size / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{smooth:.3f}", img_s=f"{rate:.1f}")
    return model.eval()


@torch.no_grad()
def predict(
    model: nn.Module,
    data: PreparedDataset,
    device: str | torch.device = "auto",
    roi: int = 64,
    overlap: float = 0.5,
    chunk: int = 4,
) -> np.ndarray:
    """Vessel probabilities (N, R, R) for every whole image of ``data``, by sliding window."""
    device = pick_device(str(device))
    model = model.to(device).eval()
    roi = min(roi, data.resolution)
    out = []
    for i in range(0, len(data), chunk):
        x = torch.from_numpy(data.images[i : i + chunk]).permute(0, 3, 1, 2)
        x = x.to(device).float() / 255.0
        # Blend probabilities, not logits, where windows overlap.
        prob = sliding_window_inference(
            x, (roi, roi), 8, lambda p: torch.softmax(model(p), 1), overlap=overlap
        )
        out.append(prob[:, 1].cpu().numpy())
    return np.concatenate(out).astype(np.float32)


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing.
def evaluate_arm(
    train_sets: Sequence[PreparedDataset],
    test: PreparedDataset,
    recipe: SegmentationRecipe,
    seeds: Sequence[int] = (0,),
    device: str | torch.device = "auto",
    at_native: bool = True,
    progress: bool = True,
    name: str = "arm",
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Train on ``train_sets`` and score on ``test`` once per seed; mean and std over seeds.

    ``weights``: the share of training patches drawn from each set (equal when None).

    Scores follow the DRIVE protocol at native size when ``test`` records its original files
    (and ``at_native``), otherwise they are taken at the working resolution inside the
    prepared FOV (phantom data). ``seconds`` is the wall time of one seed's train + test;
    ``image_counts`` holds each test image's [tp, fp, fn], for :func:`f1_gain_interval`.
    """
    _check_compatible([*train_sets, test], f"arm {name}")
    device = pick_device(str(device))
    native = load_native_truths(test) if at_native else None
    per_seed = []
    for seed in seeds:
        start = time.perf_counter()
        desc = f"{name} seed {seed}"
        model = train_segmenter(train_sets, recipe, seed, device, progress, desc, weights)
        prob = predict(model, test, device, recipe.patch, recipe.overlap)
        scores, counts = score_images(prob, test, native, recipe.threshold)
        seconds = time.perf_counter() - start
        counted = counts.tolist()  # as JSON: one [tp, fp, fn] per test image
        per_seed.append({"seed": seed, **scores, "seconds": seconds, "image_counts": counted})
    scalar = [k for k in per_seed[0] if k not in ("seed", "image_counts")]
    values = {k: np.array([r[k] for r in per_seed]) for k in scalar}
    mean = {k: float(v.mean()) for k, v in values.items()}
    ddof = 1 if len(per_seed) > 1 else 0  # sample std over seeds; 0 for a single seed
    std = {k: float(v.std(ddof=ddof)) for k, v in values.items()}
    scored_at = "working" if native is None else "native"
    sizes = [len(s) for s in train_sets]
    return dict(train_sizes=sizes, scored_at=scored_at, mean=mean, std=std, per_seed=per_seed)


def _pooled_f1(counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The pooled F1 of every seed on every draw: ``counts`` (seeds, images, 3) holds
    [tp, fp, fn]; ``draws`` (D, images) how often each image is taken. Returns (seeds, D)."""
    summed = np.einsum("di,sik->sdk", draws, counts.astype(np.float64))
    tp, fp, fn = summed[..., 0], summed[..., 1], summed[..., 2]
    return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)


def _seed_weights(rng: np.random.Generator, seeds: int, draws: int) -> np.ndarray:
    """(D, seeds) weights of one bootstrap over the seeds per draw: how often each seed is
    taken, divided by the number of seeds (so a row averages the seeds it took)."""
    picks = rng.integers(0, seeds, size=(draws, seeds))
    weights = np.zeros((draws, seeds))
    np.add.at(weights, (np.arange(draws)[:, None], picks), 1.0 / seeds)
    return weights


def _image_draws(rng: np.random.Generator, images: int, draws: int) -> np.ndarray:
    """(D, images) counts of one bootstrap over the test images per draw."""
    picks = rng.integers(0, images, size=(draws, images))
    taken = np.zeros((draws, images))
    np.add.at(taken, (np.arange(draws)[:, None], picks), 1)
    return taken


GAIN_DEFINITION = (
    "F1 gain = the arm's mean F1 over its seeds minus the real arm's. Its interval is a "
    "two-level bootstrap: each of {draws} draws resamples the {images} test images with "
    "replacement (the same images for both arms: paired) and, for each arm on its own, its "
    "{seeds} seeds with replacement; the interval is the central {level:.0%} of the draws' "
    "gains. The components hold one source fixed: 'test images only' keeps every seed, "
    "'seeds only' keeps every test image. With few seeds the seed part is itself uncertain."
)


def f1_gain_interval(
    arm: dict[str, Any], real: dict[str, Any], draws: int = 10_000, level: float = 0.95
) -> dict[str, Any] | None:
    """How far an arm's mean F1 is above the real arm's, with an interval that holds both
    sources of noise: which test images were held out, and how the segmenters' training
    happened to go (their seeds). See :data:`GAIN_DEFINITION`.

    Returns ``gain``, ``interval`` (both sources), ``components`` (``test_images_only``,
    ``seeds_only``: the interval with the other source held fixed), ``level``,
    ``share_of_bootstrap_draws_with_gain_above_0`` (a description of the draws, not a
    p-value) and ``definition``; None for results without per-image counts (written before
    they were kept).
    """
    try:
        a = np.array([r["image_counts"] for r in arm["per_seed"]])
        b = np.array([r["image_counts"] for r in real["per_seed"]])
    except KeyError:
        return None
    n = a.shape[1]
    rng = np.random.default_rng(0)  # fixed: the same report gives the same interval
    taken = _image_draws(rng, n, draws)
    wa, wb = _seed_weights(rng, len(a), draws), _seed_weights(rng, len(b), draws)
    fa, fb = _pooled_f1(a, taken), _pooled_f1(b, taken)  # (seeds, D)
    whole = np.ones((1, n))
    fa_whole, fb_whole = _pooled_f1(a, whole)[:, 0], _pooled_f1(b, whole)[:, 0]
    both = np.einsum("ds,sd->d", wa, fa) - np.einsum("ds,sd->d", wb, fb)
    images_only = fa.mean(0) - fb.mean(0)
    seeds_only = wa @ fa_whole - wb @ fb_whole
    q = [(1 - level) / 2, (1 + level) / 2]

    def interval(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.quantile(values, q)]

    return {
        "gain": float(fa_whole.mean() - fb_whole.mean()),
        "interval": interval(both),
        "components": {
            "test_images_only": interval(images_only),
            "seeds_only": interval(seeds_only),
        },
        "level": level,
        "share_of_bootstrap_draws_with_gain_above_0": float(np.mean(both > 0)),
        "definition": GAIN_DEFINITION.format(draws=draws, images=n, seeds=len(a), level=level),
        "method": f"two-level bootstrap over the {n} test images and the seeds, {draws} draws",
    }


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing.
def evaluate_utility(
    real_train: PreparedDataset,
    synthetic: PreparedDataset,
    real_test: PreparedDataset,
    recipe: SegmentationRecipe | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    device: str | torch.device = "auto",
    arms: Sequence[str] = ARMS,
    at_native: bool = True,
    progress: bool = True,
    real_subsets: Sequence[int] = (),
    synthetic_share: float = 0.5,
) -> dict[str, Any]:
    """Train one segmenter per arm and seed with the same recipe, test all on ``real_test``.

    Arms: "real" (``real_train``), "synthetic" (``synthetic``), "real+synthetic" (both; a
    ``synthetic_share`` of its training patches comes from the synthetic set, the rest from
    the real one). Same seed, same initialisation in every arm. The result holds
    the recipe, the seeds, each arm's mean / std / per-seed scores, and each arm's mean F1
    relative to the real arm's (when it ran).

    ``real_subsets``: for each K, one more arm "real (K of N)" trained on the first K real
    training images: the real arm's learning curve. If K < N images score as well as N, the
    segmenter is not short of data at this budget, and no added data, real or synthetic, can
    raise it: real + synthetic can only beat real at a budget where the curve still rises.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise UserError(f"arms {', '.join(unknown) or '(none)'}: use some of {', '.join(ARMS)}")
    if not seeds:
        raise UserError("seeds: need at least one")
    if not 0 < synthetic_share < 1:
        raise UserError(
            f"synthetic share {synthetic_share}: need a fraction between 0 and 1 (exclusive); "
            "the real and synthetic arms are the shares 0 and 1"
        )
    n_real = len(real_train)
    bad = [k for k in real_subsets if not 1 <= k < n_real]
    if bad:
        raise UserError(
            f"real subsets {', '.join(map(str, bad))}: need 1 <= K < {n_real} "
            "(the real training images)"
        )
    res = real_train.resolution
    if synthetic.resolution != res:
        raise UserError(
            f"synthetic data is {synthetic.resolution} px but the real data is {res} px; "
            "generate and prepare at one resolution"
        )
    _check_compatible([real_train, synthetic, real_test], "real and synthetic sets")
    recipe = recipe or budget_recipe("cpu", res)
    device = pick_device(str(device))
    both = [real_train, synthetic]
    sources = {"real": [real_train], "synthetic": [synthetic], "real+synthetic": both}
    for k in sorted(set(real_subsets)):
        sources[f"real ({k} of {n_real})"] = [real_train.subset(list(range(k)))]
    arms = [*arms, *(a for a in sources if a.startswith("real ("))]
    # Equal shares keep the draw of sample_patches' default (and earlier runs' numbers).
    mixed = None if synthetic_share == 0.5 else (1 - synthetic_share, synthetic_share)
    results = {}
    for arm in arms:
        weights = mixed if arm == "real+synthetic" else None
        results[arm] = evaluate_arm(
            sources[arm], real_test, recipe, seeds, device, at_native, progress, arm, weights
        )
    out: dict[str, Any] = {"recipe": dataclasses.asdict(recipe), "seeds": list(seeds)}
    out["synthetic_share"] = synthetic_share
    out.update(device=str(device), resolution=res, test_count=len(real_test), arms=results)
    if "real" in results:
        real_f1 = results["real"]["mean"]["f1"]
        nan = float("nan")
        relative = {a: r["mean"]["f1"] / real_f1 if real_f1 else nan for a, r in results.items()}
        out["f1_relative_to_real"] = relative
        gains = {a: f1_gain_interval(r, results["real"]) for a, r in results.items() if a != "real"}
        out["f1_gain_over_real"] = gains
    return out
