"""Named training configurations: SynthMed's defaults, the paper-faithful one, and the
DRIVE recipe at 512 px.

A preset fills in the networks' shapes ("model"), the batch size and the precision of a
stage, optionally other training options ("train": TrainOptions fields) and options of the
stage's loop ("stage": e.g. fm_weight); flags given on the command line win over it.

``paper`` keeps the paper's (and the reference implementations') choices: DCGAN with
transposed convolutions; pix2pix's U-Net-256 (ngf 64, eight levels of 4x4 stride-2
convolutions, transposed upsampling), the 70x70 PatchGAN (ndf 64), batch 1, float32. The
benchmark times both.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "geometry": {"model": {}, "batch_size": 16, "precision": "auto"},
        "single": {"model": {}, "batch_size": 16, "precision": "auto"},
        "texture": {"model": {}, "batch_size": 4, "precision": "auto"},
        "refiner": {"model": {}, "batch_size": 4, "precision": "auto"},
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
        "refiner": {
            "model": {"upsample": "transpose", "ngf": 64, "ndf": 64, "max_channels": 512},
            "batch_size": 1,
            "precision": "fp32",
        },
    },
    # Full-resolution DRIVE on 2 CPU cores in under 2 hours (docs/drive512.md):
    # Stage I = DCGAN on 128 px soft masks + a refiner to 512 px; both pix2pix models train
    # on 256 px crops; the refiner runs on whole images, Stage II in 256 px windows (whole
    # images came out brighter: pipeline.render); DiffAugment and EMA everywhere. Measured: a
    # 64 px coarse mask lost half the tree (skeleton length -57 %, widths doubled); at 128 px
    # -27 % and +46 %. The refiner gets the coarse masks as they are (no noise): noise made
    # it draw wider vessels from the real coarse masks. A Dice + clDice term for the refiner:
    # on the real coarse masks its fragments fell from 64 to 30 per mask
    # (docs/drive512-history.md, "DRIVE at 512 px"; a minibatch-std discriminator did not
    # make the masks more diverse). Both learn
    # the coarse masks as clipped signed distance maps, not area-averaged masks: skeleton
    # length -12 % -> -1 %, end points +454 % -> +393 %, components 319 -> 205 per mask, at
    # the same segmenter utility; clipped 12 px outside the vessels rather than 8: end points
    # +396 % -> +301 % (a second seed: +372 %, so within run-to-run spread; 16 px: +364 %),
    # utility the same (docs/drive512.md, "Distance maps"). Every F1 in these comments was
    # measured on DRIVE images 36-40, the same images that chose the settings: validation
    # figures, after selection, not what the preset is worth on new images (docs/evaluation.md).
    "drive512": {
        "geometry": {
            "model": {"resolution": 128, "coarse_kind": "distance", "coarse_clip": 12.0},
            "batch_size": 16,
            "precision": "auto",
            "train": {"steps": 4000, "augment": "translation,cutout", "ema": 0.999},
        },
        "single": {  # the baseline has no refiner: it makes 128 px pairs in the same time
            "model": {"resolution": 128},
            "batch_size": 16,
            "precision": "auto",
            "train": {"steps": 1000, "augment": "translation,cutout,color", "ema": 0.999},
        },
        "refiner": {
            "model": {"coarse": 128, "coarse_kind": "distance", "coarse_clip": 12.0},
            "batch_size": 4,
            "precision": "auto",
            "train": {"steps": 1500, "crop": 256, "ema": 0.999},
            # Adapted to the DCGAN's own coarse masks (an unpaired mask PatchGAN, weight 5;
            # needs --adapt-geometry): vessel widths as real (+31 % -> -1 %) and a segmenter
            # trained on the synthetic pairs at 0.976x real instead of 0.969x (4 seeds).
            "stage": {"coarse_noise": 0.0, "topology_weight": 10.0, "adapt_weight": 5.0},
        },
        # A style code (BicycleGAN's cVAE-GAN): without it every mask got one average
        # rendering; with it a segmenter trained on the synthetic pairs scored F1 0.735
        # instead of 0.698. Stage II's length mattered most: 3000 / 6000 / 9000 steps gave
        # 0.735 / 0.757 / 0.778 (real 0.795); 9000 keeps the recipe under 2 h on 2 CPU cores
        # (docs/drive512.md).
        "texture": {
            "model": {"num_d": 2, "style_dim": 8},
            "batch_size": 4,
            "precision": "auto",
            "train": {"steps": 9000, "crop": 256, "augment": "translation,color", "ema": 0.999},
            "stage": {"fm_weight": 10.0},
        },
    },
}


def preset(name: str, stage: str) -> dict[str, Any]:
    """The settings of ``stage`` ("geometry", "single", "refiner" or "texture") of preset
    ``name``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name][stage]
