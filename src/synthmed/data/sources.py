"""Build a prepared dataset from any supported source: a real layout or the phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthmed.data.prepared import PreparedDataset, check_resolution, prepare_pairs, square_resize
from synthmed.data.readers import find_chase, find_drive, find_paired_folder
from synthmed.errors import UserError
from synthmed.files import atomic_folder

SOURCES = ("drive", "chase", "folder", "phantom")


def prepare_source(
    kind: str,
    path: str | Path | None,
    res: int,
    split: str = "training",
    n: int = 64,
    seed: int = 0,
) -> PreparedDataset:
    """Decode a dataset once into a :class:`PreparedDataset` at resolution ``res``.

    Args:
        kind: "drive", "chase", "folder" (generic images/ + masks/ [+ fov/]) or "phantom".
        path: dataset folder (ignored for the phantom).
        res: working resolution.
        split: DRIVE split ("training", "test"/"testing") when ``path`` is the DRIVE root.
        n, seed: number of phantom triples and their seed.
    """
    check_resolution(res)
    if kind == "phantom":
        return phantom_dataset(n, res, seed)
    if path is None:
        raise UserError(f"prepare {kind}: a dataset folder is required")
    if kind == "drive":
        pairs = find_drive(path, split)
    elif kind == "chase":
        pairs = find_chase(path)
    elif kind == "folder":
        pairs = find_paired_folder(path)
    else:
        raise UserError(f"unknown dataset kind {kind!r} (use one of {', '.join(SOURCES)})")
    # Fundus datasets without FOV masks (CHASE_DB1) take the photo's non-black disc.
    return prepare_pairs(
        pairs, res, f"{kind}:{Path(path).resolve()}", fov_from_photo=kind != "folder"
    )


def phantom_dataset(n: int, res: int, seed: int = 0) -> PreparedDataset:
    """``n`` procedural fundus phantoms, put through the same crop/square/resize as real data."""
    from synthmed.data.phantom import phantom_samples

    if n < 1:
        raise UserError(f"--n {n}: need at least one phantom")
    images, masks, fovs, transforms = [], [], [], []
    for s in phantom_samples(n, res, seed):
        img, m, f, t = square_resize(s.image, s.vessels, s.fov, res)
        images.append(img)
        masks.append(m)
        fovs.append(f)
        transforms.append(t)
    meta = {"source": f"phantom:n={n},seed={seed}", "transforms": transforms}
    names = [f"phantom_{i:04d}" for i in range(n)]
    return PreparedDataset(np.stack(images), np.stack(masks), np.stack(fovs), names, meta)


def detect_layout(path: str | Path) -> str:
    """Guess a folder's layout: "prepared", "drive", "chase" or "folder"."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: folder not found")
    if (path / "dataset.json").is_file() and (path / "arrays.npz").is_file():
        return "prepared"
    if (path / "1st_manual").is_dir() or (path / "training" / "1st_manual").is_dir():
        return "drive"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "folder"
    if any(path.glob("Image_*_1stHO.*")):
        return "chase"
    raise UserError(
        f"{path}: not a dataset (expected a prepared folder, DRIVE, CHASE_DB1 or images/ + masks/)"
    )


def load_any(path: str | Path, res: int) -> PreparedDataset:
    """Load a prepared folder as it is, or prepare any other supported layout at ``res``."""
    kind = detect_layout(path)
    if kind == "prepared":
        return PreparedDataset.load(path)
    return prepare_source(kind, path, res)


def split_holdout(data: PreparedDataset, holdout: int) -> tuple[PreparedDataset, PreparedDataset]:
    """Split off the last ``holdout`` samples (in name order) as a held-out set.

    Deterministic on purpose: for DRIVE's training set, ``holdout=5`` holds out 36-40.
    """
    if not 0 < holdout < len(data):
        raise UserError(f"--holdout {holdout}: must be between 1 and {len(data) - 1}")
    order = sorted(range(len(data)), key=lambda i: data.names[i])
    return data.subset(order[:-holdout]), data.subset(order[-holdout:])


SPLIT_PARTS = ("train", "holdout")


def save_split(train: PreparedDataset, holdout: PreparedDataset, out: str | Path) -> Path:
    """Write ``out/train`` and ``out/holdout`` as one unit: both are built in a temporary
    folder that then takes the place of ``out``, so a killed run leaves the previous split
    (or nothing), never a train half without its holdout. Replaces an earlier split in
    ``out``; refuses a folder holding anything else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in SPLIT_PARTS)
        if others:
            raise UserError(
                f"{out}: holds {', '.join(others[:3])}, not only a split (train/, holdout/); "
                "choose another --out"
            )
    with atomic_folder(out) as tmp:
        train.save(tmp / "train")
        holdout.save(tmp / "holdout")
    return out
