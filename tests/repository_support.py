"""Shared pieces of the repository tests: tiny datasets and a real server on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from synthmed.repository.archive import Limits
from synthmed.repository.catalogue import Catalogue
from synthmed.repository.loadcheck import serving, write_dataset
from synthmed.repository.service import Repository
from synthmed.repository.storage import LocalStorage


def make_dataset(folder: Path, n: int = 3, size: int = 32, seed: int = 0) -> Path:
    """A dataset folder in ``synthmed generate``'s layout: RGB images, binary masks, fov,
    and a manifest with model hashes."""
    write_dataset(folder, n, size, seed)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest |= {"version": "0.1.0", "channels": 3}
    manifest["models"] = {"geometry": {"sha256": "ab" * 32}, "texture": {"sha256": "cd" * 32}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    repo: Repository
    root: Path

    def token(self, owner: str) -> str:
        return self.repo.catalogue.create_token(owner)


def new_repository(root: Path, limits: Limits | None = None) -> Repository:
    return Repository(
        Catalogue(root / "catalogue.sqlite"), LocalStorage(root / "files"), limits or Limits()
    )


@contextmanager
def serve_in_thread(root: Path, limits: Limits | None = None) -> Iterator[Server]:
    """The app under uvicorn in a thread, listening on a free loopback port."""
    from synthmed.repository.app import create_app

    repo = new_repository(root, limits)
    port = free_port()
    config = uvicorn.Config(create_app(repo), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", repo, root)
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_subprocess(root: Path) -> Iterator[str]:
    """``synthmed serve`` as its own process (the way a lab runs it); yields the URL."""
    with serving(root) as (url, _pid):
        yield url
