"""Engine behaviour fxcrawl relies on: transient-error classification and SQLite's write lock."""

import sqlite3
import threading
import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from pipelines.db import Database, is_transient, redact


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
