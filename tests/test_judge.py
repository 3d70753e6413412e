"""Stage II's vessel judge: a frozen segmenter whose loss makes the mask's vessels visible."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.models.pix2pix import TextureConfig
from synthmed.training.judge import VesselJudge
from synthmed.training.options import TextureStageOptions, TrainOptions
from synthmed.training.texture import texture_stage, train_texture

RES = 32
TEX = TextureConfig(resolution=RES, ngf=8, ndf=8, max_channels=32)
OPTS = TrainOptions(steps=4, batch_size=2, device="cpu", log_every=1, grid_every=2)


@pytest.fixture(scope="module")
def data() -> PreparedDataset:
    return phantom_dataset(6, RES, seed=0)


def _images(data: PreparedDataset) -> torch.Tensor:
    return torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_judge_reads_the_vessels_of_real_images(data: PreparedDataset) -> None:
    judge = VesselJudge(data, steps=150)
    judge.fit(data, seed=0, device=torch.device("cpu"))
    assert bool(judge.trained)
    images, masks = _images(data), torch.from_numpy(data.masks)[:, None]
    right = judge(images, masks).item()
    wrong = judge(images, masks.roll(1, 0)).item()  # another image's vessels
    assert right < wrong
    before = {k: v.clone() for k, v in judge.state_dict().items()}
    judge.fit(data, seed=1, device=torch.device("cpu"))  # trained once: a no-op now
    assert all(torch.equal(before[k], v) for k, v in judge.state_dict().items())


def test_judge_loss_reaches_the_images_not_the_judge(data: PreparedDataset) -> None:
    judge = VesselJudge(data, steps=2)
    images = _images(data)[:2].requires_grad_(True)
    judge(images, torch.from_numpy(data.masks[:2])[:, None]).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in judge.parameters())


def test_texture_with_judge_logs_and_resumes_exactly(data, tmp_path: Path) -> None:
    """The judge is trained once, saved in the checkpoint, and not retrained on --resume."""
    judged = TextureStageOptions(judge_weight=5.0, judge_steps=10)
    train_texture(data, tmp_path / "straight", TEX, OPTS, options=judged)
    half = replace(OPTS, steps=2, checkpoint_every=2)
    train_texture(data, tmp_path / "split", TEX, half, options=judged)
    train_texture(data, tmp_path / "split", TEX, OPTS, resume=True, options=judged)
    a = load_file(tmp_path / "straight/checkpoint.safetensors")
    b = load_file(tmp_path / "split/checkpoint.safetensors")
    assert any(k.startswith("module.judge.") for k in a) and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (tmp_path / "straight/stats.jsonl").read_text().splitlines()
    assert all("loss_G_judge" in json.loads(r) for r in rows)
    stage = json.loads((tmp_path / "straight/options.json").read_text())["stage"]
    assert stage["judge_weight"] == 5.0 and stage["judge_steps"] == 10


def test_judge_is_for_images_only(data: PreparedDataset) -> None:
    cfg = TextureConfig(resolution=RES, ngf=8, ndf=8, max_channels=32, out_channels=1, coarse=8)
    with pytest.raises(ValueError, match="judge_weight"):
        texture_stage(data, cfg, OPTS, TextureStageOptions(judge_weight=1.0), target="mask")


def test_judge_options_through_a_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "4", "--out", str(data)]) == 0
    out = tmp_path / "tex"
    cmd = ["train", "texture", "--data", str(data), "--device", "cpu", "--steps", "2"]
    cmd += ["--batch-size", "2", "--ngf", "8", "--ndf", "8", "--out", str(out)]
    config = tmp_path / "judge.json"  # an experiment that was not adopted: no flag of its own
    config.write_text(json.dumps({"stage": {"judge_weight": 3, "judge_steps": 5}}))
    assert main([*cmd, "--config", str(config)]) == 0
    stage = json.loads((out / "options.json").read_text())["stage"]
    assert stage["judge_weight"] == 3.0 and stage["judge_steps"] == 5
