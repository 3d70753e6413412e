"""Options common to every training run (the loop, not the networks)."""

from __future__ import annotations

from dataclasses import dataclass


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
