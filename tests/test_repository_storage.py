"""The file stores behind the repository: the local folder and an S3-compatible bucket (moto)
keep the same contract, and a whole publish works on either."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from repository_support import make_dataset

from synthmed.repository.archive import Limits, pack_folder
from synthmed.repository.catalogue import Catalogue, database_url
from synthmed.repository.service import Repository
from synthmed.repository.storage import LocalStorage, S3Storage, Storage, open_storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "files")
        return
    moto = pytest.importorskip("moto", reason="moto (dev extra) fakes S3 for this test")
    boto3 = pytest.importorskip("boto3")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="synthmed")
        yield S3Storage("synthmed", "repo", client=client)


def test_store_contract(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"abc" * 1000)
    storage.put_file("datasets/u1/files/images/0000.png", source)
    storage.put_bytes("datasets/u1/files.json", b"{}")
    storage.put_bytes("datasets/u2/x", b"1")
    with storage.open("datasets/u1/files/images/0000.png") as f:
        assert f.read() == b"abc" * 1000
    assert storage.size("datasets/u1/files.json") == 2
    assert storage.prefixes("datasets") == ["u1", "u2"]
    assert storage.last_modified("datasets/u1") is not None
    assert storage.last_modified("datasets/none") is None
    storage.delete("datasets/u2/x")
    storage.delete("datasets/u2/x")  # absent: no error
    storage.delete_prefix("datasets/u1")
    with pytest.raises(FileNotFoundError):
        storage.open("datasets/u1/files.json")
    with pytest.raises(FileNotFoundError):
        storage.size("datasets/u1/files.json")
    assert storage.prefixes("datasets") == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a\\b"])
def test_unsafe_keys_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsafe storage key"):
        LocalStorage(tmp_path).put_bytes(key, b"x")


def test_publish_on_either_store(storage: Storage, tmp_path: Path) -> None:
    repo = Repository(Catalogue(tmp_path / "c.sqlite"), storage, Limits())
    folder = make_dataset(tmp_path / "ds", n=2, size=32)
    archive = pack_folder(folder, {"title": "T", "license": "MIT"}, tmp_path / "up.zip")
    ds = repo.publish(archive, "alice")
    with (
        storage.open(ds.archive_key) as f,
        zipfile.ZipFile(f if isinstance(storage, LocalStorage) else _buffer(f)) as zf,
    ):
        assert zf.read("t-v1/images/0001.png") == (folder / "images/0001.png").read_bytes()
    repo.delete("t", 1, "alice")
    assert storage.prefixes("datasets") == []


def _buffer(stream) -> object:  # noqa: ANN001 - an S3 body is not seekable
    import io

    return io.BytesIO(stream.read())


def test_open_storage_and_database_url(tmp_path: Path) -> None:
    assert isinstance(open_storage(tmp_path / "f"), LocalStorage)
    assert database_url(tmp_path / "c.sqlite").startswith("sqlite:////")
    url = "postgresql+psycopg://u@h/db"
    assert database_url(url) == url


def test_search_words_are_literal_not_sql_wildcards(tmp_path: Path) -> None:
    repo = Repository(Catalogue(tmp_path / "c.sqlite"), LocalStorage(tmp_path / "f"), Limits())
    for title in ("Fundus 100% synthetic", "Fundus_v2 masks", "Cells"):
        folder = make_dataset(tmp_path / title.replace(" ", ""), n=1, size=32)
        repo.publish(
            pack_folder(folder, {"title": title, "license": "MIT"}, tmp_path / "up.zip"), "alice"
        )
    titles = lambda text: sorted(d.title for d in repo.catalogue.search(text)[1])  # noqa: E731
    assert titles("%") == ["Fundus 100% synthetic"]  # not every dataset
    assert titles("_") == ["Fundus_v2 masks"]
    assert titles("fundus") == ["Fundus 100% synthetic", "Fundus_v2 masks"]
