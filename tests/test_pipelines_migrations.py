"""Schemas come from Alembic migrations, and a crawl refuses a database at another version."""

import subprocess
import sys
import zipfile
from pathlib import Path

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
    database = Database(database_url)
    migrations.upgrade(database.engine)  # every migration, from nothing (prepare() takes the short way)
    with database.engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name}),
            Base.metadata,
        )
    database.dispose()
    assert diff == []


def schema_of(engine) -> dict:
    """Everything a schema holds, as comparable values: each table's columns (type, nullability,
    server default), keys, indexes, constraints; and what reflection does not show (SQLite's
    virtual tables and triggers, PostgreSQL's index definitions)."""
    found = inspect(engine)
    tables = {}
    for table in sorted(found.get_table_names()):
        tables[table] = {
            "columns": {
                column["name"]: (str(column["type"]), column["nullable"], column.get("default"))
                for column in found.get_columns(table)
            },
            "primary key": tuple(found.get_pk_constraint(table)["constrained_columns"]),
            "indexes": sorted(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                for index in found.get_indexes(table)
            ),
            "unique": sorted((u["name"] or "", tuple(u["column_names"])) for u in found.get_unique_constraints(table)),
            "foreign keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in found.get_foreign_keys(table)
            ),
            "checks": sorted((check["name"] or "", check["sqltext"]) for check in found.get_check_constraints(table)),
        }
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            others = connection.execute(
                text(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                    " AND (type IN ('trigger', 'view') OR sql LIKE 'CREATE VIRTUAL%')"
                )
            ).all()
        else:
            others = connection.execute(
                text("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            ).all()
    return {"tables": tables, "others": sorted(tuple(row) for row in others)}


def test_a_fresh_database_gets_the_schema_the_migrations_build(database_url: str, tmp_path: Path) -> None:
    """prepare() gives an empty database the head schema at once (the models, the full-text
    index, the head revision): the very schema that every migration run from nothing builds."""
    migrated = Database(database_url)
    migrations.upgrade(migrated.engine)
    by_migrations = schema_of(migrated.engine)
    if migrated.dialect == "sqlite":
        fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    else:  # the same database, emptied
        with migrated.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        fresh = Database(database_url)
    migrated.dispose()
    fresh.prepare()
    assert current_revision(fresh.engine) == head_revision()
    assert schema_of(fresh.engine) == by_migrations
    assert len(by_migrations["tables"]) >= 15 and by_migrations["others"]
    fresh.dispose()


def test_crawls_starting_together_on_an_empty_database_make_its_schema_once(database_url: str) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    together = threading.Barrier(4)

    def start(_: int) -> str | None:
        database = Database(database_url)
        together.wait()
        try:
            database.prepare()
            return current_revision(database.engine)
        finally:
            database.dispose()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start, range(4))) == [head_revision()] * 4


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


def test_head_revision_is_the_newest_script() -> None:
    assert migrations.scripts_head() == migrations.HEAD_REVISION, (
        "a new migration in storage/migrations/versions/: set HEAD_REVISION in storage/migrations/__init__.py to it"
    )


def test_a_current_database_is_checked_without_reading_a_script(sqlite_url: str, monkeypatch) -> None:
    Database(sqlite_url).prepare().dispose()

    def no_scripts():
        raise AssertionError("the scripts were read")

    monkeypatch.setattr(migrations, "script_location", no_scripts)
    Database(sqlite_url).prepare().dispose()


ZIPPED_UPGRADE = """
import sys
from pathlib import Path
from importlib import resources
import storage
from storage import migrations
from storage.db import Database
assert storage.__file__.startswith(sys.argv[1]), storage.__file__
assert not isinstance(resources.files("storage.migrations"), Path)  # read from the archive
database = Database(sys.argv[2]).prepare()
print(migrations.current_revision(database.engine), migrations.scripts_head(), migrations.script_location())
"""


def test_the_migrations_run_from_a_zipped_package(tmp_path: Path) -> None:
    """Scrapyd imports the project from a zipped egg: the scripts are copied out to run."""
    root = Path(__file__).resolve().parents[1]
    archive = tmp_path / "fxcrawl.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for package in ("storage", "fx168"):
            for path in sorted((root / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zipped.write(path, path.relative_to(root).as_posix())
    url = f"sqlite:///{tmp_path / 'zipped.db'}"
    result = subprocess.run(
        [sys.executable, "-c", ZIPPED_UPGRADE, str(archive), url],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(archive)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    current, head, location = result.stdout.split()
    assert current == head == migrations.HEAD_REVISION
    assert not Path(location).exists()  # the copy is gone with the process


def alembic_reads(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_the_version_is_read_as_alembic_reads_it_without_importing_alembic(database_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    assert current_revision(engine) is None and alembic_reads(engine) is None  # no version table yet
    migrations.upgrade(engine, "0001")
    assert current_revision(engine) == alembic_reads(engine) == "0001"
    migrations.upgrade(engine)
    assert current_revision(engine) == alembic_reads(engine) == head_revision()
    engine.dispose()
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sqlalchemy import create_engine; from storage.migrations import current_revision; "
            f"print(current_revision(create_engine({database_url!r}))); print('alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert checked.stdout.split() == [head_revision(), "False"]


def test_two_recorded_versions_are_refused(sqlite_url: str) -> None:
    database = Database(sqlite_url).prepare()
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('f00d')"))
    with pytest.raises(SchemaMismatch, match="several schema versions"):
        current_revision(database.engine)
    database.dispose()
