"""Engines, sessions and the one dialect-specific thing fxcrawl needs: INSERT … ON CONFLICT."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from crawler.logsafety import protect_url
from pipelines.migrations import ensure_schema

DEFAULT_DATABASE_URL = "sqlite:///data/fxcrawl.db"
#: Seconds a SQLite writer waits for another's lock; a URL may say otherwise (…/fx.db?timeout=5).
DEFAULT_SQLITE_BUSY_TIMEOUT = 30.0


def make_engine(url: str) -> Engine:
    """An engine with the settings fxcrawl relies on (SQLite: WAL, a busy timeout, foreign keys)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_timeout = float(parsed.query.get("timeout", DEFAULT_SQLITE_BUSY_TIMEOUT))  # type: ignore[arg-type]
        parsed = parsed.difference_update_query(["timeout"])
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout}, json_serializer=_json)
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=int(busy_timeout * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, json_serializer=_json)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Writers take SQLite's write lock up front (BEGIN IMMEDIATE), so two crawls on one file
    queue on the busy timeout instead of failing mid-transaction with 'database is locked'."""
    immediate = connection.get_execution_options().get(WRITE_OPTION)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "fxcrawl_write"

#: SQLSTATE codes and prefixes of errors worth retrying: connection loss, server shutting
#: down or starting, too many connections, serialization failures and deadlocks.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P")
_TRANSIENT_SQLSTATES = {"40001", "40P01", "53300"}
_TRANSIENT_MESSAGES = (
    "database is locked",
    "database is busy",
    "disk i/o error",
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection timed out",
    "consuming input failed",
    # the network between here and the server: a reset, a dead peer, a half-open socket
    "connection reset by peer",
    "broken pipe",
    "no route to host",
    "network is unreachable",
    "timeout expired",
    "could not receive data from server",
    "could not send data to server",
    "ssl connection has been closed unexpectedly",
    "ssl syscall error",
)


def is_transient(exc: BaseException) -> bool:
    """Would the same statement likely succeed if tried again shortly? Never for integrity or
    data errors: those are the item's fault and repeat forever."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES) or sqlstate in _TRANSIENT_SQLSTATES
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        return any(fragment in message for fragment in _TRANSIENT_MESSAGES)
    return False


def redact(url: str) -> str:
    """The URL without its password, for anything a person or a log may see."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine and session factory for one database URL.

    The URL's password is registered with ``crawler.logsafety`` as the Database is made, so
    whatever runs with it (``fxcrawl``, ``scrapy crawl``, the scheduler) never logs it.
    """

    def __init__(self, url: str) -> None:
        protect_url(url)
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def prepare(self) -> Database:
        """Build a fresh database through the migrations; refuse one at another schema version."""
        ensure_schema(self.engine)
        return self

    def session(self) -> Session:
        return self.sessions()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session in one write transaction (on SQLite, holding the write lock from the start)."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({redact(self.url)!r})"


def upsert(
    dialect: str,
    table: Table,
    keys: Iterable[str],
    update: Mapping[str, Any] | Iterable[str] = (),
) -> Executable:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING) for SQLite and PostgreSQL.

    ``update`` names columns to take from the incoming row, or maps columns to expressions
    (which may use ``stmt.excluded`` via :func:`excluded`). Execute it with a list of row
    dicts: the driver's executemany path sends the whole batch at once.
    """
    if not isinstance(update, Mapping):  # column names only: the same statement every time, built once
        return _upsert_columns(dialect, table, tuple(keys), tuple(update))
    return _upsert(dialect, table, keys, update)


@lru_cache(maxsize=256)
def _upsert_columns(dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...]) -> Executable:
    return _upsert(dialect, table, keys, update)


def _upsert(
    dialect: str,
    table: Table,
    keys: Iterable[str],
    update: Mapping[str, Any] | Iterable[str],
) -> Executable:
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise NotImplementedError(f"no upsert for the {dialect} dialect; use SQLite or PostgreSQL")
    stmt = insert(table)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    if not isinstance(update, Mapping):
        update = {column: stmt.excluded[column] for column in update}
    else:
        update = {column: value(stmt.excluded) if callable(value) else value for column, value in update.items()}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)


_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
