"""Every bad input: one line naming the file and the problem, exit code 2, nothing half-written.

Each case runs ``synthmed.cli.main`` in-process and checks that it returns 2, that stderr is
exactly one ``synthmed: error: ...`` line naming the offending path (no traceback), and that
the whole test folder is byte-for-byte as it was before the command (no --out folder created,
no temporary file left beside it, no input touched).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthmed.checkpoints import save_component
from synthmed.cli import main
from synthmed.data.sources import phantom_dataset
from synthmed.models.dcgan import GeometryConfig, MaskGenerator
from synthmed.models.pix2pix import TextureConfig, UNetGenerator

H, W = 44, 40
RES = 32
GEO = GeometryConfig(resolution=RES, z_dim=16, ngf=8, ndf=8)
TEX = TextureConfig(resolution=RES, ngf=8, ndf=8, max_channels=32)


# ----------------------------------------------------------------------------- helpers


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` with its bytes (None for folders)."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def run_bad(
    capsys: pytest.CaptureFixture[str], argv: list[str], names: str | Path, watch: Path
) -> str:
    """Run the CLI on bad input; check code 2, one clean line naming ``names``, nothing written.

    ``watch`` is a folder that must be unchanged afterwards (it holds the inputs and --out).
    Returns the error line.
    """
    capsys.readouterr()
    before = _snapshot(watch)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("synthmed: error: "), lines[0]
    assert str(names) in lines[0], f"{names} not named in: {lines[0]}"
    after = _snapshot(watch)
    assert sorted(after) == sorted(before), "files created or removed"
    assert after == before, "files modified"
    return lines[0]


def _save(path: Path, array: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)
    return path


def _rgb(h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _mask(h: int = H, w: int = W) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 2 - 1 : h // 2 + 2] = 255
    return m


def make_folder(root: Path, stems: tuple[str, ...] = ("a", "b")) -> Path:
    for s in stems:
        _save(root / "images" / f"{s}.png", _rgb())
        _save(root / "masks" / f"{s}.png", _mask())
    return root


def make_drive(root: Path) -> Path:
    t = root / "training"
    for n in (21, 22):
        _save(t / "images" / f"{n}_training.tif", _rgb())
        _save(t / "1st_manual" / f"{n}_manual1.gif", _mask())
        _save(t / "mask" / f"{n}_training_mask.gif", np.full((H, W), 255, np.uint8) * _disc())
    return root


def _disc() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return ((yy - H / 2) ** 2 + (xx - W / 2) ** 2 <= 18**2).astype(np.uint8)


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def prepare(kind: str, path: Path, out: Path, res: int = RES) -> list:
    return ["prepare", kind, path, "--res", res, "--out", out]


# ----------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("kind", ["folder", "drive", "chase"])
def test_missing_folder(tmp_path: Path, capsys, kind: str) -> None:
    missing = tmp_path / "no_such_dataset"
    line = run_bad(capsys, prepare(kind, missing, tmp_path / "out"), missing, tmp_path)
    assert "not found" in line


def test_folder_without_masks_dir(tmp_path: Path, capsys) -> None:
    root = tmp_path / "ds"
    _save(root / "images/a.png", _rgb())
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), root, tmp_path)
    assert "masks/" in line


def test_folder_image_without_mask(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    _save(root / "images/c.png", _rgb())  # no masks/c.*
    line = run_bad(
        capsys, prepare("folder", root, tmp_path / "out"), root / "images/c.png", tmp_path
    )
    assert "no mask" in line


def test_folder_image_without_fov(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    _save(root / "fov/a.png", _mask())  # fov/ exists but has no b.*
    image = root / "images/b.png"
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), image, tmp_path)
    assert "field-of-view" in line


def test_drive_image_without_mask(tmp_path: Path, capsys) -> None:
    root = make_drive(tmp_path / "DRIVE")
    (root / "training/1st_manual/22_manual1.gif").unlink()
    image = root / "training/images/22_training.tif"
    line = run_bad(capsys, prepare("drive", root, tmp_path / "out"), image, tmp_path)
    assert "22_manual1" in line


def test_drive_without_manual_folder(tmp_path: Path, capsys) -> None:
    root = make_drive(tmp_path / "DRIVE")
    shutil.rmtree(root / "training/1st_manual")
    manual = root / "training/1st_manual"
    run_bad(capsys, prepare("drive", root, tmp_path / "out"), manual, tmp_path)


def test_not_a_drive_folder(tmp_path: Path, capsys) -> None:
    root = tmp_path / "CHASEDB1"  # a CHASE_DB1 folder given as DRIVE
    _save(root / "Image_01L.jpg", _rgb())
    _save(root / "Image_01L_1stHO.png", _mask())
    line = run_bad(capsys, prepare("drive", root, tmp_path / "out"), root, tmp_path)
    assert "not a DRIVE folder" in line


def test_generic_folder_given_as_drive(tmp_path: Path, capsys) -> None:
    """images/ + masks/ looks like a DRIVE split folder; the missing 1st_manual/ is named."""
    root = make_folder(tmp_path / "ds")
    run_bad(capsys, prepare("drive", root, tmp_path / "out"), root / "1st_manual", tmp_path)


def test_chase_image_without_mask(tmp_path: Path, capsys) -> None:
    root = tmp_path / "CHASEDB1"
    _save(root / "Image_01L.jpg", _rgb())
    _save(root / "Image_01L_1stHO.png", _mask())
    _save(root / "Image_01R.jpg", _rgb())
    image = root / "Image_01R.jpg"
    run_bad(capsys, prepare("chase", root, tmp_path / "out"), image, tmp_path)


@pytest.mark.parametrize("which", ["images", "masks"])
def test_unreadable_file(tmp_path: Path, capsys, which: str) -> None:
    """Random bytes named .png, as the image or as the mask."""
    root = make_folder(tmp_path / "ds")
    bad = root / which / "b.png"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), bad, tmp_path)
    assert "cannot read image" in line


@pytest.mark.parametrize("which", ["images", "masks"])
def test_truncated_png(tmp_path: Path, capsys, which: str) -> None:
    root = make_folder(tmp_path / "ds")
    bad = _truncate(root / which / "a.png")
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), bad, tmp_path)
    assert "cannot read image" in line


def test_truncated_tiff(tmp_path: Path, capsys) -> None:
    """DRIVE's uncompressed .tif cut in half."""
    root = make_drive(tmp_path / "DRIVE")
    bad = _truncate(root / "training/images/21_training.tif")
    line = run_bad(capsys, prepare("drive", root, tmp_path / "out"), bad, tmp_path)
    assert "cannot read image" in line


