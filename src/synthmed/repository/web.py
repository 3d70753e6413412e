"""What the repository's routers share: the :class:`Repository` of the app serving a request,
the token check, a dataset looked up from its URL, files served from the store, and a dataset
version as JSON.

The app keeps its :class:`Repository` in ``app.state.repo`` (``app.create_app``); routes reach
it through the :data:`Repo` dependency, and owner-only routes take :data:`Owner`.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated[..., Depends(...)]
# hints of the routes and dependencies at run time.
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from synthmed.repository.catalogue import Dataset
from synthmed.repository.service import Repository
from synthmed.repository.storage import iter_chunks

bearer = HTTPBearer(auto_error=False)


def get_repository(request: Request) -> Repository:
    """The repository of the app serving ``request`` (a dependency: use :data:`Repo`)."""
    return request.app.state.repo


Repo = Annotated[Repository, Depends(get_repository)]


def owner(
    repo: Repo, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The publisher whose token the request carries; 401 without a valid one (a dependency:
    use :data:`Owner`)."""
    who = repo.catalogue.owner_of(creds.credentials) if creds else None
    if who is None:
        raise HTTPException(
            401, "a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


Owner = Annotated[str, Depends(owner)]


def lookup(repo: Repository, name: str, version: str) -> Dataset:
    """The dataset version a URL names (``version``: a number or ``latest``); 404 if none.

    Called inside the routes, not as a dependency: a missing dataset is reported after the
    token and the request body have been checked.
    """
    if version == "latest":
        ds = repo.catalogue.get(name)
    elif version.isdigit():
        ds = repo.catalogue.get(name, int(version))
    else:
        raise HTTPException(404, f"version {version!r}: expected a number or 'latest'")
    if ds is None:
        raise HTTPException(404, f"no dataset {name} version {version}")
    return ds


def serve_key(repo: Repository, key: str, media_type: str, **kw: Any) -> Response:
    """The stored file ``key``: sent from disk when the store is a folder, streamed otherwise
    (S3); 404 if it is not there. ``kw``: ``headers`` and ``filename`` (a download)."""
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
