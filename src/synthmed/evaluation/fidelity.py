"""Intensity fidelity: how far the synthetic images' pixel values are from the real ones.

The paper (Guibas et al. 2017) compared the colour histograms of synthetic and real fundus
images by the KL divergence, with a subset of the real images as the reference. Here the
histograms count only pixels inside the field of view (the black surround would otherwise
dominate every bin 0), pooled over all images of a set, one histogram per channel.

Empty bins make KL infinite, so both histograms are smoothed: ``eps`` is added to every bin
and each histogram is renormalised to sum to 1.

A fidelity figure means little on its own: KL of histograms, FID and the rest all move with the
number of images compared, so each one is read against a real-vs-real reference taken at the
same sample sizes (:func:`matched_fidelity`, issue 29).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import entropy
from torch import Tensor

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError
from synthmed.evaluation.features import FeatureExtractor, extract_features, metrics_from_features
from synthmed.evaluation.objects import object_statistics
from synthmed.evaluation.vessels import disc_convergence, vessel_statistics


def channel_names(channels: int) -> list[str]:
    """Display names of the channels: R, G, B for colour images, "gray" for one channel."""
    if channels == 3:
        return ["R", "G", "B"]
    if channels == 1:
        return ["gray"]
    return [f"channel{c}" for c in range(channels)]


def kl_definition(bins: int = 64, eps: float = 1e-6) -> str:
    """The definition of the KL numbers, in words, for the report to print beside them."""
    return (
        f"KL(P_real||P_synth) = sum_i p_i log(p_i/q_i), natural log, {bins} equal bins over "
        f"[0,256), pixels inside the FOV pooled over images, per channel; eps={eps:g} added to "
        "every bin of both histograms, which are then renormalised"
    )


def intensity_histograms(images: np.ndarray, fov: np.ndarray, bins: int = 64) -> np.ndarray:
    """Probability histograms of pixel intensities inside the field of view, one per channel.

    Args:
        images: (N, H, W, C) uint8 images.
        fov: (N, H, W) field-of-view masks, nonzero = inside.
        bins: number of equal bins over [0, 256).

    Returns:
        (C, bins) float64 array; each row sums to 1.
    """
    if images.ndim != 4 or images.shape[:3] != fov.shape:
        raise UserError(
            f"images {images.shape} must be (N, H, W, C) with fov {fov.shape} (N, H, W)"
        )
    inside = images[fov.astype(bool)]  # (pixels, C)
    if inside.shape[0] == 0:
        raise UserError("the field of view is empty in every image: no pixel to histogram")
    hists = [
        np.histogram(inside[:, c], bins=bins, range=(0, 256))[0] for c in range(inside.shape[1])
    ]
    hists = np.stack(hists).astype(np.float64)
    return hists / hists.sum(axis=1, keepdims=True)


def _smoothed_kl(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """Per-row KL(p || q) after adding ``eps`` to every bin (scipy renormalises each row)."""
    return np.array([entropy(pr + eps, qr + eps) for pr, qr in zip(p, q, strict=True)])


def _kl_between(
    images_a: np.ndarray,
    fov_a: np.ndarray,
    images_b: np.ndarray,
    fov_b: np.ndarray,
    bins: int,
    eps: float,
) -> np.ndarray:
    return _smoothed_kl(
        intensity_histograms(images_a, fov_a, bins),
        intensity_histograms(images_b, fov_b, bins),
        eps,
    )


def intensity_kl(
    real: PreparedDataset, synth: PreparedDataset, bins: int = 64, eps: float = 1e-6
) -> dict[str, Any]:
    """KL divergence from the real to the synthetic intensity histograms, per channel.

    Returns:
        ``per_channel`` ({"R": .., "G": .., "B": ..} or {"gray": ..}), ``mean`` over channels,
        ``definition`` (a sentence for the report), ``bins`` and ``eps``. 0 means identical
        histograms; compare with a real-vs-real reference at the same sizes
        (:func:`matched_fidelity`) rather than with zero.
    """
    if real.channels != synth.channels:
        raise UserError(
            f"real images have {real.channels} channel(s) but synthetic ones {synth.channels}"
        )
    kl = _kl_between(real.images, real.fov, synth.images, synth.fov, bins, eps)
    return {
        "per_channel": dict(zip(channel_names(real.channels), map(float, kl), strict=True)),
        "mean": float(kl.mean()),
        "definition": kl_definition(bins, eps),
        "bins": bins,
        "eps": eps,
    }


SHARPNESS_DEFINITION = (
    "sharpness = variance of the Laplacian of the grey image (channel mean, 0-255) inside the "
    "field of view eroded by {margin} px, per image at the working resolution; the table gives "
    "each set's median and its ratio to the real set's median (blur lowers it, noise raises it)"
)


def sharpness(images: np.ndarray, fov: np.ndarray, margin: int = 4) -> np.ndarray:
    """Per-image focus measure (N,): the variance of the Laplacian inside the field of view.

    Why: the feature metrics' domain encoder hardly sees blur (docs/drive512.md), so blurry
    synthetic images need their own check. The FOV is eroded by ``margin`` px so that its
    edge (a step from black) does not count; images (N, H, W, C) uint8, fov (N, H, W).
    """
    out = np.empty(len(images))
    for i, (image, field) in enumerate(zip(images, fov, strict=True)):
        grey = image.astype(np.float64).mean(axis=-1)
        inside = ndimage.binary_erosion(field.astype(bool), iterations=margin)
        if not inside.any():
            raise UserError(f"image {i}: its field of view is empty after a {margin} px margin")
        out[i] = ndimage.laplace(grey)[inside].var()
    return out


def compare_sharpness(
    real: PreparedDataset,
    synth: PreparedDataset,
    margin: int = 4,
    real_median: float | None = None,
) -> dict[str, Any]:
    """Median sharpness of ``synth`` against ``real``'s, at their (common) resolution.

    ``real_median``: ``real``'s median sharpness when already known (several sets scored
    against one real set need it once). Returns ``real_median``, ``synth_median``, ``ratio``
    (synthetic / real; 1 = as sharp), ``synth_quartiles`` and ``definition``.
    """
    if real.resolution != synth.resolution:
        raise UserError(
            f"sharpness: real images are {real.resolution} px but synthetic ones "
            f"{synth.resolution} px; load both at one resolution"
        )
    r = np.median(sharpness(real.images, real.fov, margin)) if real_median is None else real_median
    s = sharpness(synth.images, synth.fov, margin)
    return {
        "real_median": float(r),
        "synth_median": float(np.median(s)),
        "ratio": float(np.median(s) / r) if r > 0 else float("nan"),
        "synth_quartiles": [float(q) for q in np.percentile(s, [25, 75])],
        "definition": SHARPNESS_DEFINITION.format(margin=margin),
    }


# ------------------------------------------------------------------ like-for-like references

SPLITS = 50  # seeded random real splits per evaluation: enough for a 5-95 % range
HEADLINE = (  # (family, metric): the figures printed by the command and drawn in the figure
    ("kl", "mean"),
    ("sharpness", "ratio"),
    ("features", "fid"),
    ("features", "kid_mean"),
    ("features", "precision"),
    ("features", "recall"),
)
FEATURE_FIGURES = ("fid", "kid_mean", "precision", "recall", "density", "coverage")
WITHIN, OUTSIDE = "within the real-vs-real spread", "outside the real-vs-real spread"


def _log_ratio(x: float) -> float:
    return abs(math.log(x)) if x > 0 else math.inf


# How far a figure is from "the compared images look like real ones": in a split the synthetic
# figure is further than the real-vs-real one when this distance is larger. Looked up by the
# metric's name first, then by its family (KL channels, vessel statistics).
DISTANCE_FROM_IDEAL: dict[str, tuple[str, Callable[[float], float]]] = {
    "kl": ("larger is further (0: identical histograms)", lambda x: x),
    "sharpness": ("|log ratio| larger is further (ratio 1: as sharp)", _log_ratio),
    "vessels": ("|relative difference of means| larger is further", abs),
    "objects": ("|relative difference of means| larger is further", abs),
    "fid": ("larger is further", lambda x: x),
    "kid_mean": ("larger is further", lambda x: x),
    "precision": ("smaller is further", lambda x: -x),
    "recall": ("smaller is further", lambda x: -x),
    "density": ("smaller is further", lambda x: -x),
    "coverage": ("smaller is further", lambda x: -x),
}


def _distance(family: str, metric: str) -> tuple[str, Callable[[float], float]]:
    return DISTANCE_FROM_IDEAL.get(metric) or DISTANCE_FROM_IDEAL[family]


REFERENCE_DEFINITION = (
    "{splits} seeded random splits (seed {seed}) divide the {n_real} real images into A "
    "({a} images) and B ({b}); in each split the real-vs-real figure compares A with B, and a "
    "synthetic set's figure compares the same A with min(|B|, m) of its m images drawn at "
    "random without replacement (B is cut to the same size when m < |B|), so both figures are "
    "taken at identical sample sizes; the tables give the median and the 5-95 % range over "
    "the splits"
)


class MatchedSplit(NamedTuple):
    """One split: real indices ``a`` and ``b``, and the indices of the compared synthetic
    images (``compared``); ``b`` and ``compared`` have the same length."""

    a: np.ndarray
    b: np.ndarray
    compared: np.ndarray


def matched_splits(
    n_real: int, m_synthetic: int, splits: int = SPLITS, seed: int = 0
) -> list[MatchedSplit]:
    """Seeded random splits of ``n_real`` real images into A (ceil(n/2)) and B (floor(n/2)),
    each with a random subset of min(|B|, m) of the ``m_synthetic`` images to set against A.

    The real-vs-real figure of a split is metric(A, B) and the synthetic one metric(A, S_b):
    the same A, the same sizes. Why not draw as many real images as there are synthetic ones,
    with replacement, and compare at the synthetic set's size instead: with 15 real images a
    200-image draw repeats every image many times; repeated images sit at distance zero from
    each other, which zeroes the k-NN radii of precision / recall / density / coverage and
    makes a set look tighter than it is, understating the real-vs-real spread. Splitting
    without replacement keeps every compared image distinct, at the price of small sizes.

    The A/B splits depend on ``seed`` only (not on ``m_synthetic``), so every synthetic set of
    an evaluation is set against the same A's; the synthetic subsets come from a second
    stream of the same seed.
    """
    if n_real < 2:
        raise UserError("like-for-like references need at least two real images")
    if m_synthetic < 1 or splits < 1:
        raise UserError("like-for-like references need a synthetic image and a split")
    size_a = (n_real + 1) // 2
    compared = min(n_real - size_a, m_synthetic)
    split_rng, synth_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    out = []
    for _ in range(splits):
        order = split_rng.permutation(n_real)
        # B's order is random, so its first `compared` images are a random subset of B.
        a, b = np.sort(order[:size_a]), np.sort(order[size_a : size_a + compared])
        s = np.sort(synth_rng.choice(m_synthetic, size=compared, replace=False))
        out.append(MatchedSplit(a, b, s))
    return out


def image_histograms(images: np.ndarray, fov: np.ndarray, bins: int = 64) -> np.ndarray:
    """Per-image pixel counts inside the field of view, (N, C, bins) int64.

    Summing rows over any subset of images gives that subset's pooled histogram (as
    :func:`intensity_histograms` computes it, before normalising), so each set is counted
    once and every split only adds rows.
    """
    if images.ndim != 4 or images.shape[:3] != fov.shape:
        raise UserError(
            f"images {images.shape} must be (N, H, W, C) with fov {fov.shape} (N, H, W)"
        )
    out = np.zeros((len(images), images.shape[3], bins), np.int64)
    for i, (image, field) in enumerate(zip(images, fov, strict=True)):
        which = (image[field.astype(bool)].astype(np.int64) * bins) // 256  # equal bins on [0,256)
        for c in range(images.shape[3]):
            out[i, c] = np.bincount(which[:, c], minlength=bins)
    return out


@dataclass(frozen=True)
class SetProfile:
    """The per-image figures of one set, computed once and indexed by every split."""

    histograms: np.ndarray  # (N, C, bins) pixel counts inside the field of view
    sharpness: np.ndarray  # (N,) variance of the Laplacian
    vessels: dict[str, np.ndarray]  # per-image vessel statistics (vessels.STATISTICS); {}
    # for compact masks
    features: Tensor | None  # (N, D) extractor features; None: no feature figures
    # per-image object statistics (objects.STATISTICS) of compact masks; {} for vessels
    objects: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sharpness)


def profile_set(
    data: PreparedDataset,
    extractor: FeatureExtractor | None = None,
    bins: int = 64,
    margin: int = 4,
    kind: str = "vessel",
) -> SetProfile:
    """Everything the fidelity figures need from one set's images, masks and features.

    ``kind`` is the masks' kind (synthmed.data.profile): "vessel" masks get the vessel
    statistics, and colour sets among them (fundus photographs) ``disc_convergence``: how far
    the drawn disc is from where the thick vessels meet (issue 30); "compact" masks get the
    object statistics instead (objects.py).
    """
    vessels: dict[str, np.ndarray] = {}
    objects: dict[str, np.ndarray] = {}
    if kind == "vessel":
        vessels = vessel_statistics(data.masks, data.fov)
        if data.channels == 3:
            vessels["disc_convergence"] = disc_convergence(data.images, data.masks, data.fov)
    elif kind == "compact":
        objects = object_statistics(data.masks, data.fov)
    else:
        raise UserError(f"mask kind {kind!r}: use vessel or compact")
    return SetProfile(
        histograms=image_histograms(data.images, data.fov, bins),
        sharpness=sharpness(data.images, data.fov, margin),
        vessels=vessels,
        features=None if extractor is None else extract_features(data.images, extractor),
        objects=objects,
    )


def _pooled_kl(real_counts: np.ndarray, other_counts: np.ndarray, eps: float) -> np.ndarray:
    """KL(real || other) per channel from summed per-image counts (C, bins) of each side."""
    for counts in (real_counts, other_counts):
        if counts.sum() == 0:
            raise UserError("the field of view is empty in every image: no pixel to histogram")
    p = real_counts / real_counts.sum(axis=1, keepdims=True)
    q = other_counts / other_counts.sum(axis=1, keepdims=True)
    return _smoothed_kl(p, q, eps)


def _relative(real_mean: float, other_mean: float) -> float:
    if math.isnan(real_mean) or math.isnan(other_mean):
        return math.nan
    if real_mean == 0:
        return 0.0 if other_mean == 0 else math.inf
    return (other_mean - real_mean) / abs(real_mean)


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values (NaN when there is none, without a warning)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def _statistics_figures(
    real: dict[str, np.ndarray], a: np.ndarray, other: dict[str, np.ndarray], b: np.ndarray
) -> dict[str, float]:
    """Relative difference of means per statistic of the images ``b`` of ``other`` against
    the images ``a`` of ``real`` (NaN values, empty masks' shape figures, left out)."""
    return {
        name: _relative(_finite_mean(real[name][a]), _finite_mean(values[b]))
        for name, values in other.items()
        if name in real
    }


def pair_figures(
    real: SetProfile,
    a: np.ndarray,
    other: SetProfile,
    b: np.ndarray,
    channels: list[str],
    eps: float = 1e-6,
) -> dict[str, dict[str, float]]:
    """Every fidelity figure of the images ``b`` of ``other`` against the images ``a`` of
    ``real``, by family: ``kl`` (per channel and mean), ``sharpness`` (``ratio`` of medians),
    ``vessels`` (vessel masks) or ``objects`` (compact masks): relative difference of means
    per statistic; ``features`` (FID, KID, precision, recall, density, coverage; NaN with
    fewer than two images on a side)."""
    kl = _pooled_kl(real.histograms[a].sum(axis=0), other.histograms[b].sum(axis=0), eps)
    real_sharp = float(np.median(real.sharpness[a]))
    out: dict[str, dict[str, float]] = {
        "kl": {**dict(zip(channels, map(float, kl), strict=True)), "mean": float(kl.mean())},
        "sharpness": {
            "ratio": float(np.median(other.sharpness[b]) / real_sharp)
            if real_sharp > 0
            else math.nan
        },
    }
    if real.vessels:
        out["vessels"] = _statistics_figures(real.vessels, a, other.vessels, b)
    if real.objects:
        out["objects"] = _statistics_figures(real.objects, a, other.objects, b)
    if real.features is not None and other.features is not None:
        if min(len(a), len(b)) >= 2:
            scores = metrics_from_features(real.features[a], other.features[b])
            out["features"] = {k: float(scores[k]) for k in FEATURE_FIGURES}
        else:  # no covariance, no k-NN ball: nothing honest to report
            out["features"] = dict.fromkeys(FEATURE_FIGURES, math.nan)
    return out


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside, then restore the thread count.

    Why: a split's feature figures are products of matrices a few rows tall. Split across
    threads on a busy 2-core machine, each took some 15 ms of threads waiting for each other
    instead of 0.06 ms on one thread: the fifty splits went from minutes to seconds.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _spread(values: np.ndarray) -> dict[str, float]:
    finite = values[~np.isnan(values)]
    if len(finite) == 0:
        return {"median": math.nan, "p5": math.nan, "p95": math.nan}
    p5, median, p95 = np.percentile(finite, [5, 50, 95])
    return {"median": float(median), "p5": float(p5), "p95": float(p95)}


def summarise_splits(
    synthetic: list[float], real_vs_real: list[float], distance: Callable[[float], float]
) -> dict[str, Any]:
    """Median and 5-95 % range over splits of a synthetic figure and of its real-vs-real
    reference, the share of splits where the synthetic one is further from ideal
    (``distance`` larger), and the verdict: within the reference's 5-95 % range or outside.
    Splits where either figure is NaN are left out of the share."""
    syn, ref = np.asarray(synthetic, float), np.asarray(real_vs_real, float)
    both = ~(np.isnan(syn) | np.isnan(ref))
    further = [distance(s) > distance(r) for s, r in zip(syn[both], ref[both], strict=True)]
    syn_spread, ref_spread = _spread(syn), _spread(ref)
    if math.isnan(syn_spread["median"]) or math.isnan(ref_spread["p5"]):
        verdict = "not computed (NaN)"
    else:
        inside = ref_spread["p5"] <= syn_spread["median"] <= ref_spread["p95"]
        verdict = WITHIN if inside else OUTSIDE
    return {
        "synthetic": syn_spread,
        "real_vs_real": ref_spread,
        "share_of_splits_synthetic_further": float(np.mean(further)) if further else math.nan,
        "verdict": verdict,
        "per_split": {"synthetic": syn.tolist(), "real_vs_real": ref.tolist()},
    }


def matched_fidelity(
    real: SetProfile,
    synth: SetProfile,
    channels: list[str],
    splits: int = SPLITS,
    seed: int = 0,
    eps: float = 1e-6,
) -> dict[str, Any]:
    """Every fidelity figure of ``synth`` with its real-vs-real reference at the same sizes.

    Over :func:`matched_splits`, each figure of the synthetic subset against A is set beside
    the same figure of B against A. Per-image values come from the profiles; a split only
    indexes them, so fifty splits cost little beyond the profiles themselves.

    Returns:
        ``sizes`` (``n_real``, ``m_synthetic``, ``a``, ``b``, ``compared``, ``splits``,
        ``seed``) and ``matched``: family -> metric -> :func:`summarise_splits` output.
    """
    plan = matched_splits(len(real), len(synth), splits, seed)
    with _one_torch_thread():
        synthetic = [pair_figures(real, sp.a, synth, sp.compared, channels, eps) for sp in plan]
        reference = [pair_figures(real, sp.a, real, sp.b, channels, eps) for sp in plan]
    matched: dict[str, dict[str, Any]] = {}
    for family, metrics in synthetic[0].items():
        matched[family] = {
            metric: summarise_splits(
                [f[family][metric] for f in synthetic],
                [f[family][metric] for f in reference],
                _distance(family, metric)[1],
            )
            for metric in metrics
        }
    sizes = {
        "n_real": len(real),
        "m_synthetic": len(synth),
        "a": len(plan[0].a),
        "b": (len(real)) // 2,
        "compared": len(plan[0].compared),
        "splits": splits,
        "seed": seed,
    }
    return {"sizes": sizes, "matched": matched}
