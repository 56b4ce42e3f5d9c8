"""`fxcrawl db upgrade|current`: the database's schema, migrated by Alembic."""

from __future__ import annotations

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.errors import UsageError


@click.group("db", cls=Group, help="database schema")
def db_group() -> None:
    pass


@db_group.command("upgrade", cls=Command, help="migrate the database schema")
@params.db
@click.argument("revision", metavar="revision", required=False, default="head")
def upgrade(db: str, revision: str) -> int:
    from storage.db import Database, redact
    from storage.migrations import current_revision, known_revisions, newer_schema_message
    from storage.migrations import upgrade as migrate

    known = known_revisions()
    if revision not in (*known, "head"):
        raise UsageError(f"no schema revision {revision!r}; known: head, {', '.join(sorted(known))}")
    database = Database(db)
    before = current_revision(database.engine)
    if before is not None and before not in known:
        raise UsageError(newer_schema_message(before))
    migrate(database.engine, revision)
    print(f"{redact(db)}: schema {before or '(empty)'} -> {current_revision(database.engine)}")
    return 0


@db_group.command("current", cls=Command, help="show the database's schema version")
@params.db
def current(db: str) -> int:
    from storage.db import Database, redact
    from storage.migrations import current_revision, head_revision

    now, head = current_revision(Database(db, create=False).engine), head_revision()
    state = "up to date" if now == head else f"this fxcrawl needs {head}: run `fxcrawl db upgrade`"
    print(f"{redact(db)}: schema {now or '(empty)'} ({state})")
    return 0
