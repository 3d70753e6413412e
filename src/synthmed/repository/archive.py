"""The upload format, checked member by member before anything is stored.

An upload is one zip archive laid out as ``synthmed generate`` writes a dataset::

    card.json        title, license, and optionally name, description, domain, modality, source
    manifest.json    written by synthmed generate (models, hashes, resolution, count, seed)
    metrics.json     optional: synthmed evaluate all's metrics
    datalist.json    optional: MONAI Decathlon datalist (written by synthmed generate); every
                     path it lists must be a member, so a download loads as it is
    README.md        optional: the dataset card synthmed generate wrote (UTF-8 text; card.json,
                     not this file, is what the repository shows and edits)
    images/<stem>.png|jpg|jpeg|tif|tiff
    masks/<stem>.png|...     one per image, binary, same size
    fov/<stem>.png|...       optional, one per image when present

One top-level folder around all of it is allowed (a downloaded dataset can be re-published).
:func:`inspect_upload` rejects, with one line saying which member and why: anything that is
not a zip, unsafe member names (absolute, ``..``, backslashes, links, odd characters),
unknown members, archives or members over the size limits, zip bombs (members that inflate
far beyond their stored size), images that are not PNG/JPEG/TIFF or do not decode, images
over the pixel limit (decompression bombs), unpaired images or masks, non-binary masks,
size mismatches, a manifest whose count disagrees with the pairs, a datalist naming files the
archive lacks, and a README.md that is not UTF-8 text.
"""

from __future__ import annotations

import io
import json
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FOLDERS = ("images", "masks", "fov")
JSON_FILES = ("card.json", "manifest.json", "metrics.json", "datalist.json")
TEXT_FILES = ("README.md",)  # the generated dataset card, kept as it is
TOP_FILES = JSON_FILES + TEXT_FILES
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF")
STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CARD_TEXT_LIMITS = {
    "title": 200,
    "license": 100,
    "description": 5000,
    "domain": 64,
    "modality": 64,
    "source": 1000,
}


class UploadRejected(Exception):
    """An upload that is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Limits:
    """What one upload may contain. Defaults suit datasets up to a few thousand 1024² pairs."""

    max_upload_bytes: int = 2 << 30  # the archive as sent
    max_total_bytes: int = 4 << 30  # all members once inflated
    max_member_bytes: int = 64 << 20  # one member once inflated
    max_members: int = 30_000
    max_ratio: float = 50.0  # inflated / stored size of one member (zip bomb)
    max_image_pixels: int = 4096 * 4096  # one image (decompression bomb)
    max_json_bytes: int = 16 << 20


@dataclass
class Upload:
    """A checked upload: what to store and what to show."""

    card: dict[str, Any]
    manifest: dict[str, Any]
    metrics: dict[str, Any] | None
    members: dict[str, str]  # canonical path (e.g. "images/0000.png") -> member name in the zip
    stems: list[str]
    width: int
    height: int
    channels: int
    formats: set[str] = field(default_factory=set)


def _fail(message: str, status: int = 400) -> UploadRejected:
    return UploadRejected(message, status)


def slug(text: str) -> str:
    """A dataset name from a title: lower case, digits and single hyphens, at most 63 long."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return s or "dataset"


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _safe_parts(name: str) -> list[str]:
    """The ``/`` parts of a member name, or a rejection when the name could escape."""
    if name.startswith("/") or "\\" in name or ":" in name or "\x00" in name:
        raise _fail(f"{name!r}: unsafe member name in the archive")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _fail(f"{name!r}: unsafe member name in the archive")
    return parts


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, never more than ``limit`` (a lying header cannot inflate past it)."""
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _fail(f"{info.filename}: larger than {limit} bytes once inflated", 413)
    return data


def _decode(name: str, data: bytes, limits: Limits) -> np.ndarray:
    """Decode one image, refusing other formats and decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                w, h = im.size
                if w * h > limits.max_image_pixels:
                    raise _fail(
                        f"{name}: {w}x{h} pixels is over the limit of {limits.max_image_pixels}",
                        413,
                    )
                im.load()
                if im.mode not in ("1", "L", "P", "RGB", "RGBA", "I;16", "I"):
                    raise _fail(f"{name}: unsupported image mode {im.mode}")
                return np.asarray(im.convert("RGB") if im.mode in ("P", "RGBA") else im)
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _fail(f"{name}: too many pixels (decompression bomb)", 413) from None
    except Exception as e:  # Pillow raises many types for broken files
        raise _fail(f"{name}: not a readable PNG, JPEG or TIFF image ({e})") from None