def test_truncated_compressed_tiff(tmp_path: Path, capsys) -> None:
    root = make_drive(tmp_path / "DRIVE")
    image = root / "training/images/21_training.tif"
    _save(image, _rgb(), compression="tiff_lzw")
    bad = _truncate(image)
    run_bad(capsys, prepare("drive", root, tmp_path / "out"), bad, tmp_path)


def test_truncated_gif_mask(tmp_path: Path, capsys) -> None:
    root = make_drive(tmp_path / "DRIVE")
    bad = _truncate(root / "training/1st_manual/22_manual1.gif")
    run_bad(capsys, prepare("drive", root, tmp_path / "out"), bad, tmp_path)


def test_mask_size_differs(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    bad = _save(root / "masks/b.png", _mask(W, H))  # transposed: 44 wide x 40 high
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), bad, tmp_path)
    assert "44x40" in line and "40x44" in line


def test_drive_fov_size_differs(tmp_path: Path, capsys) -> None:
    root = make_drive(tmp_path / "DRIVE")
    bad = _save(root / "training/mask/22_training_mask.gif", _mask(H, W + 1))
    line = run_bad(capsys, prepare("drive", root, tmp_path / "out"), bad, tmp_path)
    assert "field-of-view mask" in line


def test_empty_fov(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    for s in ("a", "b"):
        _save(root / "fov" / f"{s}.png", np.zeros((H, W), np.uint8))
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), root / "fov/a.png", tmp_path)
    assert "field of view is empty" in line


def test_empty_dataset(tmp_path: Path, capsys) -> None:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), root / "images", tmp_path)
    assert "empty dataset" in line


