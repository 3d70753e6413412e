"""Vessel segmentation scores following the DRIVE protocol.

The protocol (see FIELD_NOTES.md): scores count only pixels inside the field-of-view mask, at
the image's native size, pooled over the whole test set. A network here predicts at the
working resolution of a :class:`~synthmed.data.prepared.PreparedDataset`, so its probabilities
are first mapped back onto the native image by inverting the prepare step (resize, padding,
crop), then compared with the original annotation files.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.metrics import (
    DiceMetric,
    HausdorffDistanceMetric,
    MeanIoU,
    compute_confusion_matrix_metric,
)
from PIL import Image
from scipy import ndimage
from scipy.stats import rankdata

from synthmed.data.images import fov_from_image, read_image, read_mask
from synthmed.data.prepared import PreparedDataset
from synthmed.data.readers import FUNDUS_LAYOUTS
from synthmed.models.vessel_geometry import skeleton_and_widths

GEOMETRY_KEYS = ("native_size", "crop", "pad", "side")
# Score name -> MONAI confusion-matrix metric name (same definitions as MONAI's).
CONFUSION_METRICS = {
    "f1": "f1 score",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}
NativeTruth = tuple[np.ndarray, np.ndarray]  # (vessel mask, field of view), both (H, W) uint8


def to_native(prob: np.ndarray, transform: dict[str, Any]) -> np.ndarray:
    """Map a working-resolution probability map (R, R) back onto the native image.

    Inverts :func:`synthmed.data.prepared.square_resize`: resize R -> side (bilinear, as the
    values are probabilities), drop the padding, and put the crop back into a zero canvas of
    ``native_size``. Outside the crop lies outside the field of view, so zero is harmless.
    A transform without this geometry is returned unchanged.
    """
    if not all(k in transform for k in GEOMETRY_KEYS):
        return prob
    height, width = transform["native_size"]
    top, left, h, w = transform["crop"]
    pad_top, pad_left = transform["pad"]
    side = int(transform["side"])
    square = Image.fromarray(np.asarray(prob, np.float32))
    square = np.asarray(square.resize((side, side), Image.Resampling.BILINEAR))
    out = np.zeros((int(height), int(width)), np.float32)
    out[top : top + h, left : left + w] = square[pad_top : pad_top + h, pad_left : pad_left + w]
    return out


def native_truth(transform: dict[str, Any], fov_from_photo: bool = True) -> NativeTruth | None:
    """The native vessel mask and field of view of one prepared sample, read from its files.

    The FOV comes from the stored "fov" path; without one (CHASE_DB1, STARE) it is the photo's
    non-black disc, as at prepare time, or the whole image when ``fov_from_photo`` is False
    (generic folders, again as at prepare time). Returns None when the transform records no
    files (phantom data, or arrays built in memory).
    """
    if "image" not in transform or "mask" not in transform or "native_size" not in transform:
        return None
    shape = (int(transform["native_size"][0]), int(transform["native_size"][1]))
    # The polarity prepare chose (BU-BIL's masks are inverted): the same object, read again.
    truth = read_mask(transform["mask"], shape, "mask", transform.get("foreground", "white"))
    if transform.get("fov"):
        fov = read_mask(transform["fov"], shape, "field-of-view mask")
    elif fov_from_photo:
        fov = fov_from_image(read_image(transform["image"], 3))
    else:
        fov = np.ones(shape, bool)
    return truth.astype(np.uint8), fov.astype(np.uint8)


def load_native_truths(data: PreparedDataset) -> list[NativeTruth] | None:
    """Native truth of every sample of ``data``, or None unless every sample has its files."""
    transforms = data.meta.get("transforms") or []
    if len(transforms) != len(data):
        return None
    # prepare_source derives a missing FOV from the photo for fundus layouts only.
    photo = str(data.meta.get("source", "")).split(":")[0] in FUNDUS_LAYOUTS
    truths = [native_truth(t, photo) for t in transforms]
    return None if any(t is None for t in truths) else truths  # type: ignore[return-value]


def _as_list(a: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """One (H, W) array per image, from an (H, W) array, an (N, H, W) array or a list."""
    if isinstance(a, np.ndarray):
        return [a] if a.ndim == 2 else list(a)
    return [np.asarray(x) for x in a]


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve, as sklearn's ``roc_auc_score`` (ties count one half).

    Computed as the Mann-Whitney U statistic from mid-ranks: MONAI's ``compute_roc_auc`` gives
    the same value but loops in Python over every pixel, too slow for a pooled test set.
    """
    positive = np.asarray(label).astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def segmentation_scores(
    prob: np.ndarray | Sequence[np.ndarray],
    truth: np.ndarray | Sequence[np.ndarray],
    fov: np.ndarray | Sequence[np.ndarray],
    threshold: float = 0.5,
) -> dict[str, float]:
    """F1 (= Dice of the vessel class), AUC, accuracy, sensitivity and specificity.

    Only pixels inside the FOV count. Several images (an (N, H, W) array, or a list of arrays
    whose sizes may differ) are pooled the way DRIVE papers do: every FOV pixel of the whole
    test set goes into one confusion matrix and one ROC curve, not a mean of per-image scores.

    Args:
        prob: vessel probabilities in [0, 1].
        truth: vessel masks, nonzero = vessel.
        fov: field-of-view masks, nonzero = inside.
        threshold: probabilities at or above it count as vessel (not used by the AUC).
    """
    probs, truths, fovs = _as_list(prob), _as_list(truth), _as_list(fov)
    if not len(probs) == len(truths) == len(fovs):
        raise ValueError(f"{len(probs)} predictions, {len(truths)} masks, {len(fovs)} FOVs")
    scores, labels = [], []
    for p, t, f in zip(probs, truths, fovs, strict=True):
        if not p.shape == t.shape == f.shape:
            raise ValueError(f"shapes differ: prediction {p.shape}, mask {t.shape}, FOV {f.shape}")
        inside = f > 0
        scores.append(np.asarray(p, np.float32)[inside])
        labels.append(t[inside] > 0)
    score, label = np.concatenate(scores), np.concatenate(labels)
    predicted = score >= threshold
    # Counts in int64 so that millions of pooled pixels stay exact.
    tp = int(np.count_nonzero(predicted & label))
    fp = int(np.count_nonzero(predicted & ~label))
    fn = int(np.count_nonzero(~predicted & label))
    tn = label.size - tp - fp - fn
    matrix = torch.tensor([[[tp, fp, tn, fn]]], dtype=torch.float64)
    out = {
        k: float(compute_confusion_matrix_metric(m, matrix)) for k, m in CONFUSION_METRICS.items()
    }
    out["auc"] = roc_auc(score, label)
    return out


