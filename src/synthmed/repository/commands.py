"""The repository's commands: ``serve``, ``publish`` and ``token`` (the admin's)."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import time
from pathlib import Path

from synthmed.errors import UserError

DEFAULT_DB = "synthmed-repo/catalogue.sqlite"
DEFAULT_STORAGE = "synthmed-repo/files"
COMMANDS = ("serve", "publish", "token")
# Packages of the repository extra (pyproject.toml) that each command imports. They are
# imported only inside the commands, so that the rest of the CLI works without the extra.
NEEDS = {
    "serve": ("fastapi", "uvicorn", "jinja2", "sqlalchemy"),
    "publish": ("httpx",),
    "token": ("sqlalchemy",),
    "bench --repository": ("fastapi", "uvicorn", "jinja2", "sqlalchemy", "httpx"),
}
# How to install it, as the one-line error of a command without it says.
INSTALL_EXTRA = (
    "pip install 'synthmed[repository]' (in a source checkout: pip install -e '.[repository]')"
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``serve``, ``publish`` and ``token`` to the ``synthmed`` parser."""

    def where(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--db",
            default=DEFAULT_DB,
            help=f"catalogue: a SQLite file (default {DEFAULT_DB}) or a database URL, "
            "e.g. postgresql+psycopg://user:pass@host/synthmed",
        )

    p = sub.add_parser("serve", help="run the SynthMed repository web service")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    where(p)
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"file store: a folder (default {DEFAULT_STORAGE}) or s3://bucket/prefix",
    )
    p.add_argument("--max-upload-mb", type=int, default=2048, help="largest upload (2048 MB)")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")

    p = sub.add_parser("publish", help="upload a generated dataset to a repository")
    p.add_argument("folder", help="dataset folder written by synthmed generate")
    p.add_argument("--server", required=True, help="repository URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--token", help="API token (default: $SYNTHMED_TOKEN)")
    p.add_argument("--title", required=True)
    p.add_argument("--license", required=True, help="e.g. CC-BY-4.0")
    p.add_argument("--name", help="dataset name in URLs (default: from the title)")
    p.add_argument("--description", default="")
    p.add_argument("--domain", default="", help="e.g. retina")
    p.add_argument("--modality", default="", help="e.g. fundus photography")
    p.add_argument("--source", default="", help="the real data the models were trained on")
    p.add_argument("--metrics", help="metrics.json of synthmed evaluate all (default: FOLDER's)")

    p = sub.add_parser("token", help="create, list or revoke API tokens (repository admin)")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("create", help="a new token for OWNER; printed once")
    q.add_argument("owner", help="publisher name shown on their datasets")
    where(q)
    q = actions.add_parser("list", help="tokens by id (never the secret)")
    where(q)
    q = actions.add_parser("revoke", help="revoke a token by id")
    q.add_argument("id", type=int)
    where(q)


def require_extra(command: str) -> None:
    """Check that the packages ``command`` needs (:data:`NEEDS`) import; if one does not, a
    UserError (one line, exit code 2) saying how to install the repository extra."""
    for name in NEEDS[command]:
        try:
            importlib.import_module(name)
        except ImportError:
            raise UserError(
                f"synthmed {command} needs the repository extra ({name} is not installed): "
                f"{INSTALL_EXTRA}"
            ) from None


def run(args: argparse.Namespace) -> None:
    """Run one of the repository's commands."""
    require_extra(args.command)
    if args.command == "serve":
        serve(args)
    elif args.command == "publish":
        _publish(args)
    else:
        _token(args)


def open_repository(db: str, storage: str, max_upload_mb: int = 2048):  # noqa: ANN201
    """The :class:`Repository` for a ``--db`` and ``--storage`` pair, created if new."""
    from synthmed.repository.archive import Limits
    from synthmed.repository.service import Repository
    from synthmed.repository.storage import open_storage

    if max_upload_mb < 1:
        raise UserError(f"--max-upload-mb {max_upload_mb}: must be at least 1")
    catalogue = _catalogue(db)
    try:
        files = open_storage(storage)
    except (OSError, RuntimeError) as e:
        raise UserError(f"--storage {storage}: cannot open the file store ({e})") from None
    return Repository(catalogue, files, Limits(max_upload_bytes=max_upload_mb << 20))


def app_from_environment():  # noqa: ANN201
    """App factory for ``uvicorn --factory`` (several workers): reads SYNTHMED_* variables."""
    from synthmed.repository.app import create_app

    return create_app(
        open_repository(
            os.environ.get("SYNTHMED_DB", DEFAULT_DB),
            os.environ.get("SYNTHMED_STORAGE", DEFAULT_STORAGE),
            int(os.environ.get("SYNTHMED_MAX_UPLOAD_MB", "2048")),
        )
    )


def serve(args: argparse.Namespace) -> None:
    """Start uvicorn on ``--host:--port`` over the catalogue and store (created on first start)."""
    import uvicorn

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a port number")
    with socket.socket() as probe:  # a taken port is a user error, not a uvicorn traceback
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, args.port))
        except OSError as e:
            raise UserError(f"--host {args.host} --port {args.port}: cannot listen ({e})") from None
    os.environ |= {
        "SYNTHMED_DB": args.db,
        "SYNTHMED_STORAGE": args.storage,
        "SYNTHMED_MAX_UPLOAD_MB": str(args.max_upload_mb),
    }
    app_from_environment()  # create the database and folder now: errors before listening
    print(
        f"SynthMed repository on http://{args.host}:{args.port}/ (catalogue {args.db}, "
        f"files {args.storage})",
        flush=True,
    )
    uvicorn.run(
        "synthmed.repository.commands:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )


def _publish(args: argparse.Namespace) -> None:
    from synthmed.repository.client import publish

    token = args.token or os.environ.get("SYNTHMED_TOKEN")
    if not token:
        raise UserError("publish: give --token or set SYNTHMED_TOKEN (synthmed token create)")
    card = {
        "title": args.title,
        "license": args.license,
        "description": args.description,
        "domain": args.domain,
        "modality": args.modality,
        "source": args.source,
    }
    if args.name:
        card["name"] = args.name
    t0 = time.perf_counter()
    record = publish(Path(args.folder), args.server, token, card, args.metrics)
    url = args.server.rstrip("/") + record["urls"]["page"]
    print(
        f"published {record['name']} version {record['version']} ({record['pairs']} pairs, "
        f"sha256 {record['archive']['sha256'][:12]}…) in {time.perf_counter() - t0:.1f} s: {url}"
    )


def _catalogue(db: str):  # noqa: ANN202
    from sqlalchemy.exc import SQLAlchemyError

    from synthmed.repository.catalogue import Catalogue

    try:
        return Catalogue(db)
    except (SQLAlchemyError, OSError) as e:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise UserError(f"--db {db}: cannot open the catalogue ({reason})") from None


def _token(args: argparse.Namespace) -> None:
    catalogue = _catalogue(args.db)
    if args.action == "create":
        if not args.owner.strip() or len(args.owner) > 64:
            raise UserError("token create: OWNER must be 1 to 64 characters")
        print(catalogue.create_token(args.owner.strip()))
        print("(shown once: only its hash is stored)", file=sys.stderr)
    elif args.action == "list":
        for t in catalogue.list_tokens():
            state = "revoked" if t["revoked"] else "active"
            created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t["created"]))
            print(f"{t['id']:>4}  {t['owner']:<24} {created}  {state}")
    elif not catalogue.revoke_token(args.id):
        raise UserError(f"token revoke: no token with id {args.id}")
    else:
        print(f"token {args.id} revoked")
