"""Downstream utility: does a segmenter trained on synthetic pairs work on real images?

After Guibas et al. 2017 (a U-Net trained on synthetic DRIVE-like pairs scored F1 0.8877
against 0.8988 when trained on the real pairs): train the same segmentation network with
the same recipe and step budget on (a) the real training pairs, (b) the synthetic pairs and
(c) both, then score each on held-out real images with the DRIVE protocol
(:mod:`synthmed.evaluation.protocol`). Compare the arms as ratios, not raw numbers across
papers (FIELD_NOTES.md).

The segmenter and its training recipe are :mod:`synthmed.models.segmenter`'s (Stage II's
vessel judge trains the same one); this module runs the experiment and scores it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from synthmed.data.prepared import PreparedDataset
from synthmed.data.profile import MASK_KINDS, mask_kind_of
from synthmed.device import pick_device
from synthmed.errors import UserError
from synthmed.evaluation.protocol import (
    OVERLAP_DEFINITION,
    OVERLAP_SCORES,
    load_native_truths,
    score_images,
)
from synthmed.models.segmenter import (
    SegmentationRecipe,
    budget_recipe,
    check_compatible,
    recipe_for_kind,
    train_segmenter,
)

ARMS = ("real", "synthetic", "real+synthetic")


@dataclass(frozen=True)
class UtilitySettings:
    """How the utility experiment trains and scores its segmenters. The same for every arm,
    so that only the training data differs between them; the results record them."""

    # A named budget ("smoke", "cpu", "full") or a number of steps, made a recipe at the
    # data's working resolution by budget_recipe; or a whole recipe, used as it is.
    budget: str | int | SegmentationRecipe = "cpu"
    seeds: Sequence[int] = (0, 1, 2)  # one segmenter per arm and seed; a seed inits all alike
    # Share of the real + synthetic arm's training patches drawn from the synthetic set.
    synthetic_share: float = 0.5
    # For each K, one more arm trained on the first K real images: the real learning curve.
    real_subsets: Sequence[int] = ()
    device: str | torch.device = "auto"
    at_native: bool = True  # score at native size when the test set records its files
    progress: bool = True  # a progress bar per segmenter
    # The masks' kind (synthmed.data.profile): "vessel" adds sensitivity by vessel width,
    # "compact" jitters the segmenters' brightness and contrast; "auto": what the real
    # training set records in dataset.json, else measured. evaluate all's fidelity half
    # follows it too (vessel or object statistics).
    mask_kind: str = "auto"

    def recipe(self, resolution: int, kind: str = "vessel") -> SegmentationRecipe:
        """The training recipe at working resolution ``resolution`` (px) for masks of
        ``kind`` (its intensity jitter, when the recipe leaves it open)."""
        if isinstance(self.budget, SegmentationRecipe):
            return recipe_for_kind(self.budget, kind)
        return recipe_for_kind(budget_recipe(self.budget, resolution), kind)


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


def evaluate_arm(
    train_sets: Sequence[PreparedDataset],
    test: PreparedDataset,
    settings: UtilitySettings,
    name: str = "arm",
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Train on ``train_sets`` and score on ``test`` once per seed of ``settings``; mean and
    std over seeds. The recipe is ``settings``' budget at the test set's resolution.

    ``weights``: the share of training patches drawn from each set (equal when None).
    ``settings.mask_kind`` "auto" is read from ``test`` (its dataset.json, else measured).

    Scores follow the DRIVE protocol at native size when ``test`` records its original files
    (and ``settings.at_native``), otherwise they are taken at the working resolution inside
    the prepared FOV (phantom data). ``seconds`` is the wall time of one seed's train + test;
    ``image_counts`` holds each test image's [tp, fp, fn], for :func:`f1_gain_interval`, and
    ``image_scores`` its Dice, IoU and HD95, for :func:`score_gain_interval`.
    """
    check_compatible([*train_sets, test], f"arm {name}")
    kind = settings.mask_kind
    kind = kind if kind in MASK_KINDS else mask_kind_of(test, kind)["kind"]
    recipe = settings.recipe(test.resolution, kind)
    device = pick_device(str(settings.device))
    native = load_native_truths(test) if settings.at_native else None
    per_seed = []
    for seed in settings.seeds:
        start = time.perf_counter()
        desc, progress = f"{name} seed {seed}", settings.progress
        model = train_segmenter(train_sets, recipe, seed, device, progress, desc, weights)
        prob = predict(model, test, device, recipe.patch, recipe.overlap)
        scores, counts, per_image = score_images(prob, test, native, recipe.threshold, kind)
        seconds = time.perf_counter() - start
        record = {"seed": seed, **scores, "seconds": seconds}
        record["image_counts"] = counts.tolist()  # as JSON: one [tp, fp, fn] per test image
        record["image_scores"] = {k: v.tolist() for k, v in per_image.items()}
        per_seed.append(record)
    scalar = [k for k in per_seed[0] if k not in ("seed", "image_counts", "image_scores")]
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


