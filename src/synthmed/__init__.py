"""SynthMed: synthetic medical images from dual GANs (Guibas, Virdi & Li, 2017).

Stage I (geometry) generates segmentation masks from noise; Stage II (photorealism)
translates a mask into an image. The CLI in :mod:`synthmed.cli` only wraps this API:
``synthmed.train`` (:mod:`synthmed.training.api`) trains a stage, ``synthmed.Pipeline``
(:class:`synthmed.pipeline.SynthMedPipeline`) loads and samples a trained pipeline,
``synthmed.load`` loads any trained model folder, ``synthmed.generate`` writes a dataset
folder from one.
"""

from typing import Any

__version__ = "0.1.0"

from synthmed.errors import UserError  # noqa: E402

__all__ = ["Pipeline", "UserError", "__version__", "generate", "load", "train"]


def __getattr__(name: str) -> Any:
    # Lazy: `import synthmed` (the CLI's parser, the web service) must not import torch.
    if name == "train":
        from synthmed.training.api import train

        return train
    if name == "load":
        from synthmed.pipeline import load

        return load
    if name == "generate":
        from synthmed.generation import generate

        return generate
    if name == "Pipeline":
        from synthmed.pipeline import SynthMedPipeline

        return SynthMedPipeline
    raise AttributeError(f"module 'synthmed' has no attribute {name!r}")
