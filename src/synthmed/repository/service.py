"""Publishing, editing and deleting datasets: the catalogue and the store kept in step.

A publish runs in this order, so that a failure at any point leaves nothing visible and no
orphan files:

1. the upload, already on local disk, is checked completely (:func:`inspect_upload`);
2. a *pending* catalogue row reserves the next version of the name (the database's unique
   constraint settles concurrent publishes);
3. files, previews and the download archive are written under ``datasets/<uid>/``;
4. one commit turns the row *published*.

If 3 or 4 fails, the row and the folder are removed. If the server dies between 2 and 4,
:meth:`Repository.sweep` (run at start) removes the pending row and its folder.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthmed.files import sha256_file
from synthmed.repository.archive import (
    CARD_TEXT_LIMITS,
    FOLDERS,
    Limits,
    Upload,
    UploadRejected,
    canonical_members,
    check_card,
    inspect_upload,
)
from synthmed.repository.catalogue import EDITABLE, Catalogue, Dataset, NameTaken
from synthmed.repository.storage import Storage

GALLERY = 8  # pairs with previews on a dataset page
PREVIEW = 256  # side of preview images, pixels
OVERLAY_RGB = (0, 255, 80)  # vessel colour in the overlays


class PermissionDenied(Exception):
    """The token may not change this dataset."""


@dataclass
class Repository:
    """The service behind the web app and the API: one catalogue, one store, upload limits."""

    catalogue: Catalogue
    storage: Storage
    limits: Limits
    # Uploads are spooled here (local disk) while they are checked, then deleted.
    incoming: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="synthmed-incoming-"))
    )

    # -- publish --------------------------------------------------------------------------
    def publish(self, upload_path: Path, owner: str) -> Dataset:
        """Publish the archive at ``upload_path`` for ``owner``; return the new version."""
        up = inspect_upload(upload_path, self.limits)
        name = up.card["name"]
        uid = uuid.uuid4().hex
        try:
            version = self.catalogue.reserve(name, uid, owner, self._fields(up))
        except NameTaken as e:
            raise PermissionDenied(str(e)) from None
        try:
            final = self._store(upload_path, up, uid, name, version, owner)
            self.catalogue.finish(uid, final)
        except BaseException:
            self.storage.delete_prefix(f"datasets/{uid}")
            self.catalogue.discard(uid)
            raise
        ds = self.catalogue.get(name, version)
        assert ds is not None
        return ds

    def _fields(self, up: Upload) -> dict[str, Any]:
        return {
            **{k: up.card[k] for k in EDITABLE},
            "resolution": up.width if up.width == up.height else max(up.width, up.height),
            "count": len(up.stems),
            "metrics": json.dumps(up.metrics) if up.metrics is not None else None,
        }

    def _store(
        self, upload_path: Path, up: Upload, uid: str, name: str, version: int, owner: str
    ) -> dict[str, Any]:
        base = f"datasets/{uid}"
        card = make_card(up, name, version, owner)
        with zipfile.ZipFile(upload_path) as zf:
            for path, member in up.members.items():
                if path.split("/")[0] in FOLDERS:
                    self.storage.put_bytes(f"{base}/files/{path}", zf.read(member))
            for i, stem in enumerate(up.stems[:GALLERY]):
                self._previews(zf, up, stem, f"{base}/previews/{i:02d}")
        listing = {
            f: sorted(p.split("/")[1] for p in up.members if p.startswith(f + "/")) for f in FOLDERS
        }
        self.storage.put_bytes(
            f"{base}/files.json", json.dumps({k: v for k, v in listing.items() if v}).encode()
        )
        top = f"{name}-v{version}"
        archive = self._write_archive(upload_path, up.members, card, base, top, 0)
        return {"card": json.dumps(card), **archive}

    def _previews(self, zf: zipfile.ZipFile, up: Upload, stem: str, key: str) -> None:
        """Small PNGs of one pair for the gallery: image, mask and the mask over the image."""
        image = _open(zf.read(up.members[_member(up, "images", stem)])).convert("RGB")
        mask = _open(zf.read(up.members[_member(up, "masks", stem)])).convert("L")
        image.thumbnail((PREVIEW, PREVIEW))
        mask = mask.resize(image.size, Image.Resampling.NEAREST)
        vessels = np.asarray(mask) > 0
        over = np.asarray(image).copy()
        over[vessels] = (0.4 * over[vessels] + 0.6 * np.array(OVERLAY_RGB)).astype(np.uint8)
        for kind, im in (("image", image), ("mask", mask), ("overlay", Image.fromarray(over))):
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            self.storage.put_bytes(f"{key}-{kind}.png", buf.getvalue())

    def _write_archive(
        self,
        source: Path,
        members: dict[str, str],
        card: dict[str, Any],
        base: str,
        top: str,
        revision: int,
    ) -> dict[str, Any]:
        """Build the download zip (card, manifest, metrics, pairs under ``top/``) and store it.

        Built once per publish or edit, so downloads stream a file and never zip on the fly.
        """
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dataset.zip"
            with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
                dst.writestr(f"{top}/card.json", json.dumps(card, indent=2, sort_keys=True) + "\n")
                for path in sorted(members):
                    if path == "card.json":
                        continue
                    with src.open(members[path]) as f, dst.open(f"{top}/{path}", "w") as g:
                        shutil.copyfileobj(f, g, 1 << 20)
            digest = sha256_file(out)
            key = f"{base}/archive-{revision}.zip"
            self.storage.put_file(key, out)
            return {
                "archive_key": key,
                "archive_sha256": digest,
                "archive_bytes": out.stat().st_size,
            }

    # -- edit, delete ---------------------------------------------------------------------
    def _owned(self, name: str, version: int, owner: str) -> Dataset:
        ds = self.catalogue.get(name, version)
        if ds is None:
            raise KeyError(f"{name} v{version}")
        if ds.owner != owner:
            raise PermissionDenied(f"dataset {name!r} belongs to another publisher")
        return ds

    def edit(self, name: str, version: int, owner: str, changes: dict[str, Any]) -> Dataset:
        """Change the card's text fields of one version; the download archive is rebuilt so
        that its card.json says the same as the page."""
        ds = self._owned(name, version, owner)
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise UploadRejected(f"cannot edit {', '.join(sorted(unknown))}")
        card = check_card({**ds.card, **changes, "name": name})
        new_card = {**ds.card, **{k: card[k] for k in CARD_TEXT_LIMITS}}
        revision = int(ds.archive_key.rsplit("-", 1)[1].split(".")[0]) + 1
        with tempfile.TemporaryDirectory() as tmp:
            old = Path(tmp) / "old.zip"
            with self.storage.open(ds.archive_key) as f, open(old, "wb") as g:
                shutil.copyfileobj(f, g, 1 << 20)
            # Our own archive, checked when it was published: map its members, decode nothing.
            with zipfile.ZipFile(old) as zf:
                members = {p: i.filename for p, i in canonical_members(zf, self.limits).items()}
            archive = self._write_archive(
                old, members, new_card, f"datasets/{ds.uid}", f"{name}-v{version}", revision
            )
        self.catalogue.update(
            ds.uid, {**{k: card[k] for k in EDITABLE}, "card": json.dumps(new_card), **archive}
        )
        self.storage.delete(ds.archive_key)
        out = self.catalogue.get(name, version)
        assert out is not None
        return out

    def delete(self, name: str, version: int, owner: str) -> None:
        """Remove one version: first from the catalogue (it vanishes at once), then its files."""
        ds = self._owned(name, version, owner)
        self.catalogue.discard(ds.uid)
        self.storage.delete_prefix(f"datasets/{ds.uid}")

    # -- housekeeping ---------------------------------------------------------------------
    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove publishes that died half-way: pending rows and folders with no row.

        Only those older than ``older_than`` seconds, so a publish in flight in another
        server process is left alone. Returns how many were removed.
        """
        removed = 0
        for uid in self.catalogue.stale_pending(older_than):
            self.storage.delete_prefix(f"datasets/{uid}")
            self.catalogue.discard(uid)
            removed += 1
        known = self.catalogue.known_uids()
        for uid in self.storage.prefixes("datasets"):
            modified = self.storage.last_modified(f"datasets/{uid}")
            if uid not in known and (modified is None or time.time() - modified > older_than):
                self.storage.delete_prefix(f"datasets/{uid}")
                removed += 1
        return removed


def make_card(up: Upload, name: str, version: int, owner: str) -> dict[str, Any]:
    """The dataset card: what a researcher needs to judge the data before downloading."""
    models = up.manifest.get("models", {})
    return {
        **{k: up.card[k] for k in CARD_TEXT_LIMITS},
        "name": name,
        "version": version,
        "publisher": owner,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pairs": len(up.stems),
        "resolution": f"{up.width}x{up.height}",
        "channels": up.channels,
        "image_formats": sorted(up.formats),
        "field_of_view_masks": any(p.startswith("fov/") for p in up.members),
        "model_sha256": {k: v.get("sha256", "") for k, v in models.items() if isinstance(v, dict)},
        "generator": {
            k: up.manifest[k]
            for k in ("generator", "version", "seed", "precision", "stochastic_texture")
            if k in up.manifest
        },
        "metrics_included": up.metrics is not None,
    }


def _member(up: Upload, folder: str, stem: str) -> str:
    return next(p for p in up.members if p.startswith(f"{folder}/{stem}."))


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))
