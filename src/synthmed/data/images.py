"""Decode image and mask files with Pillow, turning every failure into a one-line user error.

MONAI's ``LoadImage`` cannot choose a reader for DRIVE's ``.gif``/``.tif`` files, so we
decode with Pillow ourselves (see FIELD_NOTES.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from synthmed.errors import UserError

# Refuse decompression bombs outright instead of Pillow's warning: 8k x 8k is plenty.
MAX_PIXELS = 8192 * 8192


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow's own warnings on damaged files (e.g. "Corrupt EXIF data") do not name
            # the file; the error raised by load() below does.
            warnings.simplefilter("ignore", UserWarning)
            im = Image.open(path)
            if im.width * im.height > MAX_PIXELS:
                raise UserError(f"{path}: image too large ({im.width}x{im.height} pixels)")
            im.load()  # Image.open is lazy; load() is where truncation shows up
    except UserError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as e:
        raise UserError(f"{path}: cannot read image ({e})") from None
    return im


def is_grayscale_file(path: Path) -> bool:
    """True when the file stores one channel (so the dataset can stay single-channel)."""
    return _open(Path(path)).mode in ("1", "L", "I", "I;16", "I;16B", "F", "LA")


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Decode an image to a (H, W, channels) uint8 array; 16-bit images are rescaled."""
    path = Path(path)
    im = _open(path)
    if im.mode in ("I", "I;16", "I;16B", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() if a.max() > 0 else 1.0
        im = Image.fromarray((a / hi * 255).round().astype(np.uint8))
    im = im.convert("L" if channels == 1 else "RGB")
    a = np.asarray(im, dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def read_mask(path: str | Path, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    """Decode a binary mask to a (H, W) bool array, checking it matches the image ``shape``.

    A mask with more than two grey levels (e.g. saved as JPEG) is thresholded at the middle
    of its range, with a warning naming the file, rather than silently misread.
    """
    path = Path(path)
    im = _open(path)
    a = np.asarray(im.convert("L") if im.mode not in ("1", "L") else im)
    if a.shape[:2] != tuple(shape):
        raise UserError(
            f"{path}: {what} size {a.shape[1]}x{a.shape[0]} differs from its image "
            f"{shape[1]}x{shape[0]}"
        )
    a = a.astype(np.float32)
    levels = np.unique(a)
    if len(levels) > 2:
        warnings.warn(
            f"{path}: {what} is not binary ({len(levels)} grey levels); thresholding at the "
            "middle of its range",
            stacklevel=2,
        )
        return a > (a.min() + a.max()) / 2
    if len(levels) == 1:  # all background or, e.g., a whole-frame field of view
        return a > 127 if a.max() > 1 else a > 0
    return a > a.min()


def fov_from_image(image: np.ndarray, threshold: int = 20) -> np.ndarray:
    """Field of view of a fundus photo without a FOV mask: the largest non-black region.

    CHASE_DB1 and STARE ship no FOV masks; the photo's dark surround gives it away.
    """
    bright = image.max(axis=-1) > threshold
    labels, n = ndimage.label(bright)
    if n == 0:
        return np.zeros(bright.shape, bool)
    sizes = ndimage.sum(bright, labels, index=np.arange(1, n + 1))
    return ndimage.binary_fill_holes(labels == (int(np.argmax(sizes)) + 1))
