"""`fxcrawl fast-news list`: the stored 快讯 (fast news), newest first."""

from __future__ import annotations

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.output import minutes, print_json, table


@click.group("fast-news", cls=Group, help="stored 快讯 (fast news)")
def fast_news() -> None:
    pass


@fast_news.command("list", cls=Command, help="快讯, newest first")
@params.db
@params.as_json
@params.since("2026-12-01")
@click.option("--limit", type=params.POSITIVE, default=50)
def list_fast_news(db: str, as_json: bool, since: str | None, limit: int) -> int:
    from storage import queries

    with open_database(db).session() as session:
        rows = queries.list_fast_news(session, since=when(since), limit=limit)
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["published"] = minutes(row["published_at"] or row["published_text"])
        row["pin"] = "置顶" if row["pinned"] else ""
    table(
        rows,
        [
            ("id", "id", 8),
            ("published", "published", 16),
            ("pin", "", 4),
            ("source_tag", "tag", 6),
            ("text", "text", 70),
        ],
        "no fast news stored",
    )
    return 0
