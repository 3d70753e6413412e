"""Tests for the procedural fundus phantom (synthmed.data.phantom)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from synthmed.data.phantom import (
    FOV_RADIUS,
    RETINA_MEAN_RGB,
    RETINA_STD_RGB,
    PhantomSample,
    phantom_samples,
    render_phantom,
    retina_colour_statistics,
)


@pytest.fixture(scope="module")
def samples_256() -> list[PhantomSample]:
    return [render_phantom(seed, 256) for seed in range(4)]


def test_deterministic_by_seed() -> None:
    a, b, c = render_phantom(3, 128), render_phantom(3, 128), render_phantom(4, 128)
    for field in ("image", "vessels", "fov"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.image, c.image)
    overlap = (a.vessels & c.vessels).sum() / (a.vessels | c.vessels).sum()
    assert overlap < 0.5  # a different tree, not a jittered copy


@pytest.mark.parametrize("res", [32, 64, 100, 256])
def test_shapes_dtypes_and_fov(res: int) -> None:
    s = render_phantom(0, res)
    assert s.image.shape == (res, res, 3) and s.image.dtype == np.uint8
    assert s.vessels.shape == s.fov.shape == (res, res)
    assert s.vessels.dtype == s.fov.dtype == np.bool_
    # FOV is the centred inscribed disc of diameter ~0.95 res.
    c = (np.arange(res) + 0.5) / res
    r = np.hypot(c[None, :] - 0.5, c[:, None] - 0.5)
    assert s.fov[r < FOV_RADIUS - 1.5 / res].all() and not s.fov[r > FOV_RADIUS + 1.5 / res].any()
    np.testing.assert_array_equal(s.fov, s.fov[::-1])
    np.testing.assert_array_equal(s.fov, s.fov.T)
    assert not (s.vessels & ~s.fov).any()
    assert (s.image[~s.fov] == 0).all()
    assert s.image[s.fov].mean() > 40  # the retina itself is not black
    assert s.vessels.any()  # main arcades survive even at 32 px


def test_same_anatomy_at_every_resolution() -> None:
    hi, lo = render_phantom(5, 256), render_phantom(5, 128)
    pooled = hi.vessels.reshape(128, 2, 128, 2).any(axis=(1, 3))
    assert (pooled & lo.vessels).sum() / lo.vessels.sum() > 0.9


def test_vessel_fraction(samples_256: list[PhantomSample]) -> None:
    for s in samples_256:
        assert 0.06 < s.vessels[s.fov].mean() < 0.2


def test_tree_is_mostly_connected(samples_256: list[PhantomSample]) -> None:
    for s in samples_256:
        labels, _ = ndimage.label(s.vessels, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert sizes.max() >= 0.7 * sizes.sum()


def test_vessels_darker_in_green(samples_256: list[PhantomSample]) -> None:
    for s in samples_256:
        green = s.image[..., 1].astype(float)
        # Local background: a thin ring around the vessels, so the disc and vignetting cancel out.
        ring = ndimage.binary_dilation(s.vessels, iterations=3) & ~s.vessels & s.fov
        assert green[s.vessels].mean() < 0.9 * green[ring].mean()


def test_colour_calibration(samples_256: list[PhantomSample]) -> None:
    stats = retina_colour_statistics()
    np.testing.assert_allclose(stats["mean"], RETINA_MEAN_RGB, atol=1.0)
    np.testing.assert_allclose(stats["std"], RETINA_STD_RGB, atol=1.0)
    for s in samples_256:
        mean = s.image[s.fov].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, stats["mean"], rtol=0.15)


def test_phantom_samples() -> None:
    three = phantom_samples(3, 48, seed=7)
    two = phantom_samples(2, 48, seed=7)
    assert len(three) == 3
    np.testing.assert_array_equal(three[1].image, two[1].image)  # independent of n
    assert not np.array_equal(three[0].image, three[1].image)
    assert not np.array_equal(three[0].image, phantom_samples(1, 48, seed=8)[0].image)


def test_render_time_is_reasonable() -> None:
    # Loose bound (target ~0.2 s) so a busy shared CPU does not make this flaky.
    best = min(_timed(lambda: render_phantom(11, 512)) for _ in range(2))
    assert best < 1.5


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.mark.parametrize("res", [16, 2048])
def test_rejects_unsupported_resolution(res: int) -> None:
    with pytest.raises(ValueError):
        render_phantom(0, res)
