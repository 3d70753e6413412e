"""The pages people browse: the catalogue with search and filters, a dataset version's page,
and error pages (outside ``/api/``, where errors stay JSON)."""

# No "from __future__ import annotations": FastAPI reads the routes' hints at run time.
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from synthmed.repository.service import GALLERY
from synthmed.repository.summary import metrics_summary
from synthmed.repository.web import Repo, dataset_json, lookup

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _size(n: int) -> str:
    """Bytes as a person reads them: 812 KB, 52.4 MB, 1.3 GB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


TEMPLATES.env.filters["size"] = _size
PAGE_SIZE = 24
router = APIRouter(include_in_schema=False)


async def errors(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON errors for the API, a page for people everywhere else (the app's handler of
    HTTP errors)."""
    if request.url.path.startswith("/api/"):
        return await http_exception_handler(request, exc)
    context = {"status": exc.status_code, "detail": exc.detail}
    return TEMPLATES.TemplateResponse(
        request, "error.html", context, status_code=exc.status_code, headers=exc.headers
    )


@router.get("/")
def catalogue_page(
    request: Request,
    repo: Repo,
    q: str = "",
    domain: str = "",
    modality: str = "",
    resolution: str = "",
    license: str = "",
    page: int = Query(1, ge=1),
) -> Response:
    """The catalogue: one page of search results with the filters' choices."""
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


@router.get("/datasets/{name}")
def latest_page(repo: Repo, name: str) -> RedirectResponse:
    """A dataset's newest version (a redirect to its page)."""
    ds = lookup(repo, name, "latest")
    return RedirectResponse(f"/datasets/{ds.name}/{ds.version}", status_code=302)


@router.get("/datasets/{name}/{version}")
def dataset_page(request: Request, repo: Repo, name: str, version: str) -> Response:
    """One version's page: card, gallery, metrics and downloads."""
    ds = lookup(repo, name, version)
    context = {
        "d": dataset_json(ds),
        "gallery": range(min(GALLERY, ds.count)),
        "summary": metrics_summary(ds.metrics),
    }
    return TEMPLATES.TemplateResponse(request, "dataset.html", context)
