"""The catalogue: which datasets exist, in which versions, owned by whom; and the API tokens.

SQLAlchemy Core over any database it speaks: the embedded default is a SQLite file
(``--db PATH``); a server database is a URL (``--db postgresql+psycopg://user@host/synthmed``,
with ``pip install psycopg``). The schema is created on first start.

A dataset version is a row; it becomes visible when its status turns ``published`` (one
commit), after its files are in the store. Versions are numbered per name by the database's
unique constraint: two concurrent publishes of the same name cannot get the same number, the
loser retries with the next.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

metadata = sa.MetaData()

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),  # its folder in the store
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | published
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("license", sa.String(100), nullable=False),
    sa.Column("domain", sa.String(64), nullable=False, default=""),
    sa.Column("modality", sa.String(64), nullable=False, default=""),
    sa.Column("source", sa.String(1000), nullable=False, default=""),
    sa.Column("resolution", sa.Integer, nullable=False, default=0),
    sa.Column("count", sa.Integer, nullable=False, default=0),
    sa.Column("card", sa.Text, nullable=False, default="{}"),  # JSON: the dataset card
    sa.Column("metrics", sa.Text, nullable=True),  # JSON: synthmed evaluate's metrics.json
    sa.Column("archive_key", sa.String(200), nullable=False, default=""),
    sa.Column("archive_sha256", sa.String(64), nullable=False, default=""),
    sa.Column("archive_bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_name_version"),
)

# Columns a dataset's owner may change after publishing (the card's free-text fields).
EDITABLE = ("title", "description", "license", "domain", "modality", "source")
FILTERS = ("domain", "modality", "resolution", "license")


class NameTaken(Exception):
    """The dataset name is another publisher's."""


@dataclass
class Dataset:
    """One published version of a dataset, as the web pages and the API show it."""

    name: str
    version: int
    uid: str
    owner: str
    title: str
    description: str
    license: str
    domain: str
    modality: str
    source: str
    resolution: int
    count: int
    card: dict[str, Any]
    metrics: dict[str, Any] | None
    archive_key: str
    archive_sha256: str
    archive_bytes: int
    created: float
    status: str = "published"
    versions: list[int] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Any) -> Dataset:
        m = row._mapping
        return cls(
            **{
                k: m[k]
                for k in cls.__dataclass_fields__
                if k not in ("card", "metrics", "versions")
            },
            card=json.loads(m["card"]),
            metrics=json.loads(m["metrics"]) if m["metrics"] else None,
        )


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens are 256 random bits, so a plain SHA-256 is as safe
    as a slow password hash, and lets a request's token be looked up by equality."""
    return hashlib.sha256(token.encode()).hexdigest()


