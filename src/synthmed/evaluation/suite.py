"""The paper's experiments as functions: fidelity of synthetic sets, and everything at once.

``evaluate_fidelity`` compares each synthetic set (the dual pipeline, the single-GAN baseline,
...) with the real training set; ``evaluate_all`` adds the downstream utility of each set and
writes the HTML report.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthmed import __version__
from synthmed.data.prepared import PreparedDataset
from synthmed.device import pick_device
from synthmed.evaluation.features import (
    FeatureExtractor,
    feature_metrics,
    load_inception,
    train_domain_extractor,
)
from synthmed.evaluation.fidelity import (
    compare_sharpness,
    intensity_kl,
    kl_definition,
    real_floor_kl,
    sharpness,
)
from synthmed.evaluation.memorisation import nearest_neighbours
from synthmed.evaluation.utility import SegmentationRecipe, evaluate_utility, f1_gain_interval
from synthmed.evaluation.vessels import compare_vessel_statistics, vessel_statistics


def pick_extractor(
    real: PreparedDataset,
    inception_weights: str | Path | None,
    steps: int = 300,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """Inception from a local file when given, else a domain encoder trained on ``real``."""
    if inception_weights:
        return load_inception(inception_weights)
    return train_domain_extractor(real, steps=steps, seed=seed, device=pick_device(str(device)))


def evaluate_fidelity(
    real: PreparedDataset,
    synthetic: dict[str, PreparedDataset],
    extractor: FeatureExtractor,
    reference: PreparedDataset | None = None,
    bins: int = 64,
) -> dict[str, Any]:
    """KL of intensity histograms, sharpness, vessel statistics and feature metrics of each
    set vs real.

    Args:
        real: the real set the generators learnt from.
        synthetic: named synthetic sets (e.g. {"dual": ..., "single": ...}).
        extractor: features for FID / KID / precision-recall; its name goes in the result.
        reference: optional held-out real set, scored like a synthetic one: the best a
            generator could hope for with this many samples.
        bins: histogram bins for the KL.
    """
    sets = dict(synthetic)
    if reference is not None:
        sets = {"real (held-out)": reference, **sets}
    real_vessels = vessel_statistics(real.masks, real.fov)
    real_sharpness = float(np.median(sharpness(real.images, real.fov)))
    out: dict[str, Any] = {
        "kl_definition": kl_definition(bins),
        "kl_real_floor": real_floor_kl(real, bins),
        "extractor": extractor.name,
        "real_count": len(real),
        "sets": {},
    }
    held_out = None if reference is None else (reference.masks, reference.fov)
    for name, data in sets.items():
        out["sets"][name] = {
            "count": len(data),
            "mask_nearest_neighbours": nearest_neighbours(
                (data.masks, data.fov), (real.masks, real.fov), held_out
            ),
            "kl": intensity_kl(real, data, bins),
            "sharpness": compare_sharpness(real, data, real_median=real_sharpness),
            "vessels": compare_vessel_statistics(
                real_vessels, vessel_statistics(data.masks, data.fov)
            ),
            "features": feature_metrics(real.images, data.images, extractor),
        }
    return out


def machine() -> dict[str, Any]:
    """Where the numbers were measured (goes into every report)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "synthmed": __version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def evaluate_all(
    real_train: PreparedDataset,
    real_test: PreparedDataset,
    synthetic: dict[str, PreparedDataset],
    recipe: SegmentationRecipe,
    seeds: tuple[int, ...],
    extractor: FeatureExtractor,
    device: str = "auto",
    fidelity_only: dict[str, PreparedDataset] | None = None,
    real_subsets: tuple[int, ...] = (),
    synthetic_share: float = 0.5,
) -> dict[str, Any]:
    """Utility (real, each synthetic set, real + each) and fidelity, in one metrics dict.

    Sets in ``fidelity_only`` are compared on fidelity alone (no segmenters: cheap), e.g.
    older pipelines shown side by side with the current one. ``real_subsets``: the real
    arm's learning curve; ``synthetic_share``: the synthetic share of the real + synthetic
    arms' training patches (evaluate_utility).
    """
    utility: dict[str, Any] = {}
    first = True
    for name, data in synthetic.items():
        # The real-only arm is the same for every synthetic set: train it once.
        arms = ("real", "synthetic", "real+synthetic") if first else ("synthetic", "real+synthetic")
        subsets = real_subsets if first else ()
        result = evaluate_utility(
            real_train,
            data,
            real_test,
            recipe,
            seeds,
            device,
            arms=arms,
            real_subsets=subsets,
            synthetic_share=synthetic_share,
        )
        for arm, value in result["arms"].items():
            label = "real" if arm == "real" else arm.replace("synthetic", name)
            utility[label] = value
        first = False
    real_f1 = utility["real"]["mean"]["f1"]
    return {
        "utility": {
            "recipe": result["recipe"],
            "seeds": list(seeds),
            "synthetic_share": synthetic_share,
            "arms": utility,
            "f1_relative_to_real": {
                k: (v["mean"]["f1"] / real_f1 if real_f1 else float("nan"))
                for k, v in utility.items()
            },
            "f1_gain_over_real": {
                k: f1_gain_interval(v, utility["real"]) for k, v in utility.items() if k != "real"
            },
        },
        "fidelity": evaluate_fidelity(
            real_train, {**synthetic, **(fidelity_only or {})}, extractor, reference=real_test
        ),
    }
