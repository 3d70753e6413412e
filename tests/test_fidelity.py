"""Fidelity metrics on phantom data: intensity KL, vessel statistics, feature-space metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.errors import UserError
from synthmed.evaluation.features import (
    feature_metrics,
    frechet_distance,
    kernel_inception_distance,
    load_inception,
    read_state_dict,
    train_domain_extractor,
)
from synthmed.evaluation.fidelity import (
    DISTANCE_FROM_IDEAL,
    OUTSIDE,
    WITHIN,
    compare_sharpness,
    image_histograms,
    intensity_histograms,
    intensity_kl,
    matched_fidelity,
    matched_splits,
    profile_set,
    sharpness,
    summarise_splits,
)
from synthmed.evaluation.suite import evaluate_fidelity, pick_extractor
from synthmed.evaluation.vessels import (
    compare_vessel_statistics,
    vessel_statistics,
    width_histograms,
)
from synthmed.models.vessel_geometry import disc_side_weights


def _with_images(data: PreparedDataset, images: np.ndarray) -> PreparedDataset:
    return PreparedDataset(images, data.masks, data.fov, data.names, data.meta)


def _noised(images: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real() -> PreparedDataset:
    return phantom_dataset(16, 64, seed=0)


@pytest.fixture(scope="module")
def small() -> PreparedDataset:
    return phantom_dataset(16, 32, seed=0)


@pytest.fixture(scope="module")
def extractor(small):
    return train_domain_extractor(small, steps=25, seed=0)


# ------------------------------------------------------------------ intensity KL


def test_kl_of_a_set_with_itself_is_zero_per_named_channel(real):
    kl = intensity_kl(real, real)
    assert list(kl["per_channel"]) == ["R", "G", "B"]
    assert all(abs(v) < 1e-6 for v in kl["per_channel"].values()) and abs(kl["mean"]) < 1e-6
    assert "KL(P_real||P_synth)" in kl["definition"] and "eps=1e-06" in kl["definition"]
    gray = _with_images(real, real.images[..., 1:2])
    assert list(intensity_kl(gray, gray)["per_channel"]) == ["gray"]


def test_kl_grows_with_colour_shift_and_noise(real):
    shifted = real.images.astype(int)
    shifted[..., 0] += 25  # red only
    kl_shift = intensity_kl(real, _with_images(real, np.clip(shifted, 0, 255).astype(np.uint8)))
    assert kl_shift["per_channel"]["R"] > 0.1
    assert kl_shift["per_channel"]["G"] < 1e-6  # untouched channels stay at zero
    low = intensity_kl(real, _with_images(real, _noised(real.images, 8)))["mean"]
    high = intensity_kl(real, _with_images(real, _noised(real.images, 32)))["mean"]
    assert 0 < low < high


def _blurred(images: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(images.astype(float), size=(1, 3, 3, 1)).astype(np.uint8)


def test_sharpness_falls_with_blur_and_rises_with_noise(real):
    same = compare_sharpness(real, real)
    assert same["ratio"] == pytest.approx(1.0) and same["real_median"] > 0
    assert "variance of the Laplacian" in same["definition"]
    blurred = compare_sharpness(real, _with_images(real, _blurred(real.images)))
    noisy = compare_sharpness(real, _with_images(real, _noised(real.images, 8)))
    assert blurred["ratio"] < 0.7 < 1.3 < noisy["ratio"]
    known = compare_sharpness(real, real, real_median=same["real_median"] / 2)
    assert known["ratio"] == pytest.approx(2.0)  # a given real median is used as it is
    q1, q3 = blurred["synth_quartiles"]
    assert q1 <= blurred["synth_median"] <= q3


def test_sharpness_ignores_the_black_surround_and_checks_its_input(real):
    # Brightening everything outside the field of view changes nothing inside it.
    images = real.images.copy()
    images[real.fov == 0] = 255
    assert np.allclose(sharpness(images, real.fov), sharpness(real.images, real.fov))
    with pytest.raises(UserError, match="32 px"):
        compare_sharpness(real, phantom_dataset(2, 32, seed=0))
    empty = np.zeros_like(real.fov[:1])
    with pytest.raises(UserError, match="field of view is empty"):
        sharpness(real.images[:1], empty)


# ------------------------------------------------------------------ like-for-like references


@pytest.mark.parametrize("n_real, m_synth", [(15, 200), (15, 3), (16, 8), (2, 1)])
def test_matched_splits_have_the_stated_sizes_and_are_seeded(n_real, m_synth):
    plan = matched_splits(n_real, m_synth, splits=20, seed=0)
    assert len(plan) == 20
    for split in plan:
        a, b, s = split
        assert len(a) == (n_real + 1) // 2  # A: ceil(N/2)
        assert len(b) == len(s) == min(n_real // 2, m_synth)  # same size on both sides
        assert len(s) <= n_real // 2  # never more synthetic images than B holds
        assert not set(a) & set(b) and set(a) | set(b) <= set(range(n_real))
        assert len(set(s)) == len(s) and set(s) <= set(range(m_synth))  # no repeats
    again = matched_splits(n_real, m_synth, splits=20, seed=0)
    assert all(
        np.array_equal(x, y)
        for p, q in zip(plan, again, strict=True)
        for x, y in zip(p, q, strict=True)
    )
    if n_real > 2:
        other = matched_splits(n_real, m_synth, splits=20, seed=1)
        assert any(not np.array_equal(p.a, q.a) for p, q in zip(plan, other, strict=True))
    # Every synthetic set of an evaluation is set against the same A's, whatever its size.
    assert all(
        np.array_equal(p.a, q.a) for p, q in zip(plan, matched_splits(n_real, 7, 20), strict=True)
    )


def test_image_histograms_sum_to_the_pooled_histogram(real):
    counts = image_histograms(real.images, real.fov)
    pooled = counts[[1, 4, 6]].sum(axis=0)
    expected = intensity_histograms(real.images[[1, 4, 6]], real.fov[[1, 4, 6]])
    assert np.allclose(pooled / pooled.sum(axis=1, keepdims=True), expected)


def _matched_kl(real: PreparedDataset, synth: PreparedDataset) -> dict:
    result = matched_fidelity(profile_set(real), profile_set(synth), ["R", "G", "B"], splits=30)
    assert result["sizes"] == {
        "n_real": 16,
        "m_synthetic": len(synth),
        "a": 8,
        "b": 8,
        "compared": 8,
        "splits": 30,
        "seed": 0,
    }
    return result["matched"]["kl"]["mean"]


def test_a_resample_of_real_images_lies_within_the_real_vs_real_spread(real):
    drawn = np.random.default_rng(3).integers(0, len(real), 40)
    kl = _matched_kl(real, real.subset(list(drawn)))
    assert kl["verdict"] == WITHIN
    assert kl["real_vs_real"]["p5"] <= kl["synthetic"]["median"] <= kl["real_vs_real"]["p95"]
    assert kl["share_of_splits_synthetic_further"] < 0.6
    assert len(kl["per_split"]["synthetic"]) == len(kl["per_split"]["real_vs_real"]) == 30


def test_shifted_intensities_lie_outside_the_real_vs_real_spread(real):
    shifted = np.clip(real.images.astype(int) + 60, 0, 255).astype(np.uint8)
    kl = _matched_kl(real, _with_images(real, shifted))
    assert kl["verdict"] == OUTSIDE
    assert kl["share_of_splits_synthetic_further"] > 0.95
    same = matched_fidelity(profile_set(real), profile_set(real), ["R", "G", "B"], splits=5)
    again = matched_fidelity(profile_set(real), profile_set(real), ["R", "G", "B"], splits=5)
    assert same == again  # seeded


def test_summaries_read_each_metric_in_its_own_direction():
    low, high = [0.2] * 10, [0.9] * 10
    # KL: larger is further; precision: smaller is further; sharpness: away from 1 either way.
    assert summarise_splits(high, low, DISTANCE_FROM_IDEAL["kl"][1])[
        "share_of_splits_synthetic_further"
    ] == pytest.approx(1.0)
    precision = summarise_splits(low, high, DISTANCE_FROM_IDEAL["precision"][1])
    assert precision["share_of_splits_synthetic_further"] == 1.0
    assert precision["verdict"] == OUTSIDE
    ratio = DISTANCE_FROM_IDEAL["sharpness"][1]
    assert summarise_splits([0.5] * 3, [1.5] * 3, ratio)["share_of_splits_synthetic_further"] == 1
    nan = summarise_splits([float("nan")] * 3, [1.0] * 3, ratio)
    assert nan["verdict"].startswith("not computed") and np.isnan(nan["synthetic"]["median"])


def test_evaluate_fidelity_gives_every_figure_its_reference(small, extractor):
    real, synth = small.subset(list(range(10))), phantom_dataset(12, 32, seed=3)
    held_out = phantom_dataset(3, 32, seed=4)
    result = evaluate_fidelity(real, {"s": synth}, extractor, splits=6, mask_reference=held_out)
    assert result["reference"]["a"] == result["reference"]["b"] == 5
    assert "without replacement" in result["reference"]["definition"]
    assert result["extractor_training_data"] == "16 pairs"
    s = result["sets"]["s"]
    assert s["sizes"]["compared"] == 5 and s["sizes"]["m_synthetic"] == 12
    assert set(s["matched"]) == {"kl", "sharpness", "vessels", "features"}
    assert set(s["matched"]["features"]) == {
        "fid",
        "kid_mean",
        "precision",
        "recall",
        "density",
        "coverage",
    }
    for family in s["matched"].values():
        for summary in family.values():
            assert set(summary) >= {"synthetic", "real_vs_real", "verdict"}
            assert 0 <= summary["share_of_splits_synthetic_further"] <= 1
    assert np.isfinite(s["matched"]["features"]["fid"]["real_vs_real"]["median"])
    assert "no real-vs-real reference" in s["whole_sets"]["note"]
    assert "held_out_to_train" in s["mask_nearest_neighbours"]  # the memorisation reference
    assert "kl_real_floor" not in result and "real (held-out)" not in result["sets"]


def test_default_extractor_never_sees_the_real_set(small):
    phantoms = pick_extractor(32, steps=2, phantoms=4)
    assert phantoms.name == (
        "synthmed-domain-encoder(vessel-seg on 4 procedural phantoms, 2 steps, seed 0)"
    )
    assert phantoms.training_data == "4 procedural phantoms"
    given = pick_extractor(32, extractor_data=small, extractor_data_label="eyes/", steps=2)
    assert "on eyes/ (16 pairs)" in given.name and given.training_data == "eyes/ (16 pairs)"


# ------------------------------------------------------------------ vessel statistics


def _drawn_masks() -> tuple[np.ndarray, np.ndarray]:
    """A plus sign 5 px wide, and two separate horizontal lines 3 px wide, 40 px long."""
    masks = np.zeros((2, 64, 64), np.uint8)
    masks[0, 30:35, 8:56] = 1
    masks[0, 8:56, 30:35] = 1
    masks[1, 15:18, 12:52] = 1
    masks[1, 45:48, 12:52] = 1
    masks[1, 0:3, 0:3] = 1  # outside the field of view below: must be ignored
    fov = np.ones_like(masks)
    fov[1, :5, :5] = 0
    return masks, fov


def test_vessel_statistics_of_drawn_shapes():
    masks, fov = _drawn_masks()
    s = vessel_statistics(masks, fov)
    assert s["branch_points"].tolist() == [1, 0]
    assert s["end_points"].tolist() == [4, 4]
    assert s["components"].tolist() == [1, 2]
    # Widths read as pixels at 512 (x8 at 64 px): 5 px -> 40, 3 px -> 24.
    assert s["mean_width"] == pytest.approx([40, 24], rel=0.1)
    # Each 40 px line loses about its half-width at each end to the skeleton.
    assert 2 * 36 / 64 <= s["skeleton_length"][1] <= 2 * 40 / 64
    assert s["vessel_fraction"][1] == pytest.approx(2 * 3 * 40 / fov[1].sum())
    assert s["disc_lateralisation"].tolist() == [0, 0]  # both drawn symmetric about the middle


def test_disc_lateralisation_sees_where_the_thick_vessels_gather():
    """A thick trunk at one side and thin vessels across: lateralised towards the trunk,
    the same mirrored; a mask without vessels scores 0."""
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 4:14] = 1
    mask[10, 4:60] = mask[50, 4:60] = 1
    masks = np.stack([mask, mask[:, ::-1], np.zeros_like(mask)])
    lat = vessel_statistics(masks, np.ones_like(masks))["disc_lateralisation"]
    assert lat[0] > 0.8 and lat[1] == pytest.approx(lat[0]) and lat[2] == 0
    left, right = disc_side_weights(mask.astype(bool))
    assert left > 10 * right


def test_compare_vessel_statistics():
    masks, fov = _drawn_masks()
    stats = vessel_statistics(masks, fov)
    same = compare_vessel_statistics(stats, stats)
    assert all(v["relative_difference_of_means"] == 0 for v in same.values())
    assert all(v["wasserstein"] == 0 for v in same.values())
    wider = vessel_statistics(np.stack([masks[0], np.maximum(masks[0], np.roll(masks[0], 2))]), fov)
    diff = compare_vessel_statistics(stats, wider)["mean_width"]
    assert diff["relative_difference_of_means"] > 0 and diff["wasserstein"] > 0
    probs, edges = width_histograms(masks[:1], fov[:1], bins=12, max_width=48)
    assert probs.sum() == pytest.approx(1) and len(edges) == 13
    assert edges[probs.argmax()] <= 40 <= edges[probs.argmax() + 1]


# ------------------------------------------------------------------ feature metrics


def test_feature_metrics_self_and_noise(small, extractor):
    images = small.images
    same = feature_metrics(images, images, extractor)
    low = feature_metrics(images, _noised(images, 10), extractor)
    high = feature_metrics(images, _noised(images, 40), extractor)
    assert same["extractor"] == "synthmed-domain-encoder(vessel-seg on 16 pairs, 25 steps, seed 0)"
    assert same["n_real"] == same["n_synth"] == 16 and same["feature_dim"] == 256
    assert abs(same["fid"]) < 1e-3 * high["fid"]
    assert same["fid"] < low["fid"] < high["fid"]
    assert abs(same["kid_mean"]) < 0.05 * high["kid_mean"]
    assert same["kid_mean"] < low["kid_mean"] < high["kid_mean"]
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.2)
    assert high["coverage"] < 1.0


def test_feature_metrics_small_sets_and_gray_input(small, extractor):
    gray = small.images[..., 1:2]  # repeated to the extractor's 3 channels
    m = feature_metrics(gray[:4], gray[4:10], extractor, kid_subset_size=100)
    assert m["kid_subset_size"] == 4 and m["k"] == 3 and np.isfinite(m["fid"])


def test_fid_and_kid_agree_with_torchmetrics():
    import warnings

    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.randn(20, 8, generator=g, dtype=torch.float64)
    synth = torch.randn(15, 8, generator=g, dtype=torch.float64) * 1.3 + 0.2
    identity = nn.Identity()
    identity.num_features = 8
    fid = FrechetInceptionDistance(feature=identity)
    fid.update(real, real=True)
    fid.update(synth, real=False)
    assert frechet_distance(real, synth) == pytest.approx(float(fid.compute()), rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=identity, subset_size=10)
    kid.update(real, real=True)
    kid.update(synth, real=False)
    torch.manual_seed(3)
    expected = [float(x) for x in kid.compute()]
    assert kernel_inception_distance(real, synth, 10, seed=3) == pytest.approx(expected, rel=1e-6)
    # 8 vs 7 samples of 256-d features: rank-deficient covariances, still a real number.
    tiny = frechet_distance(torch.randn(8, 256, generator=g), torch.randn(7, 256, generator=g))
    assert np.isfinite(tiny) and tiny > 0
    assert np.isnan(frechet_distance(real[:1], synth))


def test_domain_extractor_is_deterministic(small):
    x = torch.from_numpy(small.images[:4]).permute(0, 3, 1, 2)
    a = train_domain_extractor(small, steps=3, seed=7)
    b = train_domain_extractor(small, steps=3, seed=7)
    c = train_domain_extractor(small, steps=3, seed=8)
    assert torch.equal(a(x), b(x))
    assert not torch.allclose(a(x), c(x))
    assert a(x).shape == (4, 256)


# ------------------------------------------------------------------ Inception loading


def test_read_state_dict_formats(tmp_path):
    from safetensors.torch import save_file

    state = {"w": torch.randn(3, 2), "b": torch.zeros(3)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = read_state_dict(tmp_path / name)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save({"w": torch.zeros(1), "fn": np.random.default_rng}, tmp_path / "code.pth")
    with pytest.raises(UserError, match="cannot read weights"):
        read_state_dict(tmp_path / "code.pth")  # weights_only refuses to unpickle code
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(UserError, match=r"\.safetensors"):
        read_state_dict(tmp_path / "w.bin")


def test_load_inception_names_the_missing_package(monkeypatch, tmp_path):
    monkeypatch.setattr("torchmetrics.utilities.imports._TORCH_FIDELITY_AVAILABLE", False)
    with pytest.raises(UserError, match="torch-fidelity"):
        load_inception(tmp_path / "inception.safetensors")


def _fidelity_available() -> bool:
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    return bool(_TORCH_FIDELITY_AVAILABLE)


@pytest.mark.skipif(
    not _fidelity_available(),
    reason="torch-fidelity (InceptionV3 architecture) not installed: `pip install torch-fidelity` "
    "needs a torchvision built for this torch",
)
def test_load_inception_from_random_weights(monkeypatch, tmp_path):
    import torch_fidelity.feature_extractor_inceptionv3 as tfi
    from safetensors.torch import save_file

    with monkeypatch.context() as m:  # random init: skip the download and the weight loading
        m.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None)
        torch.manual_seed(0)
        state = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    state = {k: v.contiguous() for k, v in state.items()}
    save_file(state, tmp_path / "inception.safetensors")
    torch.save(state, tmp_path / "inception.pth")
    images = torch.from_numpy(phantom_dataset(2, 64, seed=0).images).permute(0, 3, 1, 2)
    net = load_inception(tmp_path / "inception.safetensors")
    assert torch.equal(net.net.fc.weight, state["fc.weight"])  # our weights, not others
    features = net(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert torch.allclose(load_inception(tmp_path / "inception.pth")(images), features)
    assert net(images[:, :1]).shape == (2, 2048)  # gray repeated to RGB
    assert "inception" in net.name
    with pytest.raises(UserError, match="not torch-fidelity InceptionV3"):
        save_file({"fc.weight": torch.zeros(2, 2)}, tmp_path / "bad.safetensors")
        load_inception(tmp_path / "bad.safetensors")


def test_the_dataset_page_summary_reads_the_matched_medians():
    """The repository's dataset page shows each set's medians over the matched splits and the
    real-vs-real KL at the same sizes; older metrics files keep their whole-set numbers."""
    from synthmed.repository.summary import metrics_summary

    def spread(median: float) -> dict:
        return {"median": median, "p5": median / 2, "p95": median * 2}

    def summary(syn: float, ref: float) -> dict:
        return {"synthetic": spread(syn), "real_vs_real": spread(ref)}

    matched = {
        "kl": {"mean": summary(0.02, 0.01)},
        "features": {"fid": summary(40.0, 30.0), "kid_mean": summary(0.5, 0.1)},
    }
    new = metrics_summary({"fidelity": {"sets": {"dual": {"count": 200, "matched": matched}}}})
    assert new["kl_floor"] == 0.01
    assert new["fidelity"] == [{"set": "dual", "count": 200, "kl": 0.02, "fid": 40.0, "kid": 0.5}]
    old = {"kl_real_floor": {"mean": 0.2}, "sets": {"dual": {"count": 9, "kl": {"mean": 0.3}}}}
    assert metrics_summary({"fidelity": old})["kl_floor"] == 0.2
    # the page names the feature network behind FID / KID (issue 31)
    named = metrics_summary({"fidelity": {"extractor": "enc(phantoms)", "sets": {}}})
    assert named["extractor"] == "enc(phantoms)" and new["extractor"] is None
