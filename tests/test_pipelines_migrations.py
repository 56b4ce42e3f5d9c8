"""Schemas come from Alembic migrations, and a crawl refuses a database at another version."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage import migrations
from storage.db import Database
from storage.fulltext import include_name
from storage.migrations import SchemaMismatch, current_revision, head_revision
from storage.models import Base


def test_a_fresh_database_is_built_by_the_migrations(database_url: str) -> None:
    database = Database(database_url).prepare()
    assert current_revision(database.engine) == head_revision()
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "articles",
        "sources",
        "search_hits",
        "hot_entries",
        "topics",
        "crawl_runs",
        "rejects",
        "alembic_version",
    } <= tables
    database.dispose()


def test_the_migrations_build_exactly_the_models(database_url: str) -> None:
    database = Database(database_url).prepare()
    with database.engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name}),
            Base.metadata,
        )
    database.dispose()
    assert diff == []


def test_a_schema_behind_the_code_is_refused_with_the_command_to_run(sqlite_url: str, monkeypatch) -> None:
    Database(sqlite_url).prepare().dispose()
    monkeypatch.setattr(migrations, "head_revision", lambda: "0099")  # this code now expects a newer schema
    with pytest.raises(SchemaMismatch, match=r"behind .*run `fxcrawl db upgrade`"):
        Database(sqlite_url).prepare()


def test_a_schema_ahead_of_the_code_is_refused(sqlite_url: str) -> None:
    database = Database(sqlite_url).prepare()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(SchemaMismatch, match="newer than this fxcrawl"):
        Database(sqlite_url).prepare()


def test_a_foreign_database_is_not_touched(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaMismatch, match="no fxcrawl schema version"):
        database.prepare()
    assert set(inspect(database.engine).get_table_names()) == {"invoices"}