@pytest.mark.parametrize("res", [100, 16])
@pytest.mark.parametrize("kind", ["folder", "phantom"])
def test_unsupported_resolution(tmp_path: Path, capsys, res: int, kind: str) -> None:
    root = make_folder(tmp_path / "ds")
    argv = prepare(kind, root, tmp_path / "out", res=res)
    if kind == "phantom":
        argv.remove(root)
    line = run_bad(capsys, argv, f"resolution {res}", tmp_path)
    assert "not supported" in line


def test_prepare_out_is_a_file(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    out = tmp_path / "prepared.npz"
    out.write_bytes(b"not a folder")
    run_bad(capsys, prepare("folder", root, out), out, tmp_path)


@pytest.mark.parametrize("res", ["0", "-64"])
def test_resolution_zero_or_negative(tmp_path: Path, capsys, res: str) -> None:
    """`--res 0` used to write the default resolution without a word."""
    root = make_folder(tmp_path / "ds")
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out", res=res), res, tmp_path)
    assert f"resolution {res} is not supported" in line


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--holdout", "0"], "--holdout 0"),
        (["--holdout", "-1"], "--holdout -1"),
        (["--holdout", "2"], "--holdout 2"),  # nothing left to train on
        (["--val", "-1", "--test", "1"], "--val -1"),
        (["--test", "-2"], "--test -2"),
        (["--val", "0", "--test", "0"], "--val 0 --test 0"),
        (["--val", "1", "--holdout", "1"], "--holdout or --val"),
        (["--n", "5"], "--n is for the phantom only"),
        (["--seed", "3"], "--seed is for the phantom only"),
        (["--split", "test"], "--split is for drive only"),
        (["--role", "test", "--test", "1"], "--role"),
    ],
)
def test_nonsense_prepare_flags(tmp_path: Path, capsys, flags: list[str], named: str) -> None:
    root = make_folder(tmp_path / "ds")
    run_bad(capsys, [*prepare("folder", root, tmp_path / "out"), *flags], named, tmp_path)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--n", "0"], "--n 0"),
        (["--n", "-3"], "--n -3"),
        (["--seed", "-1"], "--seed -1"),
        (["--foreground", "black"], "--foreground"),
    ],
)
def test_nonsense_phantom_flags(tmp_path: Path, capsys, flags: list[str], named: str) -> None:
    argv = ["prepare", "phantom", "--res", RES, "--out", tmp_path / "out", *flags]
    run_bad(capsys, argv, named, tmp_path)


def test_phantom_takes_no_folder(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    run_bad(capsys, prepare("phantom", root, tmp_path / "out"), root, tmp_path)


def test_prepare_into_non_empty_out(tmp_path: Path, capsys) -> None:
    """As `generate` does: prepare never writes beside (or over) what a folder holds."""
    root = make_folder(tmp_path / "ds")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    line = run_bad(capsys, prepare("folder", root, out), out, tmp_path)
    assert "not empty" in line
    line = run_bad(capsys, [*prepare("folder", root, out), "--holdout", "1"], out, tmp_path)
    assert "not empty" in line


def test_prepare_into_empty_out(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "ds")
    (tmp_path / "out").mkdir()
    assert main([str(a) for a in prepare("folder", root, tmp_path / "out")]) == 0


@pytest.mark.parametrize(("h", "w"), [(1, 1), (12, 40), (44, 15)])
def test_tiny_image(tmp_path: Path, capsys, h: int, w: int) -> None:
    """A 1x1 image used to be upscaled to --res without a word."""
    root = make_folder(tmp_path / "ds")
    bad = _save(root / "images/b.png", _rgb(h, w))
    _save(root / "masks/b.png", _mask(h, w))
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), bad, tmp_path)
    assert f"{w}x{h} pixels, too small" in line


@pytest.mark.parametrize("kind", ["label map", "photo"])
def test_mask_not_two_valued(tmp_path: Path, capsys, kind: str) -> None:
    """A label map of three classes or a photo given as a mask: no threshold makes it
    right, so it is refused (a JPEG-saved two-valued mask only warns: test_readers)."""
    root = make_folder(tmp_path / "ds")
    if kind == "label map":
        m = np.zeros((H, W), np.uint8)
        m[:, 10:25], m[:, 25:] = 1, 2  # background, cell, nucleus
    else:
        m = _rgb()[..., 0]
    bad = _save(root / "masks/b.png", m)
    line = run_bad(capsys, prepare("folder", root, tmp_path / "out"), bad, tmp_path)
    assert "not two-valued" in line and "grey levels" in line


