"""DiffAugment (kornia) and the generator weight average (EMA) of issue 5."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synthmed.cli import main
from synthmed.errors import UserError
from synthmed.training.augment import OPERATIONS, augment_alike, diff_augment, parse_policy
from synthmed.training.run import weight_average


def test_policy_parsing() -> None:
    assert parse_policy("") == ()
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(UserError, match="unknown zoom"):
        parse_policy("flip,zoom")


def test_empty_policy_is_identity() -> None:
    x = torch.randn(2, 5, 16, 16)
    assert torch.equal(diff_augment("")(x), x)


@pytest.mark.parametrize("op", OPERATIONS)
def test_each_operation_is_differentiable_and_keeps_shape(op: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 5, 16, 16, requires_grad=True)
    y = diff_augment(op, slice(2, 5))(x * 2 - 1)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_geometry_moves_condition_and_image_together() -> None:
    """A pair whose channels are copies of one another stays so under geometric operations."""
    torch.manual_seed(0)
    base = torch.rand(4, 1, 16, 16) * 2 - 1
    pair = base.repeat(1, 5, 1, 1)
    y = diff_augment("translation,cutout,flip,rot90")(pair)
    assert torch.allclose(y, y[:, :1].expand_as(y), atol=1e-6)
    assert not torch.allclose(y, pair)


def test_augment_alike_draws_once_for_all_inputs() -> None:
    torch.manual_seed(0)
    aug = diff_augment("translation,cutout,color,flip", slice(2, 5))
    x = torch.rand(3, 5, 16, 16) * 2 - 1
    a, b = augment_alike(aug, x, x.clone())
    assert torch.equal(a, b) and not torch.equal(a, x)
    c, d = augment_alike(aug, x, x)  # the stream moves on: the next draw differs
    assert torch.equal(c, d) and not torch.equal(a, c)


def test_color_touches_only_the_image_channels() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 5, 8, 8) * 2 - 1
    y = diff_augment("color", slice(2, 5))(x)
    assert torch.equal(y[:, :2], x[:, :2]) and not torch.equal(y[:, 2:], x[:, 2:])


def test_weight_average_tracks_the_generator() -> None:
    g = torch.nn.Linear(2, 2)
    assert weight_average(g, 0.0) is None
    with pytest.raises(UserError):
        weight_average(g, 1.0)
    ema = weight_average(g, 0.5)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        g.weight.add_(1.0)
    ema.update_parameters(g)  # first update copies, as AveragedModel does
    ema.update_parameters(g)
    assert torch.allclose(ema.module.weight, before + 1.0)


def test_weight_average_warms_up() -> None:
    """Early on the decay is (1 + n) / (10 + n), so the first (random) weights fade fast;
    later it is the decay asked for."""
    g = torch.nn.Linear(1, 1, bias=False)
    ema = weight_average(g, 0.999)
    with torch.no_grad():
        g.weight.fill_(0.0)
    ema.update_parameters(g)  # copies: 0
    with torch.no_grad():
        g.weight.fill_(1.0)
    ema.update_parameters(g)  # n = 1: decay 2 / 11
    assert ema.module.weight.item() == pytest.approx(1 - 2 / 11)
    for _ in range(1500):
        ema.update_parameters(g)
    # A fixed 0.999 would leave 0.999 ** 1500 = 22 % of the first weights.
    assert 1 - ema.module.weight.item() < 1e-6
    late = weight_average(torch.nn.Linear(1, 1, bias=False), 0.9)
    late.n_averaged.fill_(10_000)
    before = late.module.weight.item()
    late.update_parameters(g)
    assert late.module.weight.item() == pytest.approx(0.9 * before + 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["geometry", "texture"])
def test_train_with_augment_and_ema_resumes_exactly(tmp_path: Path, stage: str) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "4", "--out", str(data)]) == 0
    base = ["train", stage, "--data", str(data), "--ngf", "8", "--ndf", "8", "--device", "cpu"]
    base += ["--batch-size", "2", "--augment", "translation,cutout,color,flip", "--ema", "0.9"]
    if stage == "geometry":
        base += ["--instance-noise", "0"]  # its fade would follow the first run's --steps
    full, split = tmp_path / "full", tmp_path / "split"
    assert main([*base, "--out", str(full), "--steps", "4", "--checkpoint-every", "2"]) == 0
    assert main([*base, "--out", str(split), "--steps", "2"]) == 0
    assert main([*base, "--out", str(split), "--steps", "4", "--resume"]) == 0
    a = (full / "generator" / "model.safetensors").read_bytes()
    assert a == (split / "generator" / "model.safetensors").read_bytes()
    saved = json.loads((full / "options.json").read_text())
    assert saved["train"]["ema"] == 0.9 and saved["train"]["augment"].startswith("translation")
    # The exported generator is the average, not the last iterate.
    exported = load_file(full / "generator" / "model.safetensors")
    ckpt = load_file(full / "checkpoint.safetensors")
    key = next(k for k in exported if k.endswith("weight"))
    assert torch.equal(exported[key], ckpt[f"module.G_ema.module.{key}"])
    assert not torch.equal(exported[key], ckpt[f"module.G.{key}"])


def test_bad_augment_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "2", "--out", str(data)]) == 0
    cmd = ["train", "texture", "--data", str(data), "--out", str(tmp_path / "r")]
    assert main([*cmd, "--augment", "zoom", "--steps", "1"]) == 2
    assert "--augment zoom" in capsys.readouterr().err
    assert not (tmp_path / "r" / "options.json").exists()
