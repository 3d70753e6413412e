"""``synthmed bench --repository``: concurrent clients browsing and downloading, timed.

``synthmed serve`` runs in its own process on loopback with one published synthetic dataset;
N client threads loop over a fixed mix of pages, API calls, files and whole-archive downloads
for a bounded time. A non-200 answer, an exception or a download whose SHA-256 differs from
``X-Checksum-SHA256`` is an error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from synthmed.dataset_card import write_dataset_files


def write_dataset(folder: Path, pairs: int, size: int, seed: int = 0) -> Path:
    """A dataset folder as ``synthmed generate`` writes it: noise images, binary masks, fov,
    the manifest, and the datalist and card derived from it."""
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
    write_dataset_files(folder, folder.name, [f"{i:04d}" for i in range(pairs)], manifest, None)
    return folder


@contextmanager
def serving(root: Path) -> Iterator[tuple[str, int]]:
    """``synthmed serve`` in its own process on a free loopback port; yields (URL, pid)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url, log = f"http://127.0.0.1:{port}", root / "serve.log"
    cmd = [sys.executable, "-m", "synthmed", "serve", "--port", str(port),
           "--db", str(root / "catalogue.sqlite"), "--storage", str(root / "files")]  # fmt: skip
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"synthmed serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


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


def _client_loop(url: str, mix: list[tuple[str, str]], start: int, stop: float, out: list) -> None:
    """Loop over ``mix`` from ``start`` until ``stop``; append (kind, s, bytes, error)."""
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for i in itertools.count(start):
            if time.perf_counter() >= stop:
                return
            kind, path = mix[i % len(mix)]
            t0 = time.perf_counter()
            try:
                ok, size, text = _request(client, kind, path)
            except Exception as e:  # noqa: BLE001 - any failure is an error of the check
                ok, size, text = False, 0, f"{type(e).__name__}: {e} ({path})"
            out.append((kind, time.perf_counter() - t0, size, "" if ok else text))


def resident_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB (Linux /proc; None elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _latency(seconds: list[float]) -> dict[str, float]:
    """Count, median and 99th percentile (in ms) of request times."""
    p50, p99 = np.percentile(seconds, [50, 99]) * 1000 if seconds else (0.0, 0.0)
    return {"n": len(seconds), "p50_ms": float(p50), "p99_ms": float(p99)}


def run_load_check(
    clients: int = 8, seconds: float = 10.0, pairs: int = 24, size: int = 256
) -> dict[str, Any]:
    """Serve a fresh repository, publish one dataset, and load it with ``clients`` threads.

    Returns request count and rate, p50/p99 latency overall and per kind of request, the
    error count (must be 0) with examples and the server's log, bytes and MB/s received, and
    the archive's size.
    """
    from synthmed.repository.catalogue import Catalogue
    from synthmed.repository.client import publish

    with tempfile.TemporaryDirectory(prefix="synthmed-load-") as tmp:
        root = Path(tmp)
        folder = write_dataset(root / "dataset", pairs, size)
        token = Catalogue(root / "catalogue.sqlite").create_token("bench")
        with serving(root) as (url, pid):
            card = {"title": "Load check fundus", "license": "CC-BY-4.0"}
            record = publish(folder, url, token, card)
            urls = record["urls"]
            api = urls["api"]
            mix = [("catalogue", "/"), ("search", "/?q=fundus"), ("page", urls["page"]),
                   ("api_list", "/api/datasets"), ("api_dataset", api),
                   ("preview", f"{api}/previews/00-image.png"),
                   ("image", f"{api}/files/images/0000.png"),
                   ("download", urls["download"])]  # fmt: skip
            done: list[tuple[str, float, int, str]] = []  # list.append is thread-safe
            rss_before = resident_mb(pid)
            t0 = time.perf_counter()
            args = [(url, mix, i, t0 + seconds, done) for i in range(clients)]
            threads = [threading.Thread(target=_client_loop, args=a) for a in args]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            rss_after = resident_mb(pid)
        errors = [e for *_, e in done if e]
        log = (root / "serve.log").read_text()[-4000:] if errors else ""
    received = sum(r[2] for r in done)
    overall = _latency([r[1] for r in done])
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(done),
        "requests_per_s": len(done) / elapsed,
        "p50_ms": overall["p50_ms"],
        "p99_ms": overall["p99_ms"],
        "errors": len(errors),
        "error_examples": errors[:5],
        "server_log_tail": log,  # only when there were errors
        "bytes_downloaded": received,
        "download_mb_per_s": received / elapsed / 1e6,
        "by_kind": {k: _latency([r[1] for r in done if r[0] == k]) for k, _ in mix},
        "archive_mb": record["archive"]["bytes"] / 1e6,
        # The server's memory before and after the load: downloads stream from disk.
        "server_rss_mb": {"before": rss_before, "after": rss_after},
    }
