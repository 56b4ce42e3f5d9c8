"""Engine behaviour fxcrawl relies on: transient-error classification and SQLite's write lock."""

import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from storage import db
from storage.db import Database, insert_many, insert_rows, is_transient, redact, upsert
from storage.frontier import _discovered_upsert
from storage.models import FrontierEntry, SearchHit


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


# -- insert_many: the store's write path, against SQLAlchemy's own executemany --------------


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
    """A prepared database holding these frontier rows (written by insert_many)."""
    database = Database(database_url).prepare()
    with database.write_session() as session:
        insert_many(session, upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state"]), rows)
    return database


def _stored(database: Database, model: type) -> list[tuple]:
    table = model.__table__
    columns = [c for c in table.c if c.name != "id"]
    with database.session() as session:
        return [tuple(row) for row in session.execute(select(*columns).order_by(columns[0]))]


def test_insert_many_stores_what_sqlalchemys_executemany_stores(database_url: str) -> None:
    """Same rows through both paths (Python defaults, type conversion, ON CONFLICT constants)
    into two copies of the schema: the tables must come out equal."""
    now = datetime(2026, 11, 28, 19, 0, 30, 123456, tzinfo=UTC)
    fast, slow = Database(database_url).prepare(), None
    stmt = _discovered_upsert(fast.dialect)  # a CASE with constants of its own in ON CONFLICT
    update = upsert(fast.dialect, FrontierEntry.__table__, ["url"], ["state", "published_at", "fetched_at"])
    hits = upsert(fast.dialect, SearchHit.__table__, ["keyword", "tab", "page", "article_url"], ["title"])
    hit_rows = [
        {
            "keyword": "现代",
            "tab": "article",
            "page": n // 10 + 1,
            "rank": n % 10 + 1,
            "article_url": f"https://www.fx168news.com/article/{n}",
            "title": f"标题 {n} ‘quoted’ 100%",
            "snippet": "现代 %s %(x)s ?",
            "highlights": ["现代"] * (n % 3),
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
    try:
        with fast.write_session() as session:
            insert_many(session, stmt, discovered)  # 'kind' is left to its Python default
            insert_many(session, update, _frontier_rows(30, now + timedelta(minutes=1)))
            insert_many(session, hits, hit_rows)
        copy_url = database_url.replace("fxcrawl.db", "copy.db") if database_url.startswith("sqlite") else None
        if copy_url is None:
            with fast.write_session() as session:  # PostgreSQL: the same database, emptied and refilled
                fast_frontier, fast_hits = _stored(fast, FrontierEntry), _stored(fast, SearchHit)
                session.execute(FrontierEntry.__table__.delete())
                session.execute(SearchHit.__table__.delete())
            slow = fast
        else:
            fast_frontier, fast_hits = _stored(fast, FrontierEntry), _stored(fast, SearchHit)
            slow = Database(copy_url).prepare()
        with slow.write_session() as session:
            session.execute(stmt, discovered)
            session.execute(update, _frontier_rows(30, now + timedelta(minutes=1)))
            session.execute(hits, hit_rows)
        assert _stored(slow, FrontierEntry) == fast_frontier
        assert _stored(slow, SearchHit) == fast_hits
        assert len(fast_frontier) == 60 and {row[1] for row in fast_frontier} == {"article"}
        assert sum(1 for row in fast_frontier if row[2] == "fetched") == 60
    finally:
        fast.dispose()
        if slow is not None and slow is not fast:
            slow.dispose()


def test_insert_many_splits_rows_across_statements(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "MAX_PARAMETERS", 20)  # 7 parameters a row: 2 rows a statement
    now = datetime(2026, 11, 28, tzinfo=UTC)
    database = Database(database_url).prepare()
    try:
        stmt = upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state"])
        with database.write_session() as session:
            insert_many(session, stmt, _frontier_rows(7, now))
            insert_many(session, stmt, _frontier_rows(7, now))  # again: every row a conflict, updated
            insert_many(session, stmt, [])
        stored = _stored(database, FrontierEntry)
        assert [row[0] for row in stored] == sorted(f"https://www.fx168news.com/article/{n}" for n in range(7))
        assert {row[11] for row in stored} == {now}  # fetched_at, read back aware
    finally:
        database.dispose()


def test_insert_rows_takes_tuples_in_any_column_order(database_url: str) -> None:
    """Row tuples in an order of the caller's choosing (not the table's) store what dict rows store;
    equal values of a column (one shared timestamp, repeated dates) are converted alike."""
    now = datetime(2026, 11, 28, 19, 0, 30, 123456, tzinfo=UTC)
    rows = _frontier_rows(9, now)
    columns = ("fetched_at", "url", "published_at", "listing_hash", "attempts", "state", "discovered_at")
    database = Database(database_url).prepare()
    try:
        stmt = upsert(database.dialect, FrontierEntry.__table__, ["url"], ["state"])
        with database.write_session() as session:
            insert_many(session, stmt, rows[:4])
            insert_rows(session, stmt, columns, [tuple(row[c] for c in columns) for row in rows[4:]])
            insert_rows(session, stmt, columns, [])
        stored = _stored(database, FrontierEntry)
        by_url = {row[0]: row for row in stored}
        assert len(stored) == 9
        for row in rows:  # url, kind, state, attempts, last_error, listing_hash, walk_until, published_at, …
            got = by_url[row["url"]]
            assert (got[1], got[2], got[3], got[5], got[7]) == (
                "article",
                "fetched",
                row["attempts"],
                row["listing_hash"],
                row["published_at"],
            )
            assert got[10] == now and got[11] == now  # discovered_at, fetched_at: aware, as written
    finally:
        database.dispose()


def test_select_in_finds_rows_by_key_in_chunks(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = _frontier_database(database_url, _frontier_rows(10, datetime(2026, 11, 28, tzinfo=UTC)))
    monkeypatch.setattr(db, "MAX_PARAMETERS", 3)  # 7 keys: three statements
    try:
        wanted = [f"https://www.fx168news.com/article/{n}" for n in (0, 2, 4, 6, 8, 10, 12)]  # 10 and 12 absent
        with database.session() as session:
            found = db.select_in(session, (FrontierEntry.url, FrontierEntry.attempts), FrontierEntry.url, wanted)
            assert db.select_in(session, (FrontierEntry.url,), FrontierEntry.url, []) == []
        assert sorted(found) == [(f"https://www.fx168news.com/article/{n}", n % 3) for n in (0, 2, 4, 6, 8)]
    finally:
        database.dispose()


def test_select_in_converts_what_select_would(database_url: str) -> None:
    now = datetime(2026, 11, 28, 19, 0, 30, 123456, tzinfo=UTC)
    database = _frontier_database(database_url, _frontier_rows(4, now))
    try:
        columns = (FrontierEntry.url, FrontierEntry.published_at, FrontierEntry.fetched_at, FrontierEntry.attempts)
        urls = [f"https://www.fx168news.com/article/{n}" for n in range(4)]
        with database.session() as session:
            fast = sorted(db.select_in(session, columns, FrontierEntry.url, urls))
            slow = sorted(tuple(row) for row in session.execute(select(*columns).where(FrontierEntry.url.in_(urls))))
            with pytest.raises(ValueError, match="type processing"):
                db.select_in(session, columns, FrontierEntry.fetched_at, [now])
        assert fast == slow
        assert fast[1][1] == now - timedelta(hours=1) and fast[1][2] == now  # aware datetimes, as select() gives
    finally:
        database.dispose()


def test_insert_many_refuses_what_it_would_get_wrong(sqlite_url: str) -> None:
    """Per-row values it cannot give: a callable default (SQLAlchemy calls it per row) and an
    ON CONFLICT parameter fed from the row. Refused, never written wrong."""
    database = Database(sqlite_url).prepare()
    try:
        table = SearchHit.__table__
        row = {"keyword": "k", "tab": "t", "page": 1, "rank": 1, "article_url": "u", "title": "t", "snippet": "s"}
        row |= {"highlights": [], "source_name": "s", "listed_on": None, "run_id": None, "last_seen_at": None}
        with database.write_session() as session:  # first_seen_at left to its default, utcnow
            with pytest.raises(ValueError, match="first_seen_at"):
                insert_many(session, upsert(database.dialect, table, ["keyword", "tab", "page", "article_url"]), [row])
            stmt = sqlite_insert(table).on_conflict_do_update(
                index_elements=["keyword", "tab", "page", "article_url"], set_={"title": bindparam("title_again")}
            )
            with pytest.raises(ValueError, match="from each row"):
                insert_many(session, stmt, [row | {"first_seen_at": datetime.now(UTC), "title_again": "x"}])
    finally:
        database.dispose()


def test_insert_many_converts_none_as_sqlalchemy_does(database_url: str) -> None:
    """JSON None is JSON null, not SQL NULL (a NOT NULL column takes it), as with session.execute."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    database = Database(database_url).prepare()
    try:
        table = SearchHit.__table__
        stmt = upsert(database.dialect, table, ["keyword", "tab", "page", "article_url"], ["highlights"])
        row = {"keyword": "k", "tab": "t", "page": 1, "rank": 1, "title": "t", "snippet": "s", "highlights": None}
        row |= {"source_name": "s", "listed_on": None, "run_id": None, "first_seen_at": now, "last_seen_at": now}
        with database.write_session() as session:
            insert_many(session, stmt, [row | {"article_url": "fast"}])
            session.execute(stmt, [row | {"article_url": "slow"}])
        with database.session() as session:
            raw = dict(session.execute(text("SELECT article_url, CAST(highlights AS TEXT) FROM search_hits")).all())
        assert raw == {"fast": "null", "slow": "null"}
    finally:
        database.dispose()
