"""The repository through real HTTP on a loopback port: publish, browse, download, auth,
rejections that leave nothing behind, and many clients at once."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from repository_support import Server, make_dataset, serve_in_thread

from synthmed.cli import main
from synthmed.repository.archive import Limits, pack_folder

CARD = {
    "title": "Tiny fundus",
    "license": "CC-BY-4.0",
    "domain": "retina",
    "modality": "fundus photography",
    "source": "phantoms",
}


@pytest.fixture
def server(tmp_path: Path):  # noqa: ANN201
    with serve_in_thread(tmp_path / "repo") as s:
        yield s


def upload(server: Server, folder: Path, token: str | None, card: dict = CARD) -> httpx.Response:
    archive = pack_folder(folder, card, folder.parent / f"{folder.name}-{time.time_ns()}.zip")
    headers = {"Content-Type": "application/zip"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(
        f"{server.url}/api/datasets", content=archive.read_bytes(), headers=headers, timeout=60
    )


def stored_uids(server: Server) -> list[str]:
    return server.repo.storage.prefixes("datasets")


def row_count(server: Server) -> int:
    with sqlite3.connect(server.root / "catalogue.sqlite") as db:
        return db.execute("select count(*) from datasets").fetchone()[0]


def test_publish_list_search_view_download_round_trip(server: Server, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=4, size=32)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps(
            {
                "utility": {
                    "arms": {"synthetic": {"mean": {"f1": 0.7}, "std": {"f1": 0.01}}},
                    "f1_relative_to_real": {"synthetic": 0.9},
                }
            }
        )
    )
    token = server.token("alice")
    code = main(
        [
            "publish",
            str(folder),
            "--server",
            server.url,
            "--token",
            token,
            "--title",
            "Tiny fundus",
            "--license",
            "CC-BY-4.0",
            "--domain",
            "retina",
            "--modality",
            "fundus photography",
            "--source",
            "phantom data, 15 images",
            "--metrics",
            str(metrics),
        ]
    )
    assert code == 0
    other = make_dataset(tmp_path / "cells", n=2, size=32, seed=1)
    assert (
        upload(
            server, other, token, {"title": "Rat cells", "license": "MIT", "domain": "microscopy"}
        ).status_code
        == 201
    )

    listing = httpx.get(f"{server.url}/api/datasets").json()
    assert listing["total"] == 2
    assert {d["name"] for d in listing["datasets"]} == {"tiny-fundus", "rat-cells"}
    found = httpx.get(f"{server.url}/api/datasets", params={"q": "fundus"}).json()
    assert [d["name"] for d in found["datasets"]] == ["tiny-fundus"]
    by_source = httpx.get(f"{server.url}/api/datasets", params={"q": "phantom"}).json()
    assert [d["name"] for d in by_source["datasets"]] == ["tiny-fundus"]
    for noise in ("abab", "channels", "alice"):  # hashes, card keys, publisher: not searched
        assert httpx.get(f"{server.url}/api/datasets", params={"q": noise}).json()["total"] == 0
    filtered = httpx.get(f"{server.url}/api/datasets", params={"domain": "microscopy"}).json()
    assert [d["name"] for d in filtered["datasets"]] == ["rat-cells"]
    assert httpx.get(f"{server.url}/api/datasets", params={"resolution": 64}).json()["total"] == 0

    record = httpx.get(f"{server.url}/api/datasets/tiny-fundus/latest").json()
    assert record["version"] == 1 and record["pairs"] == 4 and record["resolution"] == 32
    card = record["card"]
    assert card["source"] == "phantom data, 15 images" and card["license"] == "CC-BY-4.0"
    assert card["model_sha256"] == {"geometry": "ab" * 32, "texture": "cd" * 32}
    assert card["resolution"] == "32x32" and card["pairs"] == 4 and card["version"] == 1
    assert record["metrics"]["utility"]["f1_relative_to_real"] == {"synthetic": 0.9}

    page = httpx.get(f"{server.url}/").text
    assert "Tiny fundus" in page and "Rat cells" in page
    page = httpx.get(f"{server.url}/", params={"q": "cells"}).text
    assert "Rat cells" in page and "Tiny fundus" not in page
    page = httpx.get(f"{server.url}/datasets/tiny-fundus", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/datasets/tiny-fundus/1")
    assert "phantom data, 15 images" in page.text
    assert "0.7000" in page.text and "0.900" in page.text  # F1 and F1 relative to real

    r = httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(r.content).hexdigest()
    assert digest == r.headers["x-checksum-sha256"] == record["archive"]["sha256"]
    sums = httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/download.sha256").text
    assert sums == f"{digest}  tiny-fundus-v1.zip\n"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        for original in folder.rglob("*.png"):
            member = f"tiny-fundus-v1/{original.relative_to(folder).as_posix()}"
            assert zf.read(member) == original.read_bytes()  # byte-identical round trip
        assert zf.read("tiny-fundus-v1/manifest.json") == (folder / "manifest.json").read_bytes()
        for name in ("datalist.json", "README.md"):  # the download loads as the folder did
            assert zf.read(f"tiny-fundus-v1/{name}") == (folder / name).read_bytes()
        assert json.loads(zf.read("tiny-fundus-v1/card.json")) == card
        assert "tiny-fundus-v1/metrics.json" in names

    files = httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/files").json()
    assert len(files["images"]) == len(files["masks"]) == len(files["fov"]) == 4
    one = httpx.get(server.url + files["masks"][2])
    assert one.content == (folder / "masks" / "0002.png").read_bytes()
    for kind in ("image", "mask", "overlay"):
        preview = httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/previews/00-{kind}.png")
        assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    assert (
        httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/files/images/..%2Fx").status_code == 404
    )
    missing = httpx.get(f"{server.url}/api/datasets/nope/1")
    assert missing.status_code == 404 and "no dataset nope" in missing.json()["detail"]
    missing_page = httpx.get(f"{server.url}/datasets/nope/1")
    assert missing_page.status_code == 404 and "<h1>Not found</h1>" in missing_page.text
    assert httpx.get(f"{server.url}/no/such/page").status_code == 404


def test_versions_edit_delete_and_ownership(server: Server, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    alice, bob = server.token("alice"), server.token("bob")
    assert upload(server, folder, alice).json()["version"] == 1
    again = upload(server, folder, alice)
    assert again.status_code == 201 and again.json()["version"] == 2
    assert again.headers["location"] == "/api/datasets/tiny-fundus/2"
    assert httpx.get(f"{server.url}/api/datasets/tiny-fundus/latest").json()["versions"] == [2, 1]
    assert httpx.get(f"{server.url}/api/datasets/tiny-fundus/1/download").status_code == 200

    # Another publisher can neither take the name nor change alice's versions.
    assert upload(server, folder, bob).status_code == 403
    auth_bob = {"Authorization": f"Bearer {bob}"}
    url = f"{server.url}/api/datasets/tiny-fundus/2"
    assert httpx.patch(url, json={"title": "mine"}, headers=auth_bob).status_code == 403
    assert httpx.delete(url, headers=auth_bob).status_code == 403

    auth = {"Authorization": f"Bearer {alice}"}
    before = httpx.get(url).json()["archive"]["sha256"]
    edited = httpx.patch(
        url, json={"title": "Tiny fundus, revised", "license": "CC0-1.0"}, headers=auth
    )
    assert edited.status_code == 200 and edited.json()["title"] == "Tiny fundus, revised"
    r = httpx.get(f"{url}/download")
    assert r.headers["x-checksum-sha256"] != before
    assert hashlib.sha256(r.content).hexdigest() == r.headers["x-checksum-sha256"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert json.loads(zf.read("tiny-fundus-v2/card.json"))["license"] == "CC0-1.0"
    assert httpx.patch(url, json={"title": ""}, headers=auth).status_code == 400

    assert httpx.delete(url, headers=auth).status_code == 204
    assert httpx.get(url).status_code == 404
    assert httpx.get(f"{server.url}/api/datasets/tiny-fundus/latest").json()["version"] == 1
    assert len(stored_uids(server)) == 1  # the deleted version's files are gone


def test_writes_need_a_valid_token(server: Server, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    assert upload(server, folder, None).status_code == 401
    assert upload(server, folder, "smt_not-a-token").status_code == 401
    token = server.token("alice")
    token_id = server.repo.catalogue.list_tokens()[-1]["id"]
    server.repo.catalogue.revoke_token(token_id)
    assert upload(server, folder, token).status_code == 401
    assert row_count(server) == 0 and stored_uids(server) == []
    with sqlite3.connect(server.root / "catalogue.sqlite") as db:
        stored = [r[0] for r in db.execute("select token_sha256 from tokens")]
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored


@pytest.mark.parametrize(
    ("tamper", "status", "words"),
    [
        (lambda m: m | {"../../evil.png": b"x"}, 400, "unsafe member name"),
        (lambda m: m | {"masks/0001.png": m["images/0001.png"]}, 400, "not binary"),
        (lambda m: {k: v for k, v in m.items() if k != "masks/0000.png"}, 400, "no mask"),
        (lambda m: m | {"images/0001.png": b"\x89PNG broken"}, 400, "not a readable"),
        (lambda m: m | {"images/x.gif": b"GIF89a"}, 415, "only PNG, JPEG and TIFF"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    server: Server,
    tmp_path: Path,
    tamper,
    status: int,
    words: str,  # noqa: ANN001
) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    packed = pack_folder(folder, CARD, tmp_path / "good.zip")
    with zipfile.ZipFile(packed) as zf:
        members = tamper({n: zf.read(n) for n in zf.namelist()})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    r = httpx.post(
        f"{server.url}/api/datasets",
        content=buf.getvalue(),
        headers={"Authorization": f"Bearer {server.token('alice')}"},
    )
    assert r.status_code == status and words in r.json()["detail"]
    assert row_count(server) == 0 and stored_uids(server) == []
    assert list(server.repo.incoming.iterdir()) == []  # the spooled upload is gone too


def test_upload_size_limit_over_http(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    with serve_in_thread(tmp_path / "repo", Limits(max_upload_bytes=2000)) as s:
        r = upload(s, folder, s.token("alice"))
        assert r.status_code == 413 and "larger than 2000 bytes" in r.json()["detail"]
        assert row_count(s) == 0 and stored_uids(s) == []


def test_a_publish_that_fails_half_way_leaves_nothing(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_dataset(tmp_path / "synth", n=3, size=32)

    def disk_full(key: str, path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.repo.storage, "put_file", disk_full)
    with pytest.raises(httpx.HTTPError):  # the server answers 500 or drops the connection
        r = upload(server, folder, server.token("alice"))
        r.raise_for_status()
    assert row_count(server) == 0 and stored_uids(server) == []


def test_sweep_removes_what_a_killed_server_left(tmp_path: Path) -> None:
    from repository_support import new_repository

    repo = new_repository(tmp_path / "repo")
    repo.catalogue.reserve("half", "deadbeef", "alice", {"title": "t", "license": "l"})
    repo.storage.put_bytes("datasets/deadbeef/files/images/0000.png", b"x")
    repo.storage.put_bytes("datasets/0rphan/files/images/0000.png", b"x")
    assert repo.sweep(older_than=3600) == 0  # too recent: maybe still in flight
    assert repo.sweep(older_than=-1) == 2
    assert repo.storage.prefixes("datasets") == [] and repo.catalogue.known_uids() == set()


def test_a_first_version_committed_mid_reserve_keeps_the_name(tmp_path: Path) -> None:
    """The interleaving the racing test hits by chance, made to happen: alice's first
    version is committed just after bob's reserve has read the name's versions. Bob must
    not get version 2 of alice's name."""
    import sqlalchemy as sa
    from repository_support import new_repository

    from synthmed.repository.catalogue import NameTaken

    cat = new_repository(tmp_path / "repo").catalogue
    fields = {"title": "t", "license": "l"}
    state = {"armed": True}

    def alice_commits_first(conn, clauseelement, *args) -> None:  # noqa: ANN001
        if state["armed"] and isinstance(clauseelement, sa.Select):
            state["armed"] = False  # after bob's first read only
            cat.reserve("name", "alice1", "alice", fields)

    sa.event.listen(cat.engine, "after_execute", alice_commits_first)
    with pytest.raises(NameTaken):
        cat.reserve("name", "bob1", "bob", fields)
    sa.event.remove(cat.engine, "after_execute", alice_commits_first)
    assert cat.known_uids() == {"alice1"}
    assert cat.reserve("name", "alice2", "alice", fields) == 2


