"""A small load check of the repository: concurrent clients browsing and downloading.

``synthmed bench --repository`` runs it: ``synthmed serve`` starts in its own process on a
loopback port, a synthetic dataset is published to it, then N client threads (each with its
own connection pool) loop over a fixed mix of pages, API calls, files and whole-archive
downloads for a bounded time. Every request is timed; a non-200 answer, an exception or a
download whose SHA-256 differs from ``X-Checksum-SHA256`` is an error.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

SEARCH_WORD = "fundus"


def write_dataset(folder: Path, pairs: int, size: int, seed: int = 0) -> Path:
    """A dataset folder as ``synthmed generate`` writes it: noise images, binary masks, fov."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", "fov"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    fov = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2) ** 2).astype(np.uint8) * 255
    for i in range(pairs):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = (rng.random((size, size)) < 0.15).astype(np.uint8) * 255
        Image.fromarray(image).save(folder / "images" / f"{i:04d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i:04d}.png")
        Image.fromarray(fov).save(folder / "fov" / f"{i:04d}.png")
    manifest = {"generator": "synthmed", "count": pairs, "seed": seed, "resolution": size}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Poll ``/healthz`` until the server answers; raise with its log if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"synthmed serve did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def _request(client: httpx.Client, kind: str, path: str) -> tuple[bool, int, str]:
    """One request of the mix: (ok, bytes received, error text)."""
    if kind != "download":
        r = client.get(path)
        return r.status_code == 200, len(r.content), f"{r.status_code} {path}"
    digest, size = hashlib.sha256(), 0
    with client.stream("GET", path) as r:
        for chunk in r.iter_bytes(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        expected = r.headers.get("X-Checksum-SHA256", "")
    ok = r.status_code == 200 and digest.hexdigest() == expected
    return ok, size, f"{r.status_code} {path} (sha256 {'ok' if ok else 'mismatch'})"


def _client_loop(url: str, mix: list[tuple[str, str]], start: int, stop: float, out: dict) -> None:
    """Loop over ``mix`` from position ``start`` until ``stop``, recording into ``out``."""
    with httpx.Client(base_url=url, timeout=60.0) as client:
        i = start
        while time.perf_counter() < stop:
            kind, path = mix[i % len(mix)]
            i += 1
            t0 = time.perf_counter()
            try:
                ok, size, text = _request(client, kind, path)
            except Exception as e:  # noqa: BLE001 - any failure is an error of the check
                ok, size, text = False, 0, f"{type(e).__name__}: {e} ({path})"
            out["latency"].append((kind, time.perf_counter() - t0))
            out["bytes"] += size
            if not ok:
                out["errors"].append(text)


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else 0.0


def run_load_check(
    clients: int = 8, seconds: float = 10.0, pairs: int = 24, size: int = 256
) -> dict[str, Any]:
    """Serve a fresh repository, publish one dataset, and load it with ``clients`` threads.

    Returns request count and rate, p50/p99 latency overall and per kind of request, the
    error count (must be 0), bytes and MB/s received, and the archive's size.
    """
    from synthmed.repository.catalogue import Catalogue
    from synthmed.repository.client import publish

    with tempfile.TemporaryDirectory(prefix="synthmed-load-") as tmp:
        root = Path(tmp)
        folder = write_dataset(root / "dataset", pairs, size)
        db = root / "catalogue.sqlite"
        token = Catalogue(db).create_token("bench")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "synthmed", "serve", "--port", str(port),
               "--db", str(db), "--storage", str(root / "files")]  # fmt: skip
        log = root / "serve.log"
        with log.open("w") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, proc, log)
            card = {"title": f"Load check {SEARCH_WORD}", "license": "CC-BY-4.0"}
            record = publish(folder, url, token, card)
            api, page = record["urls"]["api"], record["urls"]["page"]
            mix = [
                ("catalogue", "/"),
                ("search", f"/?q={SEARCH_WORD}"),
                ("page", page),
                ("api_list", "/api/datasets"),
                ("api_dataset", api),
                ("preview", f"{api}/previews/00-image.png"),
                ("image", f"{api}/files/images/0000.png"),
                ("download", record["urls"]["download"]),
            ]
            results = [{"latency": [], "bytes": 0, "errors": []} for _ in range(clients)]
            t0 = time.perf_counter()
            threads = [
                threading.Thread(target=_client_loop, args=(url, mix, i, t0 + seconds, res))
                for i, res in enumerate(results)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(10)
    latency = [x for r in results for x in r["latency"]]
    errors = [e for r in results for e in r["errors"]]
    all_s = [s for _, s in latency]
    received = sum(r["bytes"] for r in results)
    by_kind = {}
    for kind, _ in mix:
        s = [v for k, v in latency if k == kind]
        by_kind[kind] = {"n": len(s), "p50_ms": _ms(s, 50), "p99_ms": _ms(s, 99)}
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(latency),
        "requests_per_s": len(latency) / elapsed,
        "p50_ms": _ms(all_s, 50),
        "p99_ms": _ms(all_s, 99),
        "errors": len(errors),
        "error_examples": errors[:5],
        "bytes_downloaded": received,
        "download_mb_per_s": received / elapsed / 1e6,
        "by_kind": by_kind,
        "archive_mb": record["archive"]["bytes"] / 1e6,
    }
