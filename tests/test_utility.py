"""Downstream utility: DRIVE-protocol scores, native-size mapping, and seeded segmenter runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc
from PIL import Image

from synthmed.data.prepared import square_resize
from synthmed.data.sources import phantom_dataset, prepare_source
from synthmed.errors import UserError
from synthmed.evaluation.protocol import (
    image_counts,
    load_native_truths,
    native_truth,
    score_dataset,
    segmentation_scores,
    to_native,
)
from synthmed.evaluation.utility import (
    ARMS,
    UtilitySettings,
    evaluate_arm,
    evaluate_utility,
    f1_gain_interval,
    predict,
)
from synthmed.models.segmenter import budget_recipe, build_network, sample_patches, train_segmenter

SCORES = {"f1", "auc", "accuracy", "sensitivity", "specificity"}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # On the shared 2-core machine, two OpenMP threads competing with other jobs run these
    # small convolutions several times slower than one thread does.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _truth_and_fov(seed: int = 0, shape: tuple[int, int] = (40, 36)) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    truth = (rng.random(shape) < 0.2).astype(np.uint8)
    fov = np.zeros(shape, np.uint8)
    fov[5:-5, 4:-8] = 1
    return truth, fov


def test_perfect_prediction_scores_one() -> None:
    truth, fov = _truth_and_fov()
    scores = segmentation_scores(truth.astype(np.float32), truth, fov)
    assert set(scores) == SCORES
    assert all(v == pytest.approx(1.0) for v in scores.values())


def test_all_background_prediction() -> None:
    truth, fov = _truth_and_fov()
    scores = segmentation_scores(np.zeros(truth.shape, np.float32), truth, fov)
    assert scores["f1"] == 0 and scores["sensitivity"] == 0 and scores["specificity"] == 1
    assert scores["auc"] == pytest.approx(0.5)  # one tie for every pixel


def test_pixels_outside_fov_are_ignored() -> None:
    truth, fov = _truth_and_fov()
    prob = np.random.default_rng(1).random(truth.shape).astype(np.float32)
    before = segmentation_scores(prob, truth, fov)
    outside = fov == 0
    prob2, truth2 = prob.copy(), truth.copy()
    prob2[outside], truth2[outside] = 1.0, 1 - truth[outside]
    assert segmentation_scores(prob2, truth2, fov) == before


def test_pooling_and_auc_match_monai() -> None:
    (t1, f1), (t2, f2) = _truth_and_fov(0), _truth_and_fov(1, (30, 50))
    rng = np.random.default_rng(2)
    # Rounded probabilities, so that ties are exercised too.
    p1, p2 = (np.round(rng.random(t.shape) * 0.6 + 0.4 * t, 1) for t in (t1, t2))
    pooled = segmentation_scores([p1, p2], [t1, t2], [f1, f2])
    inside = np.concatenate([p1[f1 > 0], p2[f2 > 0]]), np.concatenate([t1[f1 > 0], t2[f2 > 0]])
    flat = segmentation_scores(inside[0][None], inside[1][None], np.ones_like(inside[1])[None])
    assert pooled == pytest.approx(flat)
    monai_auc = compute_roc_auc(torch.from_numpy(inside[0]), torch.from_numpy(inside[1]))
    assert pooled["auc"] == pytest.approx(monai_auc)


def test_image_counts_add_up_to_the_pooled_f1() -> None:
    (t1, f1), (t2, f2) = _truth_and_fov(0), _truth_and_fov(1, (30, 50))
    rng = np.random.default_rng(3)
    p1, p2 = (rng.random(t.shape) * 0.6 + 0.4 * t for t in (t1, t2))
    counts = image_counts([p1, p2], [t1, t2], [f1, f2])
    assert counts.shape == (2, 3) and counts.dtype == np.int64
    tp, fp, fn = counts.sum(0)
    pooled = segmentation_scores([p1, p2], [t1, t2], [f1, f2])["f1"]
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(pooled)
    one = segmentation_scores(p2[None], t2[None], f2[None])["f1"]
    assert 2 * counts[1, 0] / (2 * counts[1, 0] + counts[1, 1:].sum()) == pytest.approx(one)


def _arm(per_seed_counts: list[list[list[int]]]) -> dict:
    return {"per_seed": [{"image_counts": c} for c in per_seed_counts]}


def test_f1_gain_interval_resamples_the_test_images() -> None:  # and the seeds
    """Same counts: gain and interval 0. An arm better on every image: the whole interval
    above 0. Better on one image only: the interval reaches below what it gains on the whole
    set. Results without per-image counts: None."""
    real = _arm([[[80, 20, 20], [50, 10, 40], [70, 30, 10]]] * 2)
    same = f1_gain_interval(real, real, draws=500)
    assert same["gain"] == 0 and same["interval"] == [0, 0]
    better = _arm([[[90, 15, 10], [60, 10, 30], [75, 25, 5]]] * 2)
    up = f1_gain_interval(better, real, draws=500)
    assert up["gain"] > 0 and up["interval"][0] > 0
    assert up["share_of_bootstrap_draws_with_gain_above_0"] == 1
    assert "3 test images" in up["method"] and up["level"] == 0.95
    assert "two-level bootstrap" in up["definition"]
    one = _arm([[[80, 20, 20], [80, 10, 10], [70, 30, 10]]] * 2)
    lucky = f1_gain_interval(one, real, draws=2000)
    assert lucky["interval"][0] < lucky["gain"] < lucky["interval"][1]
    assert f1_gain_interval(one, real, draws=2000) == lucky  # seeded: the same interval
    assert f1_gain_interval({"per_seed": [{"f1": 0.8}]}, real) is None


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn)


def test_f1_gain_interval_holds_known_seed_noise() -> None:
    """Issue 29: a case whose only noise is the seeds'. Every test image has the same counts
    within a seed, so resampling images changes nothing; the arm's two seeds score the real
    F1 and the real F1 + delta. The seed bootstrap's mean then takes 0, delta / 2 and delta
    with chances 1/4, 1/2, 1/4: the 95 % interval is [0, delta], while the test images alone
    give the single value delta / 2 (the old, too narrow interval)."""
    real = _arm([[[80, 20, 20]] * 5] * 2)
    arm = _arm([[[80, 20, 20]] * 5, [[90, 20, 20]] * 5])
    delta = _f1(90, 20, 20) - _f1(80, 20, 20)
    g = f1_gain_interval(arm, real, draws=4000)
    assert g["gain"] == pytest.approx(delta / 2)
    assert g["components"]["test_images_only"] == pytest.approx([delta / 2, delta / 2])
    assert g["components"]["seeds_only"] == pytest.approx([0, delta])
    assert g["interval"] == pytest.approx([0, delta])
    assert 0.70 < g["share_of_bootstrap_draws_with_gain_above_0"] < 0.80  # 3 in 4 draws


def test_f1_gain_interval_spread_matches_the_seeds_spread() -> None:
    """Four seeds with known gains: the bootstrap's spread of their mean is their population
    standard deviation / sqrt(4), as for any bootstrap of a mean."""
    real = _arm([[[80, 20, 20]] * 5] * 4)
    tps = [80, 84, 88, 92]
    arm = _arm([[[tp, 20, 20]] * 5 for tp in tps])
    gains = np.array([_f1(tp, 20, 20) - 0.8 for tp in tps])
    g = f1_gain_interval(arm, real, draws=20_000, level=0.6827)  # +- one sd of a normal
    half_width = (g["interval"][1] - g["interval"][0]) / 2
    assert half_width == pytest.approx(gains.std() / 2, rel=0.15)


def _native_example(h: int = 150, w: int = 130) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A non-square photo with an off-centre elliptical FOV and thick 'vessels' inside it."""
    yy, xx = np.mgrid[:h, :w]
    fov = ((yy - 70) / 60.0) ** 2 + ((xx - 75) / 48.0) ** 2 <= 1
    vessels = (np.abs(yy - 0.8 * xx - 10) < 4) | (np.abs(xx - 60) < 3) | (np.abs(yy - 90) < 3)
    mask = vessels & fov
    image = np.where(fov, 160, 0).astype(np.uint8)
    image = np.stack([image, np.where(mask, 60, image).astype(np.uint8), image // 2], -1)
    return image, mask, fov


def test_to_native_round_trip() -> None:
    image, mask, fov = _native_example()
    _, small_mask, _, transform = square_resize(image, mask, fov, 128)
    back = to_native(small_mask.astype(np.float32), transform)
    assert back.shape == tuple(transform["native_size"]) == mask.shape
    hit = (back >= 0.5) & fov
    dice = 2 * np.sum(hit & mask) / (hit.sum() + mask.sum())
    assert dice > 0.9
    assert to_native(small_mask, {}) is small_mask  # no geometry: unchanged


def test_budgets() -> None:
    assert budget_recipe("smoke", 64).patch == 64 and budget_recipe("smoke", 32).patch == 32
    assert budget_recipe("cpu", 256).patch == 96 and budget_recipe("full", 512).patch == 128
    assert budget_recipe("full", 64).steps == 20_000
    assert budget_recipe(250, 64).steps == budget_recipe("250", 64).steps == 250
    for bad in ("huge", 0):
        with pytest.raises(UserError):
            budget_recipe(bad, 64)


def test_resolution_mismatch_is_a_user_error() -> None:
    real, synthetic = phantom_dataset(2, 32), phantom_dataset(2, 64)
    with pytest.raises(UserError, match=r"64 px .* 32 px"):
        evaluate_utility(real, synthetic, real, UtilitySettings("smoke", device="cpu"))


def test_trained_segmenter_beats_untrained() -> None:
    data = phantom_dataset(8, 64, seed=0)
    recipe = budget_recipe("smoke", 64)
    model = train_segmenter([data], recipe, seed=0, device="cpu", progress=False)
    trained = score_dataset(predict(model, data, "cpu", recipe.patch), data)
    torch.manual_seed(0)
    untrained_model = build_network(recipe, data.channels)
    untrained = score_dataset(predict(untrained_model, data, "cpu", recipe.patch), data)
    assert trained["f1"] > 0.6 and trained["auc"] > 0.9
    assert trained["f1"] > untrained["f1"] + 0.3


def test_evaluate_utility_all_arms_and_determinism() -> None:
    real, synthetic, test = (phantom_dataset(4, 32, seed=s) for s in (0, 1, 2))
    # Fewer steps than "smoke": this checks the bookkeeping, not the quality.
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=15)
    settings = UtilitySettings(recipe, seeds=(0, 1), device="cpu")
    result = evaluate_utility(real, synthetic, test, settings)
    assert result["recipe"]["steps"] == 15 and result["seeds"] == [0, 1]
    assert set(result["arms"]) == set(ARMS) == set(result["f1_relative_to_real"])
    for arm in result["arms"].values():
        assert arm["scored_at"] == "working"  # phantoms have no native files
        assert SCORES | {"seconds"} <= set(arm["mean"]) and set(arm["mean"]) == set(arm["std"])
        assert [r["seed"] for r in arm["per_seed"]] == [0, 1]
    assert result["arms"]["real+synthetic"]["train_sizes"] == [4, 4]
    assert set(result["f1_gain_over_real"]) == {"synthetic", "real+synthetic"}
    gain = result["f1_gain_over_real"]["synthetic"]
    f1 = {a: result["arms"][a]["mean"]["f1"] for a in ("real", "synthetic")}
    assert gain["gain"] == pytest.approx(f1["synthetic"] - f1["real"])
    assert gain["interval"][0] <= gain["interval"][1]
    counts = result["arms"]["real"]["per_seed"][0]["image_counts"]
    assert len(counts) == len(test) and all(len(c) == 3 for c in counts)
    once = dataclasses.replace(settings, seeds=(0,), progress=False)
    again = evaluate_arm([real], test, once)
    first = result["arms"]["real"]["per_seed"][0]
    assert {k: again["per_seed"][0][k] for k in SCORES} == {k: first[k] for k in SCORES}


def test_real_subsets_add_the_real_learning_curve() -> None:
    real, synthetic, test = (phantom_dataset(4, 32, seed=s) for s in (0, 1, 2))
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=5)
    settings = UtilitySettings(recipe, seeds=(0,), device="cpu")
    curve = dataclasses.replace(settings, real_subsets=(2, 1))
    result = evaluate_utility(real, synthetic, test, curve, arms=["real"])
    assert list(result["arms"]) == ["real", "real (1 of 4)", "real (2 of 4)"]
    assert result["arms"]["real (2 of 4)"]["train_sizes"] == [2]
    assert set(result["f1_relative_to_real"]) == set(result["arms"])
    # The subset arm trains on the first K images: the same as passing them by hand.
    by_hand = evaluate_arm([real.subset([0, 1])], test, settings)
    assert by_hand["mean"]["f1"] == result["arms"]["real (2 of 4)"]["mean"]["f1"]
    for bad in (0, 4):
        with pytest.raises(UserError, match="1 <= K < 4"):
            evaluate_utility(real, synthetic, test, dataclasses.replace(curve, real_subsets=(bad,)))


