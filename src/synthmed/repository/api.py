"""The JSON API of datasets: list and search, publish (the upload), read, edit and delete one
version. Files and downloads are in ``downloads.py``; see ``app.py`` for the whole API."""

# No "from __future__ import annotations": FastAPI reads the routes' hints at run time.
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from synthmed.repository.archive import UploadRejected
from synthmed.repository.service import PermissionDenied
from synthmed.repository.web import Owner, Repo, dataset_json, lookup

router = APIRouter()


class CardEdit(BaseModel):
    """Fields of a dataset card its owner may change."""

    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    license: str | None = Field(None, max_length=100)
    domain: str | None = Field(None, max_length=64)
    modality: str | None = Field(None, max_length=64)
    source: str | None = Field(None, max_length=1000)


@dataclass
class Search:
    """A catalogue search as ``GET /api/datasets`` reads it from the query string."""

    q: str
    filters: dict[str, Any]
    limit: int
    offset: int
    all_versions: bool


def search_query(
    q: str = "",
    domain: str = "",
    modality: str = "",
    resolution: int | None = None,
    license: str = "",
    all_versions: bool = False,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> Search:
    """The query parameters of ``GET /api/datasets`` (a dependency of :func:`list_datasets`)."""
    filters = {"domain": domain, "modality": modality, "resolution": resolution}
    return Search(q, filters | {"license": license}, limit, offset, all_versions)


@router.get("/api/datasets", tags=["datasets"])
def list_datasets(repo: Repo, search: Annotated[Search, Depends(search_query)]) -> dict[str, Any]:
    """Published datasets (latest version of each unless ``all_versions``), newest first."""
    total, items = repo.catalogue.search(
        search.q, search.filters, search.limit, search.offset, search.all_versions
    )
    return {"total": total, "datasets": [dataset_json(d, full=False) for d in items]}


@router.post(
    "/api/datasets",
    status_code=201,
    tags=["datasets"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}},
)
async def publish(request: Request, repo: Repo, who: Owner) -> JSONResponse:
    """Publish a dataset archive; the same name again makes a new version."""
    limit = repo.limits.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload: larger than {limit} bytes")
    fd, tmp = tempfile.mkstemp(suffix=".zip", dir=repo.incoming)
    try:
        size = 0
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload: larger than {limit} bytes")
                f.write(chunk)
        ds = await run_in_threadpool(repo.publish, Path(tmp), who)
    except UploadRejected as e:
        raise HTTPException(e.status, str(e)) from None
    except PermissionDenied as e:
        raise HTTPException(403, str(e)) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    body = dataset_json(ds)
    return JSONResponse(body, status_code=201, headers={"Location": body["urls"]["api"]})


@router.get("/api/datasets/{name}/{version}", tags=["datasets"])
def get_dataset(repo: Repo, name: str, version: str) -> dict[str, Any]:
    """One version with its card, metrics and the list of all versions."""
    return dataset_json(lookup(repo, name, version))


@router.patch("/api/datasets/{name}/{version}", tags=["datasets"])
def edit_dataset(repo: Repo, name: str, version: str, edit: CardEdit, who: Owner) -> dict[str, Any]:
    """Change the card's text fields (owner only)."""
    ds = lookup(repo, name, version)
    changes = edit.model_dump(exclude_none=True)
    try:
        return dataset_json(repo.edit(ds.name, ds.version, who, changes))
    except PermissionDenied as e:
        raise HTTPException(403, str(e)) from None
    except UploadRejected as e:
        raise HTTPException(e.status, str(e)) from None


@router.delete("/api/datasets/{name}/{version}", status_code=204, tags=["datasets"])
def delete_dataset(repo: Repo, name: str, version: str, who: Owner) -> Response:
    """Delete one version (owner only); other versions stay."""
    ds = lookup(repo, name, version)
    try:
        repo.delete(ds.name, ds.version, who)
    except PermissionDenied as e:
        raise HTTPException(403, str(e)) from None
    return Response(status_code=204)
