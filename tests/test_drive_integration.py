"""Integration on the real DRIVE training images in ../shared (skipped when absent)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset

SHARED = Path(os.environ.get("SYNTHMED_SHARED", Path(__file__).parents[1] / ".." / "shared"))
DRIVE = SHARED / "datasets" / "DRIVE" / "training"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DRIVE / "images").is_dir(),
        reason=f"DRIVE training set not found at {DRIVE} (set SYNTHMED_SHARED to its parent)",
    ),
]


def test_drive_at_64px_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "drive64"
    assert main(["prepare", "drive", str(DRIVE), "--res", "64", "--out", str(data)]) == 0
    ds = PreparedDataset.load(data)
    assert len(ds) == 20 and ds.images.shape == (20, 64, 64, 3)
    fraction = ds.masks.sum() / ds.fov.sum()
    assert 0.03 < fraction < 0.2  # vessels are ~12 % of the field of view at native size
    meta = json.loads((data / "dataset.json").read_text())
    assert meta["transforms"][0]["native_size"] == [584, 565]

    tiny = ["--steps", "4", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]
    assert (
        main(["train", "geometry", "--data", str(data), "--out", str(tmp_path / "g"), *tiny]) == 0
    )
    assert main(["train", "texture", "--data", str(data), "--out", str(tmp_path / "t"), *tiny]) == 0
    out = tmp_path / "synth"
    assert (
        main(
            [
                "generate",
                "--geometry",
                str(tmp_path / "g"),
                "--texture",
                str(tmp_path / "t"),
                "--n",
                "4",
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert len(list((out / "images").glob("*.png"))) == 4


def test_drive_root_and_split_folder_agree(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["prepare", "drive", str(DRIVE), "--res", "32", "--out", str(a)]) == 0
    assert main(["prepare", "drive", str(DRIVE.parent), "--res", "32", "--out", str(b)]) == 0
    assert np.array_equal(PreparedDataset.load(a).images, PreparedDataset.load(b).images)
