"""Measurements of a binary vessel mask shared by Stage I (its tree repair and training) and
the evaluation: centre lines and widths, the reference side that sizes are given at, and
where the thick vessels gather.

Here, below training, pipeline and evaluation, so that each can use them without importing
the others (issue 31: imports point one way).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

REFERENCE_SIDE = 512  # widths (and the tree repair's sizes) are given as pixels at this side
SIDE_BAND = 0.4  # share of the width on each side weighed by the disc's lateralisation


def skeleton_and_widths(
    mask: np.ndarray, distance: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The 1-pixel skeleton and the vessel width (pixels) at each skeleton pixel.

    The Euclidean distance transform at a centre-line pixel measures to the *centre* of the
    nearest background pixel, half a pixel beyond the vessel edge on each side, so a vessel
    drawn w pixels wide gives 2 * d = w + 1 on its centre line: subtract that one pixel.
    ``distance``: the mask's distance transform, when the caller has it.
    """
    skeleton = skeletonize(mask)
    if distance is None:
        distance = ndimage.distance_transform_edt(mask)
    return skeleton, 2.0 * distance[skeleton] - 1.0


def disc_side_weights(mask: np.ndarray, distance: np.ndarray | None = None) -> tuple[float, float]:
    """Where the thick vessels gather: the squared distance to the background summed over
    the vessel pixels of the left and of the right :data:`SIDE_BAND` of the width.

    The widest vessels converge at the optic disc, which sits at the left or the right of a
    fundus photo, so the heavier side is the disc's (on the 20 DRIVE training masks the
    left weight's share is 0.16-0.29 or 0.74-0.77, and 0.52 for the one whose disc is near
    the centre). A net of vessels without a disc weighs both sides alike.
    """
    if distance is None:
        distance = ndimage.distance_transform_edt(mask)
    weight = distance**2
    band = int(mask.shape[1] * SIDE_BAND)
    return float(weight[:, :band].sum()), float(weight[:, mask.shape[1] - band :].sum())
