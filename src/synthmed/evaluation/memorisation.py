"""Stage I diversity and memorisation: nearest-neighbour Dice between vessel masks.

Two masks drawn independently from DRIVE overlap little (vessel trees differ from eye to
eye: real-vs-real nearest-neighbour Dice is about 0.3-0.5). A generated mask whose nearest
training mask has a Dice near 1 is a copy; two generated masks with Dice near 1 are a
collapse. Training masks are compared as given and mirrored, since training flips them.
The held-out real masks give the reference: what "new but realistic" looks like.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 128  # masks are compared at this side (soft, area-averaged): robust to 1 px shifts


def _soft(masks: np.ndarray, fov: np.ndarray) -> torch.Tensor:
    m = torch.from_numpy(masks & fov).float()[:, None]
    return F.interpolate(m, size=(SIDE, SIDE), mode="area").flatten(1)


def dice_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Soft Dice between every row of ``a`` (N, P) and of ``b`` (M, P): (N, M)."""
    inter = a @ b.T
    return 2 * inter / (a.sum(1)[:, None] + b.sum(1)[None] + 1e-8)


def nearest_neighbours(
    generated: tuple[np.ndarray, np.ndarray],
    train: tuple[np.ndarray, np.ndarray],
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Nearest-neighbour Dice of generated masks to the training masks (and their mirror
    images) and to each other; the same for held-out real masks when given.

    Each argument is (masks, fov), both (N, R, R) bool. Returns, per comparison, the
    per-sample nearest Dice summarised as max / p95 / median, and the fraction above 0.9.
    """
    gen, tr = _soft(*generated), _soft(*train)
    mirrored = _soft(train[0][..., ::-1].copy(), train[1][..., ::-1].copy())
    tr_both = torch.cat([tr, mirrored])

    def summary(nearest: torch.Tensor) -> dict[str, float]:
        v = nearest.numpy()
        return {
            "max": float(v.max()),
            "p95": float(np.percentile(v, 95)),
            "median": float(np.median(v)),
            "fraction_above_0.9": float((v > 0.9).mean()),
        }

    out: dict[str, Any] = {"side": SIDE, "count": len(gen)}
    out["generated_to_train"] = summary(dice_matrix(gen, tr_both).max(1).values)
    if len(gen) > 1:
        self_dice = dice_matrix(gen, gen).fill_diagonal_(0)
        out["generated_to_generated"] = summary(self_dice.max(1).values)
    if reference is not None:
        ref = _soft(*reference)
        out["held_out_to_train"] = summary(dice_matrix(ref, tr_both).max(1).values)
        if len(ref) > 1:
            out["held_out_to_held_out"] = summary(
                dice_matrix(ref, ref).fill_diagonal_(0).max(1).values
            )
    return out