def _json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> dict[str, Any]:
    try:
        value = json.loads(_read(zf, info, limits.max_json_bytes))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _fail(f"{info.filename}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise _fail(f"{info.filename}: expected a JSON object")
    return value


def _text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> str:
    try:
        return _read(zf, info, limits.max_json_bytes).decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(f"{info.filename}: not UTF-8 text ({e})") from None


def check_datalist(datalist: dict[str, Any], entries: dict[str, zipfile.ZipInfo]) -> None:
    """A Decathlon datalist (``{"training": [{"image": ..., "label": ...}, ...]}``) whose
    every path is a member of the archive (relative, as ``synthmed generate`` writes them)."""
    items = datalist.get("training")
    if not isinstance(items, list):
        raise _fail("datalist.json: expected a list under 'training'")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            raise _fail(f"datalist.json: training[{i}] needs an 'image' path")
        for key, path in item.items():
            if not isinstance(path, str) or path not in entries:
                raise _fail(f"datalist.json: training[{i}].{key} {path!r} is not in the archive")


def check_card(card: dict[str, Any]) -> dict[str, Any]:
    """The card's text fields, trimmed and length-checked; title and license are required."""
    out = {}
    for key, limit in CARD_TEXT_LIMITS.items():
        value = card.get(key, "")
        if not isinstance(value, str):
            raise _fail(f"card.json: {key} must be a string")
        value = value.strip()
        if len(value) > limit:
            raise _fail(f"card.json: {key} longer than {limit} characters")
        out[key] = value
    for key in ("title", "license"):
        if not out[key]:
            raise _fail(f"card.json: {key} is required")
    name = card.get("name") or slug(out["title"])
    if not isinstance(name, str) or not NAME.match(name):
        raise _fail(f"card.json: name {name!r} must be lower-case letters, digits and hyphens")
    out["name"] = name
    return out


def canonical_members(zf: zipfile.ZipFile, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Map canonical member paths (``images/0000.png``) to zip entries, after the name and
    size checks; images are not decoded."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise _fail(f"archive: {len(infos)} members, the limit is {limits.max_members}", 413)
    split = [(i, _safe_parts(i.filename)) for i in infos]
    for info, _ in split:
        if _is_link(info):
            raise _fail(f"{info.filename}: links are not allowed in the archive")
    # One wrapping folder (e.g. a downloaded dataset's "name-v1/") is dropped.
    tops = {parts[0] for info, parts in split if not info.is_dir() or len(parts) > 1}
    strip = len(tops) == 1 and next(iter(tops)) not in FOLDERS + TOP_FILES
    total = 0
    out: dict[str, zipfile.ZipInfo] = {}
    for info, parts in split:
        if info.is_dir():
            continue
        parts = parts[1:] if strip else parts
        path = "/".join(parts)
        if len(parts) == 1 and parts[0] in TOP_FILES:
            pass
        elif len(parts) == 2 and parts[0] in FOLDERS:
            stem, suffix = Path(parts[1]).stem, Path(parts[1]).suffix.lower()
            if suffix not in IMAGE_SUFFIXES:
                raise _fail(f"{info.filename}: only PNG, JPEG and TIFF files are accepted", 415)
            if not STEM.match(stem):
                raise _fail(f"{info.filename}: file name must be letters, digits, '.', '_', '-'")
        else:
            raise _fail(f"{info.filename}: unexpected member (see the upload layout)")
        if path in out:
            raise _fail(f"{info.filename}: appears twice in the archive")
        if info.file_size > limits.max_member_bytes:
            raise _fail(f"{info.filename}: larger than {limits.max_member_bytes} bytes", 413)
        if info.file_size > 1 << 16 and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise _fail(f"{info.filename}: compression ratio too high (zip bomb?)", 413)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _fail(f"archive: over {limits.max_total_bytes} bytes once inflated", 413)
        out[path] = info
    return out


def _pairs(entries: dict[str, zipfile.ZipInfo]) -> dict[str, dict[str, str]]:
    """folder -> stem -> canonical path, with one file per stem."""
    by_folder: dict[str, dict[str, str]] = {f: {} for f in FOLDERS}
    for path in entries:
        folder, _, file = path.partition("/")
        if folder in FOLDERS:
            stem = Path(file).stem
            if stem in by_folder[folder]:
                raise _fail(f"{path}: two files named {stem} in {folder}/")
            by_folder[folder][stem] = path
    return by_folder


def inspect_upload(path: str | Path, limits: Limits | None = None) -> Upload:
    """Check the archive at ``path`` completely (every image decoded); raise
    :class:`UploadRejected` on the first problem, else return what to publish."""
    limits = limits or Limits()
    if Path(path).stat().st_size > limits.max_upload_bytes:
        raise _fail(f"archive: larger than {limits.max_upload_bytes} bytes", 413)
    if not zipfile.is_zipfile(path):
        raise _fail("upload: not a zip archive", 415)
    try:
        with zipfile.ZipFile(path) as zf:
            return _inspect(zf, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise _fail(f"upload: broken zip archive ({e})") from None


def _inspect(zf: zipfile.ZipFile, limits: Limits) -> Upload:
    entries = canonical_members(zf, limits)
    for required in ("card.json", "manifest.json"):
        if required not in entries:
            raise _fail(f"archive: {required} is missing")
    card = check_card(_json(zf, entries["card.json"], limits))
    manifest = _json(zf, entries["manifest.json"], limits)
    metrics = _json(zf, entries["metrics.json"], limits) if "metrics.json" in entries else None
    folders = _pairs(entries)
    images, masks, fov = folders["images"], folders["masks"], folders["fov"]
    if not images:
        raise _fail("archive: images/ is empty")
    if unpaired := sorted(images.keys() - masks.keys()):
        raise _fail(f"{images[unpaired[0]]}: no mask masks/{unpaired[0]}.* for this image")
    if unpaired := sorted(masks.keys() - images.keys()):
        raise _fail(f"{masks[unpaired[0]]}: no image images/{unpaired[0]}.* for this mask")
    if fov and fov.keys() != images.keys():
        stem = sorted(images.keys() ^ fov.keys())[0]
        raise _fail(f"fov/: has no file for {stem}, or one without an image (all or none)")
    count = manifest.get("count")
    if count is not None and count != len(images):
        raise _fail(f"manifest.json: count is {count} but the archive has {len(images)} pairs")
    if "datalist.json" in entries:
        check_datalist(_json(zf, entries["datalist.json"], limits), entries)
    if "README.md" in entries:
        _text(zf, entries["README.md"], limits)
    size, channels, formats = None, 0, set()
    for stem in sorted(images):
        image = _decode(
            images[stem], _read(zf, entries[images[stem]], limits.max_member_bytes), limits
        )
        shape = image.shape[:2]
        size = size or shape
        if shape != size:
            raise _fail(
                f"{images[stem]}: {shape[1]}x{shape[0]}, other images are {size[1]}x{size[0]}"
            )
        channels = 1 if image.ndim == 2 else image.shape[2]
        for kind, table in (("mask", masks), ("field of view", fov)):
            if stem not in table:
                continue
            member = table[stem]
            m = _decode(member, _read(zf, entries[member], limits.max_member_bytes), limits)
            if m.shape[:2] != shape:
                size_of = f"{m.shape[1]}x{m.shape[0]}, its image {shape[1]}x{shape[0]}"
                raise _fail(f"{member}: {kind} is {size_of}")
            if m.ndim == 3:
                m = m[..., 0] if (m == m[..., :1]).all() else m.sum(-1)
            values = np.unique(m)
            if not set(values.tolist()) <= {0, 1, 255}:
                raise _fail(f"{member}: {kind} is not binary (values {values[:6].tolist()}...)")
        formats.add(Path(images[stem]).suffix.lower().lstrip("."))
    members = {p: info.filename for p, info in entries.items()}
    return Upload(
        card, manifest, metrics, members, sorted(images), size[1], size[0], channels, formats
    )


def pack_folder(
    folder: str | Path, card: dict[str, Any], out: str | Path, metrics: str | Path | None = None
) -> Path:
    """Zip a dataset folder (``synthmed generate``'s layout) with ``card`` for upload.

    The folder's ``datalist.json`` and ``README.md`` go along when present, so a download
    loads with MONAI as the generated folder did. Members are stored, not deflated: the
    images are PNG/JPEG already, and storing keeps packing as fast as copying.
    """
    folder, out = Path(folder), Path(out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
        zf.write(folder / "manifest.json", "manifest.json")
        if metrics is not None:
            zf.write(metrics, "metrics.json")
        for name in ("datalist.json", *TEXT_FILES):
            if (folder / name).is_file():
                zf.write(folder / name, name)
        for sub in FOLDERS:
            if (folder / sub).is_dir():
                for f in sorted((folder / sub).iterdir()):
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                        zf.write(f, f"{sub}/{f.name}")
    return out
