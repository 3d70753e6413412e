"""A frozen vessel segmenter that judges Stage II's images: are the mask's vessels visible?

pix2pix's L1 and adversarial losses reward images that *look* real; nothing makes them show
the condition's vessels where, and only where, the mask has them. Measured on DRIVE at 512 px
(docs/drive512.md): a segmenter trained on Stage II's images of the 15 *real* training
masks scored F1 0.712 on held-out real images, against 0.795 when trained on the real images
of the same masks, so Stage II, not Stage I, held the synthetic data's utility back.

The judge is the evaluation's segmenter (a MONAI BasicUNet, Dice + cross-entropy) trained on
the real training pairs before Stage II starts; frozen, it adds a term to the generator's
loss: Dice + cross-entropy between the judge's reading of the generated image and the mask
it was generated from (a task loss, as in segmentation-consistency GANs). Only the training
pairs are used; the held-out images stay unseen.
"""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss
from torch import nn

from synthmed.data.prepared import PreparedDataset
from synthmed.models.segmenter import budget_recipe, build_network, train_segmenter


class VesselJudge(nn.Module):
    """The frozen segmenter and a flag saying whether it has been trained (checkpointed with
    the run, so ``--resume`` does not train it again)."""

    def __init__(self, data: PreparedDataset, steps: int = 0):
        """``steps``: the segmenter's training steps; 0 = the evaluation's "cpu" budget."""
        super().__init__()
        self.recipe = budget_recipe(steps or "cpu", data.resolution)
        self.net = build_network(self.recipe, data.channels).requires_grad_(False)
        self.register_buffer("trained", torch.zeros((), dtype=torch.bool))
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)

    def fit(self, data: PreparedDataset, seed: int, device: torch.device) -> None:
        """Train the segmenter on the real pairs of ``data`` (once per run), then freeze it."""
        if bool(self.trained):
            return
        net = train_segmenter([data], self.recipe, seed, device, desc="vessel judge")
        self.net.load_state_dict(net.state_dict())
        self.net.eval().requires_grad_(False)
        self.trained.fill_(True)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Dice + cross-entropy of the judge on ``images`` (N, C, H, W) in [-1, 1] against
        binary ``masks`` (N, 1, H, W); differentiable with respect to the images."""
        self.net.eval()
        return self.loss(self.net((images + 1) / 2).float(), masks.long())
