"""Decode image and mask files with Pillow, turning every failure into a one-line user error.

MONAI's ``LoadImage`` cannot choose a reader for DRIVE's ``.gif``/``.tif`` files, so we
decode with Pillow ourselves (see FIELD_NOTES.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
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


# Modes Pillow decodes to one channel of numbers (1-bit, 8-bit, 16/32-bit integer, float).
GRAY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
FOREGROUNDS = ("white", "black")
# A two-valued mask saved as JPEG or drawn anti-aliased keeps nearly every pixel near its
# darkest or brightest value (< 1 % in the middle half of the range, measured on DRIVE and
# BU-BIL masks saved as JPEG at quality 30-95); more than this is a photo, a soft map or a
# label map of several classes, which no threshold turns into the right mask.
MAX_MID_GREY = 0.10


def is_grayscale_file(path: Path) -> bool:
    """True when the file holds one channel's worth of information (so the dataset can stay
    single-channel): a grayscale mode, or a palette or RGB(A) image whose colours are all
    grey (BU-BIL's B02 is a palette image with a grey palette)."""
    im = _open(Path(path))
    if im.mode in GRAY_MODES or im.mode == "LA":
        return True
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Decode an image to a (H, W, channels) uint8 array.

    16-bit and float images are rescaled so that their maximum is 255; palette images go
    through their palette; an alpha channel is dropped by compositing over black (so
    transparent parts look like the black padding around a frame).
    """
    path = Path(path)
    im = _open(path)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() if a.max() > 0 else 1.0
        im = Image.fromarray(np.clip(a / hi * 255, 0, 255).round().astype(np.uint8))
    if im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    im = im.convert("L" if channels == 1 else "RGB")
    a = np.asarray(im, dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def _mask_values(im: Image.Image) -> np.ndarray:
    """A mask file's values as one (H, W) float array, whatever its mode.

    Integer and float modes keep their numbers (a 16-bit mask of 0 / 65535 or 0 / 1);
    colour and palette masks go through luminance. A mask drawn on a transparent layer
    (its alpha varies) is its alpha: what was drawn counts as white.
    """
    if im.mode in GRAY_MODES:
        return np.asarray(im, dtype=np.float32)
    if im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
        if alpha.min() != alpha.max():
            return alpha.astype(np.float32)
    return np.asarray(im.convert("L"), dtype=np.float32)


@dataclass(frozen=True)
class MaskFile:
    """A decoded mask: ``white`` is True where the file is bright; ``levels`` is how many
    distinct values it holds (more than 2: thresholded at the middle of its range)."""

    white: np.ndarray
    levels: int


def decode_mask(path: str | Path, shape: tuple[int, int], what: str = "mask") -> MaskFile:
    """Decode a two-valued mask file into its white pixels, without warning.

    Refuses (one-line :class:`UserError`) a mask whose size is not ``shape`` (its image's)
    and one that is not two-valued even allowing for JPEG or anti-aliasing (more than
    ``MAX_MID_GREY`` of its pixels mid-grey). A nearly two-valued mask is thresholded at the
    middle of its range; the caller says so (:func:`read_mask`, or once per dataset).
    """
    path = Path(path)
    a = _mask_values(_open(path))
    if a.shape[:2] != tuple(shape):
        raise UserError(
            f"{path}: {what} size {a.shape[1]}x{a.shape[0]} differs from its image "
            f"{shape[1]}x{shape[0]}"
        )
    levels = np.unique(a)
    lo, hi = float(levels[0]), float(levels[-1])
    if len(levels) == 1:  # all background or, e.g., a whole-frame field of view
        return MaskFile(a > 127 if hi > 1 else a > 0, 1)
    if len(levels) == 2:
        return MaskFile(a > lo, 2)
    quarter = (hi - lo) / 4
    mid = float(((a > lo + quarter) & (a < hi - quarter)).mean())
    if mid > MAX_MID_GREY:
        raise UserError(
            f"{path}: {what} is not two-valued ({len(levels)} grey levels, {mid:.0%} of its "
            "pixels mid-grey): a photo, a soft map or a label map of several classes? Save "
            "it with two values (e.g. 0 and 255)"
        )
    return MaskFile(a > (lo + hi) / 2, len(levels))


def read_mask(
    path: str | Path, shape: tuple[int, int], what: str = "mask", foreground: str = "white"
) -> np.ndarray:
    """Decode a binary mask to a (H, W) bool array of its foreground, checking it matches
    the image ``shape``.

    ``foreground`` says which value is the object: "white" (the brighter one, the usual) or
    "black" (inverted masks such as BU-BIL's). A mask with more than two grey levels (e.g.
    saved as JPEG) is thresholded at the middle of its range, with a warning naming the
    file, rather than silently misread; one that is not two-valued at all is refused
    (:func:`decode_mask`).
    """
    if foreground not in FOREGROUNDS:
        raise UserError(f"foreground {foreground!r}: use one of {', '.join(FOREGROUNDS)}")
    mask = decode_mask(path, shape, what)
    if mask.levels > 2:
        warnings.warn(
            f"{path}: {what} is not binary ({mask.levels} grey levels); thresholding at the "
            "middle of its range",
            stacklevel=2,
        )
    return mask.white if foreground == "white" else ~mask.white


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
