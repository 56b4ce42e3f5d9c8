"""Schema versions through Alembic: a crawl refuses a database whose schema is behind or ahead of
this code, and `fxcrawl db upgrade` migrates one that is behind.

An empty database is given the head schema at once, as Alembic's own recipe for a database built
from scratch does: the models' tables, the full-text index's, and the head revision recorded (the
seven migrations took 0.5 s of every first crawl, Alembic's import included).
tests/test_pipelines_migrations.py checks that it equals the schema the migrations build.

The migrations are this package's data (``env.py``, ``script.py.mako``, ``versions/``), so a
wheel or an egg carries them. Alembic reads scripts from real files: installed as files they are
read where they are; from a zipped egg (Scrapyd runs eggs zipped) they are copied out once per
process into a temporary folder. A database at ``HEAD_REVISION`` needs no script at all.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
)

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

#: The newest revision in ``versions/``, compiled in so that checking a current database reads no
#: script (tests/test_pipelines_migrations.py checks it against the scripts). A new migration
#: moves it.
HEAD_REVISION = "0006_archive"
#: Alembic's record of the schema version (its default name and shape): read here without
#: importing Alembic, which costs a crawl's start about 0.2 s (with Mako and Pygments) and is
#: needed only to migrate (tests/test_pipelines_migrations.py checks both read the same).
_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
#: What Alembic reads from this package: the environment, the template and the revisions.
_SCRIPT_SUFFIXES = (".py", ".mako")


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this code writes; the message says what to run."""


@lru_cache(maxsize=1)
def script_location() -> Path:
    """A folder holding env.py, script.py.mako and versions/: this package's own folder when it is
    installed as files, else (a zipped egg) a copy made for this process and removed at its exit."""
    package = resources.files(__name__)
    if isinstance(package, Path):
        return package
    copy = Path(tempfile.mkdtemp(prefix="fxcrawl-migrations-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    _copy_scripts(package, copy)
    logger.info("migration scripts copied out of the zipped package into %s", copy)
    return copy


def _copy_scripts(source: Traversable, target: Path) -> None:
    for entry in source.iterdir():
        if entry.is_dir():
            if entry.name != "__pycache__":
                (target / entry.name).mkdir()
                _copy_scripts(entry, target / entry.name)
        elif entry.name.endswith(_SCRIPT_SUFFIXES):
            (target / entry.name).write_bytes(entry.read_bytes())


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    return config


def head_revision() -> str:
    """The schema this code writes (no script is read)."""
    return HEAD_REVISION


def scripts_head() -> str:
    """The head revision the scripts in versions/ declare."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    """The version Alembic recorded, or None (no version table, or an empty one)."""
    with engine.connect() as connection:
        versions = _recorded(connection)
    if len(versions) > 1:
        raise SchemaMismatch(f"the database records several schema versions ({', '.join(sorted(versions))})")
    return versions[0] if versions else None


def _recorded(connection: Connection) -> list[str]:
    if not inspect(connection).has_table(_VERSION.name):
        return []
    return list(connection.execute(select(_VERSION.c.version_num)).scalars())


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def newer_schema_message(current: str) -> str:
    """A schema this fxcrawl does not know was written by a newer one: that is the one to run."""
    return (
        f"database schema {current} is newer than this fxcrawl knows ({head_revision()}): "
        "upgrade fxcrawl (pip install -U fxcrawl, or pull and `make install`) and run it instead"
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def create_head(engine: Engine) -> None:
    """Give an empty database the head schema in one transaction: the models' tables, the
    full-text index's and the head revision, as Alembic records it. Under the database's write
    lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so crawls starting together on
    one empty database make it once: the others find it made."""
    from storage import fulltext
    from storage.db import WRITE_OPTION  # (storage.db imports this module)
    from storage.models import Base

    with engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))
            if _recorded(connection):
                return
            Base.metadata.create_all(connection)
            fulltext.create(connection)
            _VERSION.create(connection, checkfirst=True)
            connection.execute(insert(_VERSION).values(version_num=HEAD_REVISION))


#: The advisory lock key of create_head on PostgreSQL (any fixed number; nothing else here takes one).
_CREATE_LOCK = 0x66786372  # "fxcr"


def ensure_schema(engine: Engine) -> None:
    """Give an empty database the head schema; accept one at head; refuse anything else."""
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
        create_head(engine)
        current = current_revision(engine)  # another crawl may have made it first, of its own version
        if current in (head, None):  # None only if someone removed the row meanwhile: nothing to refuse
            return
    if current in known_revisions():
        raise SchemaMismatch(f"database schema {current} is behind this fxcrawl ({head}): run `fxcrawl db upgrade`")
    raise SchemaMismatch(newer_schema_message(current))