def test_concurrent_publishes_and_downloads(server: Server, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=3, size=32)
    token = server.token("alice")
    assert upload(server, folder, token).status_code == 201
    errors: list[str] = []
    versions: list[int] = []

    def publisher() -> None:
        r = upload(server, folder, token)
        if r.status_code != 201:
            errors.append(f"publish {r.status_code} {r.text}")
        else:
            versions.append(r.json()["version"])

    def reader() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            for _ in range(5):
                r = c.get("/api/datasets/tiny-fundus/1/download")
                if hashlib.sha256(r.content).hexdigest() != r.headers.get("x-checksum-sha256"):
                    errors.append("download checksum mismatch")
                if c.get("/").status_code != 200 or c.get("/api/datasets").status_code != 200:
                    errors.append("browse failed")

    threads = [threading.Thread(target=f) for f in [publisher] * 6 + [reader] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(versions) == [2, 3, 4, 5, 6, 7]  # every publish got its own version
    listing = httpx.get(f"{server.url}/api/datasets", params={"all_versions": True}).json()
    assert listing["total"] == 7 and len(stored_uids(server)) == 7
    with sqlite3.connect(server.root / "catalogue.sqlite") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_openapi_schema_is_served(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/datasets" in schema["paths"]
    post = schema["paths"]["/api/datasets"]["post"]
    assert "application/zip" in post["requestBody"]["content"]
    assert "/api/datasets/{name}/{version}/download" in schema["paths"]


def test_publish_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    args = ["--title", "T", "--license", "MIT"]
    assert (
        main(
            [
                "publish",
                str(tmp_path / "nope"),
                "--server",
                "http://127.0.0.1:9",
                "--token",
                "t",
                *args,
            ]
        )
        == 2
    )
    assert "folder not found" in capsys.readouterr().err
    assert main(["publish", str(folder), "--server", "http://127.0.0.1:9", *args]) == 2
    assert "--token" in capsys.readouterr().err
    assert (
        main(["publish", str(folder), "--server", "http://127.0.0.1:9", "--token", "t", *args]) == 2
    )
    err = capsys.readouterr().err
    assert "cannot reach the repository" in err and err.count("\n") == 1


def test_token_admin_commands(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "c.sqlite")
    assert main(["token", "create", "alice", "--db", db]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("smt_") and len(token) > 40
    assert main(["token", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "alice" in listed and "active" in listed and token not in listed
    assert main(["token", "revoke", "1", "--db", db]) == 0
    assert main(["token", "revoke", "7", "--db", db]) == 2


def test_serve_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import socket

    where = ["--db", str(tmp_path / "c.sqlite"), "--storage", str(tmp_path / "files")]
    assert main(["serve", "--db", "/proc/none/c.sqlite", "--port", "8001"]) == 2
    assert "cannot open the catalogue" in capsys.readouterr().err
    assert main(["serve", "--port", "0", *where]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main(["serve", "--port", port, *where]) == 2
    err = capsys.readouterr().err
    assert "cannot listen" in err and err.count("\n") == 2


def test_two_publishers_racing_for_a_new_name(server: Server, tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "synth", n=2, size=32)
    tokens = {"alice": server.token("alice"), "bob": server.token("bob")}
    results: list[tuple[str, int]] = []

    def publish(owner: str) -> None:
        results.append((owner, upload(server, folder, tokens[owner]).status_code))

    threads = [threading.Thread(target=publish, args=(o,)) for o in ["alice", "bob"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    owner = httpx.get(f"{server.url}/api/datasets/tiny-fundus/1").json()["publisher"]
    assert sorted(code for who, code in results if who == owner) == [201] * 3
    assert sorted(code for who, code in results if who != owner) == [403] * 3
    versions = httpx.get(f"{server.url}/api/datasets/tiny-fundus/latest").json()["versions"]
    assert versions == [3, 2, 1] and len(stored_uids(server)) == 3
