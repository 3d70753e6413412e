"""The catalogue on a server database: the same code on PostgreSQL.

Runs when SYNTHMED_TEST_DATABASE_URL names an empty scratch database, e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/synthmed_test`` (``.ci/run`` starts one when
it can); its tables are dropped and re-created.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from repository_support import make_dataset

from synthmed.repository.archive import Limits, pack_folder
from synthmed.repository.catalogue import Catalogue, metadata
from synthmed.repository.service import Repository
from synthmed.repository.storage import LocalStorage

URL = os.environ.get("SYNTHMED_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="set SYNTHMED_TEST_DATABASE_URL to a scratch PostgreSQL database"
)


@pytest.fixture
def catalogue() -> Iterator[Catalogue]:
    pytest.importorskip("psycopg", reason="pip install 'psycopg[binary]' for PostgreSQL")
    cat = Catalogue(URL)
    metadata.drop_all(cat.engine)
    metadata.create_all(cat.engine)
    yield cat
    metadata.drop_all(cat.engine)
    cat.engine.dispose()


def test_tokens_publish_search_and_concurrent_versions(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    repo = Repository(catalogue, LocalStorage(tmp_path / "files"), Limits())
    token = catalogue.create_token("alice")
    assert catalogue.owner_of(token) == "alice" and catalogue.owner_of("x") is None
    archive = pack_folder(
        make_dataset(tmp_path / "ds", n=2, size=32),
        {"title": "Tiny fundus", "license": "MIT", "domain": "retina"},
        tmp_path / "up.zip",
    )
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            repo.publish(archive, "alice")
        except BaseException as e:  # noqa: BLE001 - reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert catalogue.get("tiny-fundus").versions == [6, 5, 4, 3, 2, 1]
    total, found = catalogue.search("FUNDUS", {"domain": "retina"})
    assert total == 1 and found[0].version == 6
    assert catalogue.search("", all_versions=True)[0] == 6
    assert catalogue.facets()["domain"] == ["retina"]
    repo.delete("tiny-fundus", 6, "alice")
    assert catalogue.get("tiny-fundus").version == 5
