"""The readers on small files written in the real layouts (DRIVE, CHASE_DB1, generic folder).

Every image here is tiny and non-square (40 wide x 44 high, like DRIVE's 565x584), written
with Pillow in the formats the datasets ship: RGB TIFF + mode-L GIF masks (DRIVE), JPEG +
PNG (CHASE_DB1), PNG / JPEG / 16-bit TIFF (generic folder).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from synthmed.cli import main
from synthmed.data.images import read_image, read_mask
from synthmed.data.prepared import PreparedDataset, prepare_pairs
from synthmed.data.readers import (
    PairPaths,
    find_bubil,
    find_chase,
    find_drive,
    find_paired_folder,
)
from synthmed.data.sources import prepare_source

H, W = 44, 40  # native size: height x width, non-square
RES = 32


# ----------------------------------------------------------------------------- helpers


def _save(path: Path, array: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)
    return path


def _disc(cy: float, cx: float, r: float, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _fundus(seed: int, fov: np.ndarray) -> np.ndarray:
    """An RGB photo: bright noisy disc on a black surround (like a fundus photograph)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(80, 255, (*fov.shape, 3), dtype=np.uint8)
    return img * fov[..., None].astype(np.uint8)


def _vessels(fov: np.ndarray) -> np.ndarray:
    """A 0/255 mask with a horizontal and a vertical 'vessel' crossing the whole image."""
    m = np.zeros(fov.shape, np.uint8)
    m[fov.shape[0] // 2 - 1 : fov.shape[0] // 2 + 2, :] = 255
    m[:, fov.shape[1] // 3 : fov.shape[1] // 3 + 2] = 255
    return m


FOV = _disc(H / 2, W / 2, 18)


def _drive_split(split_dir: Path, numbers: list[int], kind: str) -> None:
    for i, n in enumerate(numbers):
        _save(split_dir / "images" / f"{n:02d}_{kind}.tif", _fundus(i, FOV))
        _save(split_dir / "1st_manual" / f"{n:02d}_manual1.gif", _vessels(FOV))
        _save(split_dir / "mask" / f"{n:02d}_{kind}_mask.gif", FOV.astype(np.uint8) * 255)


def make_drive(root: Path, test_folder: str = "test") -> Path:
    """DRIVE's official layout: training/ (21, 22) and test/ or testing/ (01)."""
    _drive_split(root / "training", [21, 22], "training")
    _drive_split(root / test_folder, [1], "test")
    return root


def make_chase(root: Path, n: int = 2) -> Path:
    for i in range(n):
        stem = f"Image_{i + 1:02d}{'LR'[i % 2]}"
        _save(root / f"{stem}.jpg", _fundus(i, FOV), quality=95)
        _save(root / f"{stem}_1stHO.png", _vessels(FOV))
        _save(root / f"{stem}_2ndHO.png", _vessels(FOV))  # second observer: ignored
    return root


def _check_prepared(data: PreparedDataset, n: int, channels: int) -> None:
    assert data.images.shape == (n, RES, RES, channels)
    assert data.masks.shape == data.fov.shape == (n, RES, RES)
    for a in (data.images, data.masks, data.fov):
        assert a.dtype == np.uint8
    assert set(np.unique(data.masks)) <= {0, 1}
    assert set(np.unique(data.fov)) <= {0, 1}
    assert not np.any(data.masks & (1 - data.fov)), "vessel pixels outside the field of view"
    assert data.masks.any() and data.fov.any()
    assert len(data) == n and data.resolution == RES and data.channels == channels


# ----------------------------------------------------------------------------- DRIVE


def test_drive_files_decode(tmp_path: Path) -> None:
    """DRIVE's RGB .tif images and mode-L .gif masks decode to the right arrays."""
    root = make_drive(tmp_path / "DRIVE")
    img = read_image(root / "training/images/21_training.tif")
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, _fundus(0, FOV))  # TIFF is lossless
    mask = read_mask(root / "training/1st_manual/21_manual1.gif", (H, W))
    np.testing.assert_array_equal(mask, _vessels(FOV) > 0)
    fov = read_mask(root / "training/mask/21_training_mask.gif", (H, W))
    np.testing.assert_array_equal(fov, FOV)


def test_find_drive_from_root(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    pairs = find_drive(root)
    assert [p.name for p in pairs] == ["21_training", "22_training"]
    t = root / "training"
    assert pairs[0] == PairPaths(
        "21_training",
        t / "images/21_training.tif",
        t / "1st_manual/21_manual1.gif",
        t / "mask/21_training_mask.gif",
    )


@pytest.mark.parametrize("folder", ["test", "testing"])
@pytest.mark.parametrize("split", ["test", "testing"])
def test_find_drive_test_split(tmp_path: Path, folder: str, split: str) -> None:
    """The test split is found under test/ or testing/, whichever name the user asks for."""
    root = make_drive(tmp_path / "DRIVE", test_folder=folder)
    pairs = find_drive(root, split)
    s = root / folder
    assert pairs == [
        PairPaths(
            "01_test", s / "images/01_test.tif", s / "1st_manual/01_manual1.gif",
            s / "mask/01_test_mask.gif",
        )
    ]  # fmt: skip


@pytest.mark.parametrize("split", ["training", "test"])
def test_find_drive_split_folder_itself(tmp_path: Path, split: str) -> None:
    """Passing the split folder (holding images/) gives the same pairs as root + split."""
    root = make_drive(tmp_path / "DRIVE")
    assert find_drive(root / split) == find_drive(root, split)


def test_find_drive_ignores_foreign_files(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    _save(root / "training/images/21_training_thumb.png", np.zeros((4, 4, 3), np.uint8))
    (root / "training/images/README.txt").write_text("not an image")
    assert [p.name for p in find_drive(root)] == ["21_training", "22_training"]


def test_prepare_drive(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    data = prepare_source("drive", root, RES)
    _check_prepared(data, 2, 3)
    assert data.names == ["21_training", "22_training"]
    test = prepare_source("drive", root, RES, split="test")
    _check_prepared(test, 1, 3)
    # The FOV disc is cropped to its bounding box: it touches all four sides of the square.
    f = test.fov[0]
    assert f[0].any() and f[-1].any() and f[:, 0].any() and f[:, -1].any()


# ----------------------------------------------------------------------------- CHASE_DB1


def test_find_chase(tmp_path: Path) -> None:
    root = make_chase(tmp_path / "CHASEDB1")
    pairs = find_chase(root)
    assert [p.name for p in pairs] == ["Image_01L", "Image_02R"]
    assert pairs[0].image == root / "Image_01L.jpg"
    assert pairs[0].mask == root / "Image_01L_1stHO.png"
    assert pairs[0].fov is None  # CHASE_DB1 ships no FOV masks


def test_prepare_chase_fov_from_dark_surround(tmp_path: Path) -> None:
    """Without FOV files the field of view is the photo's bright disc, cropped to fill R x R."""
    off_centre = _disc(15, 14, 12)  # a disc in the upper-left part of the photo
    root = tmp_path / "CHASEDB1"
    _save(root / "Image_01L.jpg", _fundus(0, off_centre), quality=95)
    _save(root / "Image_01L_1stHO.png", _vessels(FOV))  # vessels also outside the disc
    data = prepare_source("chase", root, RES)
    _check_prepared(data, 1, 3)
    f = data.fov[0].astype(bool)
    # The disc fills the square: touches every side, covers ~pi/4 of it, corners are out.
    assert f[RES // 2].all() and f[:, RES // 2].all()
    assert abs(f.mean() - off_centre.sum() / 25**2) < 0.03  # same disc fraction as native
    assert not (f[0, 0] or f[0, -1] or f[-1, 0] or f[-1, -1])
    t = data.meta["transforms"][0]
    top, left, h, w = t["crop"]
    assert (top, left, h, w) == (3, 2, 25, 25) and t["side"] == 25 and t["pad"] == [0, 0]
    # The photo's corners (outside the disc) stay black, up to JPEG noise.
    assert data.images[0, [0, 0, -1, -1], [0, -1, 0, -1]].max() < 20


# ----------------------------------------------------------------------------- generic folder


def _make_folder(root: Path, n: int = 3, gray: bool = False, ext: str = "png", fov: bool = False):
    rng = np.random.default_rng(0)
    for i in range(n):
        stem = f"cell_{i}"
        img = rng.integers(0, 255, (H, W) if gray else (H, W, 3), dtype=np.uint8)
        _save(root / "images" / f"{stem}.{ext}", img)
        _save(root / "masks" / f"{stem}.png", _vessels(FOV))
        if fov:
            _save(root / "fov" / f"{stem}.png", FOV.astype(np.uint8) * 255)
    return root


def test_find_paired_folder_matches_by_stem(tmp_path: Path) -> None:
    root = tmp_path / "cells"
    _save(root / "images/b.jpg", np.zeros((H, W, 3), np.uint8))
    _save(root / "images/a.png", np.zeros((H, W, 3), np.uint8))
    _save(root / "masks/a.gif", np.zeros((H, W), np.uint8))
    _save(root / "masks/b.png", np.zeros((H, W), np.uint8))
    _save(root / "masks/zz_extra.png", np.zeros((H, W), np.uint8))  # mask without image
    pairs = find_paired_folder(root)
    assert [(p.name, p.image.name, p.mask.name, p.fov) for p in pairs] == [
        ("a", "a.png", "a.gif", None),
        ("b", "b.jpg", "b.png", None),
    ]
    _save(root / "fov/a.png", np.zeros((H, W), np.uint8))
    _save(root / "fov/b.tif", np.zeros((H, W), np.uint8))
    assert [p.fov for p in find_paired_folder(root)] == [root / "fov/a.png", root / "fov/b.tif"]


@pytest.mark.parametrize(
    ("gray", "ext", "channels"),
    [(False, "png", 3), (True, "png", 1), (False, "jpg", 3), (True, "jpg", 1)],
)
def test_prepare_folder_channels(tmp_path: Path, gray: bool, ext: str, channels: int) -> None:
    """RGB images give 3 channels; a grayscale dataset stays single-channel."""
    root = _make_folder(tmp_path / "ds", gray=gray, ext=ext)
    data = prepare_source("folder", root, RES)
    _check_prepared(data, 3, channels)
    assert data.names == ["cell_0", "cell_1", "cell_2"]
    # No fov/ folder: the whole image is the field of view (pad bands aside).
    t = data.meta["transforms"][0]
    assert t["crop"] == [0, 0, H, W] and t["side"] == H and t["pad"] == [0, (H - W) // 2]


def test_prepare_folder_mixed_gray_and_rgb_is_rgb(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "ds", n=2, gray=True)
    # A colour image: an RGB file whose three channels are equal counts as grayscale.
    _save(root / "images/cell_9.png", np.full((H, W, 3), (7, 80, 200), np.uint8))
    _save(root / "masks/cell_9.png", _vessels(FOV))
    data = prepare_source("folder", root, RES)
    _check_prepared(data, 3, 3)


def test_prepare_folder_with_fov(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "ds", n=2, fov=True)
    data = prepare_source("folder", root, RES)
    _check_prepared(data, 2, 3)
    rows, cols = np.flatnonzero(FOV.any(axis=1)), np.flatnonzero(FOV.any(axis=0))
    side = int(rows[-1] - rows[0] + 1)
    assert data.meta["transforms"][0]["crop"] == [int(rows[0]), int(cols[0]), side, side]
    assert not data.fov[:, 0, 0].any()  # corners outside the disc


def test_sixteen_bit_tiff(tmp_path: Path) -> None:
    """16-bit grayscale TIFFs (microscopy) are read and rescaled to uint8."""
    a = np.zeros((H, W), np.uint16)
    a[:, : W // 2] = 1000
    a[:, W // 2 :] = 4000
    path = _save(tmp_path / "ds/images/x.tif", a)
    assert Image.open(path).mode.startswith("I;16")
    img = read_image(path, channels=1)
    assert img.shape == (H, W, 1) and img.dtype == np.uint8
    assert set(np.unique(img)) == {64, 255}  # 1000/4000*255 = 63.75 -> 64
    _save(tmp_path / "ds/masks/x.png", _vessels(FOV))
    data = prepare_source("folder", tmp_path / "ds", RES)
    _check_prepared(data, 1, 1)
    assert data.images.max() == 255


# ----------------------------------------------------------------------------- crop + pad


def _pairs_with_fov(tmp_path: Path, fov: np.ndarray, mask: np.ndarray | None = None):
    img = _save(tmp_path / "img.png", _fundus(0, np.ones((H, W), bool)))
    m = _save(tmp_path / "mask.png", _vessels(fov) if mask is None else mask)
    f = _save(tmp_path / "fov.png", fov.astype(np.uint8) * 255)
    return [PairPaths("x", img, m, f)]


def test_off_centre_fov_disc_fills_the_square(tmp_path: Path) -> None:
    fov = _disc(12, 12, 9)  # bounding box rows 3..21, cols 3..21
    data = prepare_pairs(_pairs_with_fov(tmp_path, fov), RES, "test")
    _check_prepared(data, 1, 3)
    f = data.fov[0].astype(bool)
    assert f[RES // 2].all() and f[:, RES // 2].all()  # spans the full width and height
    assert abs(f.mean() - fov.sum() / 19**2) < 0.03  # same disc fraction as native
    t = data.meta["transforms"][0]
    assert t["native_size"] == [H, W]
    assert t["crop"] == [3, 3, 19, 19] and t["pad"] == [0, 0] and t["side"] == 19
    assert t["image"] == str(tmp_path / "img.png") and t["mask"] == str(tmp_path / "mask.png")


def test_native_files_are_found_from_another_working_directory(tmp_path: Path, monkeypatch) -> None:
    """Prepared with relative paths, evaluated elsewhere: the recorded paths still resolve."""
    from synthmed.evaluation.protocol import native_truth

    fov = _disc(12, 12, 9)
    pairs = _pairs_with_fov(tmp_path, fov)
    monkeypatch.chdir(tmp_path)
    rel = [
        PairPaths(p.name, Path(p.image.name), Path(p.mask.name), Path(p.fov.name)) for p in pairs
    ]
    data = prepare_pairs(rel, RES, "test")
    monkeypatch.chdir(tmp_path.parent)
    truth = native_truth(data.meta["transforms"][0])
    assert truth is not None and truth[1].astype(bool).sum() == fov.sum()


def test_tall_fov_is_padded_to_square(tmp_path: Path) -> None:
    """A 20-high, 10-wide FOV is centred in a 20x20 square: 5-pixel bands left and right."""
    fov = np.zeros((H, W), bool)
    fov[5:25, 10:20] = True
    mask = np.full((H, W), 255, np.uint8)  # all vessel: the prepared mask must equal the FOV
    mask[0, 0] = 0  # (two grey levels: see test_all_white_mask_is_all_true)
    data = prepare_pairs(_pairs_with_fov(tmp_path, fov, mask), RES, "test")
    t = data.meta["transforms"][0]
    assert t["crop"] == [5, 10, 20, 10] and t["pad"] == [0, 5] and t["side"] == 20
    expected = np.zeros((RES, RES), np.uint8)
    expected[:, 8:24] = 1  # 5/20 and 15/20 of 32
    np.testing.assert_array_equal(data.fov[0], expected)
    np.testing.assert_array_equal(data.masks[0], expected)
    assert not data.images[0][:, :7].any() and not data.images[0][:, 25:].any()  # black pad


def test_mask_outside_fov_is_cut(tmp_path: Path) -> None:
    fov = _disc(H / 2, W / 2, 10)
    full = np.full((H, W), 255, np.uint8)
    full[0, 0] = 0
    data = prepare_pairs(_pairs_with_fov(tmp_path, fov, full), RES, "test")
    np.testing.assert_array_equal(data.masks[0], data.fov[0])


# ----------------------------------------------------------------------------- save / load


def test_dataset_json_and_round_trip(tmp_path: Path) -> None:
    root = make_drive(tmp_path / "DRIVE")
    data = prepare_source("drive", root, RES)
    out = data.save(tmp_path / "prepared")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["resolution"] == RES and meta["channels"] == 3 and meta["count"] == 2
    assert meta["names"] == ["21_training", "22_training"]
    assert meta["format_version"] == 1
    assert meta["source"] == f"drive:{root.resolve()}"
    assert len(meta["transforms"]) == 2
    for t in meta["transforms"]:
        assert {"native_size", "crop", "pad", "side", "image", "mask"} <= set(t)
        assert t["native_size"] == [H, W]
    loaded = PreparedDataset.load(out)
    for name in ("images", "masks", "fov"):
        a, b = getattr(data, name), getattr(loaded, name)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert loaded.names == data.names
    assert loaded.meta["transforms"] == data.meta["transforms"]
    assert not list(out.glob(".*")), "temporary files left behind"


def test_cli_prepare_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _make_folder(tmp_path / "cells", gray=True)
    out = tmp_path / "prepared"
    assert main(["prepare", "folder", str(root), "--res", str(RES), "--out", str(out)]) == 0
    assert "3 pairs at 32x32" in capsys.readouterr().out
    data = PreparedDataset.load(out)
    _check_prepared(data, 3, 1)
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "dataset.json"]


# ----------------------------------------------------------------------------- masks


def test_binary_mask_values_0_1_no_warning(tmp_path: Path) -> None:
    m = (_vessels(FOV) > 0).astype(np.uint8)  # stored as 0/1 rather than 0/255
    path = _save(tmp_path / "m.png", m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_mask(path, (H, W)), m > 0)


def test_jpeg_mask_warns_and_thresholds(tmp_path: Path) -> None:
    m = _vessels(FOV)
    path = _save(tmp_path / "mask.jpg", m, quality=75)
    assert len(np.unique(np.asarray(Image.open(path)))) > 2  # JPEG artefacts
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        out = read_mask(path, (H, W))
    assert out.dtype == bool
    assert (out == (m > 0)).mean() > 0.97


def test_three_grey_levels_warn_and_threshold_at_middle(tmp_path: Path) -> None:
    """A few mid-grey pixels (an anti-aliased edge) are thresholded with a warning."""
    m = np.zeros((H, W), np.uint8)
    m[:, 10:12] = 100  # below the middle of 0..255; 5 % of the mask (at most 10 % pass)
    m[:, 12:30] = 255
    path = _save(tmp_path / "mask.png", m)
    with pytest.warns(UserWarning, match=rf"{re.escape(str(path))}.*3 grey levels"):
        out = read_mask(path, (H, W))
    np.testing.assert_array_equal(out, m == 255)


def test_non_binary_mask_through_prepare(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "ds", n=2)
    (root / "masks/cell_1.png").unlink()
    jpg = _save(root / "masks/cell_1.jpg", _vessels(FOV), quality=60)  # saved as JPEG
    with pytest.warns(UserWarning, match=re.escape(str(jpg))):
        data = prepare_source("folder", root, RES)
    _check_prepared(data, 2, 3)


def test_all_white_mask_is_all_true(tmp_path: Path) -> None:
    path = _save(tmp_path / "fov.png", np.full((H, W), 255, np.uint8))
    assert read_mask(path, (H, W), "field-of-view mask").all()


def test_prepare_folder_with_whole_frame_fov(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "ds", n=1)
    _save(root / "fov/cell_0.png", np.full((H, W), 255, np.uint8))
    data = prepare_source("folder", root, RES)
    # The whole frame is the FOV; only the bands that pad it to a square lie outside.
    assert (
        data.fov[0][:, RES // 2].all() and abs(int(data.fov[0][RES // 2].sum()) - RES * W / H) <= 1
    )


def test_holdout_split_is_written_as_one_unit(tmp_path: Path, monkeypatch) -> None:
    """A run killed while writing the holdout leaves the previous split whole (not a new
    train/ beside an old or missing holdout/); a new split replaces an old one; a folder
    holding anything else is refused."""
    from synthmed.data.sources import phantom_dataset, save_split, split_holdout
    from synthmed.errors import UserError

    out = tmp_path / "split"
    first = split_holdout(phantom_dataset(5, 32, seed=0), 2)
    save_split(dict(zip(("train", "holdout"), first, strict=True)), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]  # no temporary left

    second = split_holdout(phantom_dataset(6, 32, seed=1), 2)
    calls = []

    def killed_at_holdout(self: PreparedDataset, folder: Path) -> Path:
        calls.append(Path(folder).name)
        if Path(folder).name == "holdout":
            raise KeyboardInterrupt  # as a Ctrl-C between the two halves
        return original(self, folder)

    original = PreparedDataset.save
    monkeypatch.setattr(PreparedDataset, "save", killed_at_holdout)
    with pytest.raises(KeyboardInterrupt):
        save_split(dict(zip(("train", "holdout"), second, strict=True)), out)
    monkeypatch.undo()
    assert calls == ["train", "holdout"]
    assert len(PreparedDataset.load(out / "train")) == 3  # the first split, untouched
    assert len(PreparedDataset.load(out / "holdout")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]

    save_split(dict(zip(("train", "holdout"), second, strict=True)), out)
    assert len(PreparedDataset.load(out / "train")) == 4
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt.*not only a split"):
        save_split(dict(zip(("train", "holdout"), second, strict=True)), out)


# ----------------------------------------------------------------------------- labs' formats
# Issue 32: data as labs have it: palette, RGBA, 16-bit, grey stored as RGB, non-square
# frames, inverted masks, BU-BIL's published layout.


def _cell(h: int = H, w: int = W, cy: float | None = None, cx: float | None = None) -> np.ndarray:
    """A compact object (a 'cell'): a filled disc, a few per cent of the frame."""
    return _disc(h / 2 if cy is None else cy, w / 2 if cx is None else cx, min(h, w) / 5, h, w)


def _grey(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 220, (h, w), dtype=np.uint8)


def test_palette_image_with_grey_palette_stays_single_channel(tmp_path: Path) -> None:
    """BU-BIL's B02 is a palette image whose palette is grey: it joins an 8-bit grayscale
    dataset as one channel, read through its palette."""
    root = tmp_path / "ds"
    grey = _grey(0)
    pal = Image.fromarray(255 - grey).convert("P")  # index i -> grey 255 - i: not identity
    pal.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    pal.putdata((255 - grey).ravel().tolist())
    (root / "images").mkdir(parents=True)
    pal.save(root / "images/a.png")
    assert Image.open(root / "images/a.png").mode == "P"
    _save(root / "images/b.png", _grey(1))
    for s in "ab":
        _save(root / "masks" / f"{s}.png", _cell().astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_image(root / "images/a.png", 1)[..., 0], grey)
    data = prepare_source("folder", root, RES)
    _check_prepared(data, 2, 1)


def test_palette_mask(tmp_path: Path) -> None:
    """A two-colour palette mask (index 1 drawn in red): the brighter colour is white."""
    m = Image.fromarray(_cell().astype(np.uint8), mode="L").convert("P")
    m.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    m.putdata(_cell().astype(np.uint8).ravel().tolist())
    m.save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", (H, W)), _cell())


def test_grey_stored_as_rgb_is_single_channel(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for s in "ab":
        _save(root / "images" / f"{s}.png", np.repeat(_grey(ord(s))[..., None], 3, axis=2))
        _save(root / "masks" / f"{s}.png", _cell().astype(np.uint8) * 255)
    _check_prepared(prepare_source("folder", root, RES), 2, 1)


def test_rgba_image_and_mask_drawn_on_a_transparent_layer(tmp_path: Path) -> None:
    """RGBA images lose their alpha over black (transparent = black, like padding); a mask
    drawn on a transparent layer is its alpha, whatever colour it was drawn in."""
    rgb = _fundus(0, np.ones((H, W), bool))
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, :4] = 0  # a transparent strip
    img = _save(tmp_path / "ds/images/a.png", np.dstack([rgb, alpha]))
    assert Image.open(img).mode == "RGBA"
    got = read_image(img, 3)
    np.testing.assert_array_equal(got[:, 4:], rgb[:, 4:])
    assert not got[:, :4].any()
    drawn = np.zeros((H, W, 4), np.uint8)
    drawn[_cell()] = (0, 0, 0, 255)  # black strokes on a transparent (black) layer
    mask = _save(tmp_path / "ds/masks/a.png", drawn)
    np.testing.assert_array_equal(read_mask(mask, (H, W)), _cell())
    data = prepare_source("folder", tmp_path / "ds", RES)
    _check_prepared(data, 1, 3)


def test_opaque_rgba_mask_reads_like_rgb(tmp_path: Path) -> None:
    m = np.zeros((H, W, 4), np.uint8)
    m[..., 3] = 255
    m[_cell()] = (255, 255, 255, 255)
    path = _save(tmp_path / "m.png", m)
    np.testing.assert_array_equal(read_mask(path, (H, W)), _cell())


def test_sixteen_bit_png_image_and_mask(tmp_path: Path) -> None:
    """16-bit PNGs (microscopy cameras): the image is scaled to its maximum; a 16-bit mask
    of 0 / 65535 (or 0 / 1) is two-valued, not 'thresholded'."""
    a = (_grey(0).astype(np.uint16) * 16) + 5  # 12-bit data in a 16-bit container
    img = _save(tmp_path / "ds/images/a.png", a)
    assert Image.open(img).mode.startswith("I")
    got = read_image(img, 1)[..., 0].astype(int)
    assert got.max() == 255 and np.abs(got - np.round(a / a.max() * 255)).max() <= 1
    for value, name in ((65535, "a"), (1, "b")):
        m = _save(tmp_path / f"ds/masks/{name}.png", _cell().astype(np.uint16) * value)
        assert Image.open(m).mode.startswith("I")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(read_mask(m, (H, W)), _cell())
    (tmp_path / "ds/masks/b.png").unlink()
    _check_prepared(prepare_source("folder", tmp_path / "ds", RES), 1, 1)


@pytest.mark.parametrize(("h", "w"), [(30, 60), (60, 30)])
def test_non_square_frame_keeps_aspect_and_its_fov_excludes_the_padding(
    tmp_path: Path, h: int, w: int
) -> None:
    """A 2:1 frame is centred between black bands; the field of view is the frame, so the
    bands never count as background (training and scoring look inside the FOV only); the
    transform maps a prediction back onto the native frame."""
    from synthmed.evaluation.protocol import to_native

    root = tmp_path / "ds"
    image = _grey(0, h, w) | 1  # no black pixel inside the frame
    cell = _cell(h, w)
    _save(root / "images/a.png", image)
    _save(root / "masks/a.png", cell.astype(np.uint8) * 255)
    data = prepare_source("folder", root, RES)
    t = data.meta["transforms"][0]
    assert t["native_size"] == [h, w] and t["crop"] == [0, 0, h, w] and t["side"] == 60
    assert t["pad"] == ([15, 0] if h < w else [0, 15])
    valid = np.zeros((RES, RES), bool)  # 15/60 and 45/60 of 32: rows (or columns) 8 to 23
    if h < w:
        valid[8:24] = True
    else:
        valid[:, 8:24] = True
    np.testing.assert_array_equal(data.fov[0].astype(bool), valid)
    assert not data.masks[0][~valid].any()
    # The bands are black, but for the row next to the frame that resizing blends with it.
    far = ~ndimage.binary_dilation(valid)
    assert not data.images[0][far].any()
    assert data.images[0][valid].min() > 0  # the frame itself fills the valid area
    back = to_native(data.masks[0].astype(np.float32), t) >= 0.5
    assert back.shape == (h, w)
    assert 2 * (back & cell).sum() / (back.sum() + cell.sum()) > 0.85


def _inverted_folder(root: Path, n: int = 3) -> Path:
    """Cells drawn black on white (BU-BIL's convention), in 1-bit PNGs."""
    for i in range(n):
        _save(root / "images" / f"c{i}.png", _grey(i))
        cell = _cell(cx=W / 2 + 3 * i)
        Image.fromarray(~cell).convert("1").save(_parent(root / "masks" / f"c{i}.png"))
    return root


def test_inverted_masks_with_foreground_black(tmp_path: Path) -> None:
    """--foreground black: the black cell is the object; the pair hashes equal those of the
    same pairs with white cells, so an inverted copy of a dataset is still the same data."""
    inverted = prepare_source("folder", _inverted_folder(tmp_path / "inv"), RES, foreground="black")
    assert Image.open(tmp_path / "inv/masks/c0.png").mode == "1"
    assert inverted.meta["foreground"] == {"setting": "black", "chosen": "black"}
    assert all(t["foreground"] == "black" for t in inverted.meta["transforms"])
    plain = tmp_path / "plain"
    for i in range(3):
        _save(plain / "images" / f"c{i}.png", _grey(i))
        _save(plain / "masks" / f"c{i}.png", _cell(cx=W / 2 + 3 * i).astype(np.uint8) * 255)
    white = prepare_source("folder", plain, RES)
    assert white.meta["foreground"] == {"setting": "white", "chosen": "white"}
    np.testing.assert_array_equal(inverted.masks, white.masks)
    assert 0 < inverted.masks.mean() < 0.2
    assert inverted.meta["hashes"] == white.meta["hashes"]


def test_inverted_masks_by_default_warn_and_suggest_foreground(tmp_path: Path) -> None:
    root = _inverted_folder(tmp_path / "inv")
    with pytest.warns(UserWarning, match="more than half of every mask.*--foreground black"):
        prepare_source("folder", root, RES)


def test_auto_foreground_takes_the_minority_over_the_whole_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """auto: the minority class of all masks together (one mask may differ), said in one
    line on stderr and recorded in dataset.json."""
    root = _inverted_folder(tmp_path / "inv")
    big = np.ones((H, W), bool)
    big[: H // 4] = False  # this mask alone is mostly black-is-background: 75 % white...
    Image.fromarray(~big).convert("1").save(root / "masks/c2.png")  # ...stored inverted
    out = tmp_path / "prepared"
    argv = ["prepare", "folder", str(root), "--res", str(RES), "--out", str(out)]
    assert main([*argv, "--foreground", "auto"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("synthmed: foreground: auto chose black"), err
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["foreground"] == {"setting": "auto", "chosen": "black"}
    data = PreparedDataset.load(out)
    assert data.masks[2].mean() > 0.5 > data.masks[0].mean()  # one polarity for all
    plain = prepare_source("folder", _make_folder(tmp_path / "plain"), RES, foreground="auto")
    assert plain.meta["foreground"] == {"setting": "auto", "chosen": "white"}
    assert "auto chose white" in capsys.readouterr().err


def test_jpeg_masks_warn_once_per_dataset(tmp_path: Path) -> None:
    """Masks saved as JPEG: one warning naming the first file and how many more, not one
    line per file."""
    root = _make_folder(tmp_path / "ds", n=3)
    for i in range(3):
        (root / f"masks/cell_{i}.png").unlink()
        _save(root / f"masks/cell_{i}.jpg", _vessels(FOV), quality=60)
    with pytest.warns(UserWarning) as caught:
        prepare_source("folder", root, RES)
    grey = [str(w.message) for w in caught if "not binary" in str(w.message)]
    assert len(grey) == 1
    assert grey[0].startswith(str(root / "masks/cell_0.jpg")) and "2 other masks" in grey[0]


def test_images_smaller_than_the_resolution_warn(tmp_path: Path) -> None:
    root = _make_folder(tmp_path / "ds", n=2)
    with pytest.warns(UserWarning, match=r"2 of 2 images are smaller than 64x64.*1\.5x"):
        prepare_source("folder", root, 64)


# ----------------------------------------------------------------------------- BU-BIL


def make_bubil(root: Path) -> Path:
    """BU-BIL's published layout in miniature: 8-bit grayscale B01, B03 and a larger palette
    B02; 1-bit inverted gold standards (the cell black)."""
    sizes = {"B01": (48, 60), "B02": (60, 76), "B03": (48, 60)}
    for i, (stem, (h, w)) in enumerate(sizes.items()):
        im = Image.fromarray(_grey(i, h, w))
        (im.convert("P") if stem == "B02" else im).save(_parent(root / f"RawImages/{stem}.png"))
        gold = Image.fromarray(~_cell(h, w)).convert("1")
        gold.save(_parent(root / f"GoldStandard/seg_{stem}.png"))
    (root / "README.md").write_text("BU-BIL in miniature\n")
    return root


def _parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_find_bubil(tmp_path: Path) -> None:
    root = make_bubil(tmp_path / "BU-BIL_Dataset1")
    pairs = find_bubil(root)
    assert [p.name for p in pairs] == ["B01", "B02", "B03"]
    assert pairs[1] == PairPaths(
        "B02", root / "RawImages/B02.png", root / "GoldStandard/seg_B02.png", None
    )


def test_prepare_bubil_reads_the_cell_as_foreground(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`prepare bubil`: inverted masks need no flag; the palette image joins as grey; every
    frame is non-square, so its field of view is the frame without the bands."""
    root = make_bubil(tmp_path / "BU-BIL_Dataset1")
    assert Image.open(root / "RawImages/B02.png").mode == "P"
    assert Image.open(root / "GoldStandard/seg_B01.png").mode == "1"
    out = tmp_path / "prepared"
    argv = ["prepare", "bubil", str(root), "--res", str(RES), "--out", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # nothing to warn about
    data = PreparedDataset.load(out)
    _check_prepared(data, 3, 1)
    assert data.meta["foreground"] == {"setting": "black", "chosen": "black"}
    assert data.meta["source"] == f"bubil:{root.resolve()}"
    share = data.masks.sum() / data.fov.sum()
    assert 0.05 < share < 0.2  # the cell, not the background
    assert not data.fov[:, 0].any() and data.fov[:, RES // 2].all()  # bands above and below


def test_bubil_is_detected_and_loaded_without_naming_it(tmp_path: Path) -> None:
    from synthmed.data.sources import detect_layout, load_any

    root = make_bubil(tmp_path / "BU-BIL_Dataset1")
    assert detect_layout(root) == "bubil"
    data = load_any(root, RES)
    assert data.meta["foreground"]["chosen"] == "black" and len(data) == 3


def test_bubil_foreground_can_be_overridden(tmp_path: Path) -> None:
    root = make_bubil(tmp_path / "BU-BIL_Dataset1")
    auto = prepare_source("bubil", root, RES, foreground="auto")
    assert auto.meta["foreground"] == {"setting": "auto", "chosen": "black"}
    with pytest.warns(UserWarning, match="more than half"):
        white = prepare_source("bubil", root, RES, foreground="white")
    assert white.masks.sum() > auto.masks.sum()
