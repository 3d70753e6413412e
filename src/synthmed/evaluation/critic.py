"""A real-vs-synthetic mask critic: can a small classifier tell generated masks from real ones?

A classifier two-sample test (Lopez-Paz & Oquab, 2017) for Stage I. Summary statistics of the
vessel tree (vessels.py) check what someone thought to measure; the critic checks everything a
small CNN can see at ``size`` px: loops, missing arcades, a disc where no vessels meet. Its
score is the AUC on masks it did not train on, by k-fold cross-validation over both sets:
0.5 means it cannot tell them apart, 1 that it always can. With 15-25 real masks the interval
is wide, and a weak critic (few steps) reads near 0.5 for any generator: compare generators
with the same settings, and check the settings on a control that must score high (tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import Classifier

from synthmed.device import pick_device
from synthmed.errors import UserError
from synthmed.evaluation.protocol import roc_auc

CRITIC_DEFINITION = (
    "AUC of a small CNN (MONAI Classifier, instance norm) telling generated masks from real "
    "ones, each mask scored by the critic of the fold that left it out ({folds}-fold "
    "cross-validation over both sets, {steps} steps per fold, masks inside the field of view "
    "at {size} px, random flips for both classes). 0.5: indistinguishable; 1: always told "
    "apart. Interval: bootstrap over the scored masks ({draws} draws, real and generated "
    "resampled separately)."
)


def _as_input(masks: np.ndarray, fov: np.ndarray, size: int) -> torch.Tensor:
    """(N, 1, size, size) float masks inside the FOV, area-downsampled (soft at edges)."""
    x = torch.from_numpy((masks.astype(bool) & fov.astype(bool)).astype(np.float32))[:, None]
    return F.interpolate(x, size=(size, size), mode="area")


def _folds(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), k)


def _train_and_score(
    train_real: torch.Tensor,
    train_fake: torch.Tensor,
    test: torch.Tensor,
    steps: int,
    seed: int,
    device: torch.device,
    batch: int = 8,
) -> np.ndarray:
    """Train one critic (half of every batch real, half generated); logits of ``test``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Classifier(tuple(test.shape[1:]), 1, (8, 16, 32, 64), (2, 2, 2, 2)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    labels = torch.cat([torch.zeros(batch // 2), torch.ones(batch // 2)])[:, None].to(device)
    net.train()
    for _ in range(steps):
        r = train_real[torch.randint(len(train_real), (batch // 2,), generator=gen)]
        f = train_fake[torch.randint(len(train_fake), (batch // 2,), generator=gen)]
        x = torch.cat([r, f])
        flips = torch.rand(2, generator=gen) < 0.5
        x = x.flip(-1) if flips[0] else x
        x = x.flip(-2) if flips[1] else x
        loss = F.binary_cross_entropy_with_logits(net(x.to(device)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return net(test.to(device))[:, 0].cpu().numpy()


@dataclass
class CriticConfig:
    """How the mask critic is trained and scored (the defaults suit 15-200 masks on a CPU)."""

    folds: int = 5  # k of the cross-validation (at most the smaller set's size)
    steps: int = 300  # optimiser steps of each fold's critic
    size: int = 128  # side the masks are compared at
    seed: int = 0  # fixes folds, initialisation and batches
    draws: int = 2000  # bootstrap draws of the interval


def mask_critic(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    config: CriticConfig | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Cross-validated AUC of a critic telling the synthetic masks from the real ones.

    Args:
        real, synthetic: (masks, fov), each (N, H, W), nonzero = vessel / inside; the sets
            may differ in size and resolution (both are compared at ``config.size``).
        config: folds, steps, size, seed and bootstrap draws (:class:`CriticConfig`).

    Returns ``auc``, ``interval`` (95 %), ``n_real``, ``n_synthetic``, the settings and
    ``definition``. Deterministic given the seed on the CPU.
    """
    c = config or CriticConfig()
    folds, steps, size, seed, draws = c.folds, c.steps, c.size, c.seed, c.draws
    (real_masks, real_fov), (synth_masks, synth_fov) = real, synthetic
    n_real, n_fake = len(real_masks), len(synth_masks)
    if folds < 2 or min(n_real, n_fake) < folds:
        raise UserError(
            f"mask critic: {folds} folds need at least {max(folds, 2)} real and generated "
            f"masks (have {n_real} and {n_fake})"
        )
    device = pick_device(str(device))
    real, fake = _as_input(real_masks, real_fov, size), _as_input(synth_masks, synth_fov, size)
    rng = np.random.default_rng(seed)
    real_folds, fake_folds = _folds(n_real, folds, rng), _folds(n_fake, folds, rng)
    real_scores, fake_scores = np.empty(n_real), np.empty(n_fake)
    for k, (rf, ff) in enumerate(zip(real_folds, fake_folds, strict=True)):
        keep_r = np.setdiff1d(np.arange(n_real), rf)
        keep_f = np.setdiff1d(np.arange(n_fake), ff)
        test = torch.cat([real[rf], fake[ff]])
        scores = _train_and_score(real[keep_r], fake[keep_f], test, steps, seed + k, device)
        real_scores[rf], fake_scores[ff] = scores[: len(rf)], scores[len(rf) :]
    labels = np.r_[np.zeros(n_real), np.ones(n_fake)]
    auc = roc_auc(np.r_[real_scores, fake_scores], labels)
    boot = []
    for _ in range(draws):
        r = real_scores[rng.integers(0, n_real, n_real)]
        f = fake_scores[rng.integers(0, n_fake, n_fake)]
        boot.append(roc_auc(np.r_[r, f], labels))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    definition = CRITIC_DEFINITION.format(folds=folds, steps=steps, size=size, draws=draws)
    return {
        "auc": float(auc),
        "interval": [float(lo), float(hi)],
        "n_real": n_real,
        "n_synthetic": n_fake,
        "folds": folds,
        "steps": steps,
        "size": size,
        "seed": seed,
        "definition": definition,
    }
