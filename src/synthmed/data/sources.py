"""Build a prepared dataset from any supported source: a real layout or the phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthmed.data.prepared import PreparedDataset, check_resolution, prepare_pairs, square_resize
from synthmed.data.provenance import pair_hashes
from synthmed.data.readers import FUNDUS_LAYOUTS, LAYOUT_FOREGROUND, READERS, find_drive
from synthmed.errors import UserError
from synthmed.files import atomic_folder

SOURCES = ("drive", "chase", "bubil", "folder", "phantom")


def prepare_source(
    kind: str,
    path: str | Path | None,
    res: int,
    split: str = "training",
    n: int = 64,
    seed: int = 0,
    foreground: str | None = None,
) -> PreparedDataset:
    """Decode a dataset once into a :class:`PreparedDataset` at resolution ``res``.

    Args:
        kind: "drive", "chase", "bubil" (BU-BIL's RawImages/ + GoldStandard/), "folder"
            (generic images/ + masks/ [+ fov/]) or "phantom".
        path: dataset folder (ignored for the phantom).
        res: working resolution.
        split: DRIVE split ("training", "test"/"testing") when ``path`` is the DRIVE root.
        n, seed: number of phantom triples and their seed.
        foreground: which mask value is the object: "white", "black" or "auto" (the
            minority class); None takes the layout's own (BU-BIL's masks are inverted: black).
    """
    check_resolution(res)
    if kind == "phantom":
        return phantom_dataset(n, res, seed)
    if kind not in READERS:
        raise UserError(f"unknown dataset kind {kind!r} (use one of {', '.join(SOURCES)})")
    if path is None:
        raise UserError(f"prepare {kind}: a dataset folder is required")
    pairs = find_drive(path, split) if kind == "drive" else READERS[kind](path)
    # Fundus datasets without FOV masks (CHASE_DB1) take the photo's non-black disc;
    # elsewhere (microscopy, ...) the whole frame is the field of view.
    return prepare_pairs(
        pairs,
        res,
        f"{kind}:{Path(path).resolve()}",
        fov_from_photo=kind in FUNDUS_LAYOUTS,
        foreground=foreground or LAYOUT_FOREGROUND[kind],
    )


def phantom_dataset(n: int, res: int, seed: int = 0) -> PreparedDataset:
    """``n`` procedural fundus phantoms, put through the same crop/square/resize as real data."""
    from synthmed.data.phantom import phantom_samples

    if n < 1:
        raise UserError(f"--n {n}: need at least one phantom")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be 0 or more")
    images, masks, fovs, transforms, hashes = [], [], [], [], []
    for s in phantom_samples(n, res, seed):
        img, m, f, t = square_resize(s.image, s.vessels, s.fov, res)
        hashes.append(pair_hashes(s.image, s.vessels))
        images.append(img)
        masks.append(m)
        fovs.append(f)
        transforms.append(t)
    meta = {"source": f"phantom:n={n},seed={seed}", "transforms": transforms, "hashes": hashes}
    names = [f"phantom_{i:04d}" for i in range(n)]
    return PreparedDataset(np.stack(images), np.stack(masks), np.stack(fovs), names, meta)


def detect_layout(path: str | Path) -> str:
    """Guess a folder's layout: "prepared", "drive", "chase", "bubil" or "folder"."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: folder not found")
    if (path / "dataset.json").is_file() and (path / "arrays.npz").is_file():
        return "prepared"
    if (path / "1st_manual").is_dir() or (path / "training" / "1st_manual").is_dir():
        return "drive"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "folder"
    if (path / "RawImages").is_dir() and (path / "GoldStandard").is_dir():
        return "bubil"
    if any(path.glob("Image_*_1stHO.*")):
        return "chase"
    raise UserError(
        f"{path}: not a dataset (expected a prepared folder, DRIVE, CHASE_DB1, BU-BIL "
        "(RawImages/ + GoldStandard/) or images/ + masks/)"
    )


def load_any(path: str | Path, res: int) -> PreparedDataset:
    """Load a prepared folder as it is, or prepare any other supported layout at ``res``."""
    kind = detect_layout(path)
    if kind == "prepared":
        return PreparedDataset.load(path)
    return prepare_source(kind, path, res)


def _with_role(data: PreparedDataset, role: str) -> PreparedDataset:
    """``data`` with its split's role recorded (dataset.json ``split``; reports print it)."""
    data.meta["split"] = role
    return data


def split_holdout(data: PreparedDataset, holdout: int) -> tuple[PreparedDataset, PreparedDataset]:
    """Split off the last ``holdout`` samples (in name order) as a held-out set.

    Deterministic on purpose: for DRIVE's training set, ``holdout=5`` holds out 36-40. The
    held-out part's role is "holdout" (whether choices were made on it is not recorded);
    :func:`split_three` records validation and test roles.
    """
    if not 0 < holdout < len(data):
        raise UserError(f"--holdout {holdout}: must be between 1 and {len(data) - 1}")
    order = sorted(range(len(data)), key=lambda i: data.names[i])
    train, held = data.subset(order[:-holdout]), data.subset(order[-holdout:])
    return _with_role(train, "train"), _with_role(held, "holdout")


def split_three(data: PreparedDataset, val: int, test: int) -> dict[str, PreparedDataset]:
    """Train / validation / test parts in name order: the last ``test`` samples are the test
    split, the ``val`` before them the validation split, the rest training.

    The discipline they stand for (docs/evaluation.md): every choice (a setting, a preset,
    a share) is made on ``val`` (or on folds of ``train``); ``test`` is scored once, at the end.
    Either count may be 0 (no such part), but not both, and training keeps at least 2.
    """
    if val < 0 or test < 0 or val + test == 0 or len(data) - val - test < 2:
        raise UserError(
            f"--val {val} --test {test}: need counts >= 0, not both 0, leaving at least 2 of "
            f"the {len(data)} pairs for training"
        )
    order = sorted(range(len(data)), key=lambda i: data.names[i])
    cut_val, cut_test = len(data) - val - test, len(data) - test
    parts = {
        "train": order[:cut_val],
        "val": order[cut_val:cut_test],
        "test": order[cut_test:],
    }
    return {role: _with_role(data.subset(idx), role) for role, idx in parts.items() if idx}


SPLIT_PARTS = ("train", "val", "test", "holdout")


def save_split(parts: dict[str, PreparedDataset], out: str | Path) -> Path:
    """Write each part to ``out/<role>`` as one unit: all are built in a temporary folder
    that then takes the place of ``out``, so a killed run leaves the previous split (or
    nothing), never a train part without its held-out part. Replaces an earlier split in
    ``out``; refuses a folder holding anything else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in SPLIT_PARTS)
        if others:
            raise UserError(
                f"{out}: holds {', '.join(others[:3])}, not only a split "
                f"({', '.join(p + '/' for p in SPLIT_PARTS)}); choose another --out"
            )
    with atomic_folder(out) as tmp:
        for role, part in parts.items():
            part.save(tmp / role)
    return out
