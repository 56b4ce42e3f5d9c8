"""Engine behaviour fxcrawl relies on: transient-error classification and SQLite's write lock."""

import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from storage import db
from storage.db import Database, is_transient, redact, table_of, upsert, write_rows
from storage.frontier import _discovered_upsert
from storage.models import Base, FrontierEntry, SearchHit


class PgError(Exception):
    """Stands in for a psycopg error: what matters is its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), True),
        (OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: articles")), False),
        (OperationalError("connect", {}, psycopg.OperationalError("connection failed: Connection refused")), True),
        (
            OperationalError(
                "connect", {}, psycopg.OperationalError("connection failed: port 5432 failed: Connection reset by peer")
            ),
            True,
        ),
        (
            OperationalError(
                "connect", {}, psycopg.OperationalError('connection failed: FATAL: database "fx" does not exist')
            ),
            False,
        ),
        (OperationalError("INSERT", {}, PgError("40001")), True),  # serialization failure
        (OperationalError("INSERT", {}, PgError("40P01")), True),  # deadlock
        (OperationalError("INSERT", {}, PgError("57P01")), True),  # admin shutdown
        (OperationalError("INSERT", {}, PgError("08006")), True),  # connection failure
        (OperationalError("INSERT", {}, PgError("25006")), False),  # read-only transaction
        (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (DataError("INSERT", {}, PgError("22021")), False),  # bad byte sequence
        (ValueError("not a database error"), False),
    ],
)
def test_only_transient_errors_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_redact_hides_the_password() -> None:
    assert redact("postgresql+psycopg://fx:s3cret@db:5432/fx") == "postgresql+psycopg://fx:***@db:5432/fx"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    database = Database(sqlite_url + "?timeout=7")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    database.dispose()


def test_sqlite_writers_take_the_lock_up_front_and_queue(sqlite_url: str) -> None:
    """Two write transactions on one file: the second waits for the first instead of failing."""
    database = Database(sqlite_url).prepare()
    order: list[str] = []

    def writer(name: str, hold: float) -> None:
        with database.write_session() as session:
            session.execute(text("SELECT count(*) FROM sources"))  # a deferred BEGIN would not wait here
            order.append(f"{name} in")
            session.execute(
                text("INSERT INTO sources (name, first_seen_at, last_seen_at) VALUES (:n, 0, 0)"), {"n": name}
            )
            time.sleep(hold)
            order.append(f"{name} out")

    first = threading.Thread(target=writer, args=("a", 0.5))
    first.start()
    time.sleep(0.1)
    writer("b", 0)
    first.join()
    assert order == ["a in", "a out", "b in", "b out"]
    database.dispose()


# -- write_rows / select_in: the store's one write path and its lookups by key --------------


def _frontier_rows(count: int, now: datetime, prefix: str = "https://www.fx168news.com/article/") -> list[dict]:
    return [
        {
            "url": f"{prefix}{n}",
            "state": "fetched",
            "attempts": n % 3,
            "listing_hash": f"{n:064x}",
            "published_at": now - timedelta(hours=n) if n % 2 else None,  # None and aware values both
            "discovered_at": now,
            "fetched_at": now,
        }
        for n in range(count)
    ]


def _frontier_database(database_url: str, rows: list[dict]) -> Database:
    """A prepared database holding these frontier rows (written by write_rows)."""
    database = Database(database_url).prepare()
    with database.write_session() as session:
        write_rows(session, upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state"]), rows)
    return database


def _stored(database: Database, model: type[Base]) -> list[tuple[Any, ...]]:
    table = table_of(model)
    columns = [c for c in table.c if c.name != "id"]
    with database.session() as session:
        return [tuple(row) for row in session.execute(select(*columns).order_by(columns[0]))]


def test_write_rows_upserts_named_rows_with_defaults_and_conflict_expressions(database_url: str) -> None:
    """Python defaults ('kind'), a CASE with constants of its own in ON CONFLICT, aware datetimes
    read back as written; rows written twice are updated, not doubled."""
    now = datetime(2026, 11, 28, 19, 0, 30, 123456, tzinfo=UTC)
    database = Database(database_url).prepare()
    try:
        discovered = [
            {k: r[k] for k in ("url", "state", "attempts", "listing_hash", "discovered_at")}
            for r in _frontier_rows(60, now)
        ]
        update = upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state", "published_at", "fetched_at"])
        with database.write_session() as session:
            write_rows(session, _discovered_upsert(database.dialect), discovered)
            write_rows(session, update, _frontier_rows(30, now + timedelta(minutes=1)))
            write_rows(session, update, [])
        stored = _stored(database, FrontierEntry)
        assert len(stored) == 60 and {row[1] for row in stored} == {"article"}
        assert sum(1 for row in stored if row[2] == "fetched") == 60
        assert {row[11] for row in stored if row[11] is not None} == {now + timedelta(minutes=1)}
    finally:
        database.dispose()


def test_select_in_finds_rows_by_key_in_chunks(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = _frontier_database(database_url, _frontier_rows(10, datetime(2026, 11, 28, tzinfo=UTC)))
    monkeypatch.setattr(db, "IN_CHUNK", 3)  # 7 keys: three statements
    try:
        wanted = [f"https://www.fx168news.com/article/{n}" for n in (0, 2, 4, 6, 8, 10, 12)]  # 10 and 12 absent
        with database.session() as session:
            found = db.select_in(session, (FrontierEntry.url, FrontierEntry.attempts), FrontierEntry.url, wanted)
            assert db.select_in(session, (FrontierEntry.url,), FrontierEntry.url, []) == []
        assert sorted(found) == [(f"https://www.fx168news.com/article/{n}", n % 3) for n in (0, 2, 4, 6, 8)]
    finally:
        database.dispose()


def test_write_rows_stores_json_none_as_json_null(database_url: str) -> None:
    """JSON None is JSON null, not SQL NULL (a NOT NULL column takes it)."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    database = Database(database_url).prepare()
    try:
        table = SearchHit.__table__
        stmt = upsert(database.dialect, table, ["keyword", "tab", "page", "article_url"], ["highlights"])
        row = {"keyword": "k", "tab": "t", "page": 1, "rank": 1, "title": "t", "snippet": "s", "highlights": None}
        row |= {"source_name": "s", "listed_on": None, "run_id": None, "first_seen_at": now, "last_seen_at": now}
        with database.write_session() as session:
            write_rows(session, stmt, [row | {"article_url": "a"}, row | {"article_url": "b"}])
        with database.session() as session:
            raw: dict[str, str] = {
                url: shown
                for url, shown in session.execute(text("SELECT article_url, CAST(highlights AS TEXT) FROM search_hits"))
            }
        assert raw == {"a": "null", "b": "null"}
    finally:
        database.dispose()


