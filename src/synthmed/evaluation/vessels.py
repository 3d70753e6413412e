"""Vessel-tree statistics of binary masks, and how far the synthetic ones are from the real.

Stage I of the pipeline generates vessel masks, so their geometry is judged on its own, before
any image is rendered: how much of the field of view is vessel, how long and how branched the
tree is, how wide the vessels are and how fragmented the mask is. Every statistic is computed
per image, so real and synthetic sets are compared as distributions (Wasserstein distance)
as well as by their means.

Lengths and widths are scaled to be comparable across working resolutions: a length is given
in image sides, a width in "pixels at 512", i.e. as if the image were 512 pixels wide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.stats import wasserstein_distance

from synthmed.errors import UserError
from synthmed.models.vessel_geometry import REFERENCE_SIDE, disc_side_weights, skeleton_and_widths

STATISTICS = (
    "vessel_fraction",
    "skeleton_length",
    "branch_points",
    "end_points",
    "mean_width",
    "components",
    "disc_lateralisation",
    "loops",
)
LOOP_MIN_AREA = 10  # px at REFERENCE_SIDE: smaller holes are pinholes in a vessel, not loops
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)


def _check(masks: np.ndarray, fov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if masks.ndim != 3 or masks.shape != fov.shape:
        raise UserError(
            f"vessel masks {masks.shape} and field of view {fov.shape} must both be (N, H, W)"
        )
    fov = fov.astype(bool)
    # A generated mask may stray outside the FOV; only the part inside it is anatomy.
    return masks.astype(bool) & fov, fov


def _image_statistics(mask: np.ndarray, fov: np.ndarray) -> dict[str, float]:
    side = mask.shape[1]
    distance = ndimage.distance_transform_edt(mask)
    skeleton, widths = skeleton_and_widths(mask, distance)
    left, right = disc_side_weights(mask, distance)
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), _NEIGHBOURS, mode="constant")
    neighbours = np.where(skeleton, neighbours, 0)
    # Around a junction several adjacent skeleton pixels each have >= 3 neighbours (a plus
    # sign gives 5 of them); count each 8-connected cluster of such pixels as one junction.
    _, branch_points = ndimage.label(neighbours >= 3, structure=_EIGHT_CONNECTED)
    _, components = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    fov_pixels = fov.sum()
    # A loop encloses background that cannot reach the image border (4-connected, the dual
    # of the vessels' 8-connectivity); pinholes inside a thick vessel are not loops.
    holes, count = ndimage.label(~mask)
    sizes = np.bincount(holes.ravel(), minlength=count + 1)
    border = np.unique(np.r_[holes[0], holes[-1], holes[:, 0], holes[:, -1]])
    enclosed = np.setdiff1d(np.arange(1, count + 1), border)
    min_area = LOOP_MIN_AREA * (side / REFERENCE_SIDE) ** 2
    return {
        "vessel_fraction": float(mask.sum() / fov_pixels) if fov_pixels else 0.0,
        "skeleton_length": float(skeleton.sum() / side),
        "branch_points": float(branch_points),
        "end_points": float((neighbours == 1).sum()),
        # An empty mask has no width; 0 keeps the per-image arrays finite for the distances.
        "mean_width": float(widths.mean() / side * REFERENCE_SIDE) if widths.size else 0.0,
        "components": float(components),
        "disc_lateralisation": abs(left - right) / (left + right) if left + right else 0.0,
        "loops": float(np.count_nonzero(sizes[enclosed] >= min_area)),
    }


def disc_convergence(images: np.ndarray, masks: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Per pair (N,): how far the drawn optic disc is from where the thick vessels converge,
    as a share of the image side. For Stage II's photographs against Stage I's masks.

    The disc is the brightest smoothed region of the photograph (Gaussian of side / 30 on the
    grey image, inside the field of view eroded by side / 50); the convergence point is the
    maximum of the smoothed squared distance to the background (thick vessels weigh most;
    Gaussian of side / 15). On DRIVE's 20 training pairs at 256 px: 0.04-0.13 for 18 of
    them; 0.54 and 0.69 for two whose brightest region is not the disc, so read the median
    and the share under 0.15, not the mean. Retinal data only.
    """
    masks, fov = _check(masks, fov)
    if images.shape[:3] != masks.shape:
        raise UserError(f"images {images.shape} and masks {masks.shape} do not pair up")
    out = np.empty(len(masks))
    for i, (image, mask, field) in enumerate(zip(images, masks, fov, strict=True)):
        side = mask.shape[0]
        inside = ndimage.binary_erosion(field, iterations=max(1, side // 50))
        if not inside.any():
            inside = field
        grey = ndimage.gaussian_filter(image.astype(np.float64).mean(axis=-1), side / 30)
        grey[~inside] = -np.inf
        weight = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask) ** 2, side / 15)
        weight[~field] = -np.inf
        disc = np.unravel_index(np.argmax(grey), grey.shape)
        meet = np.unravel_index(np.argmax(weight), weight.shape)
        out[i] = np.hypot(disc[0] - meet[0], disc[1] - meet[1]) / side
    return out


