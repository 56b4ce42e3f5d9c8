"""Engines, sessions and the one dialect-specific thing fxcrawl needs: INSERT … ON CONFLICT."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from sqlalchemy import Connection, Engine, FromClause, Insert, Table, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.logsafety import protect_url
from storage.migrations import ensure_schema

#: Seconds a SQLite writer waits for another's lock; a URL may say otherwise (…/fx.db?timeout=5).
DEFAULT_SQLITE_BUSY_TIMEOUT = 30.0


#: The databases fxcrawl writes (its upserts are written for these two dialects).
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: Host names that mean this machine: one database whichever of them a URL spells.
_LOOPBACK = {"", "localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain"}


class DatabaseURLError(ValueError):
    """A --db / DATABASE_URL that is not a URL, or names a database fxcrawl cannot use."""


class DatabaseMissing(RuntimeError):
    """A read-only command was pointed at a database that does not exist; the message says how to make one."""


class DatabaseUnwritable(RuntimeError):
    """The database cannot be written (read-only file, folder or server); found before a crawl starts."""


class DatabaseFileChanged(SQLAlchemyError):
    """The SQLite file was deleted or replaced while fxcrawl had it open: writing on would store
    into a file nobody will ever read again. Never transient, so the batch is spooled."""


def parse_database_url(url: str) -> URL:
    """The URL, or DatabaseURLError in one line (not a URL, or not SQLite / PostgreSQL)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseURLError(
            f"not a database URL: {url!r} ({exc}); use sqlite:///PATH or postgresql+psycopg://USER@HOST/NAME"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseURLError(
            f"unsupported database {backend!r} in {redact(url)}: fxcrawl writes SQLite (sqlite:///PATH) "
            "or PostgreSQL (postgresql+psycopg://USER@HOST/NAME)"
        )
    if backend == "postgresql":
        if not parsed.database:
            raise DatabaseURLError(f"no database name in {redact(url)}: postgresql+psycopg://USER@HOST/NAME")
        try:
            parsed.get_dialect()
        except Exception as exc:  # an unknown driver (postgresql+nosuch://): SQLAlchemy's own error, one line
            raise DatabaseURLError(f"unusable driver in {redact(url)}: {exc}") from None
    return parsed


def sqlite_path(url: str | URL) -> Path | None:
    """The absolute, resolved file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def database_identity(url: str) -> str:
    """What the URL points at, whatever its spelling: dialect, host, port and database name (no
    user, no password, no driver, loopback names as one); for SQLite the resolved file path."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        return f"sqlite:{path or ':memory:'}"
    host = (parsed.host or "").lower()
    host = "localhost" if host in _LOOPBACK else host
    return f"postgresql://{host}:{parsed.port or 5432}/{parsed.database}"


def identity_key(url: str) -> str:
    """A short folder name for one database: its dialect and a hash of its identity."""
    identity = database_identity(url)
    return f"{identity.split(':', 1)[0]}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine with the settings fxcrawl relies on (SQLite: WAL, a busy timeout, foreign keys).

    ``create=False`` (read-only commands): a SQLite file or folder that does not exist is an
    error, never made."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None and not create and not path.is_file():
            raise DatabaseMissing(
                f"no database at {path}: create it with `fxcrawl db upgrade --db {redact(url)}` or run a crawl"
            )
        if path is not None and not create and path.stat().st_size == 0:  # opening it would write to it
            raise DatabaseMissing(
                f"{path} is empty, not an fxcrawl database: create it with "
                f"`fxcrawl db upgrade --db {redact(url)}` or run a crawl"
            )
        if path is not None and create:
            path.parent.mkdir(parents=True, exist_ok=True)
        busy_timeout = float(parsed.query.get("timeout", DEFAULT_SQLITE_BUSY_TIMEOUT))  # type: ignore[arg-type]  # a query value may be a tuple; a timeout is one
        parsed = parsed.difference_update_query(["timeout"])
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout}, json_serializer=_json)
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=int(busy_timeout * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, json_serializer=_json)


