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

The routes are in three routers: ``api.py`` (datasets: list, publish, read, edit, delete),
``downloads.py`` (archives, files, previews) and ``pages.py`` (HTML, and the error pages);
``web.py`` holds what they share. Each reaches the :class:`Repository` through
``app.state.repo``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthmed import __version__
from synthmed.repository import api, downloads, pages
from synthmed.repository.service import Repository


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, remove uploads still spooled in the repository's ``incoming`` folder."""
    yield
    shutil.rmtree(app.state.repo.incoming, ignore_errors=True)  # only spooled uploads live there


def health() -> dict[str, str]:
    """``GET /healthz``: the server answers."""
    return {"status": "ok"}


def create_app(repo: Repository) -> FastAPI:
    """The web app over ``repo``. Runs :meth:`Repository.sweep` once at start."""
    app = FastAPI(
        lifespan=lifespan,
        title="SynthMed repository",
        version=__version__,
        description="Synthetic medical image datasets: publish, browse, download.",
    )
    app.state.repo = repo
    repo.sweep()
    app.include_router(api.router)
    app.include_router(downloads.router)
    app.add_api_route("/healthz", health, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(StarletteHTTPException, pages.errors)
    app.include_router(pages.router)
    return app