def test_bubil_image_without_gold_standard(tmp_path: Path, capsys) -> None:
    root = tmp_path / "BU-BIL"
    for stem in ("B01", "B02"):
        _save(root / "RawImages" / f"{stem}.png", _rgb()[..., 0])
    _save(root / "GoldStandard/seg_B01.png", 255 - _mask())
    bad = root / "RawImages/B02.png"
    line = run_bad(capsys, prepare("bubil", root, tmp_path / "out"), bad, tmp_path)
    assert "seg_B02" in line


def test_folder_given_as_bubil(tmp_path: Path, capsys) -> None:
    root = make_folder(tmp_path / "ds")
    line = run_bad(capsys, prepare("bubil", root, tmp_path / "out"), root, tmp_path)
    assert "RawImages/ and GoldStandard/" in line


def test_bad_foreground_from_python(tmp_path: Path) -> None:
    from synthmed.data.sources import prepare_source
    from synthmed.errors import UserError

    root = make_folder(tmp_path / "ds")
    with pytest.raises(UserError, match="--foreground red: use one of white, black, auto"):
        prepare_source("folder", root, RES, foreground="red")


def _modes(root: Path) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(d, n), root): os.stat(os.path.join(d, n)).st_mode & 0o777
        for d, dirs, files in os.walk(root)
        for n in dirs + files
    }


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """Files written through the atomic helper get what an ordinary write gives them (0644
    under umask 022, 0640 under 027), as images do, not the temporary file's 0600; folders
    built beside and renamed likewise 0755, not 0700."""
    from synthmed.files import write_json

    root = make_folder(tmp_path / "ds")
    old = os.umask(0o022)
    try:
        assert main([str(a) for a in prepare("folder", root, tmp_path / "one")]) == 0
        assert _modes(tmp_path / "one") == {"arrays.npz": 0o644, "dataset.json": 0o644}
        split = [*prepare("folder", root, tmp_path / "split"), "--holdout", "1"]
        assert main([str(a) for a in split]) == 0
        assert os.stat(tmp_path / "split").st_mode & 0o777 == 0o755
        assert set(_modes(tmp_path / "split").values()) == {0o644, 0o755}
        os.umask(0o027)
        write_json(tmp_path / "private.json", {"a": 1})
        assert os.stat(tmp_path / "private.json").st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny untrained geometry/ and texture/ component folders (what `generate` loads)."""
    root = tmp_path_factory.mktemp("components")
    save_component(root / "geometry", GEO, MaskGenerator(GEO), "geometry")
    save_component(root / "texture", TEX, UNetGenerator(TEX), "texture")
    return root


@pytest.fixture
def comps(components: Path, tmp_path: Path) -> Path:
    """A private copy of the components, free to break."""
    return Path(shutil.copytree(components, tmp_path / "models"))


def gen(comps: Path, out: Path) -> list:
    g, t = comps / "geometry", comps / "texture"
    return ["generate", "--geometry", g, "--texture", t, "--n", 2, "--out", out, "--device", "cpu"]


@pytest.mark.parametrize("stage", ["geometry", "texture"])
@pytest.mark.parametrize("file", ["model.safetensors", "config.json"])
def test_component_missing_file(tmp_path: Path, capsys, comps: Path, stage: str, file: str):
    missing = comps / stage / file
    missing.unlink()
    line = run_bad(capsys, gen(comps, tmp_path / "out"), missing, tmp_path)
    assert "not found" in line


def test_component_folder_missing(tmp_path: Path, capsys, comps: Path) -> None:
    shutil.rmtree(comps / "texture")
    run_bad(capsys, gen(comps, tmp_path / "out"), comps / "texture", tmp_path)


@pytest.mark.parametrize(
    "change", [{"ngf": 16}, {"z_dim": 32}, {"resolution": 64}], ids=["ngf", "z_dim", "res"]
)
def test_weights_of_another_shape(tmp_path: Path, capsys, comps: Path, change: dict) -> None:
    """config.json edited after the weights were saved (e.g. ngf=16 over ngf=8 weights)."""
    cfg = comps / "geometry/config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), **change}))
    weights = comps / "geometry/model.safetensors"
    line = run_bad(capsys, gen(comps, tmp_path / "out"), weights, tmp_path)
    assert "another" in line  # "weights of another configuration" / "another architecture?"


def test_texture_weights_of_another_shape(tmp_path: Path, capsys, comps: Path) -> None:
    cfg = comps / "texture/config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "ngf": 16}))
    run_bad(capsys, gen(comps, tmp_path / "out"), comps / "texture/model.safetensors", tmp_path)


def test_swapped_configs(tmp_path: Path, capsys, comps: Path) -> None:
    g, t = comps / "geometry/config.json", comps / "texture/config.json"
    g_text, t_text = g.read_text(), t.read_text()
    g.write_text(t_text)
    t.write_text(g_text)
    line = run_bad(capsys, gen(comps, tmp_path / "out"), g, tmp_path)
    assert "not a geometry model config" in line


def test_swapped_folders(tmp_path: Path, capsys, comps: Path) -> None:
    """--geometry given the texture folder and vice versa."""
    argv = gen(comps, tmp_path / "out")
    g, t = argv.index("--geometry") + 1, argv.index("--texture") + 1
    argv[g], argv[t] = argv[t], argv[g]
    run_bad(capsys, argv, comps / "texture/config.json", tmp_path)


def test_corrupt_config_json(tmp_path: Path, capsys, comps: Path) -> None:
    cfg = comps / "texture/config.json"
    cfg.write_text('{"kind": "texture", "ngf": ')
    line = run_bad(capsys, gen(comps, tmp_path / "out"), cfg, tmp_path)
    assert "not valid JSON" in line


def test_corrupt_weights(tmp_path: Path, capsys, comps: Path) -> None:
    weights = _truncate(comps / "geometry/model.safetensors")
    line = run_bad(capsys, gen(comps, tmp_path / "out"), weights, tmp_path)
    assert "safetensors" in line


def test_not_a_pipeline_folder(tmp_path: Path, capsys, comps: Path) -> None:
    argv = ["generate", "--pipeline", comps, "--out", tmp_path / "out", "--device", "cpu"]
    run_bad(capsys, argv, comps / "pipeline.json", tmp_path)


def test_pipeline_json_whose_stages_are_nonsense(tmp_path: Path, capsys, comps: Path) -> None:
    """`{"stages": "banana"}` was once accepted and generation went ahead."""
    (comps / "pipeline.json").write_text(json.dumps({"stages": "banana"}))
    argv = ["generate", "--pipeline", comps, "--out", tmp_path / "out", "--device", "cpu"]
    line = run_bad(capsys, argv, comps / "pipeline.json", tmp_path)
    assert "'stages' must name geometry and texture" in line


def test_generate_into_non_empty_out(tmp_path: Path, capsys, comps: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    line = run_bad(capsys, gen(comps, out), out, tmp_path)
    assert "not empty" in line


def test_generate_out_is_a_file(tmp_path: Path, capsys, comps: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"not a folder")
    run_bad(capsys, gen(comps, out), out, tmp_path)


def test_generate_zero_pairs(tmp_path: Path, capsys, comps: Path) -> None:
    argv = gen(comps, tmp_path / "out")
    argv[argv.index("--n") + 1] = 0
    run_bad(capsys, argv, "--n 0", tmp_path)


# ----------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    return phantom_dataset(4, RES).save(root / "data")


@pytest.fixture(scope="module")
def geometry_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-step geometry run (options.json, checkpoint, generator/)."""
    out = tmp_path_factory.mktemp("runs") / "geometry"
    argv = ["train", "geometry", "--data", prepared, "--out", out, "--steps", 1]
    argv += ["--batch-size", 2, "--ngf", 8, "--ndf", 8, "--z-dim", 16, "--device", "cpu"]
    assert main([str(a) for a in argv]) == 0
    assert (out / "checkpoint.safetensors").is_file()
    return out


