"""Schema versions through Alembic: a fresh database is built by the migrations, and a crawl
refuses a database whose schema is behind or ahead of this code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this code writes; the message says what to run."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def newer_schema_message(current: str) -> str:
    """A schema this fxcrawl does not know was written by a newer one: that is the one to run."""
    return (
        f"database schema {current} is newer than this fxcrawl knows ({head_revision()}): "
        "upgrade fxcrawl (pip install -U fxcrawl, or pull and `make install`) and run it instead"
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> None:
    """Migrate an empty database to head; accept one at head; refuse anything else."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if tables - {"alembic_version"}:
            raise SchemaMismatch(
                f"the database has tables but no fxcrawl schema version ({', '.join(sorted(tables))}); "
                "point --db at an empty or fxcrawl database"
            )
        upgrade(engine)
        return
    if current in known_revisions():
        raise SchemaMismatch(f"database schema {current} is behind this fxcrawl ({head}): run `fxcrawl db upgrade`")
    raise SchemaMismatch(newer_schema_message(current))
