"""`fxcrawl search QUERY` and `fxcrawl serve`: full-text search of the store, on the terminal or the web."""

from __future__ import annotations

import sys

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.errors import UsageError
from fxcrawl.cli.output import minutes, print_json, table


@click.command(
    "search",
    cls=Command,
    help='full-text search of the stored articles\n\nQUERY: words, 现代 or "a phrase"; every term must match',
    short_help="full-text search of the stored articles",
)
@params.db
@params.as_json
@click.argument("query", metavar="QUERY")
@params.source
@params.since()
@params.until
@click.option("--limit", type=params.POSITIVE, default=20)
@click.option("--rank", is_flag=True, help="by relevance among the newest 1,000 matches")
@click.option("--after", "cursor", metavar="CURSOR", help="the next page: the cursor the previous page's footer names")
def search(
    db: str,
    as_json: bool,
    query: str,
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    rank: bool,
    cursor: str | None,
) -> int:
    from storage import fulltext

    start, end = when(since), when(until, end_of_day=True)
    try:
        parsed = fulltext.parse_query(query)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_database(db).session() as session:
        try:
            page = fulltext.search(
                session, parsed, source=source, since=start, until=end, limit=limit, rank=rank, cursor=cursor
            )
        except ValueError as exc:  # a cursor that is not one of this command's
            raise UsageError(f"argument --after: {exc}") from None
    rows = page.results
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["published"] = minutes(row["published_at"])
        row["snippet"] = fulltext.marked(row["snippet"], row["snippet_marks"])
    columns = [("id", "id", 8), ("published", "published", 16), ("source", "source", 12), ("title", "title", 40)]
    if rank:
        columns.append(("score", "score", 8))
    table(rows, [*columns, ("snippet", "snippet", 60)], "no articles match")
    more = f"; next page: --after {page.next_cursor}" if page.next_cursor else ""
    print(f"{len(rows)} articles{more}; times in Asia/Shanghai", file=sys.stderr)
    return 0


@click.command("serve", cls=Command, help="read-only web view and JSON API of the store")
@params.db
@click.option("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
@click.option("--port", type=params.INT, default=8000)
def serve(db: str, host: str, port: int) -> int:
    from fxcrawl.web.app import serve as serve_web

    return serve_web(db, host=host, port=port)
