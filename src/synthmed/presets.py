"""Named training configurations: SynthMed's defaults, the paper-faithful one, and the
DRIVE recipe at 512 px.

A preset is a folder of JSON files shipped in the package (``presets_data/NAME/STAGE.json``),
each in the ``synthmed train STAGE --config`` format: loop options ("train": TrainOptions
fields, among them the batch size and precision), the networks' shapes ("model") and the
stage's loss weights ("stage"); flags given on the command line win over it. Why each
setting of ``drive512`` is what it is, with the measurements: docs/presets.md.

``paper`` keeps the paper's (and the reference implementations') choices: DCGAN with
transposed convolutions; pix2pix's U-Net-256 (ngf 64, eight levels of 4x4 stride-2
convolutions, transposed upsampling), the 70x70 PatchGAN (ndf 64), batch 1, float32. The
benchmark times both.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

PRESETS_FOLDER = files("synthmed") / "presets_data"  # NAME/STAGE.json, shipped in the package


def _to_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A preset file ({"train", "model", "stage"}: the ``train --config`` format) in the shape
    the trainers read: the model, batch size and precision apart from the other loop options."""
    train = dict(config.get("train", {}))
    out = {"model": dict(config.get("model", {})), "batch_size": train.pop("batch_size")}
    out["precision"] = train.pop("precision")
    if train:
        out["train"] = train
    if config.get("stage"):
        out["stage"] = dict(config["stage"])
    return out


def _load_presets() -> dict[str, dict[str, dict[str, Any]]]:
    presets: dict[str, dict[str, dict[str, Any]]] = {}
    for folder in sorted(PRESETS_FOLDER.iterdir(), key=lambda f: f.name):
        if folder.is_dir():
            presets[folder.name] = {
                f.name.removesuffix(".json"): _to_settings(json.loads(f.read_text("utf-8")))
                for f in sorted(folder.iterdir(), key=lambda f: f.name)
                if f.name.endswith(".json")
            }
    return presets


# default, paper, drive512 (in the order --help lists them).
_LOADED = _load_presets()
PRESETS = {name: _LOADED[name] for name in ("default", "paper", "drive512")}


def preset_file(name: str, stage: str) -> Path:
    """The shipped file of a preset's stage: a valid ``synthmed train STAGE --config``."""
    preset(name, stage)  # one error message for unknown names
    return Path(str(PRESETS_FOLDER / name / f"{stage}.json"))


def preset(name: str, stage: str) -> dict[str, Any]:
    """The settings of ``stage`` ("geometry", "single", "refiner" or "texture") of preset
    ``name``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name][stage]