#: One encoder for every JSON column value: json.dumps with any option builds a new encoder per call.
_json = json.JSONEncoder(ensure_ascii=False).encode


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

    The URL's password is registered with ``storage.logsafety`` as the Database is made, so
    whatever runs with it (``fxcrawl``, ``scrapy crawl``, the scheduler) never logs it.
    """

    def __init__(self, url: str, create: bool = True) -> None:
        protect_url(url)
        self.url = url
        self.create = create
        self.engine = make_engine(url, create=create)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.path = sqlite_path(url)
        #: (device, inode) of the SQLite file when it was opened, to notice it deleted or replaced.
        self.file_id: tuple[int, int] | None = None
        if self.path is not None:
            event.listen(self.engine, "do_connect", self._open_existing)

    def _open_existing(self, _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        """Once the file is opened, a new connection (the pool makes them as threads need them)
        opens that file only (mode=rw): SQLite would silently make an empty one in its place."""
        if (self.file_id is not None or not self.create) and self.path is not None:
            cargs[:1] = [f"file:{quote(str(self.path))}?mode=rw"]
            cparams["uri"] = True

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def identity(self) -> str:
        return database_identity(self.url)

    def prepare(self) -> Database:
        """Give an empty database the head schema (only if ``create``); refuse one at another
        schema version. Remembers which SQLite file it opened."""
        if not self.create and self.path is None and not _has_schema(self.engine):
            raise DatabaseMissing(
                f"{redact(self.url)} has no fxcrawl schema: create it with `fxcrawl db upgrade` or run a crawl"
            )
        if not self.create and self.path is not None:
            with self.engine.connect() as connection:  # an empty file: no schema, and none is made here
                empty = not _has_schema_connection(connection)
            if empty:
                raise DatabaseMissing(
                    f"{self.path} holds no fxcrawl schema: create it with `fxcrawl db upgrade --db "
                    f"{redact(self.url)}` or run a crawl"
                )
        ensure_schema(self.engine)
        self.remember_file()
        return self

    def remember_file(self) -> None:
        if self.path is not None:
            stat = self.path.stat()
            self.file_id = (stat.st_dev, stat.st_ino)

    def verify_file(self) -> None:
        """Raise DatabaseFileChanged if the SQLite file opened is no longer the one at its path."""
        if self.path is None or self.file_id is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise DatabaseFileChanged(f"the database file {self.path} was deleted during the run") from None
        if (stat.st_dev, stat.st_ino) != self.file_id:
            raise DatabaseFileChanged(f"the database file {self.path} was replaced by another file during the run")

    def check_writable(self, before_open: bool = False) -> None:
        """Raise DatabaseUnwritable (one line) if a crawl could not store anything here.
        ``before_open``: only what can be seen without connecting (SQLite's file and folder)."""
        if self.path is not None:
            folder = self.path.parent
            for what, target in (
                ("file", self.path),
                ("folder", folder),
                ("WAL file", self.path.with_name(self.path.name + "-wal")),
                ("shared-memory file", self.path.with_name(self.path.name + "-shm")),
            ):
                if target.exists() and not os.access(target, os.W_OK):
                    raise DatabaseUnwritable(f"the database {what} {target} is read-only: nothing could be stored")
            return
        if before_open:
            return
        with self.engine.connect() as connection:
            read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
        if read_only == "on":
            raise DatabaseUnwritable(
                f"{redact(self.url)} is read-only (transaction_read_only): nothing could be stored"
            )

    def session(self) -> Session:
        return self.sessions()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session in one write transaction (on SQLite, holding the write lock from the start).

        Before it commits, the SQLite file is checked to be the one opened: a deleted or replaced
        file rolls the transaction back (DatabaseFileChanged) rather than commit into the void."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                yield session
                self.verify_file()

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({redact(self.url)!r})"


def _has_schema(engine: Engine) -> bool:
    with engine.connect() as connection:
        return _has_schema_connection(connection)


def _has_schema_connection(connection: Connection) -> bool:
    from sqlalchemy import inspect

    return "alembic_version" in inspect(connection).get_table_names()


def upsert(
    dialect: str,
    table: FromClause,
    keys: Iterable[str],
    update: Mapping[str, Any] | Iterable[str] = (),
) -> Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING) for SQLite and PostgreSQL.

    ``update`` names columns to take from the incoming row, or maps columns to expressions
    (which may use ``stmt.excluded`` via :func:`excluded`). Execute it with a list of row
    dicts: the driver's executemany path sends the whole batch at once.
    """
    if not isinstance(update, Mapping):  # column names only: the same statement every time, built once
        return _upsert_columns(dialect, table, tuple(keys), tuple(update))
    return _upsert(dialect, table, keys, update)


@lru_cache(maxsize=256)
def _upsert_columns(dialect: str, table: FromClause, keys: tuple[str, ...], update: tuple[str, ...]) -> Insert:
    return _upsert(dialect, table, keys, update)


def _upsert(
    dialect: str,
    table: FromClause,
    keys: Iterable[str],
    update: Mapping[str, Any] | Iterable[str],
) -> Insert:
    if dialect == "sqlite":
        stmt: sqlite.Insert | postgresql.Insert = sqlite.insert(cast(Table, table))
    elif dialect == "postgresql":
        stmt = postgresql.insert(cast(Table, table))
    else:
        raise NotImplementedError(f"no upsert for the {dialect} dialect; use SQLite or PostgreSQL")
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    excluded = stmt.excluded
    if not isinstance(update, Mapping):
        values = {column: excluded[column] for column in update}
    else:
        values = {column: value(excluded) if callable(value) else value for column, value in update.items()}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=values)


def table_of(model: type[Any]) -> Table:
    """A model's table, typed as one (SQLAlchemy types ``__table__`` as any FROM clause)."""
    return cast(Table, model.__table__)


