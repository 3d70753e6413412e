"""Trained generators from disk: a run folder of ``synthmed train`` or a component folder.

Here rather than in pipeline.py because training needs it too (the refiner's adaptation loads
a geometry run), and training must not import the pipeline, nor the pipeline training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from synthmed.checkpoints import load_weights, read_config
from synthmed.errors import UserError
from synthmed.models.dcgan import GeometryConfig, MaskGenerator
from synthmed.models.pix2pix import TextureConfig, UNetGenerator


def component_folder(path: str | Path) -> Path:
    """Accept a training run folder (with ``generator/``) or a component folder itself."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: folder not found")
    if (path / "generator").is_dir():
        return path / "generator"
    return path


def load_generator(folder: str | Path, kind: str) -> tuple[torch.nn.Module, Path]:
    """The trained generator of a run folder (or component folder) of ``kind``
    ("geometry", "single", "refiner" or "texture"), and the component folder it came from."""
    component = component_folder(folder)
    if kind in ("texture", "refiner"):
        net: torch.nn.Module = UNetGenerator(read_config(component, TextureConfig, kind))
    else:
        net = MaskGenerator(read_config(component, GeometryConfig, kind))
    load_weights(net, component / "model.safetensors")
    return net, component
