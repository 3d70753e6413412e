"""What Stage II is conditioned on, shared by its training and by sampling.

Kept with the networks rather than in training/ so that loading a pipeline to sample never
imports the training code (its losses, MONAI's clDice, the vessel judge).
"""

from __future__ import annotations

import torch


def condition(masks: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """The generator's input: cat(vessel mask, field of view) as floats in [-1, 1]."""
    return torch.cat([masks, fov], 1).float() * 2 - 1
