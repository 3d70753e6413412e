"""The paper's experiments as functions: fidelity of synthetic sets, and everything at once.

``evaluate_fidelity`` compares each synthetic set (the dual pipeline, the single-GAN baseline,
...) with the real training set, each figure beside a real-vs-real reference at the same
sample sizes; ``evaluate_all`` adds the downstream utility of each set and
writes the HTML report.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthmed import __version__
from synthmed.data.prepared import PreparedDataset
from synthmed.data.profile import mask_kind_of
from synthmed.data.sources import phantom_dataset
from synthmed.device import pick_device
from synthmed.errors import UserError
from synthmed.evaluation.critic import CriticConfig, mask_critic
from synthmed.evaluation.features import FeatureExtractor, load_inception, train_domain_extractor
from synthmed.evaluation.fidelity import (
    DISTANCE_FROM_IDEAL,
    REFERENCE_DEFINITION,
    SHARPNESS_DEFINITION,
    SPLITS,
    SetProfile,
    channel_names,
    kl_definition,
    matched_fidelity,
    pair_figures,
    profile_set,
)
from synthmed.evaluation.memorisation import nearest_neighbours
from synthmed.evaluation.objects import DEFINITION as OBJECTS_DEFINITION
from synthmed.evaluation.objects import STATISTICS as OBJECT_STATISTICS
from synthmed.evaluation.utility import (
    UtilitySettings,
    evaluate_utility,
    f1_gain_interval,
    score_gains,
)
from synthmed.evaluation.vessels import compare_statistics, compare_vessel_statistics

PHANTOMS = 64  # procedural phantoms the default feature encoder learns from
PHANTOM_MAX_RESOLUTION = 128  # phantoms are drawn at min(res, this): the encoder's own limit


def pick_extractor(
    resolution: int,
    inception_weights: str | Path | None = None,
    extractor_data: PreparedDataset | None = None,
    extractor_data_label: str | None = None,
    steps: int = 300,
    seed: int = 0,
    device: str | torch.device = "cpu",
    phantoms: int = PHANTOMS,
) -> FeatureExtractor:
    """The feature network for FID / KID / precision-recall, one that saw none of the
    compared images.

    In order: Inception from a local weights file when given; else a domain encoder trained
    on ``extractor_data`` (real pairs of the same modality, disjoint from every compared set;
    ``extractor_data_label`` names it, e.g. its path); else a domain encoder trained on
    ``phantoms`` procedural phantoms at min(``resolution``, 128) px, which share no image with
    any real or synthetic set. It is never trained on the real training set: an encoder fitted
    to the very images it then compares against scores copies of them too well (issue 29).
    """
    if inception_weights:
        return load_inception(inception_weights)
    device = pick_device(str(device))
    if extractor_data is not None:
        label = f"{extractor_data_label or 'given data'} ({len(extractor_data)} pairs)"
        return train_domain_extractor(extractor_data, steps, seed, device, training_data=label)
    res = min(resolution, PHANTOM_MAX_RESOLUTION)
    data = phantom_dataset(phantoms, res, seed=seed)
    label = f"{phantoms} procedural phantoms"
    return train_domain_extractor(data, steps, seed, device, training_data=label)


WHOLE_SETS_NOTE = (
    "all m synthetic images against all N real ones: no real-vs-real reference exists at these "
    "sizes, so these figures are kept for the record only and are not to be read on their own"
)


def _whole_sets(
    real: SetProfile, synth: SetProfile, channels: list[str], eps: float = 1e-6
) -> dict[str, Any]:
    """The figures of all of ``synth`` against all of ``real`` (no reference: see the note)."""
    figures = pair_figures(real, np.arange(len(real)), synth, np.arange(len(synth)), channels, eps)
    if real.vessels:
        figures["vessels_distributions"] = compare_vessel_statistics(real.vessels, synth.vessels)
    if real.objects:
        objects = compare_statistics(real.objects, synth.objects, OBJECT_STATISTICS)
        figures["objects_distributions"] = objects
    return {"note": WHOLE_SETS_NOTE, "n_real": len(real), "m_synthetic": len(synth), **figures}


def evaluate_fidelity(
    real: PreparedDataset,
    synthetic: dict[str, PreparedDataset],
    extractor: FeatureExtractor,
    bins: int = 64,
    splits: int = SPLITS,
    seed: int = 0,
    mask_reference: PreparedDataset | None = None,
    mask_kind: str = "auto",
) -> dict[str, Any]:
    """Intensity KL, sharpness, mask statistics and feature metrics of each set vs real,
    each with a real-vs-real reference at the same sample sizes.

    The mask statistics follow the kind of the real masks: vessel statistics (and, for colour
    sets, the optic disc's convergence) for "vessel", object statistics for "compact".

    Args:
        real: the real set the generators learnt from.
        synthetic: named synthetic sets (e.g. {"dual": ..., "single": ...}).
        extractor: features for FID / KID / precision-recall; its name and training data go
            in the result. It must not have been trained on ``real`` (see pick_extractor).
        bins: histogram bins for the KL.
        splits, seed: the real splits of :func:`matched_splits`.
        mask_reference: held-out real masks for the mask nearest-neighbour table only (what
            "new but realistic" looks like); no fidelity figure uses them.
        mask_kind: "vessel", "compact", or "auto": the kind ``real`` records (dataset.json),
            else measured (synthmed.data.profile); the result records it under "mask_kind".
    """
    for name, data in synthetic.items():
        if data.channels != real.channels or data.resolution != real.resolution:
            raise UserError(
                f"{name}: {data.resolution} px x {data.channels} channel(s) but the real set "
                f"is {real.resolution} px x {real.channels}; load both at one resolution"
            )
    channels = channel_names(real.channels)
    kind = mask_kind_of(real, mask_kind)
    real_profile = profile_set(real, extractor, bins, kind=kind["kind"])
    n_real = len(real)
    out: dict[str, Any] = {
        "reference": {
            "definition": REFERENCE_DEFINITION.format(
                splits=splits, seed=seed, n_real=n_real, a=(n_real + 1) // 2, b=n_real // 2
            ),
            "splits": splits,
            "seed": seed,
            "n_real": n_real,
            "a": (n_real + 1) // 2,
            "b": n_real // 2,
            "distance_from_ideal": {k: v[0] for k, v in DISTANCE_FROM_IDEAL.items()},
        },
        "kl_definition": kl_definition(bins),
        "sharpness_definition": SHARPNESS_DEFINITION.format(margin=4),
        "mask_kind": kind,
        **({"objects_definition": OBJECTS_DEFINITION} if kind["kind"] == "compact" else {}),
        "extractor": extractor.name,
        "extractor_training_data": extractor.training_data,
        "real_count": n_real,
        "sets": {},
    }
    held_out = None if mask_reference is None else (mask_reference.masks, mask_reference.fov)
    for name, data in synthetic.items():
        profile = profile_set(data, extractor, bins, kind=kind["kind"])
        matched = matched_fidelity(real_profile, profile, channels, splits, seed)
        out["sets"][name] = {
            "count": len(data),
            "sizes": matched["sizes"],
            "matched": matched["matched"],
            "whole_sets": _whole_sets(real_profile, profile, channels),
            "mask_nearest_neighbours": nearest_neighbours(
                (data.masks, data.fov), (real.masks, real.fov), held_out
            ),
        }
    return out


def add_mask_critic(
    fidelity: dict[str, Any],
    real: PreparedDataset,
    synthetic: dict[str, PreparedDataset],
    config: CriticConfig,
    device: str | torch.device = "cpu",
) -> None:
    """Put each set's cross-validated real-vs-synthetic mask critic (critic.py) into a
    result of :func:`evaluate_fidelity` (``sets[name]["mask_critic"]``); sets with fewer
    masks than folds are left out, and the reason recorded."""
    for name, data in synthetic.items():
        entry = fidelity["sets"][name]
        if min(len(real), len(data)) < config.folds:
            entry["mask_critic"] = {"skipped": f"fewer than {config.folds} masks on a side"}
            continue
        entry["mask_critic"] = mask_critic(
            (real.masks, real.fov), (data.masks, data.fov), config, device
        )


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
    settings: UtilitySettings,
    extractor: FeatureExtractor,
    fidelity_only: dict[str, PreparedDataset] | None = None,
) -> dict[str, Any]:
    """Utility (real, each synthetic set, real + each) and fidelity, in one metrics dict.

    ``settings``: how the segmenters are trained and scored (evaluate_utility); its
    ``real_subsets`` (the real arm's learning curve) are trained once, beside the first set.
    Sets in ``fidelity_only`` are compared on fidelity alone (no segmenters: cheap), e.g.
    older pipelines shown side by side with the current one. ``settings.mask_kind`` decides
    the mask statistics of both halves (vessel or compact; "auto": the real training set's).
    """
    utility: dict[str, Any] = {}
    first = True
    for name, data in synthetic.items():
        # The real-only arm is the same for every synthetic set: train it once.
        arms = ("real", "synthetic", "real+synthetic") if first else ("synthetic", "real+synthetic")
        once = settings if first else dataclasses.replace(settings, real_subsets=())
        result = evaluate_utility(real_train, data, real_test, once, arms=arms)
        for arm, value in result["arms"].items():
            label = "real" if arm == "real" else arm.replace("synthetic", name)
            utility[label] = value
        first = False
    real_f1 = utility["real"]["mean"]["f1"]
    return {
        "utility": {
            "recipe": result["recipe"],
            "seeds": list(settings.seeds),
            "synthetic_share": settings.synthetic_share,
            "arms": utility,
            "f1_relative_to_real": {
                k: (v["mean"]["f1"] / real_f1 if real_f1 else float("nan"))
                for k, v in utility.items()
            },
            "f1_gain_over_real": {
                k: f1_gain_interval(v, utility["real"]) for k, v in utility.items() if k != "real"
            },
            "score_gain_over_real": score_gains(utility),
            "mask_kind": result["mask_kind"],
            "overlap_definition": result["overlap_definition"],
        },
        # The held-out images are for the utility figures; fidelity only lends their masks
        # to the nearest-neighbour table, as the memorisation reference.
        "fidelity": evaluate_fidelity(
            real_train,
            {**synthetic, **(fidelity_only or {})},
            extractor,
            mask_reference=real_test,
            mask_kind=settings.mask_kind,
        ),
    }
