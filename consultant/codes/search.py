"""Ranked full-text search over code descriptions and notes.

PostgreSQL keeps a ``tsvector`` per code (``catalog_codes.search_vector``, GIN-indexed,
declared in the models and in ``schema.sql``) that the loader fills after each change.
SQLite has no such type, so it searches through an FTS5 table kept beside
``catalog_codes``. That table is not part of the SQLModel metadata (SQLAlchemy cannot
declare virtual tables): the first catalog load creates it, so a database holding no
codes — like one just made by ``consultant db init`` — has exactly the models' tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlmodel import Session

SEARCH_LIMIT = 20
FTS_TABLE = "catalog_codes_fts"
POSTGRES_DOCUMENT = (
    "setweight(to_tsvector('english', code), 'A') || "
    "setweight(to_tsvector('english', description), 'A') || "
    "setweight(to_tsvector('english', coalesce(short_description, '')), 'B') || "
    "setweight(to_tsvector('english', notes), 'C')"
)
POSTGRES_INDEX = "ix_catalog_codes_search"
WORD = re.compile(r"[0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class SearchHit:
    system: str
    code: str
    description: str
    billable: bool
    rank: float

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system,
            "code": self.code,
            "description": self.description,
            "billable": self.billable,
            "rank": round(self.rank, 4),
        }


def _create_fts_table(connection: Connection) -> None:
    connection.execute(
        text(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
            "code, description, notes, content='catalog_codes', content_rowid='id', "
            "tokenize='porter unicode61')"
        )
    )


def _has_fts_table(connection: Connection) -> bool:
    query = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
    return connection.execute(query, {"name": FTS_TABLE}).first() is not None


def refresh_search_index(connection: Connection, system: str) -> None:
    """Bring the search index up to date after a load changed ``system``'s codes."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                f"UPDATE catalog_codes SET search_vector = {POSTGRES_DOCUMENT} "
                "WHERE system = :system"
            ),
            {"system": system},
        )
        # Fold the index's pending list in now: left to autovacuum, every search would
        # scan it linearly (about 10x slower right after a load).
        connection.execute(text(f"SELECT gin_clean_pending_list('{POSTGRES_INDEX}')"))
        return
    _create_fts_table(connection)
    connection.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))


def search_codes(
    session: Session, query: str, *, system: str | None = None, limit: int = SEARCH_LIMIT
) -> list[SearchHit]:
    """Codes whose description or notes hold every word of ``query``, best first."""
    words = WORD.findall(query)
    if not words:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _search_postgres(session, words, system, limit)
    return _search_sqlite(session, words, system, limit)


def _search_postgres(
    session: Session, words: list[str], system: str | None, limit: int
) -> list[SearchHit]:
    sql = (
        "SELECT system, code, description, billable, "
        "ts_rank(search_vector, query) AS rank "
        "FROM catalog_codes, plainto_tsquery('english', :query) AS query "
        "WHERE search_vector @@ query AND (CAST(:system AS TEXT) IS NULL OR system = :system) "
        "ORDER BY rank DESC, code LIMIT :limit"
    )
    rows = session.connection().execute(
        text(sql), {"query": " ".join(words), "system": system, "limit": limit}
    )
    return [SearchHit(*row) for row in rows]


def _search_sqlite(
    session: Session, words: list[str], system: str | None, limit: int
) -> list[SearchHit]:
    if not _has_fts_table(session.connection()):
        return []  # nothing has been loaded yet
    match = " ".join(f'"{word}"' for word in words[:-1]) + f' "{words[-1]}"*'
    sql = (
        f"SELECT c.system, c.code, c.description, c.billable, "
        f"-bm25({FTS_TABLE}, 10.0, 5.0, 1.0) AS rank "
        f"FROM {FTS_TABLE} JOIN catalog_codes AS c ON c.id = {FTS_TABLE}.rowid "
        f"WHERE {FTS_TABLE} MATCH :match AND (:system IS NULL OR c.system = :system) "
        "ORDER BY rank DESC, c.code LIMIT :limit"
    )
    rows = session.connection().execute(
        text(sql), {"match": match.strip(), "system": system, "limit": limit}
    )
    return [SearchHit(sys_, code, desc, bool(bill), rank) for sys_, code, desc, bill, rank in rows]
