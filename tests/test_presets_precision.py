"""Presets (default vs paper), mixed precision, and Stage II on given masks (generate --masks)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import prepare_source
from synthmed.device import autocast, pick_precision
from synthmed.errors import UserError
from synthmed.evaluation import commands, utility
from synthmed.models.pix2pix import TextureConfig, UNetGenerator
from synthmed.pipeline import TextureModel
from synthmed.presets import PRESETS, preset

CPU = torch.device("cpu")
TINY = ["--steps", "2", "--device", "cpu", "--grid-every", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("presets") / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "4", "--out", str(out)]) == 0
    return out


def test_pick_precision() -> None:
    assert pick_precision("fp32", CPU) == torch.float32
    assert pick_precision("bf16", CPU) == torch.bfloat16
    assert pick_precision("auto", CPU) in (torch.float32, torch.bfloat16)
    with pytest.raises(UserError, match="--precision fp16"):
        pick_precision("fp16", CPU)


def test_autocast_computes_in_bf16_and_is_off_for_fp32() -> None:
    conv = torch.nn.Conv2d(1, 2, 3)
    x = torch.randn(1, 1, 8, 8)
    with autocast(CPU, torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16
    with autocast(CPU, torch.float32):
        assert conv(x).dtype == torch.float32


def test_paper_preset_is_the_papers_pix2pix() -> None:
    p = preset("paper", "texture")
    cfg = TextureConfig(resolution=256, **p["model"])
    assert (cfg.ngf, cfg.ndf, cfg.max_channels, cfg.upsample, cfg.levels()) == (
        64,
        64,
        512,
        "transpose",
        8,
    )
    assert p["batch_size"] == 1 and p["precision"] == "fp32"
    assert set(PRESETS) == {"default", "paper", "drive512"}
    for name in PRESETS:  # every preset names every stage
        assert set(PRESETS[name]) == {"geometry", "single", "refiner", "texture"}
        # a coarse DCGAN and its refiner must encode the coarse masks alike
        geometry, refiner = PRESETS[name]["geometry"]["model"], PRESETS[name]["refiner"]["model"]
        assert geometry.get("coarse_kind", "soft") == refiner.get("coarse_kind", "soft")
        assert geometry.get("coarse_clip") == refiner.get("coarse_clip")
    assert preset("drive512", "geometry")["model"]["coarse_kind"] == "distance"
    with pytest.raises(KeyError):
        preset("fast", "texture")


def test_train_preset_and_explicit_flags(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "paper"
    args = ["train", "texture", "--data", str(data), "--out", str(run), *TINY]
    assert main([*args, "--preset", "paper", "--ngf", "8", "--ndf", "8"]) == 0
    saved = json.loads((run / "options.json").read_text())
    # The preset fills what was not given; flags given on the command line win.
    assert saved["model"]["upsample"] == "transpose" and saved["model"]["max_channels"] == 512
    assert saved["model"]["ngf"] == 8
    assert saved["train"]["batch_size"] == 1 and saved["train"]["precision"] == "fp32"


def test_bf16_training_resumes_exactly(data: Path, tmp_path: Path) -> None:
    """Mixed precision keeps weights and optimiser state in float32: resume stays exact."""
    base = ["train", "texture", "--data", str(data), "--ngf", "8", "--ndf", "8"]
    base += ["--precision", "bf16", "--device", "cpu", "--batch-size", "2"]
    full, split = tmp_path / "full", tmp_path / "split"
    assert main([*base, "--out", str(full), "--steps", "4", "--checkpoint-every", "2"]) == 0
    assert main([*base, "--out", str(split), "--steps", "2"]) == 0
    assert main([*base, "--out", str(split), "--steps", "4", "--resume"]) == 0
    a = (full / "generator" / "model.safetensors").read_bytes()
    b = (split / "generator" / "model.safetensors").read_bytes()
    assert a == b
    saved = json.loads((full / "options.json").read_text())
    assert saved["train"]["precision"] == "bf16"


def test_generate_from_given_masks(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "tex"
    args = ["train", "texture", "--data", str(data), "--out", str(run), *TINY]
    assert main([*args, "--ngf", "8", "--ndf", "8"]) == 0
    out = tmp_path / "translated"
    cmd = ["generate", "--texture", str(run), "--masks", str(data), "--out", str(out)]
    assert main([*cmd, "--device", "cpu", "--precision", "fp32"]) == 0
    source = PreparedDataset.load(data)
    back = prepare_source("folder", out, 32)
    assert sorted(back.names) == sorted(source.names)  # one image per given mask, names kept
    order = [back.names.index(n) for n in source.names]
    assert np.array_equal(back.masks[order], source.masks)
    assert np.all(back.images[order][source.fov == 0] == 0)  # black outside the FOV
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 4 and manifest["precision"] == "float32"
    assert len(manifest["models"]["texture"]["sha256"]) == 64
    assert manifest["stochastic_texture"] is False
    varied = tmp_path / "varied"
    cmd = ["generate", "--texture", str(run), "--masks", str(data), "--out", str(varied)]
    assert main([*cmd, "--device", "cpu", "--precision", "fp32", "--stochastic"]) == 0
    assert json.loads((varied / "manifest.json").read_text())["stochastic_texture"] is True


def test_generate_masks_needs_texture_only(data: Path, tmp_path: Path, capsys) -> None:
    cmd = ["generate", "--masks", str(data), "--out", str(tmp_path / "x"), "--single", "y"]
    assert main(cmd) == 2
    assert "give --texture only" in capsys.readouterr().err


def test_translate_refuses_sizes_the_unet_cannot_take() -> None:
    model = TextureModel(
        UNetGenerator(TextureConfig(resolution=32, ngf=4)), device="cpu", precision="fp32"
    )
    with pytest.raises(UserError, match="multiples of 32"):
        model.translate(np.zeros((1, 48, 48), np.uint8), np.ones((1, 48, 48), np.uint8))


def test_translate_is_deterministic_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = TextureModel(
        UNetGenerator(TextureConfig(resolution=32, ngf=4)), device="cpu", precision="fp32"
    )
    masks = (np.random.default_rng(0).random((3, 32, 32)) > 0.8).astype(np.uint8)
    fov = np.ones_like(masks)
    assert np.array_equal(model.translate(masks, fov), model.translate(masks, fov))


def test_stochastic_translate_is_a_function_of_the_seed() -> None:
    torch.manual_seed(0)
    net = UNetGenerator(TextureConfig(resolution=32, ngf=4))
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    model = TextureModel(net, device="cpu", precision="fp32", stochastic=True)
    masks = (np.random.default_rng(0).random((3, 32, 32)) > 0.8).astype(np.uint8)
    fov = np.ones_like(masks)
    rng_before = torch.get_rng_state()
    a, b = model.translate(masks, fov, seed=1), model.translate(masks, fov, seed=1)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's generator untouched
    assert np.array_equal(a, b)
    assert not np.array_equal(a, model.translate(masks, fov, seed=2))
    plain = TextureModel(net, device="cpu", precision="fp32", stochastic=False)  # dropout off again
    assert np.array_equal(plain.translate(masks, fov, seed=1), plain.translate(masks, fov, seed=2))
    assert not np.array_equal(a, plain.translate(masks, fov, seed=1))


def test_cli_arm_names_match_the_evaluation() -> None:
    assert tuple(commands.ARMS) == tuple(utility.ARMS)