def _mean_scores(values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The mean per-image score of every seed on every draw: ``values`` (seeds, images),
    ``draws`` (D, images) how often each image is taken. Returns (seeds, D)."""
    return values @ draws.T / draws.sum(axis=1)


def _bootstrap_gain(
    a: np.ndarray,
    b: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    draws: int,
    level: float,
) -> dict[str, Any]:
    """The two-level bootstrap of :data:`GAIN_DEFINITION` for any score: ``a`` and ``b`` hold
    each seed's per-image figures (seeds, images, ...) of the two arms, and ``score(values,
    taken)`` maps them and image draws (D, images) to each seed's score on each draw
    (seeds, D). Returns ``gain``, ``interval``, ``components``, ``level`` and
    ``share_of_bootstrap_draws_with_gain_above_0``."""
    n = a.shape[1]
    rng = np.random.default_rng(0)  # fixed: the same report gives the same interval
    taken = _image_draws(rng, n, draws)
    wa, wb = _seed_weights(rng, len(a), draws), _seed_weights(rng, len(b), draws)
    fa, fb = score(a, taken), score(b, taken)  # (seeds, D)
    whole = np.ones((1, n))
    fa_whole, fb_whole = score(a, whole)[:, 0], score(b, whole)[:, 0]
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
    }


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
    out = _bootstrap_gain(a, b, _pooled_f1, draws, level)
    out["definition"] = GAIN_DEFINITION.format(draws=draws, images=n, seeds=len(a), level=level)
    out["method"] = f"two-level bootstrap over the {n} test images and the seeds, {draws} draws"
    return out


SCORE_GAIN_DEFINITION = (
    "{score} gain = the arm's {score} (mean over the test images, then over its seeds) minus "
    "the real arm's; its interval is the two-level bootstrap of the F1 gain, resampling the "
    "per-image {score} instead of pooled pixel counts"
)


def score_gain_interval(
    arm: dict[str, Any],
    real: dict[str, Any],
    score: str,
    draws: int = 10_000,
    level: float = 0.95,
) -> dict[str, Any] | None:
    """An arm's mean per-image ``score`` ("dice", "iou" or "hd95") minus the real arm's,
    with the same two-level bootstrap interval as :func:`f1_gain_interval` (for "hd95" a
    negative gain is the better arm). None for results without per-image scores."""
    try:
        a = np.array([r["image_scores"][score] for r in arm["per_seed"]], dtype=np.float64)
        b = np.array([r["image_scores"][score] for r in real["per_seed"]], dtype=np.float64)
    except KeyError:
        return None
    out = _bootstrap_gain(a, b, _mean_scores, draws, level)
    out["definition"] = SCORE_GAIN_DEFINITION.format(score=score)
    return out


def score_gains(arms: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each per-image score (protocol.OVERLAP_SCORES), each arm's gain over the "real"
    arm with its interval (:func:`score_gain_interval`); {} without a real arm."""
    if "real" not in arms:
        return {}
    return {
        score: {
            name: score_gain_interval(result, arms["real"], score)
            for name, result in arms.items()
            if name != "real"
        }
        for score in OVERLAP_SCORES
    }


