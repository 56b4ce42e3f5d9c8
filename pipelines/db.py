"""Engines, sessions and the one dialect-specific thing fxcrawl needs: INSERT … ON CONFLICT."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from pipelines.models import Base

DEFAULT_DATABASE_URL = "sqlite:///data/fxcrawl.db"


def make_engine(url: str) -> Engine:
    """An engine with the settings fxcrawl relies on (SQLite: WAL, a busy timeout, foreign keys)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30}, json_serializer=_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, json_serializer=_json)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def redact(url: str) -> str:
    """The URL without its password, for anything a person or a log may see."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    def session(self) -> Session:
        return self.sessions()

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