def test_the_fast_path_stores_what_session_execute_stores(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same rows through write_rows' named-rows fast path and through session.execute (Python
    defaults, type conversion, ON CONFLICT constants, JSON, dates): the tables come out equal."""
    now = datetime(2026, 11, 28, 19, 0, 30, tzinfo=UTC)  # no microseconds: formatted as SQLAlchemy does
    hit_rows = [
        {
            "keyword": "现代",
            "tab": "article",
            "page": n // 10 + 1,
            "rank": n % 10 + 1,
            "article_url": f"https://www.fx168news.com/article/{n}",
            "title": f"标题 {n} ‘quoted’ 100% :x %(y)s ?",
            "snippet": "" if n % 4 == 0 else "s",
            "highlights": ["现代"] * (n % 3) if n % 5 else None,
            "source_name": "金融界",
            "listed_on": date(2026, 11, 1 + n % 20),
            "run_id": None,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        for n in range(40)
    ]
    discovered = [
        {k: r[k] for k in ("url", "state", "attempts", "listing_hash", "discovered_at")}
        for r in _frontier_rows(60, now)
    ]
    stored: list[Any] = []  # per round: (frontier rows, hit rows), then the raw highlights
    for fast in (True, False):
        monkeypatch.setattr(db, "FAST_WRITES", fast)
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path_factory.mktemp('fast')}/fx.db"
        else:
            url = database_url
        database = Database(url).prepare()
        try:
            hits = upsert(database.dialect, SearchHit.__table__, ["keyword", "tab", "page", "article_url"], ["title"])
            update = upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state", "published_at", "fetched_at"])
            with database.write_session() as session:
                write_rows(session, _discovered_upsert(database.dialect), discovered)  # 'kind' left to its default
                write_rows(session, update, _frontier_rows(30, now + timedelta(minutes=1)))
                write_rows(session, hits, hit_rows)
                write_rows(session, hits, hit_rows[:5])  # conflicts: updated
            stored.append((_stored(database, FrontierEntry), _stored(database, SearchHit)))
            with database.session() as session:
                raw = sorted(session.execute(text("SELECT CAST(highlights AS TEXT) FROM search_hits")).scalars())
            stored.append(raw)
            with database.write_session() as session:
                session.execute(delete(FrontierEntry))
                session.execute(delete(SearchHit))
        finally:
            database.dispose()
    assert stored[0] == stored[2] and stored[1] == stored[3]
    assert len(stored[0][0]) == 60 and len(stored[0][1]) == 40