def write_rows(session: Session, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """The one way a batch is written: an INSERT (… ON CONFLICT) executed for named rows as one
    executemany. Every row has the same keys; no two share a conflict key (callers merge
    duplicates first)."""
    if not rows:
        return
    connection = session.connection()
    plan = _named_plan(stmt, connection.dialect, tuple(rows[0])) if FAST_WRITES else None
    if plan is None:
        session.execute(stmt, list(rows))
        return
    sql, constants, processors = plan
    values = [{**constants, **row} for row in rows]
    for key, process in processors:
        converted = _convert(process, [row[key] for row in values])
        for row, value in zip(values, converted, strict=True):
            row[key] = value
    connection.exec_driver_sql(sql, values)


#: The measured hot spot: SQLAlchemy handles every value of every row of an executemany in
#: Python. On SQLite the fast path buys 1.05-1.08x of the store's articles/s (``make bench``,
#: "sqlite with the write fast path"); on PostgreSQL it bought nothing and is not taken. It
#: sends the statement SQLAlchemy compiled, unchanged, with named parameters, and converts each
#: column's values once per distinct value by the type processors SQLAlchemy itself would use.
#: False: session.execute for everything.
FAST_WRITES = True


@lru_cache(maxsize=256)
def _named_plan(
    stmt: Insert, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[str, dict[str, Any], tuple[tuple[str, Callable[[Any], Any]], ...]] | None:
    """The statement as SQLAlchemy compiles it for these row keys with SQLite's ``named``
    paramstyle, the values of its other
    parameters (ON CONFLICT constants, scalar column defaults), and each key's type processor.
    None (use session.execute) for anything it does not cover."""
    if not all(key.isidentifier() for key in keys):
        return None
    if dialect.name != "sqlite":  # on PostgreSQL it bought nothing (make bench: 0.98-1.0x)
        return None
    named: Dialect = sqlite.dialect(paramstyle="named")
    compiled = stmt.compile(dialect=named, column_keys=list(keys))
    if "POSTCOMPILE" in compiled.string or not all(name.isidentifier() for name in compiled.binds):
        return None
    constants: dict[str, Any] = {}
    for column in getattr(compiled, "insert_prefetch", ()):  # left to a Python-side default
        default = column.default
        if column.key in keys:
            continue
        if default is None or not default.is_scalar:  # computed per row: SQLAlchemy does that
            return None
        constants[column.key] = default.arg
    for name, bind in compiled.binds.items():
        if name in keys or name in constants:
            continue
        if bind.callable is not None or (bind.value is None and bind.required):
            return None
        constants[name] = bind.effective_value

    def processor(name: str) -> Callable[[Any], Any] | None:
        bind_type = compiled.binds[name].type
        processed: Callable[[Any], Any] | None = bind_type.dialect_impl(dialect).bind_processor(dialect)
        return processed

    for name, value in list(constants.items()):
        if (process := processor(name)) is not None:
            constants[name] = process(value)
    processors = tuple((key, process) for key in keys if (process := processor(key)) is not None)
    return compiled.string, constants, processors


def _convert(process: Callable[[Any], Any], column: Sequence[Any]) -> list[Any]:
    """Each value converted once: equal values share one conversion (a batch's one timestamp,
    its dates); unhashable ones (JSON lists) per object."""
    by_value: dict[Any, Any] = {}
    out = []
    for value in column:
        if value.__class__ in _BY_VALUE:
            converted = by_value.get(value, _MISSING)
            if converted is _MISSING:
                converted = by_value[value] = process(value)
        else:
            converted = process(value)
        out.append(converted)
    return out


#: Types whose equal values convert alike (an aware datetime converts to its UTC instant).
#: bool and int stay apart: True == 1, but a Boolean column converts True, an Integer one 1.
_BY_VALUE = frozenset({str, datetime, date})
_MISSING = object()


#: Keys per IN list: well within SQLite's and PostgreSQL's parameter limits.
IN_CHUNK = 10_000


def select_in(session: Session, columns: Sequence[Any], key: Any, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` whose ``key`` column is one of ``values`` (read by natural key:
    which of these URLs are stored, under which id, in which frontier state)."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = list(values[start : start + IN_CHUNK])
        rows.extend(tuple(row) for row in session.execute(select(*columns).where(key.in_(chunk))))
    return rows
