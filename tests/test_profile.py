"""The mask kind (synthmed.data.profile): vessel trees vs compact objects, from the masks alone;
recorded by ``synthmed prepare`` and overridable (issue 32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.draw import disk, ellipse

from synthmed import cli
from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset, square_resize
from synthmed.data.profile import (
    CHOICES,
    decide_mask_kind,
    mask_kind_of,
    profile_masks,
    record_mask_kind,
)
from synthmed.data.sources import phantom_dataset, prepare_source
from synthmed.evaluation import commands

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DRIVE = SHARED / "DRIVE" / "training"
BUBIL = SHARED / "BU-BIL_Dataset1"


def _masks_only(masks: np.ndarray) -> PreparedDataset:
    """A dataset of ``masks`` (N, H, W) with blank images and a full field of view."""
    n, h, w = masks.shape
    images = np.zeros((n, h, w, 1), np.uint8)
    names = [f"m{i:03d}" for i in range(n)]
    return PreparedDataset(images, masks.astype(np.uint8), np.ones_like(masks, np.uint8), names)


def _shapes(kind: str, res: int, n: int = 10, seed: int = 0) -> PreparedDataset:
    """Synthetic compact masks: a few discs, a few ellipses (aspect up to 4), or many small
    nuclei, at random places."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, res, res), np.uint8)
    for m in masks:
        if kind == "discs":
            for _ in range(rng.integers(1, 4)):
                centre = rng.uniform(0.2, 0.8, 2) * res
                m[disk(centre, rng.uniform(0.05, 0.15) * res, shape=m.shape)] = 1
        elif kind == "ellipses":
            for _ in range(rng.integers(1, 3)):
                a = rng.uniform(0.08, 0.2) * res
                r, c = rng.uniform(0.25, 0.75, 2) * res
                angle = rng.uniform(0, np.pi)
                m[ellipse(r, c, a, a / rng.uniform(1, 4), shape=m.shape, rotation=angle)] = 1
        else:  # nuclei
            for _ in range(rng.integers(20, 50)):
                centre = rng.uniform(0.05, 0.95, 2) * res
                m[disk(centre, rng.uniform(0.01, 0.03) * res + 0.8, shape=m.shape)] = 1
    return _masks_only(masks)


def _bubil(res: int) -> PreparedDataset:
    """BU-BIL's 25 gold-standard masks (inverted on disk: the cell is black), squared and
    resized as ``prepare`` does."""
    masks = []
    for path in sorted((BUBIL / "GoldStandard").glob("*.png")):
        cell = np.asarray(Image.open(path).convert("L")) < 128
        blank = np.zeros(cell.shape + (1,), np.uint8)
        masks.append(square_resize(blank, cell, np.ones_like(cell), res)[1])
    return _masks_only(np.stack(masks))


@pytest.mark.parametrize("res", [32, 64, 128])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_phantom_is_vessel(res: int, seed: int) -> None:
    profile = profile_masks(phantom_dataset(6, res, seed=seed))
    assert profile.kind == "vessel", profile.reason


@pytest.mark.parametrize("kind", ["discs", "ellipses", "nuclei"])
@pytest.mark.parametrize("res", [32, 64, 256])
def test_synthetic_blobs_are_compact(kind: str, res: int) -> None:
    profile = profile_masks(_shapes(kind, res))
    assert profile.kind == "compact", profile.reason
    assert profile.figures["solidity"] > 0.8


def test_figures_of_one_disc() -> None:
    masks = np.zeros((3, 128, 128), np.uint8)
    for m in masks:
        m[disk((64, 64), 20)] = 1
    figures = profile_masks(_masks_only(masks)).figures
    assert figures["objects_per_image"] == 1
    assert figures["foreground_share"] == pytest.approx(np.pi * 20**2 / 128**2, rel=0.02)
    assert figures["solidity"] > 0.97 and figures["thinness"] < 0.5
    assert figures["images"] == 3 and figures["empty"] == 0 and figures["vessel_like_share"] == 0


def test_empty_masks_are_compact() -> None:
    profile = profile_masks(_masks_only(np.zeros((2, 32, 32), np.uint8)))
    assert profile.kind == "compact" and profile.figures["empty"] == 2


@pytest.mark.skipif(not DRIVE.is_dir(), reason=f"DRIVE training images not found at {DRIVE}")
@pytest.mark.parametrize("res", [64, 128, 256, 512])
def test_drive_is_vessel(res: int) -> None:
    profile = profile_masks(prepare_source("drive", DRIVE, res))
    assert profile.kind == "vessel", profile.reason
    assert profile.figures["images"] == 20


@pytest.mark.skipif(not BUBIL.is_dir(), reason=f"BU-BIL dataset 1 not found at {BUBIL}")
@pytest.mark.parametrize("res", [32, 64, 128, 256, 512])
def test_bubil_cells_are_compact(res: int) -> None:
    data = _bubil(res)
    profile = profile_masks(data)
    assert profile.kind == "compact", profile.reason
    assert profile.figures["objects_per_image"] <= 2
    # Any ten of the cells say the same (a lab's smaller set, or a split's part).
    for start in range(0, 25, 5):
        part = data.subset([(start + k) % 25 for k in range(10)])
        assert profile_masks(part).kind == "compact"


def test_user_choice_overrides_and_keeps_the_figures() -> None:
    data = phantom_dataset(4, 32)
    record = decide_mask_kind(data, "compact")
    assert record["kind"] == "compact" and record["source"] == "user"
    assert "vessel" in record["reason"] and record["figures"]["images"] == 4
    auto = record_mask_kind(data)
    assert data.meta["mask_kind"] is auto and auto["source"] == "auto"
    assert mask_kind_of(data) is auto  # recorded: not measured again
    assert mask_kind_of(data, "compact")["kind"] == "compact"


def test_cli_choices_agree() -> None:
    assert cli.MASK_KINDS == commands.MASK_KINDS == CHOICES
    from synthmed.data.prepared import FOREGROUND_SETTINGS

    assert cli.FOREGROUNDS == FOREGROUND_SETTINGS


def test_prepare_records_the_kind_and_its_override(tmp_path: Path) -> None:
    out = tmp_path / "auto"
    assert main(["prepare", "phantom", "--res", "32", "--n", "6", "--out", str(out)]) == 0
    record = json.loads((out / "dataset.json").read_text())["mask_kind"]
    assert record["kind"] == "vessel" and record["source"] == "auto"
    assert {"solidity", "thinness", "spread", "objects_per_image"} <= set(record["figures"])
    assert PreparedDataset.load(out).meta["mask_kind"] == record

    split = tmp_path / "split"
    args = ["prepare", "phantom", "--res", "32", "--n", "6", "--holdout", "2"]
    assert main([*args, "--mask-kind", "compact", "--out", str(split)]) == 0
    for part in ("train", "holdout"):
        record = json.loads((split / part / "dataset.json").read_text())["mask_kind"]
        assert record["kind"] == "compact" and record["source"] == "user"
