"""The SynthMed repository as a FastAPI app: a JSON API under ``/api/`` and server-rendered pages.

Reading is public. Publishing, editing and deleting need ``Authorization: Bearer TOKEN``
(tokens come from ``synthmed token create``), and a token changes only its owner's datasets.

API (the schema is served at ``/openapi.json``, browsable at ``/docs``):

* ``GET  /api/datasets?q=&domain=&modality=&resolution=&license=&limit=&offset=``
* ``POST /api/datasets`` — body: the upload zip (``application/zip``, see ``archive.py``)
* ``GET|PATCH|DELETE /api/datasets/{name}/{version}`` (``version`` may be ``latest``)
* ``GET  /api/datasets/{name}/{version}/download`` (+ ``.sha256``), ``/files``,
  ``/files/{images|masks|fov}/{file}``, ``/previews/{file}``

Pages: ``/`` (catalogue with search and filters), ``/datasets/{name}[/{version}]``.
"""

# No "from __future__ import annotations" here: FastAPI must evaluate the Annotated[...,
# Depends(owner)] hints, and owner is local to create_app.
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthmed import __version__
from synthmed.repository.archive import FOLDERS, STEM, UploadRejected
from synthmed.repository.catalogue import Dataset
from synthmed.repository.service import GALLERY, PermissionDenied, Repository
from synthmed.repository.storage import iter_chunks
from synthmed.repository.summary import metrics_summary

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _size(n: int) -> str:
    """Bytes as a person reads them: 812 KB, 52.4 MB, 1.3 GB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


TEMPLATES.env.filters["size"] = _size
PAGE_SIZE = 24
bearer = HTTPBearer(auto_error=False)


class CardEdit(BaseModel):
    """Fields of a dataset card its owner may change."""

    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    license: str | None = Field(None, max_length=100)
    domain: str | None = Field(None, max_length=64)
    modality: str | None = Field(None, max_length=64)
    source: str | None = Field(None, max_length=1000)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def dataset_urls(ds: Dataset) -> dict[str, str]:
    """Where a dataset version's page, download and files are (paths on this server)."""
    api = f"/api/datasets/{ds.name}/{ds.version}"
    return {
        "page": f"/datasets/{ds.name}/{ds.version}",
        "api": api,
        "download": f"{api}/download",
        "checksum": f"{api}/download.sha256",
        "files": f"{api}/files",
        "thumbnail": f"{api}/previews/00-image.png",
    }


def dataset_json(ds: Dataset, full: bool = True) -> dict[str, Any]:
    """A dataset version as the API returns it (``full``: with card and metrics)."""
    out = {
        "name": ds.name,
        "version": ds.version,
        "title": ds.title,
        "description": ds.description,
        "license": ds.license,
        "domain": ds.domain,
        "modality": ds.modality,
        "source": ds.source,
        "resolution": ds.resolution,
        "pairs": ds.count,
        "publisher": ds.owner,
        "published": _iso(ds.created),
        "archive": {"bytes": ds.archive_bytes, "sha256": ds.archive_sha256},
        "urls": dataset_urls(ds),
    }
    if full:
        out |= {"versions": ds.versions, "card": ds.card, "metrics": ds.metrics}
    return out