def test_sample_patches_draws_each_set_by_its_weight() -> None:
    """The real + synthetic arm's mix: a set's share of patches follows its weight."""
    dark = [torch.zeros(3, 3, 16, 16, dtype=torch.uint8), torch.zeros(3, 1, 16, 16)]
    bright = [torch.full((3, 3, 16, 16), 255, dtype=torch.uint8), torch.ones(3, 1, 16, 16)]
    images, masks = [dark[0], bright[0]], [dark[1], bright[1]]

    def bright_share(weights: tuple[float, float] | None) -> float:
        x, y = sample_patches(images, masks, 4000, 8, torch.Generator().manual_seed(0), weights)
        assert torch.equal(x[:, 0, 0, 0] == 255, y[:, 0, 0, 0] == 1)  # pairs stay together
        return (x[:, 0, 0, 0] == 255).float().mean().item()

    assert bright_share(None) == pytest.approx(0.5, abs=0.03)
    assert bright_share((0.8, 0.2)) == pytest.approx(0.2, abs=0.03)
    assert bright_share((1.0, 0.0)) == 0.0


def test_synthetic_share_mixes_the_real_plus_synthetic_arm_only() -> None:
    real, synthetic, test = (phantom_dataset(4, 32, seed=s) for s in (0, 1, 2))
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=5)
    settings = UtilitySettings(recipe, seeds=(0,), device="cpu")
    even = evaluate_utility(real, synthetic, test, settings)
    mixed = evaluate_utility(
        real, synthetic, test, dataclasses.replace(settings, synthetic_share=0.1)
    )
    assert even["synthetic_share"] == 0.5 and mixed["synthetic_share"] == 0.1
    f1 = {k: (even["arms"][k]["mean"]["f1"], mixed["arms"][k]["mean"]["f1"]) for k in ARMS}
    assert f1["real"][0] == f1["real"][1] and f1["synthetic"][0] == f1["synthetic"][1]
    assert f1["real+synthetic"][0] != f1["real+synthetic"][1]
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(UserError, match="between 0 and 1"):
            evaluate_utility(
                real, synthetic, test, dataclasses.replace(settings, synthetic_share=bad)
            )


