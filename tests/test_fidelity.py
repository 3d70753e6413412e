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
    compare_sharpness,
    intensity_kl,
    real_floor_kl,
    sharpness,
)
from synthmed.evaluation.vessels import (
    compare_vessel_statistics,
    disc_side_weights,
    vessel_statistics,
    width_histograms,
)


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


def test_real_floor_is_small_positive_and_seeded(real):
    floor = real_floor_kl(real, repeats=5, seed=0)
    assert 0 < floor["mean"] < 0.05 and floor["std"] >= 0 and floor["repeats"] == 5
    assert list(floor["per_channel_mean"]) == ["R", "G", "B"]
    assert real_floor_kl(real, repeats=5, seed=0) == floor
    noised = intensity_kl(real, _with_images(real, _noised(real.images, 32)))["mean"]
    assert noised > 10 * floor["mean"]


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
