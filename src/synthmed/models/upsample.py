"""Resize-then-convolve upsampling (nearest x2, then a 3x3 convolution), computed fast.

Nearest x2 followed by a 3x3 convolution equals, exactly, one 3x3 convolution of the input
at its own resolution with four times the output channels (one per output pixel phase),
followed by a pixel shuffle: each phase sees the input through a 2x2 footprint whose weights
are sums of the 3x3 kernel's rows and columns. The 4x larger upsampled input is never built
(on CPU that copy alone took a quarter of generation time) and the convolution runs on a
quarter of the pixels: measured 1.5x (float32) to 1.9x (bfloat16) faster per layer on CPU.
The module keeps the layout of ``Sequential(Upsample, Conv2d)`` (weights under
``1.weight``), so models saved before it load unchanged.

The phase kernel is rebuilt from the 3x3 weights at every call (they change every training
step), at a cost that grows with the weights, not with the pixels. On the small inner levels
of a U-Net that cost dominates: measured on 2 CPU cores (bfloat16, forward + backward, batch
4), 512 -> 256 channels at 8 x 8 took 39 ms this way and 8 ms as upsample-then-convolve; 64 ->
3 channels at 128 x 128, 16 ms and 154 ms. Inputs with fewer than PHASE_MIN_PIXELS pixels
(batch x height x width, the measured break-even) therefore take the plain path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# _PHASES[a, r, y]: how row y of the 3x3 kernel contributes to row r (offset r - 1 at input
# resolution) of the kernel of output row phase a. Even output rows 2i read input rows i-1
# (kernel row 0) and i (rows 1 + 2); odd rows 2i+1 read i (rows 0 + 1) and i+1 (row 2).
# Columns work the same way.
_PHASES = torch.tensor(
    [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ]
)


# Below this many input pixels (batch x height x width) upsampling then convolving is faster.
PHASE_MIN_PIXELS = 2048


class NearestUpConv(nn.Sequential):
    """``Upsample(x2, nearest)`` then ``Conv2d(cin, cout, 3, padding=1)``, as one fast op."""

    def __init__(self, cin: int, cout: int, bias: bool = False):
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] * x.shape[-2] * x.shape[-1] < PHASE_MIN_PIXELS:
            return super().forward(x)
        return phase_upconv(x, self[1])


def phase_upconv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(upsample_nearest_x2(x))`` for a 3x3, padding-1 ``conv``, computed at the input's
    resolution (one convolution per output pixel phase, then a pixel shuffle)."""
    p = _PHASES.to(device=conv.weight.device, dtype=conv.weight.dtype)
    # kernel[o, a, b, i] = p[a] @ w[o, i] @ p[b].T: output channel o at phase (a, b).
    kernel = torch.einsum("ary,oiyx,bsx->oabirs", p, conv.weight, p).flatten(0, 2)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, kernel, bias, padding=1), 2)