def image_counts(
    prob: np.ndarray | Sequence[np.ndarray],
    truth: np.ndarray | Sequence[np.ndarray],
    fov: np.ndarray | Sequence[np.ndarray],
    threshold: float = 0.5,
) -> np.ndarray:
    """Per image, the true positives, false positives and false negatives inside the FOV:
    (N, 3) int64. Summed over any selection of images they give that selection's pooled F1,
    which is what resampling the test images needs (``utility.f1_gain_interval``)."""
    rows = []
    for p, t, f in zip(_as_list(prob), _as_list(truth), _as_list(fov), strict=True):
        inside, label = f > 0, t > 0
        predicted = (np.asarray(p) >= threshold) & inside
        tp = np.count_nonzero(predicted & label)
        rows.append(
            (
                tp,
                np.count_nonzero(predicted & ~label),
                np.count_nonzero(~predicted & label & inside),
            )
        )
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


# Vessel width classes for per-width sensitivity, as the vessel's full width in pixels at the
# scoring size (native for DRIVE: capillaries are 1-2 px there, the arcades 6-10 px).
WIDTH_CLASSES = (("thin", 0.0, 2.5), ("medium", 2.5, 4.5), ("thick", 4.5, float("inf")))


def vessel_width_map(truth: np.ndarray) -> np.ndarray:
    """The local width (pixels) of the vessel each vessel pixel belongs to; 0 elsewhere.

    Width is measured on the centre line (2 x distance to the background - 1, as in
    :mod:`synthmed.models.vessel_geometry`) and given to every vessel pixel from its nearest
    centre-line pixel, so a thick vessel's edge pixels count as thick.
    """
    mask = np.asarray(truth) > 0
    out = np.zeros(mask.shape, np.float32)
    if not mask.any():
        return out
    skeleton, widths = skeleton_and_widths(mask)
    if not skeleton.any():
        return out
    width_at = np.zeros(mask.shape, np.float32)
    width_at[skeleton] = widths
    _, (rows, cols) = ndimage.distance_transform_edt(~skeleton, return_indices=True)
    out[mask] = width_at[rows[mask], cols[mask]]
    return out


def sensitivity_by_width(
    prob: np.ndarray | Sequence[np.ndarray],
    truth: np.ndarray | Sequence[np.ndarray],
    fov: np.ndarray | Sequence[np.ndarray],
    threshold: float = 0.5,
) -> dict[str, float]:
    """Pooled sensitivity on thin, medium and thick vessels (:data:`WIDTH_CLASSES`), inside
    the FOV: what a segmenter misses, by vessel size. NaN for a class with no pixel."""
    found = {name: 0 for name, _, _ in WIDTH_CLASSES}
    total = dict(found)
    for p, t, f in zip(_as_list(prob), _as_list(truth), _as_list(fov), strict=True):
        widths = vessel_width_map(t)
        hit = (np.asarray(p) >= threshold) & (f > 0)
        vessel = (np.asarray(t) > 0) & (f > 0)
        for name, low, high in WIDTH_CLASSES:
            member = vessel & (widths > low) & (widths <= high)
            if name == "thin":  # pixels without a centre line of their own (width 0) are thin
                member |= vessel & (widths == 0)
            total[name] += int(np.count_nonzero(member))
            found[name] += int(np.count_nonzero(member & hit))
    return {
        f"sensitivity_{name}": found[name] / total[name] if total[name] else float("nan")
        for name in found
    }


