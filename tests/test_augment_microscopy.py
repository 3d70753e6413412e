"""Augmentations for images without an orientation (issue 32): 90-degree rotations and flips of
the training pairs, brightness and contrast for the discriminator, chosen from the mask kind;
DRIVE's policies unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.draw import ellipse

from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset
from synthmed.data.profile import record_mask_kind
from synthmed.errors import UserError
from synthmed.training.augment import (
    MICROSCOPY,
    diff_augment,
    parse_policy,
    random_dihedral,
    resolve_policy,
)


def _pairs(n: int = 16, side: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 2, S, S) pairs in [-1, 1]: a binary mask channel and an image channel that is a
    fixed function of it plus a ramp (so any misalignment shows), in [-0.5, -0.2] so that
    brightness and contrast never clip it; and the ramp."""
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(n, 1, side, side, generator=gen) < 0.3).float() * 2 - 1
    ramp = torch.linspace(-0.05, 0.05, side).view(1, 1, 1, side).expand(n, 1, side, side)
    return torch.cat([mask, 0.1 * mask - 0.35 + ramp], 1), ramp


def test_named_and_auto_policies() -> None:
    assert parse_policy("microscopy") == ("dihedral", "brightness", "contrast")
    assert resolve_policy("microscopy", "vessel") == MICROSCOPY
    assert resolve_policy("auto", "compact", "translation,color") == MICROSCOPY
    assert resolve_policy("auto", "vessel", "translation,color") == "translation,color"
    assert resolve_policy(" translation, color", "compact") == " translation, color"  # as given
    with pytest.raises(UserError, match="--augment auto"):
        parse_policy("auto")  # resolved by train() from the data, never parsed as is


def test_dihedral_keeps_masks_binary_and_aligned() -> None:
    pairs, _ = _pairs()
    symmetries = _symmetries()
    seen = set()
    for seed in range(8):
        out = random_dihedral(pairs, torch.Generator().manual_seed(seed))
        assert set(out[:, 0].unique().tolist()) == {-1.0, 1.0}  # the masks: still binary
        for before, after in zip(pairs, out, strict=True):
            # One symmetry of the square moved the whole pair: mask and image together.
            found = [k for k, f in symmetries.items() if torch.equal(f(before), after)]
            assert found, "mask and image were not moved together"
            seen.add(found[0])
    assert len(seen) == 8  # every orientation occurs


def _symmetries() -> dict[str, object]:
    """The 8 symmetries of the square on (C, S, S) tensors."""
    out = {}
    for t in (False, True):
        for h in (False, True):
            for v in (False, True):

                def f(x: torch.Tensor, t=t, h=h, v=v) -> torch.Tensor:
                    x = x.transpose(-1, -2) if t else x
                    x = x.flip(-1) if h else x
                    return x.flip(-2) if v else x

                out[(t, h, v)] = f
    return out


def test_microscopy_jitter_changes_the_image_never_the_mask() -> None:
    pairs, _ = _pairs()
    torch.manual_seed(0)
    out = diff_augment("microscopy", None, slice(1, 2))(pairs)
    assert torch.equal(out[:, :1], pairs[:, :1])  # the mask: unchanged, binary
    assert not torch.equal(out[:, 1:], pairs[:, 1:]) and out.abs().max() <= 1
    # Brightness and contrast are an affine map of each image's values: the mask's edges
    # stay where they were (the image still correlates perfectly with its own input).
    for before, after in zip(pairs[:, 1].flatten(1), out[:, 1].flatten(1), strict=True):
        assert np.corrcoef(before.numpy(), after.numpy())[0, 1] > 0.999
    masks_only = diff_augment("microscopy")(pairs)  # no image channels: nothing to jitter
    assert torch.equal(masks_only, pairs)


def test_microscopy_jitter_has_no_hue() -> None:
    grey = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8) * 2 - 1
    torch.manual_seed(1)
    out = diff_augment("brightness,contrast", slice(0, 3), slice(0, 3))(grey)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def _cells(folder: Path, n: int = 4, res: int = 32) -> Path:
    """A prepared grayscale dataset of one ellipse per image (compact masks), saved."""
    rng = np.random.default_rng(0)
    masks = np.zeros((n, res, res), np.uint8)
    for m in masks:
        m[ellipse(res / 2, res / 2, res * 0.3, res * 0.15, rotation=rng.uniform(0, 3))] = 1
    images = (60 + 120 * masks)[..., None].astype(np.uint8)
    names = [f"c{i}" for i in range(n)]
    PreparedDataset(images, masks, np.ones_like(masks), names, {"source": "test"}).save(folder)
    return folder


@pytest.mark.slow
def test_auto_augment_follows_the_mask_kind(tmp_path: Path) -> None:
    cells = _cells(tmp_path / "cells")
    eyes = tmp_path / "eyes"
    assert main(["prepare", "phantom", "--res", "32", "--n", "4", "--out", str(eyes)]) == 0
    tiny = ["--steps", "2", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]
    for stage in ("texture", "geometry"):
        for data, expected in ((cells, MICROSCOPY), (eyes, "")):
            out = tmp_path / f"{stage}-{data.name}"
            cmd = ["train", stage, "--data", str(data), "--out", str(out), "--augment", "auto"]
            assert main([*cmd, *tiny]) == 0
            saved = json.loads((out / "options.json").read_text())
            assert saved["train"]["augment"] == expected  # the operations, not "auto"
    # The drive512 preset's own policy stands for vessels.
    eyes64, out = tmp_path / "eyes64", tmp_path / "drive512"
    assert main(["prepare", "phantom", "--res", "64", "--n", "2", "--out", str(eyes64)]) == 0
    cmd = ["train", "texture", "--data", str(eyes64), "--out", str(out), "--augment", "auto"]
    assert main([*cmd, "--preset", "drive512", "--crop", "64", *tiny]) == 0
    saved = json.loads((out / "options.json").read_text())
    assert saved["train"]["augment"] == "translation,color"


@pytest.mark.slow
def test_tree_repair_is_refused_for_compact_masks(tmp_path: Path, capsys) -> None:
    cells = _cells(tmp_path / "cells")
    data = PreparedDataset.load(cells)
    record_mask_kind(data)  # as prepare records it
    data.save(cells)
    tiny = ["--steps", "1", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]
    runs = {}
    for stage in ("geometry", "texture"):
        runs[stage] = tmp_path / stage
        assert main(["train", stage, "--data", str(cells), "--out", str(runs[stage]), *tiny]) == 0
    assert json.loads((runs["geometry"] / "options.json").read_text())["mask_kind"] == "compact"
    cmd = ["generate", "--geometry", str(runs["geometry"]), "--texture", str(runs["texture"])]
    cmd += ["--n", "2", "--device", "cpu"]
    assert main([*cmd, "--repair-tree", "--out", str(tmp_path / "repaired")]) == 2
    assert "tree repair" in capsys.readouterr().err
    assert main([*cmd, "--out", str(tmp_path / "plain")]) == 0
