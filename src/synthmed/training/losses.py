"""Adversarial losses and the R1 regulariser shared by every stage.

* "ns": the non-saturating loss of the original GAN (DCGAN, pix2pix).
* "hinge": the hinge loss of SAGAN / BigGAN; D's loss stops at a margin, so it does not keep
  pushing logits of easy samples.
* "lsgan": least squares (Mao et al. 2017; pix2pixHD); gradients grow with the distance to
  the target instead of vanishing.

R1 (Mescheder et al. 2018) penalises the gradient of D's output on real samples, which keeps
a discriminator trained on a handful of images from turning into a lookup table.

The mode-seeking term (MSGAN, Mao et al. 2019) is a generator loss against mode collapse:
it grows when two latent codes far apart give samples close together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ns", "hinge", "lsgan")
R1_EVERY = 4  # lazy regularisation: the R1 term is computed every 4th discriminator step


def check_loss(name: str) -> str:
    """Return ``name`` when it is a known loss, else raise ValueError."""
    if name not in LOSSES:
        raise ValueError(f"loss {name!r}: use one of {', '.join(LOSSES)}")
    return name


def d_loss(real: torch.Tensor, fake: torch.Tensor, loss: str) -> torch.Tensor:
    """The discriminator's loss on logits of real and of fake samples (any shape)."""
    if loss == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if loss == "lsgan":
        return (real - 1).square().mean() + fake.square().mean()
    raise ValueError(f"loss {loss!r}: use one of {', '.join(LOSSES)}")


def g_loss(fake: torch.Tensor, loss: str) -> torch.Tensor:
    """The generator's loss on the discriminator's logits of its samples."""
    if loss == "ns":
        return F.softplus(-fake).mean()
    if loss == "hinge":
        return -fake.mean()
    if loss == "lsgan":
        return (fake - 1).square().mean()
    raise ValueError(f"loss {loss!r}: use one of {', '.join(LOSSES)}")


def r1_penalty(real_input: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||d D(x) / d x||^2 at real ``x`` (needs requires_grad on x)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_input, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's term for a batch whose first and second halves are pairs of samples:
    1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|); lower when the samples differ more.

    ``fake`` is (B, ...) with ``z`` its (B, Z) codes; an odd last sample is left out."""
    half = fake.shape[0] // 2
    if half == 0:
        raise ValueError("the mode-seeking term needs at least two samples")
    image_gap = (fake[:half] - fake[half : 2 * half]).abs().mean()
    code_gap = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1 / (image_gap / code_gap + eps)
