"""Options of a training run: the loop's, common to every stage (:class:`TrainOptions`), and
Stage I's loss weights and schedules (:class:`GeometryStageOptions`: what a run's
``options.json`` records under "stage")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainOptions:
    """How long and how to train; the networks' shapes live in their own configs."""

    steps: int = 2000  # optimisation steps (each sees batch_size images)
    batch_size: int = 8  # images per step
    lr: float = 2e-4  # Adam learning rate (DCGAN and pix2pix)
    beta1: float = 0.5  # Adam beta1 (DCGAN and pix2pix)
    seed: int = 0  # seeds initialisation, batches, noise and dropout
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 where the hardware has it) | fp32 | bf16
    log_every: int = 10  # steps between lines of stats.jsonl
    grid_every: int = 200  # steps between sample grids (grids/fakesNNNNNN.png)
    checkpoint_every: int = 200  # steps between checkpoints (and at the end)
    augment: str = ""  # DiffAugment policy for the discriminators (training/augment.py)
    ema: float = 0.0  # decay of the generator's weight average used for sampling; 0 = off
    loss: str = "ns"  # adversarial loss: ns | hinge | lsgan (training/losses.py)
    r1: float = 0.0  # R1 penalty weight (gamma) on the discriminator; 0 = off
    crop: int = 0  # Stage II / refiner: train on random crops of this side; 0 = whole images
    flip: bool = True  # random horizontal flips of real pairs (left/right eyes are mirrors)


@dataclass
class GeometryStageOptions:
    """Stage I's discriminator noise and loss weights (also the single-GAN baseline's).

    Real masks are exactly binary while the generator's tanh output is continuous, so the
    discriminator's inputs are blurred and get instance noise (training/geometry.py).
    """

    # Std of the noise added to the discriminator's inputs at step 0, decreasing linearly to
    # 0 at noise_fade_steps (0 = the plain DCGAN recipe).
    instance_noise: float = 0.3
    blur: bool = True  # blur the discriminator's inputs with a 3x3 binomial kernel
    # When the noise reaches 0; None = the run's steps. Recorded with the run, so a resumed
    # run keeps its schedule even when --steps grows.
    noise_fade_steps: int | None = None
    mode_seeking: float = 0.0  # weight of MSGAN's mode-seeking term (0 = off)

    def recorded(self, steps: int) -> dict[str, Any]:
        """What options.json holds under "stage" for a run of ``steps`` steps: the fade
        resolved, so that a resumed run keeps it."""
        fade = self.noise_fade_steps or steps
        record = {"instance_noise": self.instance_noise, "blur": self.blur}
        return record | {"noise_fade_steps": fade, "mode_seeking": self.mode_seeking}
