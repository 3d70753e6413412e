"""Image grids as PNG (no torchvision): sample sheets during training and in the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from synthmed.files import atomic_write


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) tensor in [-1, 1] -> (N, H, W, 3) uint8, grey channels repeated."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.permute(0, 2, 3, 1).numpy()


def grid(images: np.ndarray, ncol: int, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 images into one array with ``ncol`` columns."""
    n, h, w, c = images.shape
    nrow = -(-n // ncol)
    out = np.zeros((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), np.uint8)
    for i, im in enumerate(images):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = im
    return out


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Save a uint8 array as PNG atomically."""
    im = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    atomic_write(path, lambda p: im.save(p, format="PNG"))


def pair_grid(masks: np.ndarray, images: np.ndarray, ncol: int = 4) -> np.ndarray:
    """Grid of (mask, image) pairs side by side: masks (N, H, W) and images (N, H, W, C)."""
    m = np.repeat((masks.astype(np.uint8) * 255)[..., None], 3, axis=-1)
    im = images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)
    both = np.concatenate([m, im], axis=2)  # side by side within one cell
    return grid(both, ncol)
