"""The real-vs-synthetic mask critic (issue 30): it must tell a wrong generator apart, and
read near chance for masks of the same distribution."""

import numpy as np
import pytest

from synthmed.data.sources import phantom_dataset
from synthmed.errors import UserError
from synthmed.evaluation.critic import CriticConfig, mask_critic

QUICK = CriticConfig(folds=4, steps=60, size=32)


@pytest.fixture(scope="module")
def phantoms():
    return phantom_dataset(20, 32, seed=0), phantom_dataset(20, 32, seed=1)


def test_critic_tells_blobs_from_vessel_trees(phantoms) -> None:
    real, _ = phantoms
    rng = np.random.default_rng(0)
    blobs = (rng.random(real.masks.shape) > 0.85).astype(np.uint8)  # no tree at all
    result = mask_critic((real.masks, real.fov), (blobs, real.fov), QUICK)
    assert result["auc"] > 0.9 and result["interval"][0] > 0.75
    assert "cross-validation" in result["definition"]


def test_critic_reads_near_chance_on_the_same_distribution(phantoms) -> None:
    real, other = phantoms
    same = mask_critic((real.masks, real.fov), (other.masks, other.fov), QUICK)
    assert same["interval"][0] < 0.5 < same["interval"][1] or same["auc"] < 0.75
    again = mask_critic((real.masks, real.fov), (other.masks, other.fov), QUICK)
    assert again == same  # seeded


def test_critic_needs_enough_masks(phantoms) -> None:
    real, _ = phantoms
    with pytest.raises(UserError, match="5 folds need at least 5"):
        mask_critic((real.masks, real.fov), (real.masks[:3], real.fov[:3]))
