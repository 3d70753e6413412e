"""``synthmed publish``: pack a generated dataset with its card and upload it to a repository."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx

from synthmed.errors import UserError
from synthmed.files import read_json
from synthmed.repository.archive import (
    IMAGE_SUFFIXES,
    UploadRejected,
    check_card,
    pack_folder,
)

TIMEOUT = httpx.Timeout(30.0, read=600.0)  # the server checks every image before answering


def check_folder(folder: Path) -> None:
    """Refuse a folder that is not a dataset from ``synthmed generate`` before uploading."""
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found")
    read_json(folder / "manifest.json")  # a clear error if it is missing or broken
    for sub in ("images", "masks"):
        files = [f for f in (folder / sub).glob("*") if f.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise UserError(f"{folder / sub}: no PNG, JPEG or TIFF files")


def publish(
    folder: str | Path,
    server: str,
    token: str,
    card: dict[str, Any],
    metrics: str | Path | None = None,
) -> dict[str, Any]:
    """Upload ``folder`` with ``card`` (title, license, ...) and return the server's record.

    ``metrics`` defaults to ``folder/metrics.json`` when that exists.
    """
    folder = Path(folder)
    check_folder(folder)
    try:
        card = check_card(card)
    except UploadRejected as e:
        raise UserError(str(e).replace("card.json: ", "")) from None
    if metrics is None and (folder / "metrics.json").is_file():
        metrics = folder / "metrics.json"
    if metrics is not None:
        read_json(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_folder(folder, card, Path(tmp) / "upload.zip", metrics)
        size = archive.stat().st_size

        def body():  # noqa: ANN202 - streamed, so memory does not grow with the dataset
            with open(archive, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/zip",
            "Content-Length": str(size),
        }
        url = server.rstrip("/") + "/api/datasets"
        try:
            r = httpx.post(url, content=body(), headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as e:
            raise UserError(f"{server}: cannot reach the repository ({e})") from None
    if r.status_code != 201:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text.strip()[:200]
        raise UserError(f"{server}: publish refused ({r.status_code}): {detail}")
    return r.json()
