"""Probe: do Stage I's vessel trees grow from an optic disc? For each mask, the thick
vessels (distance-transform width >= 2 px from the centre line, i.e. >= ~4 px wide at 512)
are blurred with a 40 px Gaussian; the densest point is taken as the disc, and the share of
thick-vessel pixels within 100 px of it measures how much the tree converges there. Real
DRIVE masks: the disc sits at the left or right of the field, mid-height. Prints the
median and quartiles per set and the share of masks below the real masks' minimum
(docs/drive512.md, "Where Stage I's trees start").

Usage: python experiments/disc_layout.py SET [SET ...]  (prepared or generated folders)
"""

import sys

import numpy as np
from scipy import ndimage

from synthmed.data.sources import load_any


def disc_scores(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per mask: share of thick-vessel pixels within 100 px of the densest point, and that
    point's horizontal position (0 = left edge, 1 = right)."""
    yy, xx = np.mgrid[: masks.shape[1], : masks.shape[2]]
    share, where = [], []
    for m in masks.astype(bool):
        thick = ndimage.distance_transform_edt(m) >= 2
        density = ndimage.gaussian_filter(thick.astype(np.float32), 40)
        y, x = np.unravel_index(density.argmax(), density.shape)
        near = np.hypot(yy - y, xx - x) < 100
        share.append((thick & near).sum() / max(thick.sum(), 1))
        where.append(x / (m.shape[1] - 1))
    return np.array(share), np.array(where)


if __name__ == "__main__":
    floor = None
    for path in sys.argv[1:]:
        share, where = disc_scores(load_any(path, 512).masks)
        floor = share.min() if floor is None else floor
        q1, med, q3 = np.percentile(share, [25, 50, 75])
        side = np.mean((where < 0.3) | (where > 0.7))
        print(
            f"{path}: n={len(share)} disc share median {med:.3f} (IQR {q1:.3f}-{q3:.3f}), "
            f"below the first set's minimum {np.mean(share < floor):.0%}, "
            f"disc at a side {side:.0%}"
        )