def vessel_statistics(masks: np.ndarray, fov: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image vessel-tree statistics of a set of binary masks.

    Args:
        masks: (N, H, W) vessel masks, nonzero = vessel.
        fov: (N, H, W) field-of-view masks, nonzero = inside.

    Returns:
        One (N,) float array per name in :data:`STATISTICS`:
        ``vessel_fraction`` (vessel pixels / FOV pixels), ``skeleton_length`` (skeleton pixels
        / image side), ``branch_points`` (junctions: 8-connected clusters of skeleton pixels
        with >= 3 skeleton neighbours), ``end_points`` (skeleton pixels with exactly one),
        ``mean_width`` (mean vessel width along the skeleton, in pixels at 512) and
        ``components`` (8-connected components of the mask) and ``disc_lateralisation``
        (|L - R| / (L + R) of :func:`disc_side_weights`: about 0.4-0.7 for a tree growing
        from a disc at a side, near 0 for a net without one) and ``loops`` (background
        regions enclosed by vessels, of at least :data:`LOOP_MIN_AREA` px at 512: crossings
        and meshes; pinholes inside a vessel do not count).
    """
    masks, fov = _check(masks, fov)
    rows = [_image_statistics(m, f) for m, f in zip(masks, fov, strict=True)]
    return {name: np.array([r[name] for r in rows], dtype=np.float64) for name in STATISTICS}


def _relative_difference(real_mean: float, synth_mean: float) -> float:
    if real_mean == 0:
        return 0.0 if synth_mean == 0 else float("inf")
    return (synth_mean - real_mean) / abs(real_mean)


def compare_statistics(
    real: dict[str, np.ndarray], synth: dict[str, np.ndarray], names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Compare two sets of per-image statistics (``names`` of them), statistic by statistic.

    For each statistic: the mean and (population) standard deviation of each set,
    ``relative_difference_of_means`` = (synth - real) / |real|, and ``wasserstein``, the
    1-Wasserstein distance between the two per-image distributions (in the statistic's units).
    Images whose value is NaN (object statistics of an empty mask) are left out; a statistic
    with no finite value on a side is left out altogether.
    """
    out = {}
    for name in names:
        if name not in real or name not in synth:
            continue
        r, s = np.asarray(real[name], float), np.asarray(synth[name], float)
        r, s = r[np.isfinite(r)], s[np.isfinite(s)]
        if not (r.size and s.size):
            continue
        out[name] = {
            "real_mean": float(r.mean()),
            "real_std": float(r.std()),
            "synth_mean": float(s.mean()),
            "synth_std": float(s.std()),
            "relative_difference_of_means": _relative_difference(float(r.mean()), float(s.mean())),
            "wasserstein": float(wasserstein_distance(r, s)),
        }
    return out


def compare_vessel_statistics(
    real: dict[str, np.ndarray], synth: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Compare two outputs of :func:`vessel_statistics` (:func:`compare_statistics` over
    :data:`STATISTICS`)."""
    return compare_statistics(real, synth, STATISTICS)


def width_histograms(
    masks: np.ndarray, fov: np.ndarray, bins: int | np.ndarray = 24, max_width: float = 48.0
) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of vessel width over all skeleton pixels of a set, for plotting.

    Widths are in pixels at 512, pooled over the images. With ``bins`` an integer the bins are
    equal over [0, ``max_width``] (wider vessels fall in the last bin), so that histograms of
    a real and a synthetic set share their bins; an array of edges is used as it is.

    Returns:
        (probabilities, edges): probabilities sum to 1 (all zeros if there is no vessel).
    """
    masks, fov = _check(masks, fov)
    widths = [skeleton_and_widths(m)[1] / m.shape[1] * REFERENCE_SIDE for m in masks if m.any()]
    pooled = np.concatenate(widths) if widths else np.zeros(0)
    edges = np.linspace(0.0, max_width, bins + 1) if np.isscalar(bins) else np.asarray(bins)
    counts, edges = np.histogram(np.clip(pooled, edges[0], edges[-1]), bins=edges)
    total = counts.sum()
    return (counts / total if total else counts.astype(float)), edges
