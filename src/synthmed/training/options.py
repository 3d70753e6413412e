"""Options of a training run: the loop's, common to every stage (:class:`TrainOptions`), and
each stage's loss weights and schedules (:class:`GeometryStageOptions`,
:class:`TextureStageOptions`: what a run's ``options.json`` records under "stage")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


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
    # DiffAugment policy for the discriminators, and "dihedral" orientations of the real
    # samples (training/augment.py); "microscopy" and "auto" are resolved when a run starts
    augment: str = ""
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


@dataclass
class TextureStageOptions:
    """Stage II's and the refiner's loss weights, and the refiner's corrupted coarse masks.

    Each applies to one target only (:meth:`recorded` says which); a weight of 0 is off.
    """

    l1_weight: float = 100.0  # lambda of the L1 term (pix2pix: 100)
    fm_weight: float = 0.0  # discriminator feature-matching loss (pix2pixHD: 10)
    # Stage II only: weight of the vessel-judge loss (training/judge.py: a segmenter trained
    # on the real pairs must find the mask's vessels in the generated image), and that
    # segmenter's training steps (0 = the evaluation's "cpu" budget).
    judge_weight: float = 0.0
    judge_steps: int = 0
    # Stage II with a style code (TextureConfig.style_dim): weight of the KL term pulling the
    # encoded codes toward N(0, 1) (BicycleGAN: 0.01). Sampling draws from a Gaussian fitted
    # to the training images' codes, since the KL term alone does not make them N(0, 1).
    kl_weight: float = 0.01
    # Refiner only: std of Gaussian noise added to the coarse masks it is trained on, so that
    # it cleans up the DCGAN's imperfect ones rather than trusting every grey level.
    coarse_noise: float = 0.0
    # Refiner only: weight of a Dice + clDice loss (MONAI's SoftDiceclDiceLoss) between the
    # refined and the real mask. L1 alone makes uncertain pixels take their median,
    # background, so thin vessels break into fragments; clDice rewards an unbroken centreline.
    topology_weight: float = 0.0
    # Refiner only: probabilities of a cut-out 2 x 2 block and of a faint speck in the real
    # coarse masks it is trained on (models.refiner.break_coarse), so that it learns to mend
    # the DCGAN's broken vessels and stray dots rather than draw them as fragments.
    coarse_gaps: float = 0.0
    coarse_specks: float = 0.0
    # Refiner only: a trained geometry run (or the DCGAN itself, as the benchmark passes one)
    # whose coarse masks the refiner also refines while training, judged by an unconditional
    # PatchGAN against the real masks with adapt_weight. The paired losses only teach it the
    # real coarse masks; this teaches it to make masks that look real from the DCGAN's own,
    # lattice and breaks included (unpaired, as in CycleGAN-style domain adaptation).
    adapt_geometry: str | Path | nn.Module | None = None
    adapt_weight: float = 0.0

    def recorded(self, refine: bool, style: bool) -> dict[str, Any]:
        """What options.json holds under "stage": the options that apply to a refiner
        (``refine``) or a Stage II run (with a style code: ``style``)."""
        names = ["l1_weight", "fm_weight"]
        if refine:
            names += ["coarse_noise", "topology_weight", "coarse_gaps", "coarse_specks"]
            if self.adapt_weight:
                names += ["adapt_geometry", "adapt_weight"]
        else:
            names += ["judge_weight", "judge_steps"] + (["kl_weight"] if style else [])
        return {name: getattr(self, name) for name in names}
