"""The prepared dataset: every pair decoded once, cropped, squared, resized, cached as uint8.

Training loads the cache into memory and never decodes an image file per step. On disk a
prepared dataset is a folder with ``arrays.npz`` (uint8 arrays, read without pickle) and
``dataset.json`` (resolution, channels, sample names, how each was cropped, so that
predictions can be mapped back to native size for evaluation, and each pair's content hash,
:mod:`synthmed.data.provenance`). ``dataset.json`` is written
last: its presence means the folder is complete.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from synthmed.data.images import (
    decode_mask,
    fov_from_image,
    is_grayscale_file,
    read_image,
    read_mask,
)
from synthmed.data.provenance import pair_hashes
from synthmed.data.readers import PairPaths
from synthmed.errors import UserError
from synthmed.files import atomic_write, read_json, write_json

FORMAT_VERSION = 1
SUPPORTED_RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
FOREGROUND_SETTINGS = ("white", "black", "auto")
MIN_SIDE = 16  # smallest image side prepare accepts (pixels)


@dataclass
class PreparedDataset:
    """Aligned uint8 arrays: images (N, H, W, C), masks and fov (N, H, W) in {0, 1}."""

    images: np.ndarray
    masks: np.ndarray
    fov: np.ndarray
    names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: list[int]) -> PreparedDataset:
        """The samples at ``indices`` (e.g. a train / held-out split), with their metadata."""
        meta = dict(self.meta)
        for key in ("transforms", "hashes"):  # per-sample lists follow their samples
            if key in meta:
                meta[key] = [meta[key][i] for i in indices]
        names = [self.names[i] for i in indices]
        return PreparedDataset(
            self.images[indices], self.masks[indices], self.fov[indices], names, meta
        )

    def resized(self, res: int) -> PreparedDataset:
        """The same pairs at ``res`` x ``res``: images bilinear (antialiased when shrinking),
        masks and fields of view by area average >= 1/2. For comparing sets made at
        different resolutions (e.g. a 128 px baseline beside 512 px data)."""
        if res == self.resolution:
            return self

        def scale(a: np.ndarray, mode: str) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a)).float()
            t = t.permute(0, 3, 1, 2) if t.ndim == 4 else t[:, None]
            smooth = mode == "bilinear"
            return F.interpolate(t, size=(res, res), mode=mode, antialias=smooth)

        images = scale(self.images, "bilinear").round().clamp(0, 255).to(torch.uint8)
        fov = scale(self.fov, "bilinear")[:, 0] >= 0.5
        masks = (scale(self.masks, "bilinear")[:, 0] >= 0.5) & fov
        meta = {k: v for k, v in self.meta.items() if k != "transforms"}
        meta["resized_from"] = self.resolution
        images = images.permute(0, 2, 3, 1).numpy()
        masks, fov = masks.numpy().astype(np.uint8), fov.numpy().astype(np.uint8)
        return PreparedDataset(images, masks, fov, list(self.names), meta)

    def save(self, out: str | Path) -> Path:
        """Write ``arrays.npz`` then ``dataset.json`` into ``out``, each atomically."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder")
        buf = io.BytesIO()
        np.savez(buf, images=self.images, masks=self.masks, fov=self.fov)
        atomic_write(out / "arrays.npz", lambda p: p.write_bytes(buf.getvalue()))
        meta = dict(self.meta, format_version=FORMAT_VERSION, names=self.names)
        meta.update(resolution=self.resolution, channels=self.channels, count=len(self))
        write_json(out / "dataset.json", meta)
        return out

    @classmethod
    def load(cls, folder: str | Path) -> PreparedDataset:
        """Read a folder written by :meth:`save` (or by ``synthmed prepare``)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"{folder}: prepared dataset folder not found")
        if not (folder / "dataset.json").is_file():
            raise UserError(
                f"{folder}: no dataset.json (not a prepared dataset; run `synthmed prepare`)"
            )
        meta = read_json(folder / "dataset.json")
        if not isinstance(meta, dict) or "format_version" not in meta:
            raise UserError(f"{folder / 'dataset.json'}: not a SynthMed prepared dataset")
        try:
            with np.load(folder / "arrays.npz", allow_pickle=False) as z:
                images, masks, fov = z["images"], z["masks"], z["fov"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise UserError(f"{folder / 'arrays.npz'}: cannot read prepared arrays ({e})") from None
        names = list(meta.pop("names", []))
        if not (len(images) == len(masks) == len(fov) == len(names)) or images.ndim != 4:
            raise UserError(f"{folder}: arrays.npz and dataset.json disagree; prepare again")
        return cls(images, masks, fov, names, meta)


def check_resolution(res: int) -> int:
    """Refuse working resolutions the networks cannot handle (powers of two, 32 to 1024)."""
    if res not in SUPPORTED_RESOLUTIONS:
        supported = ", ".join(map(str, SUPPORTED_RESOLUTIONS))
        raise UserError(f"resolution {res} is not supported (use one of {supported})")
    return res


def square_transform(fov: np.ndarray) -> dict[str, Any]:
    """How :func:`square_resize` frames an image: the field of view's bounding box (crop),
    the padding that centres it in a square, and that square's side."""
    rows, cols = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = bottom - top, right - left
    side = max(h, w)
    return {
        "native_size": [int(fov.shape[0]), int(fov.shape[1])],
        "crop": [int(top), int(left), int(h), int(w)],
        "pad": [int((side - h) // 2), int((side - w) // 2)],
        "side": int(side),
    }


def _squared(a: np.ndarray, t: dict[str, Any]) -> np.ndarray:
    """``a`` cropped as ``t`` says and zero-padded to its square (aspect kept)."""
    top, left, h, w = t["crop"]
    pad_top, pad_left = t["pad"]
    out = np.zeros((t["side"], t["side"]) + a.shape[2:], a.dtype)
    out[pad_top : pad_top + h, pad_left : pad_left + w] = a[top : top + h, left : left + w]
    return out


def _resize_binary(a: np.ndarray, t: dict[str, Any], res: int) -> np.ndarray:
    """A native binary array squared as ``t`` says and resized to ``res`` (uint8 0/1)."""
    # Area-weighted coverage then threshold at one half: thin vessels survive in
    # proportion to their width instead of flickering as with nearest-neighbour.
    f = Image.fromarray(_squared(a, t).astype(np.float32))
    return (np.asarray(f.resize((res, res), Image.Resampling.BOX)) >= 0.5).astype(np.uint8)


def _resize_image(image: np.ndarray, t: dict[str, Any], res: int) -> np.ndarray:
    """A native (H, W, C) uint8 image squared as ``t`` says and resized to ``res``."""
    img = _squared(image, t)
    pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
    img = np.asarray(pil.resize((res, res), Image.Resampling.BILINEAR), dtype=np.uint8)
    return img.reshape(res, res, image.shape[2])


def square_resize(
    image: np.ndarray, mask: np.ndarray, fov: np.ndarray, res: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Crop to the field of view, zero-pad to a square, resize to ``res``.

    A non-square frame keeps its aspect: it is centred between black bands, and the bands
    lie outside the returned field of view, so that padding never counts as background in
    training or scoring. Returns the three arrays and the transform (crop box, padding,
    square side), which is what it takes to map a prediction back onto the native image
    (``synthmed.evaluation.protocol.to_native``).
    """
    t = square_transform(fov)
    fov_r = _resize_binary(fov, t, res)
    return _resize_image(image, t, res), _resize_binary(mask, t, res) * fov_r, fov_r, t


@dataclass
class _DecodedPair:
    """One pair at working resolution, with its mask under both polarities until the
    dataset's own is chosen (``auto`` decides over the whole dataset)."""

    image: np.ndarray
    fov: np.ndarray
    masks: dict[str, np.ndarray]  # "white" / "black" -> (res, res) uint8, inside the FOV
    hashes: dict[str, dict[str, str]]  # the pair's content hashes under either polarity
    transform: dict[str, Any]
    white: int  # white mask pixels inside the native field of view
    fov_pixels: int
    levels: int  # distinct values in the mask file (more than 2: thresholded)

    def share(self, foreground: str) -> float:
        """The share of the native field of view that is foreground under ``foreground``."""
        fg = self.white if foreground == "white" else self.fov_pixels - self.white
        return fg / self.fov_pixels


def _decode_pair(p: PairPaths, channels: int, res: int, fov_from_photo: bool) -> _DecodedPair:
    """Decode one pair's files, check them, and bring them to ``res`` (both polarities)."""
    image = read_image(p.image, channels)
    shape = image.shape[:2]
    if min(shape) < MIN_SIDE:
        # Upscaling a few pixels to --res invents everything the networks would learn.
        raise UserError(
            f"{p.image}: image is {shape[1]}x{shape[0]} pixels, too small to learn from "
            f"(at least {MIN_SIDE} a side)"
        )
    mask = decode_mask(p.mask, shape, "mask")
    if p.fov is not None:
        fov = read_mask(p.fov, shape, "field-of-view mask")
    elif fov_from_photo:
        fov = fov_from_image(image)
    else:
        fov = np.ones(shape, bool)
    if not fov.any():
        raise UserError(f"{p.fov or p.image}: field of view is empty")
    t = square_transform(fov)
    fov_r = _resize_binary(fov, t, res)
    # The native masks are not cut to the FOV before hashing (as before polarity existed,
    # so re-preparing a dataset keeps its hashes); the resized ones are cut by fov_r.
    native = {"white": mask.white, "black": ~mask.white}
    # Absolute paths: the evaluation reads the native files again, maybe from another
    # working directory than the one ``prepare`` ran in.
    files = {"image": _absolute(p.image), "mask": _absolute(p.mask)}
    if p.fov is not None:
        files["fov"] = _absolute(p.fov)
    return _DecodedPair(
        image=_resize_image(image, t, res),
        fov=fov_r,
        masks={c: _resize_binary(m, t, res) * fov_r for c, m in native.items()},
        hashes={c: pair_hashes(image, m) for c, m in native.items()},
        transform=dict(t, **files),
        white=int((mask.white & fov).sum()),
        fov_pixels=int(fov.sum()),
        levels=mask.levels,
    )


def choose_foreground(setting: str, white: int, total: int) -> str:
    """The polarity ``setting`` ("white", "black" or "auto") means for masks holding
    ``white`` white pixels of ``total``: auto takes the minority class (white on a tie)."""
    if setting not in FOREGROUND_SETTINGS:
        raise UserError(f"--foreground {setting}: use one of {', '.join(FOREGROUND_SETTINGS)}")
    if setting != "auto":
        return setting
    return "white" if 2 * white <= total else "black"


def _report(pairs: list[PairPaths], decoded: list[_DecodedPair], setting: str, res: int) -> None:
    """Say what prepare had to decide or guess: once per dataset, not once per file."""
    chosen = decoded[0].transform["foreground"]
    shares = [d.share(chosen) for d in decoded]
    if setting == "auto":
        overall = sum(d.fov_pixels * s for d, s in zip(decoded, shares, strict=True))
        overall /= sum(d.fov_pixels for d in decoded)
        print(
            f"synthmed: foreground: auto chose {chosen}, the minority class "
            f"({overall:.1%} of the masks' pixels)",
            file=sys.stderr,
        )
    elif min(shares) > 0.5:
        other = "black" if chosen == "white" else "white"
        warnings.warn(
            f"the foreground ({chosen}) covers more than half of every mask ({min(shares):.0%}"
            f" to {max(shares):.0%}): inverted masks? try --foreground {other} or auto",
            stacklevel=3,
        )
    grey = [(p, d) for p, d in zip(pairs, decoded, strict=True) if d.levels > 2]
    if grey:
        p, d = grey[0]
        more = f" (and {len(grey) - 1} other masks likewise)" if len(grey) > 1 else ""
        warnings.warn(
            f"{p.mask}: mask is not binary ({d.levels} grey levels, as JPEG saves masks); "
            f"thresholded at the middle of its range{more}",
            stacklevel=3,
        )
    small = [(p, d) for p, d in zip(pairs, decoded, strict=True) if d.transform["side"] < res]
    if small:
        p, d = min(small, key=lambda pd: pd[1].transform["side"])
        side = d.transform["side"]
        warnings.warn(
            f"{p.image}: {len(small)} of {len(pairs)} images are smaller than {res}x{res} "
            f"(this one's field of view {side} px a side, upscaled {res / side:.1f}x); "
            "a lower --res keeps to the data's own detail",
            stacklevel=3,
        )


def prepare_pairs(
    pairs: list[PairPaths],
    res: int,
    source: str,
    fov_from_photo: bool = False,
    foreground: str = "white",
) -> PreparedDataset:
    """Decode every pair once and build the in-memory prepared dataset.

    Args:
        pairs: paths from one of the readers in :mod:`synthmed.data.readers`.
        res: working resolution (power of two).
        source: free text recorded in ``dataset.json`` (reader name and path).
        fov_from_photo: derive the field of view from the photo's dark surround when a pair
            has no FOV file (fundus datasets); otherwise the whole image is the FOV.
        foreground: which mask value is the object: "white", "black" (inverted masks) or
            "auto" (the minority class over the whole dataset, said in one line on stderr).
            Recorded in ``dataset.json`` as ``{"setting": ..., "chosen": ...}``.
    """
    check_resolution(res)
    choose_foreground(foreground, 0, 0)  # refuse a bad setting before decoding anything
    if not pairs:
        raise UserError(f"{source}: empty dataset")
    channels = 1 if all(is_grayscale_file(p.image) for p in pairs) else 3
    decoded = [_decode_pair(p, channels, res, fov_from_photo) for p in pairs]
    white, total = sum(d.white for d in decoded), sum(d.fov_pixels for d in decoded)
    chosen = choose_foreground(foreground, white, total)
    for d in decoded:
        # Per sample too: a transform is what maps a sample back onto its native files.
        d.transform["foreground"] = chosen
    _report(pairs, decoded, foreground, res)
    meta = {
        "source": source,
        "transforms": [d.transform for d in decoded],
        "hashes": [d.hashes[chosen] for d in decoded],
        "foreground": {"setting": foreground, "chosen": chosen},
    }
    images = np.stack([d.image for d in decoded])
    masks = np.stack([d.masks[chosen] for d in decoded])
    fovs = np.stack([d.fov for d in decoded])
    return PreparedDataset(images, masks, fovs, [p.name for p in pairs], meta)


def _absolute(path: str | Path) -> str:
    """``path`` made absolute (symbolic links kept, so the recorded name stays readable)."""
    return os.path.abspath(path)