# Per-image scores of the foreground (MONAI's metrics), beside the pooled F1.
OVERLAP_SCORES = ("dice", "iou", "hd95")
OVERLAP_DEFINITION = (
    "per test image, inside the field of view, prediction >= threshold against the "
    "annotation: Dice and IoU (MONAI DiceMetric, MeanIoU) and the 95th percentile of the "
    "symmetric surface distance (MONAI HausdorffDistanceMetric, percentile=95; pixels at the "
    "scoring size); the arm's figure is their mean over the test images (F1 pools the pixels "
    "of all test images instead). An image where neither side has foreground scores Dice 1, "
    "IoU 1, HD95 0; where only one side has, Dice 0, IoU 0 and HD95 the image's diagonal"
)


def _overlap_one(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Dice, IoU and HD95 of two (H, W) boolean masks (the conventions of
    :data:`OVERLAP_DEFINITION` when either is empty)."""
    if not pred.any() or not truth.any():
        both_empty = not pred.any() and not truth.any()
        worst = math.hypot(*pred.shape)
        return (1.0, 1.0, 0.0) if both_empty else (0.0, 0.0, worst)
    y_pred = torch.from_numpy(pred)[None, None].float()
    y = torch.from_numpy(truth)[None, None].float()
    with warnings.catch_warnings():  # MONAI's own deprecation notice, inside its HD code
        warnings.simplefilter("ignore", FutureWarning)
        dice = DiceMetric(include_background=True, reduction="none")(y_pred, y)
        iou = MeanIoU(include_background=True, reduction="none")(y_pred, y)
        hd95 = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
        hd = hd95(y_pred, y)
    return float(dice), float(iou), float(hd)


def overlap_scores(
    prob: np.ndarray | Sequence[np.ndarray],
    truth: np.ndarray | Sequence[np.ndarray],
    fov: np.ndarray | Sequence[np.ndarray],
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """Per image (N,) Dice, IoU and 95 % Hausdorff distance of the foreground inside the
    FOV (:data:`OVERLAP_DEFINITION`); images may differ in size."""
    rows = []
    for p, t, f in zip(_as_list(prob), _as_list(truth), _as_list(fov), strict=True):
        inside = np.asarray(f) > 0
        predicted = (np.asarray(p) >= threshold) & inside
        rows.append(_overlap_one(predicted, (np.asarray(t) > 0) & inside))
    values = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return {name: values[:, k] for k, name in enumerate(OVERLAP_SCORES)}


class ImageScores(NamedTuple):
    """What :func:`score_images` gives: the pooled scores (with the means of the per-image
    ones), each image's [tp, fp, fn] and each image's overlap scores."""

    pooled: dict[str, float]
    counts: np.ndarray
    per_image: dict[str, np.ndarray]


def score_images(
    prob: np.ndarray,
    data: PreparedDataset,
    native: list[NativeTruth] | None = None,
    threshold: float = 0.5,
    kind: str = "vessel",
) -> ImageScores:
    """Score working-resolution predictions (N, R, R) for the samples of ``data``: the pooled
    scores of :func:`segmentation_scores`, the per-image counts of :func:`image_counts` and
    the per-image Dice, IoU and HD95 of :func:`overlap_scores` (their means join the pooled
    scores). Masks of ``kind`` "vessel" also get :func:`sensitivity_by_width`.

    With ``native`` (from :func:`load_native_truths`) the predictions are mapped back to each
    image's native size and scored against the original files, per the DRIVE protocol;
    without it they are scored at the working resolution inside the prepared FOV.
    """
    if native is None:
        truths, fovs = data.masks, data.fov
        preds: np.ndarray | list[np.ndarray] = prob
    else:
        preds = [to_native(p, t) for p, t in zip(prob, data.meta["transforms"], strict=True)]
        truths, fovs = [t for t, _ in native], [f for _, f in native]
    pooled = segmentation_scores(preds, truths, fovs, threshold)
    if kind == "vessel":
        pooled.update(sensitivity_by_width(preds, truths, fovs, threshold))
    per_image = overlap_scores(preds, truths, fovs, threshold)
    pooled.update({name: float(values.mean()) for name, values in per_image.items()})
    return ImageScores(pooled, image_counts(preds, truths, fovs, threshold), per_image)


def score_dataset(
    prob: np.ndarray,
    data: PreparedDataset,
    native: list[NativeTruth] | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """The pooled scores of :func:`score_images` only."""
    return score_images(prob, data, native, threshold)[0]