# Over 80 lines or 8 parameters: issue 31's unsplit debt; tests/test_function_size.py
# keeps it from growing.
def create_app(repo: Repository) -> FastAPI:
    """The web app over ``repo``. Runs :meth:`Repository.sweep` once at start."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        shutil.rmtree(repo.incoming, ignore_errors=True)  # only spooled uploads live there

    app = FastAPI(
        lifespan=lifespan,
        title="SynthMed repository",
        version=__version__,
        description="Synthetic medical image datasets: publish, browse, download.",
    )
    app.state.repo = repo
    repo.sweep()

    def owner(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        who = repo.catalogue.owner_of(creds.credentials) if creds else None
        if who is None:
            raise HTTPException(
                401, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return who

    def lookup(name: str, version: str) -> Dataset:
        if version == "latest":
            ds = repo.catalogue.get(name)
        elif version.isdigit():
            ds = repo.catalogue.get(name, int(version))
        else:
            raise HTTPException(404, f"version {version!r}: expected a number or 'latest'")
        if ds is None:
            raise HTTPException(404, f"no dataset {name} version {version}")
        return ds

    def serve_key(key: str, media_type: str, **kw: Any) -> Response:
        path = repo.storage.local_path(key)
        if path is not None:
            return FileResponse(path, media_type=media_type, **kw)
        try:
            stream = repo.storage.open(key)
        except FileNotFoundError:
            raise HTTPException(404, "file not found") from None
        headers = kw.get("headers", {})
        if kw.get("filename"):
            headers["Content-Disposition"] = f'attachment; filename="{kw["filename"]}"'
        return StreamingResponse(iter_chunks(stream), media_type=media_type, headers=headers)

    # -- API ------------------------------------------------------------------------------
    @app.get("/api/datasets", tags=["datasets"])
    def list_datasets(
        q: str = "",
        domain: str = "",
        modality: str = "",
        resolution: int | None = None,
        license: str = "",
        all_versions: bool = False,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        """Published datasets (latest version of each unless ``all_versions``), newest first."""
        filters = {"domain": domain, "modality": modality, "resolution": resolution}
        total, items = repo.catalogue.search(
            q, filters | {"license": license}, limit, offset, all_versions
        )
        return {"total": total, "datasets": [dataset_json(d, full=False) for d in items]}

    @app.post(
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
    async def publish(request: Request, who: Annotated[str, Depends(owner)]) -> JSONResponse:
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

    @app.get("/api/datasets/{name}/{version}", tags=["datasets"])
    def get_dataset(name: str, version: str) -> dict[str, Any]:
        """One version with its card, metrics and the list of all versions."""
        return dataset_json(lookup(name, version))

    @app.patch("/api/datasets/{name}/{version}", tags=["datasets"])
    def edit_dataset(
        name: str, version: str, edit: CardEdit, who: Annotated[str, Depends(owner)]
    ) -> dict[str, Any]:
        """Change the card's text fields (owner only)."""
        ds = lookup(name, version)
        changes = edit.model_dump(exclude_none=True)
        try:
            return dataset_json(repo.edit(ds.name, ds.version, who, changes))
        except PermissionDenied as e:
            raise HTTPException(403, str(e)) from None
        except UploadRejected as e:
            raise HTTPException(e.status, str(e)) from None

    @app.delete("/api/datasets/{name}/{version}", status_code=204, tags=["datasets"])
    def delete_dataset(name: str, version: str, who: Annotated[str, Depends(owner)]) -> Response:
        """Delete one version (owner only); other versions stay."""
        ds = lookup(name, version)
        try:
            repo.delete(ds.name, ds.version, who)
        except PermissionDenied as e:
            raise HTTPException(403, str(e)) from None
        return Response(status_code=204)

    @app.get("/api/datasets/{name}/{version}/download", tags=["files"])
    def download(name: str, version: str) -> Response:
        """The whole version as a zip, streamed; its SHA-256 is in ``X-Checksum-SHA256``."""
        ds = lookup(name, version)
        headers = {"X-Checksum-SHA256": ds.archive_sha256, "ETag": f'"{ds.archive_sha256}"'}
        filename = f"{ds.name}-v{ds.version}.zip"
        return serve_key(ds.archive_key, "application/zip", filename=filename, headers=headers)

    @app.get("/api/datasets/{name}/{version}/download.sha256", tags=["files"])
    def checksum(name: str, version: str) -> PlainTextResponse:
        """The archive's checksum in ``sha256sum -c`` format."""
        ds = lookup(name, version)
        return PlainTextResponse(f"{ds.archive_sha256}  {ds.name}-v{ds.version}.zip\n")

    @app.get("/api/datasets/{name}/{version}/files", tags=["files"])
    def list_files(name: str, version: str) -> dict[str, Any]:
        """URLs of every image, mask and field-of-view file of a version."""
        ds = lookup(name, version)
        with repo.storage.open(f"datasets/{ds.uid}/files.json") as f:
            files = json.load(f)
        base = dataset_urls(ds)["files"]
        return {k: [f"{base}/{k}/{n}" for n in names] for k, names in files.items()}

    @app.get("/api/datasets/{name}/{version}/files/{kind}/{filename}", tags=["files"])
    def one_file(name: str, version: str, kind: str, filename: str) -> Response:
        """One image, mask or field of view, by file name."""
        ds = lookup(name, version)
        stem, dot, suffix = filename.rpartition(".")
        if kind not in FOLDERS or not dot or not STEM.match(stem):
            raise HTTPException(404, "file not found")
        media = "image/png" if suffix == "png" else "image/jpeg" if "jp" in suffix else "image/tiff"
        return serve_key(f"datasets/{ds.uid}/files/{kind}/{filename}", media, headers=_cache())

    @app.get("/api/datasets/{name}/{version}/previews/{filename}", tags=["files"])
    def preview(name: str, version: str, filename: str) -> Response:
        """Small PNG previews of the gallery pairs: ``NN-image|mask|overlay.png``."""
        ds = lookup(name, version)
        stem, _, suffix = filename.rpartition(".")
        if suffix != "png" or not STEM.match(stem):
            raise HTTPException(404, "file not found")
        return serve_key(f"datasets/{ds.uid}/previews/{filename}", "image/png", headers=_cache())

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # -- pages ----------------------------------------------------------------------------
    @app.exception_handler(StarletteHTTPException)
    async def errors(request: Request, exc: StarletteHTTPException) -> Response:
        """JSON errors for the API, a page for people everywhere else."""
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        context = {"status": exc.status_code, "detail": exc.detail}
        return TEMPLATES.TemplateResponse(
            request, "error.html", context, status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/", include_in_schema=False)
    def catalogue_page(
        request: Request,
        q: str = "",
        domain: str = "",
        modality: str = "",
        resolution: str = "",
        license: str = "",
        page: int = Query(1, ge=1),
    ) -> Response:
        filters = {"domain": domain, "modality": modality, "license": license}
        if resolution.isdigit():
            filters["resolution"] = int(resolution)
        total, items = repo.catalogue.search(q, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        context = {
            "datasets": [dataset_json(d, full=False) | {"metrics": d.metrics} for d in items],
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "facets": repo.catalogue.facets(),
            "query": {
                "q": q,
                "domain": domain,
                "modality": modality,
                "license": license,
                "resolution": resolution,
            },
            "summary": metrics_summary,
        }
        return TEMPLATES.TemplateResponse(request, "catalogue.html", context)

    @app.get("/datasets/{name}", include_in_schema=False)
    def latest_page(name: str) -> RedirectResponse:
        ds = lookup(name, "latest")
        return RedirectResponse(f"/datasets/{ds.name}/{ds.version}", status_code=302)

    @app.get("/datasets/{name}/{version}", include_in_schema=False)
    def dataset_page(request: Request, name: str, version: str) -> Response:
        ds = lookup(name, version)
        context = {
            "d": dataset_json(ds),
            "gallery": range(min(GALLERY, ds.count)),
            "summary": metrics_summary(ds.metrics),
        }
        return TEMPLATES.TemplateResponse(request, "dataset.html", context)

    return app


def _cache() -> dict[str, str]:
    # A published version's files never change (an edit rewrites only card and archive).
    return {"Cache-Control": "public, max-age=86400, immutable"}