def database_url(db: str | Path) -> str:
    """``--db`` as an SQLAlchemy URL: a URL is kept, anything else is a SQLite file path."""
    text = str(db)
    if "://" in text:
        return text
    Path(text).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class Catalogue:
    """All reads and writes of the repository's database."""

    def __init__(self, db: str | Path) -> None:
        url = database_url(db)
        if url.startswith("sqlite"):
            # One connection per thread; wait up to 30 s for a writer instead of failing.
            self.engine = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    # -- tokens ---------------------------------------------------------------------------
    def create_token(self, owner: str) -> str:
        """A new API token for ``owner``; only its hash is stored, so show it once."""
        token = "smt_" + secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            c.execute(
                tokens.insert().values(
                    owner=owner, token_sha256=hash_token(token), created=time.time(), revoked=False
                )
            )
        return token

    def owner_of(self, token: str) -> str | None:
        """The owner a valid, unrevoked token belongs to, else None."""
        q = sa.select(tokens.c.owner).where(
            tokens.c.token_sha256 == hash_token(token), tokens.c.revoked.is_(False)
        )
        with self.engine.connect() as c:
            return c.execute(q).scalar()

    def list_tokens(self) -> list[dict[str, Any]]:
        """Id, owner, creation time and state of every token (never the token)."""
        q = sa.select(tokens.c.id, tokens.c.owner, tokens.c.created, tokens.c.revoked)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q.order_by(tokens.c.id))]

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token by id; False if there is no such token."""
        with self.engine.begin() as c:
            done = c.execute(tokens.update().where(tokens.c.id == token_id).values(revoked=True))
        return done.rowcount > 0

    # -- datasets -------------------------------------------------------------------------
    def reserve(self, name: str, uid: str, owner: str, fields: dict[str, Any]) -> int:
        """Insert a pending row with the next free version of ``name``; return the version.

        A name belongs to the publisher of its first version: :class:`NameTaken` for anyone
        else. The owner is checked *after* the insert, in its transaction: reads before a
        write see each statement's own snapshot (pysqlite begins the transaction only at the
        insert; PostgreSQL's read committed), so a check before it can miss a first version
        committed in between, and the racer would take version 2 of another's name. After
        the insert, every version below ours is committed and visible. A lost race on the
        unique constraint retries, so two publishers cannot both take a new name.
        """
        for attempt in range(50):
            try:
                with self.engine.begin() as c:
                    top = c.execute(
                        sa.select(sa.func.max(datasets.c.version)).where(datasets.c.name == name)
                    ).scalar()
                    version = (top or 0) + 1
                    c.execute(
                        datasets.insert().values(
                            uid=uid,
                            name=name,
                            version=version,
                            status="pending",
                            owner=owner,
                            created=time.time(),
                            **fields,
                        )
                    )
                    first = c.execute(
                        sa.select(datasets.c.owner)
                        .where(datasets.c.name == name)
                        .order_by(datasets.c.version)
                        .limit(1)
                    ).scalar()
                    if first != owner:  # rolls the insert back
                        raise NameTaken(f"dataset {name!r} belongs to another publisher")
                return version
            except (IntegrityError, OperationalError):
                # Another publish took this version (or held the write lock): try the next.
                time.sleep(0.01 * (attempt + 1))
        raise RuntimeError(f"could not reserve a version of {name!r}")

    def finish(self, uid: str, fields: dict[str, Any]) -> None:
        """Set the final fields of a reserved row and publish it (the commit point)."""
        with self.engine.begin() as c:
            c.execute(
                datasets.update().where(datasets.c.uid == uid).values(status="published", **fields)
            )

    def discard(self, uid: str) -> None:
        """Remove a row (a failed publish, or a deletion)."""
        with self.engine.begin() as c:
            c.execute(datasets.delete().where(datasets.c.uid == uid))

    def update(self, uid: str, fields: dict[str, Any]) -> None:
        """Change columns of one version."""
        with self.engine.begin() as c:
            c.execute(datasets.update().where(datasets.c.uid == uid).values(**fields))

    def get(self, name: str, version: int | None = None) -> Dataset | None:
        """One published version (the latest when ``version`` is None), with all versions."""
        q = sa.select(datasets).where(datasets.c.name == name, datasets.c.status == "published")
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(datasets.c.version.desc())).fetchall()
        if not rows:
            return None
        pick = [r for r in rows if version is None or r._mapping["version"] == version]
        if not pick:
            return None
        ds = Dataset.from_row(pick[0])
        ds.versions = [r._mapping["version"] for r in rows]
        return ds

    def search(
        self,
        text: str = "",
        filters: dict[str, Any] | None = None,
        limit: int = 50,
        offset: int = 0,
        all_versions: bool = False,
    ) -> tuple[int, list[Dataset]]:
        """Published datasets matching ``text`` (title, name, description, domain, modality,
        source) and exact ``filters``; newest first. Returns (total, one page)."""
        cond = [datasets.c.status == "published"]
        cols = ("title", "name", "description", "domain", "modality", "source")
        for word in text.split():
            # autoescape: "%" and "_" in a search word are literal characters, not wildcards
            hits = [
                sa.func.lower(datasets.c[k]).contains(word.lower(), autoescape=True) for k in cols
            ]
            cond.append(sa.or_(*hits))
        for key, value in (filters or {}).items():
            if key in FILTERS and value not in (None, ""):
                cond.append(datasets.c[key] == value)
        if not all_versions:  # the latest version of each name only
            d2 = datasets.alias("d2")
            latest = (
                sa.select(sa.func.max(d2.c.version))
                .where(d2.c.name == datasets.c.name, d2.c.status == "published")
                .scalar_subquery()
            )
            cond.append(datasets.c.version == latest)
        where = sa.and_(*cond)
        with self.engine.connect() as c:
            total = c.execute(sa.select(sa.func.count()).select_from(datasets).where(where))
            total = total.scalar() or 0
            rows = c.execute(
                sa.select(datasets)
                .where(where)
                .order_by(datasets.c.created.desc(), datasets.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).fetchall()
        return total, [Dataset.from_row(r) for r in rows]

    def facets(self) -> dict[str, list[Any]]:
        """The distinct values of each filter among published datasets (for the search form)."""
        out = {}
        with self.engine.connect() as c:
            for key in FILTERS:
                col = datasets.c[key]
                q = sa.select(col).where(datasets.c.status == "published").distinct()
                out[key] = sorted(v for v in c.execute(q).scalars() if v not in (None, ""))
        return out

    def stale_pending(self, older_than: float) -> list[str]:
        """Uids of publishes that never finished (the server died mid-way)."""
        q = sa.select(datasets.c.uid).where(
            datasets.c.status == "pending", datasets.c.created < time.time() - older_than
        )
        with self.engine.connect() as c:
            return list(c.execute(q).scalars())

    def known_uids(self) -> set[str]:
        """Every uid with a row, pending or published."""
        with self.engine.connect() as c:
            return set(c.execute(sa.select(datasets.c.uid)).scalars())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer and vice versa (concurrent downloads + publishes).
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
