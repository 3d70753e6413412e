"""Find (image, mask, field-of-view) files in the layouts researchers actually have.

Supported layouts:

* DRIVE (official): ``training/images/21_training.tif``, ``training/1st_manual/21_manual1.gif``,
  ``training/mask/21_training_mask.gif``; likewise ``test/`` (or ``testing/``) with ``01_test.tif``.
* CHASE_DB1: ``Image_01L.jpg`` beside ``Image_01L_1stHO.png`` (no field-of-view masks shipped).
* BU-BIL (Boston University Biomedical Image Library, as published): ``RawImages/B01.png``
  with ``GoldStandard/seg_B01.png``; its masks are inverted (the cell is black), which
  :data:`LAYOUT_FOREGROUND` records for ``prepare``.
* A generic paired folder: ``images/``, ``masks/``, optional ``fov/``, matched by file stem,
  so other domains (cell microscopy, ...) fit.

Decoding lives in :mod:`synthmed.data.images`; this module only pairs paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from synthmed.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".ppm"}


@dataclass(frozen=True)
class PairPaths:
    """Paths of one training example; ``fov`` is None when the dataset ships none."""

    name: str
    image: Path
    mask: Path
    fov: Path | None


def _require_dir(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: folder not found")
    if not path.is_dir():
        raise UserError(f"{path}: not a folder")
    return path


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _nonempty(pairs: list[PairPaths], root: Path, what: str) -> list[PairPaths]:
    if not pairs:
        raise UserError(f"{root}: no {what} found (empty dataset)")
    return pairs


def find_drive(root: str | Path, split: str = "training") -> list[PairPaths]:
    """Pair DRIVE files. ``root`` is the DRIVE folder or one split folder (holding ``images/``)."""
    root = _require_dir(Path(root))
    split_dir = root
    if not (root / "images").is_dir():
        candidates = [split] + (["testing"] if split == "test" else [])
        candidates += ["test"] if split == "testing" else []
        found = [root / c for c in candidates if (root / c / "images").is_dir()]
        if not found:
            raise UserError(
                f"{root}: not a DRIVE folder (expected images/ or {split}/images/ inside)"
            )
        split_dir = found[0]
    images_dir = split_dir / "images"
    manual_dir = _require_dir(split_dir / "1st_manual")
    fov_dir = split_dir / "mask"
    pairs = []
    for image in _image_files(images_dir):
        m = re.match(r"^(\d+)_(training|test)$", image.stem)
        if not m:
            continue  # DRIVE ships nothing else in images/, but users add thumbnails etc.
        number, kind = m.groups()
        mask = _find_stem(manual_dir, f"{number}_manual1")
        if mask is None:
            raise UserError(f"{image}: no vessel mask {manual_dir}/{number}_manual1.gif")
        fov = _find_stem(fov_dir, f"{number}_{kind}_mask") if fov_dir.is_dir() else None
        pairs.append(PairPaths(f"{number}_{kind}", image, mask, fov))
    return _nonempty(pairs, images_dir, "DRIVE images (NN_training.tif / NN_test.tif)")


def find_chase(root: str | Path) -> list[PairPaths]:
    """Pair CHASE_DB1 files: ``Image_01L.jpg`` with the first observer's ``Image_01L_1stHO.png``."""
    root = _require_dir(Path(root))
    pairs = []
    for image in _image_files(root):
        if not re.match(r"^Image_\d+[LR]$", image.stem):
            continue
        mask = _find_stem(root, f"{image.stem}_1stHO")
        if mask is None:
            raise UserError(f"{image}: no vessel mask {image.stem}_1stHO.png beside it")
        pairs.append(PairPaths(image.stem, image, mask, None))
    return _nonempty(pairs, root, "CHASE_DB1 images (Image_NNL.jpg)")


def find_bubil(root: str | Path) -> list[PairPaths]:
    """Pair BU-BIL files: ``RawImages/X.png`` with its gold standard ``GoldStandard/seg_X.png``."""
    root = _require_dir(Path(root))
    images_dir, masks_dir = root / "RawImages", root / "GoldStandard"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise UserError(f"{root}: not a BU-BIL folder (expected RawImages/ and GoldStandard/)")
    pairs = []
    for image in _image_files(images_dir):
        mask = _find_stem(masks_dir, f"seg_{image.stem}")
        if mask is None:
            raise UserError(f"{image}: no gold standard {masks_dir}/seg_{image.stem}.png")
        pairs.append(PairPaths(image.stem, image, mask, None))
    return _nonempty(pairs, images_dir, "BU-BIL images (RawImages/Bnn.png)")


def find_paired_folder(root: str | Path) -> list[PairPaths]:
    """Pair ``images/X.*`` with ``masks/X.*`` (and ``fov/X.*`` when that folder exists)."""
    root = _require_dir(Path(root))
    images_dir = root / "images"
    masks_dir = root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise UserError(f"{root}: expected images/ and masks/ folders inside")
    fov_dir = root / "fov"
    pairs = []
    for image in _image_files(images_dir):
        mask = _find_stem(masks_dir, image.stem)
        if mask is None:
            raise UserError(f"{image}: no mask with the same name in {masks_dir}")
        fov = None
        if fov_dir.is_dir():
            fov = _find_stem(fov_dir, image.stem)
            if fov is None:
                raise UserError(f"{image}: no field-of-view mask with the same name in {fov_dir}")
        pairs.append(PairPaths(image.stem, image, mask, fov))
    return _nonempty(pairs, images_dir, "images")


def _find_stem(folder: Path, stem: str) -> Path | None:
    """The image file in ``folder`` called ``stem`` with any image suffix, or None."""
    if not folder.is_dir():
        return None
    for suffix in sorted(IMAGE_SUFFIXES):
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


READERS = {
    "drive": find_drive,
    "chase": find_chase,
    "bubil": find_bubil,
    "folder": find_paired_folder,
}
# Which mask value is the object in a layout as published, when --foreground is not given.
LAYOUT_FOREGROUND = {"drive": "white", "chase": "white", "bubil": "black", "folder": "white"}
# Layouts of fundus photographs: without a field-of-view file, the FOV is the photo's disc.
FUNDUS_LAYOUTS = ("drive", "chase")
