"""What kind of masks a dataset has: thin branching structures or compact objects.

(A first version for ``fit``; issue 32's domain work extends it.) The decision reads the
masks alone: how long the foreground's centre lines are against the square root of its
area (for a line of length L and width w, sqrt(L / w)). Vessel trees are long and thin at
any size (DRIVE and the phantom: 15-30); a disc scores near 0, a 10:1 spindle cell ~4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skimage.morphology import skeletonize

from synthmed.data.prepared import PreparedDataset

ELONGATED = 8.0  # centre-line length over sqrt(area) above which masks are vessel-like


@dataclass
class MaskProfile:
    """The kind of masks ("vessel" or "compact") and the figures it was decided from."""

    kind: str
    figures: dict[str, Any] = field(default_factory=dict)


def profile_masks(data: PreparedDataset) -> MaskProfile:
    """Decide the kind of ``data``'s masks from their median elongation."""
    widths, shares = [], []
    for mask, fov in zip(data.masks.astype(bool), data.fov.astype(bool), strict=True):
        area = int(mask.sum())
        shares.append(area / max(int(fov.sum()), 1))
        if area:
            length = int(skeletonize(mask).sum())
            widths.append(length / np.sqrt(area))
    elongation = float(np.median(widths)) if widths else 0.0
    kind = "vessel" if elongation > ELONGATED else "compact"
    figures = {"elongation": round(elongation, 2), "foreground_share": float(np.median(shares))}
    return MaskProfile(kind, figures)
