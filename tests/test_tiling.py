"""Stage II rendered in blended windows of its training crop (pipeline.render)."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synthmed.data.sources import phantom_dataset
from synthmed.errors import UserError
from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig, UNetGenerator
from synthmed.pipeline import SynthMedPipeline, TextureModel, check_tile, render
from synthmed.training.geometry import train_geometry
from synthmed.training.options import TrainOptions
from synthmed.training.texture import train_texture

RES = 32


class Pointwise(nn.Module):
    """A stand-in generator whose output at a pixel depends on that pixel only, and which
    records the input sizes it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = TextureConfig(resolution=RES, out_channels=3)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, cond: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        self.sizes.append(tuple(cond.shape[-2:]))
        shift = 0 if style is None else style[:, :1, None, None]
        return torch.tanh(cond[:, :1] * 0.5 + shift).expand(-1, 3, -1, -1)


def test_windows_blend_back_to_the_whole_image_for_a_pointwise_net() -> None:
    net, cond = Pointwise(), torch.rand(2, 2, RES, RES) * 2 - 1
    style = torch.tensor([[0.3], [-0.2]])
    whole = render(net, cond, style, tile=0)
    tiled = render(net, cond, style, tile=16)
    # Windows at 0, 8, 16 on each axis: 9 of them, each 16 px, covering every pixel.
    assert net.sizes[0] == (RES, RES) and net.sizes[1:] == [(16, 16)] * 9
    torch.testing.assert_close(tiled, whole)


def test_check_tile() -> None:
    net = UNetGenerator(TextureConfig(resolution=RES, depth=3, ngf=4))  # windows: multiples of 8
    assert check_tile(0, 64, net) == 0
    assert check_tile(64, 64, net) == 0  # a window as large as the image: the whole image
    assert check_tile(16, 64, net) == 16
    with pytest.raises(UserError, match="multiple of 8"):
        check_tile(12, 64, net)
    with pytest.raises(UserError, match="divides the image side"):
        check_tile(32, 72, net)  # 72 is not a multiple of 16
    with pytest.raises(UserError):
        check_tile(-8, 64, net)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A geometry run and a texture run trained on 16 px crops of 32 px phantoms."""
    root = tmp_path_factory.mktemp("tiled")
    data = phantom_dataset(4, RES, seed=0)
    opts = TrainOptions(steps=2, batch_size=2, device="cpu", log_every=1, grid_every=2)
    train_geometry(data, root / "geo", GeometryConfig(resolution=RES, z_dim=8, ngf=4, ndf=4), opts)
    tex = TextureConfig(resolution=RES, depth=4, ngf=4, ndf=4, max_channels=16, d_layers=2)
    train_texture(data, root / "tex", tex, replace(opts, crop=16))
    return root


def test_the_training_crop_is_the_default_window_and_survives_save_and_load(
    runs: Path, tmp_path: Path
) -> None:
    pipe = SynthMedPipeline.from_folders(runs / "geo", runs / "tex", device="cpu")
    assert pipe.tile == 16  # from the texture run's options.json
    a = pipe.sample(3, seed=1)
    assert a.images.shape == (3, RES, RES, 3) and not a.images[~a.fov].any()
    whole = SynthMedPipeline.from_folders(runs / "geo", runs / "tex", device="cpu", tile=0)
    assert not np.array_equal(whole.sample(3, seed=1).images, a.images)
    pipe.save(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe/pipeline.json").read_text())["texture_tile"] == 16
    loaded = SynthMedPipeline.load(tmp_path / "pipe", device="cpu")
    assert loaded.tile == 16 and np.array_equal(loaded.sample(3, seed=1).images, a.images)
    assert TextureModel.load(runs / "tex", device="cpu").tile == 16
    alone = tmp_path / "copy/generator"  # a component folder outside its run: crop unknown
    shutil.copytree(runs / "tex/generator", alone)
    assert TextureModel.load(alone, device="cpu").tile == 0
