"""The files of a dataset version: the whole archive and its checksum, the list of its files,
one image, mask or field of view, and the gallery's previews."""

# No "from __future__ import annotations": FastAPI reads the routes' hints at run time.
import json
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse, Response

from synthmed.repository.archive import FOLDERS, STEM
from synthmed.repository.web import Repo, dataset_urls, lookup, serve_key

router = APIRouter()


def _cache() -> dict[str, str]:
    # A published version's files never change (an edit rewrites only card and archive).
    return {"Cache-Control": "public, max-age=86400, immutable"}


@router.get("/api/datasets/{name}/{version}/download", tags=["files"])
def download(repo: Repo, name: str, version: str) -> Response:
    """The whole version as a zip, streamed; its SHA-256 is in ``X-Checksum-SHA256``."""
    ds = lookup(repo, name, version)
    headers = {"X-Checksum-SHA256": ds.archive_sha256, "ETag": f'"{ds.archive_sha256}"'}
    filename = f"{ds.name}-v{ds.version}.zip"
    return serve_key(repo, ds.archive_key, "application/zip", filename=filename, headers=headers)


@router.get("/api/datasets/{name}/{version}/download.sha256", tags=["files"])
def checksum(repo: Repo, name: str, version: str) -> PlainTextResponse:
    """The archive's checksum in ``sha256sum -c`` format."""
    ds = lookup(repo, name, version)
    return PlainTextResponse(f"{ds.archive_sha256}  {ds.name}-v{ds.version}.zip\n")


@router.get("/api/datasets/{name}/{version}/files", tags=["files"])
def list_files(repo: Repo, name: str, version: str) -> dict[str, Any]:
    """URLs of every image, mask and field-of-view file of a version."""
    ds = lookup(repo, name, version)
    with repo.storage.open(f"datasets/{ds.uid}/files.json") as f:
        files = json.load(f)
    base = dataset_urls(ds)["files"]
    return {k: [f"{base}/{k}/{n}" for n in names] for k, names in files.items()}


@router.get("/api/datasets/{name}/{version}/files/{kind}/{filename}", tags=["files"])
def one_file(repo: Repo, name: str, version: str, kind: str, filename: str) -> Response:
    """One image, mask or field of view, by file name."""
    ds = lookup(repo, name, version)
    stem, dot, suffix = filename.rpartition(".")
    if kind not in FOLDERS or not dot or not STEM.match(stem):
        raise HTTPException(404, "file not found")
    media = "image/png" if suffix == "png" else "image/jpeg" if "jp" in suffix else "image/tiff"
    return serve_key(repo, f"datasets/{ds.uid}/files/{kind}/{filename}", media, headers=_cache())


@router.get("/api/datasets/{name}/{version}/previews/{filename}", tags=["files"])
def preview(repo: Repo, name: str, version: str, filename: str) -> Response:
    """Small PNG previews of the gallery pairs: ``NN-image|mask|overlay.png``."""
    ds = lookup(repo, name, version)
    stem, _, suffix = filename.rpartition(".")
    if suffix != "png" or not STEM.match(stem):
        raise HTTPException(404, "file not found")
    key = f"datasets/{ds.uid}/previews/{filename}"
    return serve_key(repo, key, "image/png", headers=_cache())
