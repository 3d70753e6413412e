"""What kind of masks a dataset has: thin branching structures ("vessel") or blob-like objects
("compact"), decided from the masks alone (issue 32).

Everything domain-specific downstream keys on this one decision: vessel statistics, the
optic-disc convergence, the vessel-tree repair and per-width sensitivity run for "vessel";
object statistics (objects per image, area, perimeter, solidity, eccentricity) and the
microscopy augmentations for "compact". ``synthmed prepare`` records the decision in
``dataset.json`` (``mask_kind``: kind, figures, source "auto" or "user"); ``--mask-kind``
overrides it there and in the evaluation commands.

The figures are scale-free, so one rule holds from 32 to 512 px:

* ``solidity``: the objects' area over their convex hull's, area-weighted over the objects of
  an image. A vessel tree fills a sliver of its hull (DRIVE 0.13-0.48 by resolution); discs,
  ellipses, nuclei and rods fill most of theirs (0.83-0.99). Cells with processes (BU-BIL)
  fall between (0.37-0.68), so solidity alone does not decide them.
* ``thinness``: skeleton length / sqrt(foreground area). One structure of length L and width
  w gives sqrt(L / w): 1-2 for ellipses, about 5 for BU-BIL's cells, 14 for DRIVE at 64 px
  (where its tree has broken into thin dashes) and 28-50 from 128 px up.
* ``spread``: how much of the field of view each object's convex hull covers, area-weighted:
  a retinal tree spans the field (0.34 for the phantom at 32-64 px, above 0.8 for DRIVE from
  128 px), one cell covers a patch of it (BU-BIL 0.05-0.1).

Rule, on the medians over the images: "vessel" when ``solidity`` < 0.65 and (``thinness`` >= 7
or ``spread`` >= 0.2), else "compact". A mask of many irregular objects that each spread over a
fifth of the field would read as vessel; ``--mask-kind`` is there for such data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops
from skimage.morphology import skeletonize

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError

MASK_KINDS = ("vessel", "compact")
CHOICES = ("auto", *MASK_KINDS)  # what --mask-kind accepts
MAX_IMAGES = 64  # profiled images at most, evenly spaced by index: the rule reads medians
SOLIDITY_BELOW, THINNESS_FROM, SPREAD_FROM = 0.65, 7.0, 0.2
RULE = (
    f"vessel when the median solidity < {SOLIDITY_BELOW} and (the median thinness >= "
    f"{THINNESS_FROM:g} or the median spread >= {SPREAD_FROM}); else compact"
)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class MaskProfile:
    """The kind of a dataset's masks and the figures the decision rests on.

    ``figures`` (medians over the profiled images with any foreground, unless said):
    ``foreground_share`` (foreground / field-of-view pixels), ``objects_per_image``
    (8-connected components of at least :func:`min_object` px), ``thinness``, ``solidity``,
    ``spread`` (see the module docstring), ``mean_width_px`` (foreground area / skeleton
    length, at the working resolution), ``vessel_like_share`` (share of the images whose own
    figures meet the vessel rule), ``images`` (profiled) and ``empty`` (of them, with no
    foreground).
    """

    kind: str
    figures: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def record(self, source: str = "auto") -> dict[str, Any]:
        """What ``dataset.json`` holds under ``mask_kind``: kind, figures, source, reason."""
        return {**asdict(self), "source": source}


def min_object(side: int) -> int:
    """The smallest component counted as an object: (side / 128)^2 px, at least 1 (16 px at
    512): smaller ones are specks of annotation or resampling."""
    return max(1, round((side / 128) ** 2))


def image_figures(mask: np.ndarray, fov: np.ndarray) -> dict[str, float] | None:
    """The shape figures of one binary mask inside its field of view (None when empty)."""
    mask = mask.astype(bool) & fov.astype(bool)
    area = int(mask.sum())
    if area == 0:
        return None
    labels, _ = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    objects = [p for p in regionprops(labels) if p.area >= min_object(mask.shape[1])]
    skeleton = int(skeletonize(mask).sum())
    weights = np.array([p.area for p in objects], dtype=np.float64)
    weights = weights / weights.sum() if len(objects) else weights
    field_px = max(int(fov.astype(bool).sum()), 1)
    solidity = [p.area / max(p.area_convex, p.area) for p in objects]
    spread = [p.area_convex / field_px for p in objects]
    return {
        "foreground_share": area / field_px,
        "objects_per_image": float(len(objects)),
        "thinness": max(skeleton, 1) / np.sqrt(area),
        "solidity": float(weights @ solidity) if len(objects) else 1.0,
        "spread": float(weights @ spread) if len(objects) else 0.0,
        "mean_width_px": area / max(skeleton, 1),
    }


def vessel_like(figures: dict[str, float]) -> bool:
    """The rule (:data:`RULE`) on one set of figures: thin and branching, or spread wide."""
    if figures["solidity"] >= SOLIDITY_BELOW:
        return False
    return figures["thinness"] >= THINNESS_FROM or figures["spread"] >= SPREAD_FROM


def profile_masks(data: PreparedDataset) -> MaskProfile:
    """Decide from the masks alone whether ``data`` holds vessel-like or compact masks.

    At most :data:`MAX_IMAGES` images (evenly spaced) are measured; the rule reads the
    medians of their figures (module docstring). A dataset without any foreground is
    "compact": nothing vessel-specific has anything to measure there.
    """
    if len(data) == 0:
        raise UserError("mask profile: the dataset is empty")
    picked = np.unique(np.linspace(0, len(data) - 1, min(len(data), MAX_IMAGES)).round())
    rows = [image_figures(data.masks[i], data.fov[i]) for i in picked.astype(int)]
    found = [r for r in rows if r is not None]
    counts = {"images": float(len(rows)), "empty": float(len(rows) - len(found))}
    if not found:
        return MaskProfile("compact", counts, "no mask has any foreground")
    figures = {k: float(np.median([r[k] for r in found])) for k in found[0]}
    figures["vessel_like_share"] = float(np.mean([vessel_like(r) for r in found]))
    figures |= counts
    kind = "vessel" if vessel_like(figures) else "compact"
    reason = (
        f"median solidity {figures['solidity']:.2f}, thinness {figures['thinness']:.1f}, "
        f"spread {figures['spread']:.2f} over {len(found)} masks: {RULE}"
    )
    return MaskProfile(kind, figures, reason)


def check_choice(choice: str) -> str:
    """``--mask-kind`` checked: auto, vessel or compact."""
    if choice not in CHOICES:
        raise UserError(f"--mask-kind {choice}: use one of {', '.join(CHOICES)}")
    return choice


def decide_mask_kind(data: PreparedDataset, choice: str = "auto") -> dict[str, Any]:
    """The ``mask_kind`` record for ``data``: measured (source "auto"), or ``choice`` when it
    names a kind (source "user", the measured figures kept beside it)."""
    profile = profile_masks(data)
    if check_choice(choice) == "auto":
        return profile.record("auto")
    reason = f"set by --mask-kind {choice} (the masks alone say {profile.kind})"
    return MaskProfile(choice, profile.figures, reason).record("user")


def record_mask_kind(data: PreparedDataset, choice: str = "auto") -> dict[str, Any]:
    """Decide ``data``'s mask kind and record it in ``data.meta["mask_kind"]`` (written to
    ``dataset.json`` by :meth:`PreparedDataset.save`); returns the record."""
    record = decide_mask_kind(data, choice)
    data.meta["mask_kind"] = record
    return record


def mask_kind_of(data: PreparedDataset, choice: str = "auto") -> dict[str, Any]:
    """The mask kind to work with: ``choice`` when it names one; else the kind ``data``
    records (``dataset.json``); else measured now. Returns a ``mask_kind`` record."""
    recorded = data.meta.get("mask_kind")
    if check_choice(choice) == "auto" and isinstance(recorded, dict):
        if recorded.get("kind") in MASK_KINDS:
            return recorded
    return decide_mask_kind(data, choice)
