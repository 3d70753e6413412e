"""The evaluation on masks of either kind (issue 32): object statistics for compact masks,
vessel statistics only for vessels, and Dice / IoU / HD95 next to F1 for every arm."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from skimage.draw import disk, ellipse

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.evaluation.fidelity import pair_figures, profile_set
from synthmed.evaluation.objects import object_statistics
from synthmed.evaluation.protocol import overlap_scores, score_images
from synthmed.evaluation.report import fidelity_section, utility_section
from synthmed.evaluation.suite import evaluate_fidelity, pick_extractor
from synthmed.evaluation.utility import (
    UtilitySettings,
    evaluate_utility,
    score_gain_interval,
)
from synthmed.models.segmenter import (
    COMPACT_INTENSITY,
    budget_recipe,
    jitter_intensity,
    recipe_for_kind,
    train_segmenter,
)


def _cells(n: int, res: int = 32, seed: int = 0) -> PreparedDataset:
    """Grey images of one bright ellipse ("a cell") each, with its mask: compact objects."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, res, res), np.uint8)
    for m in masks:
        r, c = rng.uniform(0.35, 0.65, 2) * res
        a = rng.uniform(0.12, 0.2) * res
        m[ellipse(r, c, a, a / rng.uniform(1, 2.5), shape=m.shape, rotation=rng.uniform(0, 3))] = 1
    noise = rng.normal(0, 8, masks.shape)
    images = np.clip(60 + 120 * masks + noise, 0, 255).astype(np.uint8)[..., None]
    names = [f"cell{i:02d}" for i in range(n)]
    return PreparedDataset(images, masks, np.ones_like(masks), names, {"source": "test"})


def test_object_statistics_of_a_disc() -> None:
    r = 40
    masks = np.zeros((2, 512, 512), np.uint8)
    masks[0][disk((200, 300), r)] = 1
    stats = object_statistics(masks, np.ones_like(masks))
    assert stats["objects"].tolist() == [1, 0]
    assert stats["area"][0] == pytest.approx(math.pi * r**2, rel=0.01)
    assert stats["perimeter"][0] == pytest.approx(2 * math.pi * r, rel=0.02)
    assert stats["solidity"][0] == pytest.approx(1, abs=0.02)
    assert stats["eccentricity"][0] == pytest.approx(0, abs=0.02)
    assert all(np.isnan(stats[k][1]) for k in ("area", "perimeter", "solidity", "eccentricity"))


def test_object_statistics_scale_to_512_and_average_over_objects() -> None:
    masks = np.zeros((1, 256, 256), np.uint8)
    masks[0][disk((60, 60), 10)] = 1
    masks[0][ellipse(180, 160, 40, 20)] = 1  # axes 40 and 20: eccentricity sqrt(3)/2
    stats = object_statistics(masks, np.ones_like(masks))
    assert stats["objects"][0] == 2
    area = (math.pi * 10**2 + math.pi * 40 * 20) / 2 * 4  # px at 512: x (512/256)^2
    assert stats["area"][0] == pytest.approx(area, rel=0.02)
    assert stats["eccentricity"][0] == pytest.approx((0 + math.sqrt(3) / 2) / 2, abs=0.02)
    outside = np.zeros_like(masks)  # a field of view that excludes the objects
    assert object_statistics(masks, outside)["objects"][0] == 0


def test_mask_statistics_follow_the_kind() -> None:
    cells, phantoms = _cells(6), phantom_dataset(6, 32)
    compact = profile_set(cells, kind="compact")
    assert compact.vessels == {} and set(compact.objects) >= {"objects", "area", "solidity"}
    vessel = profile_set(phantoms, kind="vessel")
    assert vessel.objects == {} and "disc_convergence" in vessel.vessels  # a colour set
    a, b = np.arange(3), np.arange(3, 6)
    figures = pair_figures(compact, a, compact, b, ["gray"])
    assert "objects" in figures and "vessels" not in figures
    assert "vessels" in pair_figures(vessel, a, vessel, b, ["R", "G", "B"])


def test_fidelity_of_compact_masks_reports_object_statistics() -> None:
    real, synth = _cells(8, seed=0), _cells(8, seed=1)
    extractor = pick_extractor(32, steps=2, phantoms=4)
    result = evaluate_fidelity(real, {"s": synth}, extractor, splits=4)
    assert result["mask_kind"]["kind"] == "compact" and result["mask_kind"]["source"] == "auto"
    matched = result["sets"]["s"]["matched"]
    assert "objects" in matched and "vessels" not in matched
    assert set(matched["objects"]) == {"objects", "area", "perimeter", "solidity", "eccentricity"}
    assert "objects_distributions" in result["sets"]["s"]["whole_sets"]
    page = fidelity_section(result)
    assert "Object statistics" in page and "Vessel statistics" not in page
    assert "Mask kind: <b>compact</b>" in page
    # The kind can be forced: vessel statistics on the same masks.
    forced = evaluate_fidelity(real, {"s": synth}, extractor, splits=2, mask_kind="vessel")
    assert "vessels" in forced["sets"]["s"]["matched"] and forced["mask_kind"]["source"] == "user"


