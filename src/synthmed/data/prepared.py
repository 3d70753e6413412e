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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from synthmed.data.images import fov_from_image, is_grayscale_file, read_image, read_mask
from synthmed.data.provenance import pair_hashes
from synthmed.data.readers import PairPaths
from synthmed.errors import UserError
from synthmed.files import atomic_write, read_json, write_json

FORMAT_VERSION = 1
SUPPORTED_RESOLUTIONS = (32, 64, 128, 256, 512, 1024)


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


def square_resize(
    image: np.ndarray, mask: np.ndarray, fov: np.ndarray, res: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Crop to the field of view, zero-pad to a square, resize to ``res``.

    Returns the three arrays and the transform (crop box, padding, square side), which is
    what it takes to map a prediction back onto the native image.
    """
    rows, cols = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = bottom - top, right - left
    side = max(h, w)
    pad_top, pad_left = (side - h) // 2, (side - w) // 2

    def square(a: np.ndarray) -> np.ndarray:
        out = np.zeros((side, side) + a.shape[2:], a.dtype)
        out[pad_top : pad_top + h, pad_left : pad_left + w] = a[top:bottom, left:right]
        return out

    img = square(image)
    pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
    img = np.asarray(pil.resize((res, res), Image.Resampling.BILINEAR), dtype=np.uint8)
    img = img.reshape(res, res, image.shape[2])

    def resize_binary(a: np.ndarray) -> np.ndarray:
        # Area-weighted coverage then threshold at one half: thin vessels survive in
        # proportion to their width instead of flickering as with nearest-neighbour.
        f = Image.fromarray(square(a).astype(np.float32))
        return (np.asarray(f.resize((res, res), Image.Resampling.BOX)) >= 0.5).astype(np.uint8)

    transform = {
        "native_size": [int(image.shape[0]), int(image.shape[1])],
        "crop": [int(top), int(left), int(h), int(w)],
        "pad": [int(pad_top), int(pad_left)],
        "side": int(side),
    }
    fov_r = resize_binary(fov)
    return img, resize_binary(mask) * fov_r, fov_r, transform


def prepare_pairs(
    pairs: list[PairPaths], res: int, source: str, fov_from_photo: bool = False
) -> PreparedDataset:
    """Decode every pair once and build the in-memory prepared dataset.

    Args:
        pairs: paths from one of the readers in :mod:`synthmed.data.readers`.
        res: working resolution (power of two).
        source: free text recorded in ``dataset.json`` (reader name and path).
        fov_from_photo: derive the field of view from the photo's dark surround when a pair
            has no FOV file (fundus datasets); otherwise the whole image is the FOV.
    """
    check_resolution(res)
    if not pairs:
        raise UserError(f"{source}: empty dataset")
    channels = 1 if all(is_grayscale_file(p.image) for p in pairs) else 3
    images, masks, fovs, transforms, hashes = [], [], [], [], []
    for p in pairs:
        image = read_image(p.image, channels)
        shape = image.shape[:2]
        mask = read_mask(p.mask, shape, "mask")
        if p.fov is not None:
            fov = read_mask(p.fov, shape, "field-of-view mask")
        elif fov_from_photo:
            fov = fov_from_image(image)
        else:
            fov = np.ones(shape, bool)
        if not fov.any():
            raise UserError(f"{p.fov or p.image}: field of view is empty")
        img, m, f, t = square_resize(image, mask, fov, res)
        hashes.append(pair_hashes(image, mask))
        images.append(img)
        masks.append(m)
        fovs.append(f)
        # Absolute paths: the evaluation reads the native files again, maybe from another
        # working directory than the one ``prepare`` ran in.
        files = {"image": _absolute(p.image), "mask": _absolute(p.mask)}
        if p.fov is not None:
            files["fov"] = _absolute(p.fov)
        transforms.append(dict(t, **files))
    meta = {"source": source, "transforms": transforms, "hashes": hashes}
    names = [p.name for p in pairs]
    return PreparedDataset(np.stack(images), np.stack(masks), np.stack(fovs), names, meta)


def _absolute(path: str | Path) -> str:
    """``path`` made absolute (symbolic links kept, so the recorded name stays readable)."""
    return os.path.abspath(path)
