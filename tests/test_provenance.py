"""Content hashes of prepared pairs and runs (issue 29: provenance checked, not assumed)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthmed.data import provenance
from synthmed.data.sources import phantom_dataset, prepare_source, split_holdout
from synthmed.errors import UserError


def _folder(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
            root / "images" / f"p{i}.png"
        )
        mask = (rng.random((40, 48)) > 0.8).astype(np.uint8) * 255
        Image.fromarray(mask).save(root / "masks" / f"p{i}.png")
    return root


def test_hashes_are_of_native_pixels_whatever_the_resolution(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "pairs")
    a = prepare_source("folder", folder, 32)
    b = prepare_source("folder", folder, 64)
    assert provenance.image_hashes(a) == provenance.image_hashes(b)
    assert len(set(provenance.image_hashes(a))) == 4
    # the same pixels in another file format hash the same
    image = np.asarray(Image.open(folder / "images" / "p0.png"))
    assert a.meta["hashes"][0]["image"] == provenance.pixel_hash(image)


def test_hashes_survive_save_load_subset_and_split(tmp_path: Path) -> None:
    data = phantom_dataset(6, 32, seed=0)
    data.save(tmp_path / "d")
    loaded = type(data).load(tmp_path / "d")
    assert loaded.meta["hashes"] == data.meta["hashes"]
    train, held = split_holdout(loaded, 2)
    assert provenance.image_hashes(held) == provenance.image_hashes(data)[-2:]
    assert provenance.digest(provenance.image_hashes(train)) != provenance.digest(
        provenance.image_hashes(held)
    )
    # the digest does not depend on order
    hashes = provenance.image_hashes(data)
    assert provenance.digest(hashes) == provenance.digest(hashes[::-1])


def test_check_disjoint_names_the_shared_image() -> None:
    train, test = phantom_dataset(4, 32, seed=0), phantom_dataset(3, 32, seed=1)
    provenance.check_disjoint(test, {"the real training set": provenance.image_hashes(train)})
    with pytest.raises(
        UserError, match=r"image phantom_0000 \(and 2 more\) is also in the segmenters' data"
    ):
        provenance.check_disjoint(test, {"the segmenters' data": provenance.image_hashes(test)})


def test_a_run_records_its_data_and_refuses_to_resume_on_other_data(tmp_path: Path) -> None:
    from synthmed.cli import main
    from synthmed.files import read_json

    phantom_dataset(4, 32, seed=0).save(tmp_path / "a")
    phantom_dataset(4, 32, seed=1).save(tmp_path / "b")
    tiny = ["--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]
    run = tmp_path / "run"
    assert main(["train", "geometry", "--data", str(tmp_path / "a"), "--out", str(run),
                 "--steps", "2", *tiny]) == 0  # fmt: skip
    record = read_json(run / "generator" / "provenance.json")["trained_on"]
    assert record["images"] == provenance.image_hashes(phantom_dataset(4, 32, seed=0))
    assert read_json(run / "options.json")["trained_on"]["digest"] == record["digest"]
    again = ["train", "geometry", "--out", str(run), "--steps", "3", "--resume", *tiny]
    assert main([*again, "--data", str(tmp_path / "b")]) == 2
    assert main([*again, "--data", str(tmp_path / "a")]) == 0


def test_prepare_three_way_split_records_roles(tmp_path: Path, capsys) -> None:
    """prepare --val / --test: train, val and test in name order, each with its role and
    hashes, disjoint; --holdout with them is refused."""
    from synthmed.cli import main
    from synthmed.data.prepared import PreparedDataset

    out = tmp_path / "split"
    argv = ["prepare", "phantom", "--n", "9", "--res", "32", "--out", str(out)]
    assert main([*argv, "--val", "2", "--test", "3"]) == 0
    parts = {role: PreparedDataset.load(out / role) for role in ("train", "val", "test")}
    assert [len(p) for p in parts.values()] == [4, 2, 3]
    assert parts["test"].names == [f"phantom_{i:04d}" for i in (6, 7, 8)]
    assert {role: p.meta["split"] for role, p in parts.items()} == {
        "train": "train",
        "val": "val",
        "test": "test",
    }
    hashes = [set(provenance.image_hashes(p)) for p in parts.values()]
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    # Into a new folder: prepare refuses a non-empty --out before looking at the counts.
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    assert main([*argv, "--holdout", "2", "--test", "2"]) == 2
    assert main([*argv, "--val", "4", "--test", "4"]) == 2  # 1 left for training
    assert "--val 4 --test 4" in capsys.readouterr().err