def test_overlap_scores_on_known_masks() -> None:
    truth = np.zeros((2, 64, 64), np.uint8)
    truth[:, 10:30, 10:30] = 1
    pred = np.zeros((2, 64, 64), np.float32)
    pred[0, 10:30, 10:30] = 1  # exact
    pred[1, 10:30, 15:35] = 1  # shifted 5 px: overlap 20 x 15
    scores = overlap_scores(pred, truth, np.ones_like(truth))
    assert scores["dice"].tolist() == pytest.approx([1.0, 2 * 300 / 800])
    assert scores["iou"].tolist() == pytest.approx([1.0, 300 / 500])
    assert scores["hd95"][0] == 0 and scores["hd95"][1] == pytest.approx(5, abs=0.5)


def test_overlap_scores_of_empty_masks() -> None:
    empty, full = np.zeros((1, 16, 16)), np.zeros((1, 16, 16))
    full[0, 4:8, 4:8] = 1
    fov = np.ones((1, 16, 16))
    both = overlap_scores(empty, empty, fov)
    assert (both["dice"][0], both["iou"][0], both["hd95"][0]) == (1, 1, 0)
    missed = overlap_scores(empty, full, fov)
    assert missed["dice"][0] == 0 and missed["hd95"][0] == pytest.approx(math.hypot(16, 16))
    outside = overlap_scores(full, full, np.zeros((1, 16, 16)))  # nothing inside the FOV
    assert outside["dice"][0] == 1


def test_score_images_adds_overlaps_and_widths_only_for_vessels() -> None:
    data = _cells(3)
    prob = data.masks.astype(np.float32)
    vessel = score_images(prob, data, kind="vessel")
    compact = score_images(prob, data, kind="compact")
    assert "sensitivity_thin" in vessel.pooled and "sensitivity_thin" not in compact.pooled
    for scores in (vessel, compact):
        assert scores.pooled["dice"] == scores.pooled["f1"] == pytest.approx(1)
        assert scores.per_image["hd95"].tolist() == [0, 0, 0]


def test_score_gain_interval_of_a_constant_shift() -> None:
    real = {"per_seed": [{"image_scores": {"dice": [0.5, 0.7, 0.9]}}] * 2}
    arm = {"per_seed": [{"image_scores": {"dice": [0.6, 0.8, 1.0]}}] * 2}
    gain = score_gain_interval(arm, real, "dice", draws=500)
    assert gain["gain"] == pytest.approx(0.1)
    assert gain["interval"] == pytest.approx([0.1, 0.1])
    assert score_gain_interval({"per_seed": [{}]}, real, "dice") is None  # older results


def test_utility_reports_dice_iou_hd95_for_every_arm_and_seed() -> None:
    real, synthetic, test = _cells(4, seed=0), _cells(4, seed=1), _cells(3, seed=2)
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=3)
    settings = UtilitySettings(recipe, seeds=(0, 1), device="cpu", progress=False)
    result = evaluate_utility(real, synthetic, test, settings)
    assert result["mask_kind"]["kind"] == "compact"
    assert result["recipe"]["intensity"] == COMPACT_INTENSITY  # microscopy jitter
    for arm in result["arms"].values():
        assert {"dice", "iou", "hd95"} <= set(arm["mean"]) and "sensitivity_thin" not in arm["mean"]
        for seed in arm["per_seed"]:
            assert set(seed["image_scores"]) == {"dice", "iou", "hd95"}
            assert len(seed["image_scores"]["dice"]) == len(test)
            assert seed["dice"] == pytest.approx(np.mean(seed["image_scores"]["dice"]))
    gains = result["score_gain_over_real"]
    assert set(gains) == {"dice", "iou", "hd95"}
    assert set(gains["hd95"]) == {"synthetic", "real+synthetic"}
    page = utility_section(result)
    assert "Foreground overlap and boundary distance" in page and "HD95" in page


def test_segmenter_intensity_jitter_by_kind() -> None:
    recipe = budget_recipe("smoke", 32)
    assert recipe.intensity is None
    assert recipe_for_kind(recipe, "vessel").intensity == 0.0
    assert recipe_for_kind(recipe, "compact").intensity == COMPACT_INTENSITY
    fixed = dataclasses.replace(recipe, intensity=0.05)
    assert recipe_for_kind(fixed, "compact").intensity == 0.05
    grey = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8)  # equal channels stay equal: no hue shift
    out = jitter_intensity(grey, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, grey)


def test_vessel_recipe_trains_as_before() -> None:
    """No jitter draws for vessels: the segmenter's random stream (and weights) unchanged."""
    data = phantom_dataset(3, 32)
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=2)
    before = train_segmenter([data], recipe, seed=0, device="cpu", progress=False)
    vessel = recipe_for_kind(recipe, "vessel")
    after = train_segmenter([data], vessel, seed=0, device="cpu", progress=False)
    for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True):
        assert torch.equal(a, b)
