"""`train --config`: a run's options.json trains the same run again (issue 31), for every
stage of every preset: the same options recorded and byte-identical weights."""

import json
from pathlib import Path

import pytest

from synthmed.cli import main
from synthmed.data.sources import phantom_dataset
from synthmed.presets import PRESETS

pytestmark = pytest.mark.slow
QUICK = ["--steps", "1", "--device", "cpu", "--grid-every", "1000"]
STAGES = ("geometry", "refiner", "texture", "single")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("config")
    out = {}
    for res in (64, 256):
        phantom_dataset(4, res, seed=0).save(root / f"data{res}")
        out[res] = root / f"data{res}"
    return out


def _stage_flags(preset: str, stage: str, root: Path) -> list[str]:
    """What a stage needs beside the preset on 4 phantoms: the refiners of the default and
    paper presets read 32 px coarse masks."""
    if stage == "refiner":
        return ["--coarse", "32"]
    return []


@pytest.mark.parametrize("preset", list(PRESETS))
def test_options_json_is_a_config_that_repeats_the_run(data, preset: str, tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    folder = data[256 if preset == "drive512" else 64]
    # drive512's stages take ~30 s a run here even for one step: its coarse geometry run and
    # Stage II (the most options) stand for it; the other presets run every stage.
    stages = ("geometry", "texture") if preset == "drive512" else STAGES
    for stage in stages:
        runs = [root / f"{preset}-{stage}-{x}" for x in "ab"]
        base = ["train", stage, "--data", str(folder), *QUICK]
        base += _stage_flags(preset, stage, root)
        assert main([*base, "--preset", preset, "--out", str(runs[0])]) == 0
        config = runs[0] / "options.json"
        assert main([*base, "--config", str(config), "--out", str(runs[1])]) == 0
        first, again = (json.loads((r / "options.json").read_text()) for r in runs)
        assert again == first, stage
        weights = [(r / "generator" / "model.safetensors").read_bytes() for r in runs]
        assert weights[0] == weights[1], stage


def test_config_flags_win_and_bad_names_are_refused(data, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"preset": "paper", "train": {"steps": 1, "lr": 0.001}}))
    run = tmp_path / "run"
    argv = ["train", "geometry", "--data", str(data[64]), "--device", "cpu", "--config"]
    assert main([*argv, str(config), "--lr", "0.0005", "--out", str(run)]) == 0
    options = json.loads((run / "options.json").read_text())
    assert options["train"]["lr"] == 0.0005 and options["train"]["steps"] == 1
    assert options["model"]["upsample"] == "transpose"  # the paper preset, from the file
    config.write_text(json.dumps({"train": {"stepz": 3}}))
    assert main([*argv, str(config), "--out", str(tmp_path / "bad")]) == 2
    assert "unknown option 'stepz'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_shipped_config_file(name: str, tmp_path: Path) -> None:
    """--config PRESET_FILE resolves to exactly the options of --preset NAME, for every stage
    (no training: the resolved loop, model and stage options are compared)."""
    from synthmed.presets import preset_file
    from synthmed.training.api import read_config, resolve_options

    for stage in STAGES:
        extra = {"adapt_geometry": "geo"} if stage == "refiner" and name == "drive512" else {}
        by_name = resolve_options(stage, tmp_path, name, False, dict(extra))
        _, options = read_config(preset_file(name, stage), stage)
        by_file = resolve_options(stage, tmp_path, "default", False, options | extra)
        assert by_file == by_name, (name, stage)
