"""Shared pieces of the repository tests: tiny datasets and a real server on a loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from synthmed.repository.archive import Limits
from synthmed.repository.catalogue import Catalogue
from synthmed.repository.service import Repository
from synthmed.repository.storage import LocalStorage


def make_dataset(folder: Path, n: int = 3, size: int = 32, seed: int = 0) -> Path:
    """A dataset folder in ``synthmed generate``'s layout: RGB images, binary masks, fov."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", "fov"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    fov = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2) ** 2).astype(np.uint8) * 255
    for i in range(n):
        mask = (rng.random((size, size)) < 0.15).astype(np.uint8) * 255
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / "images" / f"{i:04d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i:04d}.png")
        Image.fromarray(fov).save(folder / "fov" / f"{i:04d}.png")
    manifest = {
        "generator": "synthmed",
        "version": "0.1.0",
        "count": n,
        "seed": seed,
        "resolution": size,
        "channels": 3,
        "models": {"geometry": {"sha256": "ab" * 32}, "texture": {"sha256": "cd" * 32}},
    }
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
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "synthmed",
        "serve",
        "--port",
        str(port),
        "--db",
        str(root / "catalogue.sqlite"),
        "--storage",
        str(root / "files"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"synthmed serve did not start: {proc.stdout.read()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
