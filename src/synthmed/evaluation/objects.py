"""Statistics of compact objects in binary masks (cells, nuclei, lesions): the fidelity family
for masks of kind "compact" (synthmed.data.profile), as vessels.py is for vessel trees.

Per image: how many objects (8-connected components), and the mean over its objects of their
area, perimeter, solidity and eccentricity. Areas and perimeters are scaled to be comparable
across working resolutions, as vessels.py scales widths: in pixels at 512, i.e. as if the image
were 512 pixels wide. An image without any object has 0 objects and no shape figures (NaN),
which the set means leave out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops

from synthmed.errors import UserError
from synthmed.models.vessel_geometry import REFERENCE_SIDE

STATISTICS = ("objects", "area", "perimeter", "solidity", "eccentricity")
DEFINITION = (
    "per image: objects = 8-connected components of the mask inside the field of view; area "
    "and perimeter (Crofton estimate) in pixels at 512 px, solidity (area / convex hull area) "
    "and eccentricity (of the ellipse with the same second moments: 0 a disc, towards 1 a "
    "line) averaged over the image's objects; the table gives the relative difference of the "
    "set means, (compared - A) / |A|, images without objects left out of the shape means"
)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _image_objects(mask: np.ndarray) -> dict[str, float]:
    """The object statistics of one (H, W) boolean mask."""
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    if count == 0:
        return {"objects": 0.0} | dict.fromkeys(STATISTICS[1:], np.nan)
    scale = REFERENCE_SIDE / mask.shape[1]
    props = regionprops(labels)
    return {
        "objects": float(count),
        "area": float(np.mean([p.area for p in props])) * scale**2,
        "perimeter": float(np.mean([p.perimeter_crofton for p in props])) * scale,
        "solidity": float(np.mean([p.area / max(p.area_convex, p.area) for p in props])),
        "eccentricity": float(np.mean([p.eccentricity for p in props])),
    }


def object_statistics(masks: np.ndarray, fov: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image object statistics of a set of binary masks.

    Args:
        masks: (N, H, W) masks, nonzero = object.
        fov: (N, H, W) field-of-view masks, nonzero = inside (a mask is read inside it only).

    Returns:
        One (N,) float array per name in :data:`STATISTICS` (see :data:`DEFINITION`).
    """
    if masks.ndim != 3 or masks.shape != fov.shape:
        raise UserError(f"masks {masks.shape} and field of view {fov.shape} must be (N, H, W)")
    inside = masks.astype(bool) & fov.astype(bool)
    rows = [_image_objects(m) for m in inside]
    return {name: np.array([r[name] for r in rows], dtype=np.float64) for name in STATISTICS}