def evaluate_utility(
    real_train: PreparedDataset,
    synthetic: PreparedDataset,
    real_test: PreparedDataset,
    settings: UtilitySettings | None = None,
    arms: Sequence[str] = ARMS,
) -> dict[str, Any]:
    """Train one segmenter per arm and seed with the same recipe, test all on ``real_test``.

    Arms: "real" (``real_train``), "synthetic" (``synthetic``), "real+synthetic" (both; a
    ``settings.synthetic_share`` of its training patches comes from the synthetic set, the
    rest from the real one). Same seed, same initialisation in every arm. The result holds
    the recipe, the seeds, each arm's mean / std / per-seed scores, and each arm's mean F1
    relative to the real arm's (when it ran), with the gain of F1 and of the per-image
    Dice, IoU and HD95 over the real arm and their intervals. ``settings``:
    :class:`UtilitySettings` (None: its defaults, the "cpu" budget and three seeds); its
    ``mask_kind`` ("auto": ``real_train``'s) is recorded under "mask_kind".

    ``settings.real_subsets``: for each K, one more arm "real (K of N)" trained on the first
    K real training images: the real arm's learning curve. If K < N images score as well as
    N, the segmenter is not short of data at this budget, and no added data, real or
    synthetic, can raise it: real + synthetic can only beat real at a budget where the curve
    still rises.
    """
    settings = settings or UtilitySettings()
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise UserError(f"arms {', '.join(unknown) or '(none)'}: use some of {', '.join(ARMS)}")
    if not settings.seeds:
        raise UserError("seeds: need at least one")
    share = settings.synthetic_share
    if not 0 < share < 1:
        raise UserError(
            f"synthetic share {share}: need a fraction between 0 and 1 (exclusive); "
            "the real and synthetic arms are the shares 0 and 1"
        )
    n_real = len(real_train)
    bad = [k for k in settings.real_subsets if not 1 <= k < n_real]
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
    check_compatible([real_train, synthetic, real_test], "real and synthetic sets")
    kind = mask_kind_of(real_train, settings.mask_kind)
    recipe = settings.recipe(res, kind["kind"])
    device = pick_device(str(settings.device))
    # The same for every arm: the recipe, the device, the masks' kind.
    fixed = dataclasses.replace(settings, budget=recipe, device=device, mask_kind=kind["kind"])
    both = [real_train, synthetic]
    sources = {"real": [real_train], "synthetic": [synthetic], "real+synthetic": both}
    for k in sorted(set(settings.real_subsets)):
        sources[f"real ({k} of {n_real})"] = [real_train.subset(list(range(k)))]
    arms = [*arms, *(a for a in sources if a.startswith("real ("))]
    # Equal shares keep the draw of sample_patches' default (and earlier runs' numbers).
    mixed = None if share == 0.5 else (1 - share, share)
    results = {}
    for arm in arms:
        weights = mixed if arm == "real+synthetic" else None
        results[arm] = evaluate_arm(sources[arm], real_test, fixed, arm, weights)
    out: dict[str, Any] = {"recipe": dataclasses.asdict(recipe), "seeds": list(settings.seeds)}
    out["synthetic_share"] = share
    out.update(device=str(device), resolution=res, test_count=len(real_test), arms=results)
    out["mask_kind"] = kind
    out["overlap_definition"] = OVERLAP_DEFINITION
    if "real" in results:
        real_f1 = results["real"]["mean"]["f1"]
        nan = float("nan")
        relative = {a: r["mean"]["f1"] / real_f1 if real_f1 else nan for a, r in results.items()}
        out["f1_relative_to_real"] = relative
        gains = {a: f1_gain_interval(r, results["real"]) for a, r in results.items() if a != "real"}
        out["f1_gain_over_real"] = gains
        out["score_gain_over_real"] = score_gains(results)
    return out