def train(stage: str, data: Path, out: Path, *extra) -> list:
    return ["train", stage, "--data", data, "--out", out, "--steps", 1, "--device", "cpu", *extra]


@pytest.mark.parametrize("stage", ["geometry", "texture"])
def test_train_data_not_prepared(tmp_path: Path, capsys, stage: str) -> None:
    """--data pointing at a raw images/ + masks/ folder instead of a prepared dataset."""
    raw = make_folder(tmp_path / "raw")
    line = run_bad(capsys, train(stage, raw, tmp_path / "run"), raw, tmp_path)
    assert "synthmed prepare" in line


def test_train_data_missing(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope"
    run_bad(capsys, train("geometry", missing, tmp_path / "run"), missing, tmp_path)


def test_train_data_with_foreign_dataset_json(tmp_path: Path, capsys) -> None:
    """A Medical Segmentation Decathlon / nnU-Net folder also has a dataset.json."""
    msd = tmp_path / "Task08_HepaticVessel"
    msd.mkdir()
    (msd / "dataset.json").write_text(json.dumps({"name": "HepaticVessel", "training": []}))
    run_bad(capsys, train("geometry", msd, tmp_path / "run"), msd / "dataset.json", tmp_path)


def test_train_data_truncated_arrays(tmp_path: Path, capsys, prepared: Path) -> None:
    data = Path(shutil.copytree(prepared, tmp_path / "data"))
    _truncate(data / "arrays.npz")
    run_bad(capsys, train("geometry", data, tmp_path / "run"), data / "arrays.npz", tmp_path)


@pytest.mark.parametrize("exists", [False, True], ids=["no-folder", "folder-without-ckpt"])
def test_resume_without_checkpoint(tmp_path: Path, capsys, prepared: Path, exists: bool):
    out = tmp_path / "run"
    if exists:
        out.mkdir()
        (out / "options.json").write_text("{}")  # a run killed before its first checkpoint
    argv = train("geometry", prepared, out, "--resume")
    line = run_bad(capsys, argv, out / "checkpoint.safetensors", tmp_path)
    assert "no checkpoint" in line


@pytest.mark.parametrize("stage", ["geometry", "texture"])
def test_train_into_existing_run(capsys, prepared: Path, geometry_run: Path, stage: str) -> None:
    line = run_bad(capsys, train(stage, prepared, geometry_run), geometry_run, geometry_run)
    assert "--resume" in line


def test_resume_other_stage(capsys, prepared: Path, geometry_run: Path) -> None:
    argv = train("texture", prepared, geometry_run, "--resume")
    line = run_bad(capsys, argv, geometry_run / "options.json", geometry_run)
    assert "geometry run" in line


def test_train_zero_steps(tmp_path: Path, capsys, prepared: Path) -> None:
    argv = train("geometry", prepared, tmp_path / "run")
    argv[argv.index("--steps") + 1] = 0
    run_bad(capsys, argv, "--steps", tmp_path)


def test_generate_killed_midway_leaves_no_folder(tmp_path: Path, comps: Path) -> None:
    from synthmed.generation import generate_dataset
    from synthmed.pipeline import SynthMedPipeline

    pipe = SynthMedPipeline.from_folders(comps / "geometry", comps / "texture", device="cpu")
    first = pipe.sample

    def dies_on_the_second_batch(n: int, seed: int = 0):
        if seed % 1_000_003:  # generate_dataset's batch b draws seed * 1_000_003 + b
            raise KeyboardInterrupt
        return first(n, seed)

    pipe.sample = dies_on_the_second_batch
    parent = tmp_path / "gen"
    out = parent / "out"
    out.mkdir(parents=True)  # an empty --out is allowed, and must still be empty after a failure
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(pipe, 200, out)  # batches of 64: the second one dies
    assert [p.name for p in parent.iterdir()] == ["out"] and not any(out.iterdir())
    pipe.sample = first
    generate_dataset(pipe, 3, out)
    assert len(list((out / "images").iterdir())) == 3
    assert (out / "datalist.json").is_file() and (out / "README.md").is_file()  # same rename
    assert [p.name for p in parent.iterdir()] == ["out"]  # no temporary left beside it
