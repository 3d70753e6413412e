"""SynthMed: synthetic medical images from dual GANs (Guibas, Virdi & Li, 2017).

Stage I (geometry) generates segmentation masks from noise; Stage II (photorealism)
translates a mask into an image. The CLI in :mod:`synthmed.cli` only wraps this API:
``synthmed.train`` (:mod:`synthmed.training.api`) trains a stage, ``synthmed.Pipeline``
(:class:`synthmed.pipeline.SynthMedPipeline`) loads and samples a trained pipeline,
``synthmed.load`` loads any trained model folder, ``synthmed.generate`` writes a dataset
folder from one, and ``synthmed.evaluate`` (:mod:`synthmed.evaluation.api`, with its
``UtilitySettings``, ``FidelitySettings`` and ``ReportOptions``) evaluates synthetic sets
against real data.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from synthmed.errors import UserError  # noqa: E402

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from synthmed.evaluation.api import FidelitySettings, ReportOptions, evaluate
    from synthmed.evaluation.utility import UtilitySettings
    from synthmed.generation import generate
    from synthmed.pipeline import SynthMedPipeline as Pipeline
    from synthmed.pipeline import load
    from synthmed.training.api import train

__all__ = [
    "FidelitySettings",
    "Pipeline",
    "ReportOptions",
    "UserError",
    "UtilitySettings",
    "__version__",
    "evaluate",
    "generate",
    "load",
    "train",
]
# Names served by __getattr__: the module that defines each (imported on first use).
_LAZY = {
    "train": "synthmed.training.api",
    "evaluate": "synthmed.evaluation.api",
    "FidelitySettings": "synthmed.evaluation.api",
    "ReportOptions": "synthmed.evaluation.api",
    "UtilitySettings": "synthmed.evaluation.utility",
    "load": "synthmed.pipeline",
    "generate": "synthmed.generation",
}


def __getattr__(name: str) -> Any:
    # Lazy: `import synthmed` (the CLI's parser, the web service) must not import torch.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "Pipeline":
        from synthmed.pipeline import SynthMedPipeline

        return SynthMedPipeline
    raise AttributeError(f"module 'synthmed' has no attribute {name!r}")
