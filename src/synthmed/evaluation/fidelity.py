"""Intensity fidelity: how far the synthetic images' pixel values are from the real ones.

The paper (Guibas et al. 2017) compared the colour histograms of synthetic and real fundus
images by the KL divergence, with a subset of the real images as the reference. Here the
histograms count only pixels inside the field of view (the black surround would otherwise
dominate every bin 0), pooled over all images of a set, one histogram per channel.

Empty bins make KL infinite, so both histograms are smoothed: ``eps`` is added to every bin
and each histogram is renormalised to sum to 1. The same smoothing is used for the real-vs-real
floor (:func:`real_floor_kl`), so the two numbers are comparable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.stats import entropy

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError


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
        histograms; compare with :func:`real_floor_kl` rather than with zero.
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


def real_floor_kl(
    real: PreparedDataset, bins: int = 64, seed: int = 0, repeats: int = 10, eps: float = 1e-6
) -> dict[str, Any]:
    """The same KL between two random halves of the real set: the floor a generator can reach.

    Two finite samples of the same distribution never have identical histograms, so a
    synthetic set should be judged against this number, not against zero (the paper compared
    with a real subset the same way). Each of ``repeats`` seeded random splits gives one KL;
    the result is their mean and standard deviation.

    Returns:
        ``mean`` and ``std`` (over splits, of the channel-mean KL), ``per_channel_mean``,
        ``repeats``, ``definition``, ``bins`` and ``eps``.
    """
    n = len(real)
    if n < 2:
        raise UserError("the real-vs-real KL floor needs at least two real images")
    rng = np.random.default_rng(seed)
    per_split = []
    for _ in range(repeats):
        order = rng.permutation(n)
        a, b = order[: n // 2], order[n // 2 :]
        per_split.append(
            _kl_between(real.images[a], real.fov[a], real.images[b], real.fov[b], bins, eps)
        )
    kl = np.stack(per_split)  # (repeats, C)
    names = channel_names(real.channels)
    return {
        "mean": float(kl.mean(axis=1).mean()),
        "std": float(kl.mean(axis=1).std()),
        "per_channel_mean": dict(zip(names, map(float, kl.mean(axis=0)), strict=True)),
        "repeats": repeats,
        "definition": kl_definition(bins, eps) + "; between two random halves of the real set",
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
