"""Named training configurations: SynthMed's defaults and the paper-faithful one.

A preset fills in the networks' shapes, the batch size and the precision of a stage; flags
given on the command line win over it. ``paper`` keeps the paper's (and the reference
implementations') choices: DCGAN with transposed convolutions; pix2pix's U-Net-256 (ngf 64,
eight levels of 4x4 stride-2 convolutions, transposed upsampling), the 70x70 PatchGAN (ndf 64),
batch 1, float32. The benchmark times both.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "geometry": {"model": {}, "batch_size": 16, "precision": "auto"},
        "single": {"model": {}, "batch_size": 16, "precision": "auto"},
        "texture": {"model": {}, "batch_size": 4, "precision": "auto"},
    },
    "paper": {
        "geometry": {
            "model": {"upsample": "transpose", "ngf": 64, "ndf": 64},
            "batch_size": 16,
            "precision": "fp32",
        },
        "single": {
            "model": {"upsample": "transpose", "ngf": 64, "ndf": 64},
            "batch_size": 16,
            "precision": "fp32",
        },
        "texture": {
            "model": {"upsample": "transpose", "ngf": 64, "ndf": 64, "max_channels": 512},
            "batch_size": 1,
            "precision": "fp32",
        },
    },
}


def preset(name: str, stage: str) -> dict[str, Any]:
    """The settings of ``stage`` ("geometry", "single" or "texture") in preset ``name``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name][stage]
