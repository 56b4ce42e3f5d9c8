"""`fxcrawl fast-news list`: the stored 快讯 (fast news), newest first."""

from __future__ import annotations

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.output import footer, minutes, print_json, table


@click.group("fast-news", cls=Group, help="stored 快讯 (fast news)")
def fast_news() -> None:
    pass


@fast_news.command("list", cls=Command, help="快讯, newest first")
@params.db
@params.as_json
@params.since("2026-12-01")
@params.limit
@params.offset
@params.tz
def list_fast_news(db: str, as_json: bool, since: str | None, limit: int, offset: int, tz: str) -> int:
    from storage import queries

    start = when(since)
    with open_database(db).session() as session:
        rows = queries.list_fast_news(session, since=start, limit=limit, offset=offset)
        total = 0 if as_json else queries.count_fast_news(session, since=start)
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["published"] = minutes(row["published_at"], zone=tz) if row["published_at"] else row["published_text"]
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
    footer(len(rows), offset, total, "fast news", tz)
    return 0