def _write_drive(root: Path, count: int = 2) -> None:
    """A tiny DRIVE-layout training folder: tif photos, gif vessel masks and gif FOVs."""
    for sub in ("images", "1st_manual", "mask"):
        (root / "training" / sub).mkdir(parents=True)
    for k in range(count):
        image, mask, fov = _native_example(66, 70)  # DRIVE-like: portrait-ish, off-centre FOV
        image, mask, fov = np.roll(image, k, 1), np.roll(mask, k, 1), np.roll(fov, k, 1)
        n = 21 + k
        Image.fromarray(image).save(root / "training" / "images" / f"{n}_training.tif")
        Image.fromarray(mask.astype(np.uint8) * 255).save(
            root / "training" / "1st_manual" / f"{n}_manual1.gif"
        )
        Image.fromarray(fov.astype(np.uint8) * 255).save(
            root / "training" / "mask" / f"{n}_training_mask.gif"
        )


def test_native_size_scoring_through_drive_files(tmp_path: Path) -> None:
    _write_drive(tmp_path / "DRIVE")
    data = prepare_source("drive", tmp_path / "DRIVE", 32)
    truth = native_truth(data.meta["transforms"][0])
    assert truth is not None and truth[0].shape == truth[1].shape == (66, 70)
    assert native_truth({"native_size": [32, 32]}) is None  # phantom-like: no files
    native = load_native_truths(data)
    assert native is not None
    # A perfect working-resolution prediction stays near-perfect at native size.
    perfect = score_dataset(data.masks.astype(np.float32), data, native)
    assert perfect["f1"] > 0.8 and perfect["auc"] > 0.9
    recipe = dataclasses.replace(budget_recipe("smoke", 32), steps=3)
    arm = evaluate_arm(
        [data], data, UtilitySettings(recipe, seeds=(0,), device="cpu", progress=False)
    )
    assert arm["scored_at"] == "native" and SCORES <= set(arm["per_seed"][0])


def test_sensitivity_by_width_tells_thin_from_thick_vessels() -> None:
    """Issue 30: what a segmenter misses, by vessel size. A 2 px and an 8 px vessel; the
    prediction finds only the thick one: thin sensitivity 0, thick 1, medium absent (NaN)."""
    from synthmed.evaluation.protocol import sensitivity_by_width, vessel_width_map

    truth = np.zeros((60, 60), np.uint8)
    truth[10:12, 5:55] = 1
    truth[30:38, 5:55] = 1
    widths = vessel_width_map(truth)
    assert widths[10:12, 10:50].max() <= 2.5 and widths[30:38, 10:50].min() > 4.5
    assert (widths[truth == 0] == 0).all()
    found = np.zeros((60, 60), np.float32)
    found[30:38, 5:55] = 1
    s = sensitivity_by_width(found, truth, np.ones_like(truth))
    assert s["sensitivity_thin"] == 0 and s["sensitivity_thick"] == 1
    assert np.isnan(s["sensitivity_medium"])
