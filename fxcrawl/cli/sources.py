"""`fxcrawl sources list`: the outlets articles come from, with their article counts."""

from __future__ import annotations

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database
from fxcrawl.cli.output import minutes, print_json, table


@click.group(cls=Group, help="sources (outlets)")
def sources() -> None:
    pass


@sources.command("list", cls=Command, help="sources with their article counts")
@params.db
@params.as_json
def list_sources(db: str, as_json: bool) -> int:
    from storage import queries

    with open_database(db).session() as session:
        rows = queries.list_sources(session)
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["last_seen"] = minutes(row["last_seen_at"])
    table(
        rows,
        [("id", "id", 6), ("name", "source", 20), ("articles", "articles", 8), ("last_seen", "last seen", 16)],
        "no sources stored",
    )
    return 0
