"""Engines, sessions and the one dialect-specific thing fxcrawl needs: INSERT … ON CONFLICT."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache, partial
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert

from storage.logsafety import protect_url
from storage.migrations import ensure_schema

DEFAULT_DATABASE_URL = "sqlite:///data/fxcrawl.db"
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
        busy_timeout = float(parsed.query.get("timeout", DEFAULT_SQLITE_BUSY_TIMEOUT))  # type: ignore[arg-type]
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
        """Build a fresh database through the migrations (only if ``create``); refuse one at
        another schema version. Remembers which SQLite file it opened."""
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


def insert_many(session: Session, stmt: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute an INSERT (… ON CONFLICT) for many rows given as dicts; see ``insert_rows``.

    Every row must have the first row's keys.
    """
    if rows:
        columns = tuple(rows[0])
        getter = itemgetter(*columns) if len(columns) > 1 else (lambda row, key=columns[0]: (row[key],))
        insert_rows(session, stmt, columns, [getter(row) for row in rows])


def insert_rows(session: Session, stmt: Insert, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Execute an INSERT (… ON CONFLICT) for many rows, each a tuple of ``columns`` in order.

    SQLAlchemy's executemany sends every value of every row through its parameter machinery,
    which was most of a batch's time; and psycopg runs an executemany as one statement per
    row. Here the statement is compiled once per dialect and column set, each column is
    converted by the type processors SQLAlchemy itself would use (once per distinct value),
    and the rows go out as ``VALUES (…), (…), …`` of up to ``MAX_PARAMETERS`` parameters each.
    Errors come out of ``exec_driver_sql`` wrapped as SQLAlchemy's own, so ``is_transient``
    judges them as before.

    No two rows may share a conflict key (PostgreSQL refuses to update a row twice in one
    statement): callers merge duplicates first.
    """
    if not rows:
        return
    connection = session.connection()
    plan = _plan(stmt, connection.dialect, tuple(columns))
    values = plan.values(rows)
    if connection.dialect.name not in MULTI_ROW_DIALECTS:
        connection.exec_driver_sql(plan.sql(1), [row + plan.tail_constants for row in values])
        return
    per_statement = max(1, _parameter_limit(connection) // plan.width)
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        parameters = [value for row in chunk for value in row]
        parameters.extend(plan.tail_constants)
        connection.exec_driver_sql(plan.sql(len(chunk)), tuple(parameters))


#: Where one statement of many VALUES groups beats the driver's executemany. On SQLite it is
#: about 20 % faster; psycopg 3 pipelines an executemany, which measured twice as fast here as
#: a many-row VALUES statement on PostgreSQL 15.
MULTI_ROW_DIALECTS = frozenset({"sqlite"})
#: Parameters per statement: within PostgreSQL's limit (65,535) and SQLite's default one
#: (32,766 since 3.32); a SQLite built with a lower limit is asked for it.
MAX_PARAMETERS = 30_000


def _parameter_limit(connection: Connection) -> int:
    if connection.dialect.name == "sqlite":
        import sqlite3

        driver = connection.connection.driver_connection
        getlimit = getattr(driver, "getlimit", None)  # Python 3.11+
        return min(MAX_PARAMETERS, getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999)
    return MAX_PARAMETERS


@dataclass(frozen=True, slots=True)
class _Plan:
    """A compiled single-row INSERT, cut where its VALUES group repeats, and how to fill it from row tuples."""

    head: str  # INSERT INTO t (a, b) VALUES
    group: str  # (?, ?) or (%s::VARCHAR, %s::INTEGER)
    tail: str  # ON CONFLICT … (may hold parameters of its own, the tail constants)
    width: int  # parameters per VALUES group
    #: A row tuple's values in the order the statement takes them (None: already in that order).
    reorder: Callable[[Sequence[Any]], tuple[Any, ...]] | None
    #: Per group parameter (slot: index into the reordered tuple, or None for a constant), or
    #: empty when the reordered tuple already is the group's parameters in order.
    pairs: tuple[tuple[int | None, Any], ...]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # reordered-tuple index -> type converter
    tail_constants: tuple[Any, ...]

    def sql(self, rows: int) -> str:
        return _statement(self.head, self.group, self.tail, rows)

    def values(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        values = list(map(self.reorder, rows)) if self.reorder else [tuple(row) for row in rows]
        if self.processors:
            columns = list(zip(*values, strict=True))
            for index, process in self.processors:
                columns[index] = _convert(process, columns[index])
            values = list(zip(*columns, strict=True))
        if self.pairs:  # defaults to fill in, or a parameter used twice
            values = [tuple(constant if slot is None else row[slot] for slot, constant in self.pairs) for row in values]
        return values


@lru_cache(maxsize=16)
def _statement(head: str, group: str, tail: str, rows: int) -> str:
    return f"{head}{', '.join([group] * rows)}{tail}"


def _convert(process: Callable[[Any], Any], column: Sequence[Any]) -> list[Any]:
    """Each value converted once: equal values share one conversion (a batch's dates, its
    one timestamp), and unhashable ones (JSON lists) are converted per object."""
    by_value: dict[Any, Any] = {}
    by_id: dict[int, Any] = {}
    out = []
    for value in column:  # None included: SQLAlchemy's processors decide what it becomes (JSON: 'null')
        if value.__class__ in _BY_VALUE:
            converted = by_value.get(value, _MISSING)
            if converted is _MISSING:
                converted = by_value[value] = process(value)
        else:
            converted = by_id.get(id(value), _MISSING)
            if converted is _MISSING:
                converted = by_id[id(value)] = process(value)
        out.append(converted)
    return out


#: Types whose equal values convert alike (an aware datetime converts to its UTC instant).
#: bool and int stay apart: True == 1, but a Boolean column converts True, an Integer one 1.
_BY_VALUE = frozenset({str, datetime, date})
_MISSING = object()
_NAMED_PARAMETER = re.compile(r"%\(([^)]+)\)s")


@lru_cache(maxsize=256)
def _plan(stmt: Insert, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    sql = compiled.string
    unescape = {escaped: name for name, escaped in (getattr(compiled, "escaped_bind_names", None) or {}).items()}
    if compiled.positional:
        names = list(compiled.positiontup or ())
        marker = {"qmark": "?", "format": "%s", "numeric": None, "numeric_dollar": None}[dialect.paramstyle]
        if marker is None:
            raise NotImplementedError(f"insert_many: paramstyle {dialect.paramstyle}")
    elif dialect.paramstyle == "pyformat":  # psycopg: make it positional, %(name)s -> %s
        names = [unescape.get(name, name) for name in _NAMED_PARAMETER.findall(sql)]
        sql = _NAMED_PARAMETER.sub("%s", sql)
        marker = "%s"
    else:
        raise NotImplementedError(f"insert_many: paramstyle {dialect.paramstyle}")
    head, group, tail = _split_values(sql)
    width = group.count(marker)
    defaults: dict[str, Any] = {}
    for column in compiled.insert_prefetch:  # columns the rows leave to a Python-side default
        default = column.default
        if default is None or not default.is_scalar:  # a callable one is per row: the rows must carry it
            raise ValueError(f"insert_many: rows must give {column.key!r} (it has no constant default)")
        defaults[column.key] = default.arg

    binds = compiled.binds

    def processor(name: str) -> Callable[[Any], Any] | None:
        return binds[name].type.dialect_impl(dialect).bind_processor(dialect)

    def constant(name: str) -> Any:
        bind = binds[name]
        if bind.key not in defaults and (bind.required or bind.callable is not None):
            raise ValueError(f"insert_many: parameter {name!r} takes its value from each row; not supported")
        value = defaults.get(bind.key, bind.effective_value)
        process = processor(name)
        return process(value) if process else value

    group_names, tail_names = names[:width], names[width:]
    if fed_in_tail := [name for name in tail_names if binds[name].key in keys]:
        raise ValueError(f"insert_many: ON CONFLICT parameters {fed_in_tail} would come from each row; not supported")
    fed = [name for name in dict.fromkeys(group_names) if binds[name].key in keys]
    slots = tuple(fed.index(name) if name in fed else None for name in group_names)
    constants = tuple(None if name in fed else constant(name) for name in group_names)
    processors = tuple((index, process) for index, name in enumerate(fed) if (process := processor(name)))
    positions = [keys.index(binds[name].key) for name in fed]
    reorder = None if positions == list(range(len(keys))) else itemgetter(*positions)
    if reorder is not None and len(positions) == 1:
        reorder = lambda row, position=positions[0]: (row[position],)  # noqa: E731
    pairs = () if slots == tuple(range(len(slots))) else tuple(zip(slots, constants, strict=True))
    return _Plan(head, group, tail, width, reorder, pairs, processors, tuple(map(constant, tail_names)))


def _split_values(sql: str) -> tuple[str, str, str]:
    """'INSERT … VALUES (…) ON CONFLICT …' -> ('INSERT … VALUES ', '(…)', ' ON CONFLICT …')."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    depth = 0
    for end in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        if depth == 0:
            return sql[:start], sql[start : end + 1], sql[end + 1 :]
    raise ValueError(f"insert_many: no VALUES group in {sql[:200]!r}")


def select_in(session: Session, columns: Sequence[Any], key: Any, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` whose ``key`` column is one of ``values``.

    For lookups by natural key (which of these URLs are stored, under which id, in which
    frontier state): the statement is compiled once, the keys go to the driver as they are,
    and only the columns whose type needs it (dates on SQLite) are converted on the way out,
    by the type's own result processor. SQLAlchemy's per-value handling of an IN list and its
    result machinery were most of such a lookup's cost. A key column whose type needs
    converting is refused: select() it.
    """
    if not values:
        return []
    connection = session.connection()
    sql, marker, processors = _select_in(tuple(columns), key, connection.dialect)
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), MAX_PARAMETERS):
        chunk = tuple(values[start : start + MAX_PARAMETERS])
        statement = sql.replace(_EXPANDING, ", ".join([marker] * len(chunk)))
        result = connection.exec_driver_sql(statement, chunk)
        if processors:
            rows.extend(
                tuple(
                    value if process is None or value is None else process(value)
                    for value, process in zip(row, processors, strict=True)
                )
                for row in result
            )
        else:
            rows.extend(tuple(row) for row in result)
    return rows


_EXPANDING = "__[POSTCOMPILE_keys]"


@lru_cache(maxsize=64)
def _select_in(
    columns: tuple[Any, ...], key: Any, dialect: Dialect
) -> tuple[str, str, tuple[Callable[[Any], Any] | None, ...]]:
    if key.type.dialect_impl(dialect).bind_processor(dialect):
        raise ValueError(f"select_in: the key {key} needs type processing; use select()")
    processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    compiled = select(*columns).where(key.in_(bindparam("keys", expanding=True))).compile(dialect=dialect)
    if _EXPANDING not in compiled.string:
        raise NotImplementedError(f"select_in: unexpected SQL {compiled.string!r}")
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        raise NotImplementedError(f"select_in: paramstyle {dialect.paramstyle}")
    return compiled.string, marker, processors if any(processors) else ()
