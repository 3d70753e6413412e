"""One loading and sampling interface for every trained model (issue 31): ``synthmed.load``
reads any model folder, ``synthmed.generate`` writes a dataset folder from any of them."""

import json
from pathlib import Path

import pytest

import synthmed
from synthmed.data.sources import phantom_dataset
from synthmed.errors import UserError
from synthmed.pipeline import SingleGANPipeline, SynthMedPipeline, TextureModel


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    data = phantom_dataset(6, 32, seed=0)
    data.save(root / "data")
    for stage in ("geometry", "texture", "single"):
        synthmed.train(stage, root / "data", root / stage, steps=2, batch_size=2, device="cpu")
    return root


def test_load_reads_every_kind_of_model_folder(runs: Path) -> None:
    pipe = SynthMedPipeline.from_folders(runs / "geometry", runs / "texture", device="cpu")
    pipe.save(runs / "pipe")
    assert isinstance(synthmed.load(runs / "pipe", device="cpu"), SynthMedPipeline)
    assert isinstance(synthmed.load(runs / "single", device="cpu"), SingleGANPipeline)
    assert isinstance(synthmed.load(runs / "texture", device="cpu"), TextureModel)
    with pytest.raises(UserError, match="makes masks only"):
        synthmed.load(runs / "geometry")
    with pytest.raises(UserError, match="not a pipeline, run or model folder"):
        synthmed.load(runs / "data")


def test_every_model_describes_itself_and_says_its_channels_and_precision(runs: Path) -> None:
    for folder in ("single", "texture"):
        model = synthmed.load(runs / folder, device="cpu")
        assert model.channels == 3 and model.precision in ("float32", "bfloat16")
        assert "sha256" in next(iter(model.describe().values()))


def test_single_gan_refuses_options_it_has_no_stage_for(runs: Path) -> None:
    with pytest.raises(UserError, match="no Stage II dropout"):
        synthmed.load(runs / "single", stochastic=True)
    with pytest.raises(UserError, match="no Stage II"):
        synthmed.load(runs / "single", tile=16)


def test_a_pipeline_json_without_stages_is_refused(runs: Path, tmp_path: Path) -> None:
    (tmp_path / "pipeline.json").write_text(json.dumps({"stages": "banana"}))
    with pytest.raises(UserError, match="'stages' must name geometry and texture"):
        SynthMedPipeline.load(tmp_path)


def test_generate_from_a_folder_equals_generate_from_the_loaded_model(
    runs: Path, tmp_path: Path
) -> None:
    synthmed.generate(runs / "single", tmp_path / "a", 3, seed=1, device="cpu")
    synthmed.generate(synthmed.load(runs / "single", device="cpu"), tmp_path / "b", 3, seed=1)
    for name in ("0000", "0001", "0002"):
        a = (tmp_path / "a" / "images" / f"{name}.png").read_bytes()
        assert a == (tmp_path / "b" / "images" / f"{name}.png").read_bytes()


def test_generate_with_stage_ii_alone_renders_the_given_masks(runs: Path, tmp_path: Path) -> None:
    out = synthmed.generate(runs / "texture", tmp_path / "t", masks=runs / "data", device="cpu")
    assert len(list((out / "images").glob("*.png"))) == 6
    with pytest.raises(UserError, match="needs masks"):
        synthmed.generate(runs / "texture", tmp_path / "u", 2)
    with pytest.raises(UserError, match="--texture"):
        synthmed.generate(runs / "single", tmp_path / "v", 2, masks=runs / "data")
