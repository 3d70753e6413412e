"""Stage I's last step: mend the refiner's binary masks into vessel trees.

The refiner draws the vessels' paths well but breaks them: on DRIVE at 512 px its masks have
four times the real masks' end points and fifty times their connected components
(docs/drive512.md). The end points have three sources, each visible in the masks and each with
a classical morphological repair, applied here in this order (after dropping dots of a few
pixels, which have no course to follow):

1. pinholes: background holes of a few pixels inside thick vessels, each a loop (two branch
   points) in the skeleton; filled.
2. spurs: bumps on a vessel's edge that the skeleton turns into short side branches (an end
   point and a branch point each); the branch is cut from the skeleton and the mask pixels it
   owns (those nearer to it than to any other skeleton pixel) are removed.
3. gaps: thin vessels drawn as dashes; the end points of two different pieces that face each
   other across a short gap are joined by a smooth curve (leaving each end the way its
   vessel runs) as wide as the thinner end, nearest and best-aligned pairs first, never
   closing a loop.
Pieces still smaller than a speck afterwards are dropped. Before all this, the pipeline cuts
Stage I's output at ``edge`` instead of 0: with the pinholes filled the refiner's vessels
measure wider than the real ones, and a higher cut moves every edge inwards.

Sizes are given in pixels at 512 (like the vessel statistics' widths) and scaled with the
mask's side, so the same settings serve a 64 px test and a 1024 px run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.draw import line
from skimage.morphology import skeletonize

from synthmed.errors import UserError
from synthmed.models.vessel_geometry import REFERENCE_SIDE

_EIGHT = np.ones((3, 3), dtype=bool)
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)
_STEPS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


@dataclass
class TreeRepair:
    """Settings of :func:`repair_tree`, in pixels at 512 (scaled with the mask's side).

    The defaults were chosen on the DRIVE 512 px runs of docs/drive512.md ("Mending Stage I's
    masks") and checked on runs they were not chosen on.
    """

    edge: float = 0.75  # Stage I's output level (tanh, -1..1) taken as the vessel edge
    dot_px: float = 10.0  # first drop dots smaller than this area (too small to have a course)
    hole_px: float = 20.0  # fill enclosed background holes smaller than this area
    spur_px: float = 4.0  # cut skeleton side branches up to this long
    gap_px: float = 60.0  # join facing end points of different pieces up to this far apart
    min_alignment: float = 0.3  # cosine between each end's outward direction and the joint
    speck_px: float = 100.0  # then drop pieces smaller than this area
    direction_px: float = 6.0  # an end's direction: from its piece's skeleton within this

    @classmethod
    def from_dict(cls, saved: dict, source: Path) -> TreeRepair:
        """Settings as saved in ``source`` (a pipeline.json); a clear error if they are not."""
        names = {f.name for f in fields(cls)}
        if not isinstance(saved, dict) or not set(saved) <= names:
            raise UserError(
                f"{source}: tree_repair must be a mapping with keys from {sorted(names)}"
            )
        return cls(**{k: float(v) for k, v in saved.items()})

    def scaled(self, side: int) -> TreeRepair:
        """The same settings for masks ``side`` pixels wide (lengths linear, areas squared)."""
        k = side / REFERENCE_SIDE
        return TreeRepair(
            edge=self.edge,
            dot_px=self.dot_px * k * k,
            hole_px=self.hole_px * k * k,
            spur_px=self.spur_px * k,
            gap_px=self.gap_px * k,
            min_alignment=self.min_alignment,
            speck_px=self.speck_px * k * k,
            direction_px=max(2.0, self.direction_px * k),
        )


def repair_tree(mask: np.ndarray, fov: np.ndarray, settings: TreeRepair) -> np.ndarray:
    """A binary vessel mask (H, W) mended into a tree (see the module's docstring): pinholes
    filled, spurs cut, facing dashes joined, specks dropped; nothing outside ``fov``."""
    s = settings.scaled(mask.shape[-1])
    fov = fov.astype(bool)
    mask = _drop_small_pieces(mask.astype(bool) & fov, s.dot_px)
    mask = _fill_small_holes(mask, s.hole_px)
    mask = _cut_spurs(mask, s.spur_px)
    mask = _join_gaps(mask, fov, s)
    return _drop_small_pieces(mask, s.speck_px) & fov


def repair_trees(masks: np.ndarray, fov: np.ndarray, settings: TreeRepair) -> np.ndarray:
    """:func:`repair_tree` for each of (N, H, W) masks and their fields of view."""
    return np.stack([repair_tree(m, f, settings) for m, f in zip(masks, fov, strict=True)])


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    # 4-connected background: a diagonal gap between vessel pixels does not close a hole.
    holes, _ = ndimage.label(~mask)
    small = np.bincount(holes.ravel()) < max_area
    small[0] = False  # label 0 is the vessels themselves
    return mask | small[holes]


def _drop_small_pieces(mask: np.ndarray, min_area: float) -> np.ndarray:
    pieces, _ = ndimage.label(mask, structure=_EIGHT)
    small = np.bincount(pieces.ravel()) < min_area
    small[0] = False
    return mask & ~small[pieces]


def _skeleton(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton and each skeleton pixel's count of skeleton neighbours (0 elsewhere)."""
    skeleton = skeletonize(mask)
    counts = ndimage.convolve(skeleton.astype(np.uint8), _NEIGHBOURS, mode="constant")
    return skeleton, np.where(skeleton, counts, 0)


def _cut_spurs(mask: np.ndarray, max_length: float) -> np.ndarray:
    """Remove side branches of the skeleton up to ``max_length`` pixels, with the mask
    pixels nearest to them."""
    skeleton, counts = _skeleton(mask)
    h, w = mask.shape
    cut = np.zeros_like(skeleton)
    for end in map(tuple, np.argwhere(counts == 1)):
        path, seen, here = [], {end}, end
        # Walk from the end along the skeleton until a junction (a spur: cut it), another end
        # or the length limit (a vessel: keep it).
        while counts[here] < 3 and len(path) <= max_length:
            path.append(here)
            ahead = [
                (here[0] + dy, here[1] + dx)
                for dy, dx in _STEPS
                if 0 <= here[0] + dy < h and 0 <= here[1] + dx < w
            ]
            ahead = [p for p in ahead if skeleton[p] and p not in seen]
            if not ahead:
                break
            here = max(ahead, key=lambda p: counts[p])  # step onto a junction when beside one
            seen.add(here)
        if counts[here] >= 3 and len(path) <= max_length:
            cut[tuple(np.array(path).T)] = True
    if not cut.any():
        return mask
    # Each mask pixel belongs to its nearest skeleton pixel; a cut spur takes its own along.
    _, nearest = ndimage.distance_transform_edt(~skeleton, return_indices=True)
    return mask & ~cut[nearest[0], nearest[1]]


def _join_gaps(mask: np.ndarray, fov: np.ndarray, s: TreeRepair) -> np.ndarray:
    """Join facing end points of different pieces with curves (see the module's docstring)."""
    pieces, count = ndimage.label(mask, structure=_EIGHT)
    skeleton, counts = _skeleton(mask)
    ends = np.argwhere(counts == 1)
    if len(ends) < 2:
        return mask
    piece = pieces[ends[:, 0], ends[:, 1]]
    radius = ndimage.distance_transform_edt(mask)
    outward, end_radius = _end_geometry(ends, piece, skeleton, pieces, radius, s.direction_px)
    candidates = []
    for a, b in cKDTree(ends).query_pairs(s.gap_px, output_type="ndarray"):
        if piece[a] == piece[b]:
            continue
        step = ends[b] - ends[a]
        unit = step / np.linalg.norm(step)
        cos_a, cos_b = outward[a] @ unit, -(outward[b] @ unit)
        if min(cos_a, cos_b) >= s.min_alignment:
            # Short and straight first: length, weighted up as the ends turn away.
            candidates.append((np.linalg.norm(step) * (3 - cos_a - cos_b), a, b))
    parent = np.arange(count + 1)  # union-find over pieces: a joint never closes a loop

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    used: set[int] = set()
    joints = np.zeros_like(mask)
    for _, a, b in sorted(candidates):
        ra, rb = root(piece[a]), root(piece[b])
        if a in used or b in used or ra == rb:
            continue
        parent[ra] = rb
        used.update((a, b))
        rows, cols = _joint(ends[a], ends[b], outward[a], outward[b], mask.shape)
        if not fov[rows, cols].all():  # a curve bulging out of the field of view: go straight
            rows, cols = line(*ends[a], *ends[b])
        segment = np.zeros_like(mask)
        segment[rows, cols] = True
        # As wide as the thinner end: an edge distance d on the centre line spans 2d - 1 px.
        grow = int(round(min(end_radius[a], end_radius[b]) - 1))
        if grow > 0:
            segment = ndimage.binary_dilation(segment, iterations=grow)
        joints |= segment
    return mask | joints


def _joint(
    start: np.ndarray, end: np.ndarray, out_start: np.ndarray, out_end: np.ndarray, shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a joint from ``start`` to ``end``: a cubic Hermite curve leaving ``start``
    along its outward direction and arriving at ``end`` against its own, the way a vessel
    would run on (a straight segment when the two face each other), 8-connected."""
    length = float(np.linalg.norm(end - start))
    t = np.linspace(0.0, 1.0, int(2 * length) + 2)[:, None]
    points = (
        (2 * t**3 - 3 * t**2 + 1) * start
        + (t**3 - 2 * t**2 + t) * out_start * length
        + (-2 * t**3 + 3 * t**2) * end
        - (t**3 - t**2) * out_end * length
    )
    points = np.clip(np.rint(points).astype(int), 0, np.array(shape) - 1)
    pieces = [line(*p, *q) for p, q in zip(points[:-1], points[1:], strict=True)]
    return np.concatenate([r for r, _ in pieces]), np.concatenate([c for _, c in pieces])


def _end_geometry(
    ends: np.ndarray,
    piece: np.ndarray,
    skeleton: np.ndarray,
    pieces: np.ndarray,
    radius: np.ndarray,
    reach: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each end point's outward unit vector (from the mean of its own piece's skeleton pixels
    within ``reach`` to the end) and its vessel's radius there (their median distance to the
    background: at the tip itself the distance falls to 1)."""
    points = np.argwhere(skeleton)
    owner = pieces[points[:, 0], points[:, 1]]
    tree = cKDTree(points)
    out, radii = np.zeros((len(ends), 2)), np.ones(len(ends))
    for i, (end, near) in enumerate(zip(ends, tree.query_ball_point(ends, reach), strict=True)):
        near = np.asarray(near)
        own = points[near[owner[near] == piece[i]]]
        v = end - own.mean(0)
        norm = np.linalg.norm(v)
        out[i] = v / norm if norm > 0 else 0.0
        radii[i] = np.median(radius[own[:, 0], own[:, 1]])
    return out, radii
