"""Which images trained what: content hashes of every pair, and the check that a test set
shares none of them with any training set.

A pair's hash is the SHA-256 of its *decoded* native pixels (shape, dtype and bytes), not of
its file: the same photograph stored as TIFF and PNG, or prepared at 256 and at 512 px,
hashes the same, so re-preparing a dataset cannot hide an overlap. Images that differ by a
single pixel hash differently; near-copies are the privacy audit's business, not this check's.

``prepare`` records the hashes in ``dataset.json`` (``hashes``: one ``{"image", "mask"}`` per
sample); every training run records :func:`record` of its data in ``options.json`` and in its
exported generator (``provenance.json``); generated datasets carry their models' records in
``manifest.json``; ``evaluate`` calls :func:`check_disjoint` before training anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from synthmed.errors import UserError

PROVENANCE_FILE = "provenance.json"  # beside a component's config.json and weights


def pixel_hash(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's shape, dtype and bytes: the same pixels, the same hash."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def pair_hashes(image: np.ndarray, mask: np.ndarray) -> dict[str, str]:
    """The hashes of one decoded pair; masks are hashed as booleans (0/1 and 0/255 agree)."""
    return {"image": pixel_hash(image), "mask": pixel_hash(np.asarray(mask).astype(bool))}


def digest(hashes: Iterable[str]) -> str:
    """One SHA-256 over a set of hashes (order-free): names a split in reports."""
    return hashlib.sha256("\n".join(sorted(set(hashes))).encode()).hexdigest()


def image_hashes(data: Any) -> list[str]:
    """Per-sample image hashes of a :class:`~synthmed.data.prepared.PreparedDataset`.

    Datasets prepared before hashes were recorded fall back to the hashes of their prepared
    (resized) arrays: they still catch the same folder used twice, not a re-preparation.
    """
    recorded = data.meta.get("hashes")
    if isinstance(recorded, list) and len(recorded) == len(data):
        return [h["image"] for h in recorded]
    return [pixel_hash(image) for image in data.images]


def record(data: Any) -> dict[str, Any]:
    """What a training run records about its data: source, count, digest, every image hash."""
    hashes = image_hashes(data)
    return {
        "source": data.meta.get("source", "?"),
        "split": data.meta.get("split"),
        "count": len(hashes),
        "digest": digest(hashes),
        "images": hashes,
    }


def trained_on(folder: str | Path | None) -> dict[str, Any] | None:
    """The record a component folder (``generator/``, or a pipeline's stage) carries, if any."""
    if folder is None:
        return None
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return None
    from synthmed.files import read_json

    value = read_json(path).get("trained_on")
    return value if isinstance(value, dict) else None


def manifest_training_sets(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """The image hashes each model of a generated dataset trained on, from its manifest
    (``models.<stage>.trained_on.images``); models without a record are left out."""
    out = {}
    models = manifest.get("models")
    for stage, entry in models.items() if isinstance(models, dict) else []:
        record_ = entry.get("trained_on") if isinstance(entry, dict) else None
        if isinstance(record_, dict) and isinstance(record_.get("images"), list):
            out[stage] = [str(h) for h in record_["images"]]
    return out


def check_disjoint(
    test: Any, training: Mapping[str, Iterable[str]], test_label: str = "test set"
) -> None:
    """Refuse a test set that shares an image with any training set (a UserError: exit 2).

    Args:
        test: the held-out :class:`PreparedDataset` to be scored.
        training: collections of image hashes that trained something evaluated here, named
            as the message should say them ("the real training set", "the pairs of dual GAN",
            "the training data of dual GAN's texture model", ...).
        test_label: how the test set is named in the message (e.g. its path).
    """
    names = dict(zip(image_hashes(test), test.names, strict=True))
    for what, hashes in training.items():
        shared = sorted(names[h] for h in set(hashes) & names.keys())
        if shared:
            more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
            raise UserError(
                f"{test_label}: image {shared[0]}{more} is also in {what}; a test image must "
                "be unseen by every model it scores (use a disjoint split)"
            )
