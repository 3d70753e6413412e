"""Where the repository keeps its files: a local folder, or an S3-compatible object store.

Both implement :class:`Storage`, keyed by ``/``-separated paths such as
``datasets/<uid>/files/images/0000.png``. The catalogue (SQL) decides what is published; the
store only holds bytes, so a dataset becomes visible by one database commit, never by a
half-copied folder.

:func:`open_storage` picks the implementation from a string: a folder path, or
``s3://bucket/prefix`` (endpoint, region and credentials from the usual ``AWS_*`` variables,
e.g. ``AWS_ENDPOINT_URL`` for MinIO; needs ``pip install boto3``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from synthmed.files import atomic_write

CHUNK = 1 << 20  # bytes per read when streaming a file out


class Storage(Protocol):
    """The operations the repository needs from a file store."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key``, atomically (readers see all or none)."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, atomically."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of ``key``; ``FileNotFoundError`` if absent."""

    def size(self, key: str) -> int:
        """Size of ``key`` in bytes; ``FileNotFoundError`` if absent."""

    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` on this machine, if there is one (served by sendfile)."""

    def delete(self, key: str) -> None:
        """Delete one key (no error if it is absent)."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix/`` (no error if there is none)."""

    def last_modified(self, prefix: str) -> float | None:
        """Unix time of the newest key under ``prefix/``; None if there is none."""

    def prefixes(self, prefix: str) -> list[str]:
        """The names one level below ``prefix/`` (for sweeping orphans)."""


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Yield ``stream`` in chunks and close it: memory stays flat whatever the file size."""
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        stream.close()


def _check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


class LocalStorage:
    """Files under one folder (the embedded default). Writes go to a temporary file beside
    the target and are renamed into place, so a killed server leaves no half-written file."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def put_file(self, key: str, path: Path) -> None:
        atomic_write(self._path(key), lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key: str, data: bytes) -> None:
        atomic_write(self._path(key), lambda tmp: tmp.write_bytes(data))

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Folders exist only for their files (as in S3): drop the ones left empty.
        for parent in path.parents:
            if parent == self.root or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def last_modified(self, prefix: str) -> float | None:
        times = [p.stat().st_mtime for p in self._path(prefix).rglob("*")]
        return max(times) if times else None

    def prefixes(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"


class S3Storage:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph...) under a key prefix.

    An object PUT is atomic in S3, which is the guarantee :class:`Storage` asks for.
    """

    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:  # noqa: ANN001
        if client is None:
            try:
                import boto3
            except ImportError:
                raise RuntimeError("s3:// storage needs boto3: pip install boto3") from None
            client = boto3.client("s3")
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _missing(self, e: Exception) -> bool:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as e:
            if self._missing(e):
                raise FileNotFoundError(key) from None
            raise

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            if self._missing(e):
                raise FileNotFoundError(key) from None
            raise
        return int(head["ContentLength"])

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def last_modified(self, prefix: str) -> float | None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix) + "/"
        )
        times = [o["LastModified"].timestamp() for p in pages for o in p.get("Contents", [])]
        return max(times) if times else None

    def delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix) + "/"
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def prefixes(self, prefix: str) -> list[str]:
        base = self._key(prefix) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base, Delimiter="/"
        )
        names = []
        for page in pages:
            names += [p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(names)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"


def open_storage(spec: str | Path) -> Storage:
    """A folder path → :class:`LocalStorage`; ``s3://bucket/prefix`` → :class:`S3Storage`."""
    text = str(spec)
    if text.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
        return S3Storage(bucket, prefix)
    return LocalStorage(text)
