"""`fxcrawl rejects list`, `fxcrawl frontier` and `fxcrawl hits list`: what a crawl left besides
articles (what could not be stored, which URLs are owed or failing, what the listings showed),
readable without SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database
from fxcrawl.cli.output import footer, minutes, print_json, table

if TYPE_CHECKING:
    from storage.frontier import RecrawlPolicy


@click.group(cls=Group, help="what could not be stored, and why")
def rejects() -> None:
    pass


@rejects.command("list", cls=Command, help="rejected items and unparsable pages, newest first")
@params.db
@params.as_json
@click.option("--run", "run_id", type=params.POSITIVE, help="only this run's")
@click.option("--kind", help="only this kind (e.g. article, page)")
@params.limit
@params.offset
@params.tz
def list_rejects(db: str, as_json: bool, run_id: int | None, kind: str | None, limit: int, offset: int, tz: str) -> int:
    from storage import reports

    with open_database(db).session() as session:
        rows, total = reports.list_rejects(session, run_id=run_id, kind=kind, limit=limit, offset=offset)
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["created"] = minutes(row["created_at"], zone=tz)
    table(
        rows,
        [
            ("id", "id", 6),
            ("run_id", "run", 5),
            ("created", "created", 16),
            ("kind", "kind", 12),
            ("reason", "reason", 50),
            ("url", "url", 60),
        ],
        "no rejects",
    )
    footer(len(rows), offset, total, "rejects", tz)
    return 0


@click.command("frontier", cls=Command, help="the frontier: URLs by state, how many are owed, failures by reason")
@params.db
@params.as_json
@click.option("--failed", "show_failed", is_flag=True, help="list the failed and forbidden URLs instead")
@params.limit
@params.offset
def frontier(db: str, as_json: bool, show_failed: bool, limit: int, offset: int) -> int:
    from storage import reports

    with open_database(db).session() as session:
        if show_failed:
            rows, total = reports.list_failed_urls(session, limit=limit, offset=offset)
        else:
            summary = reports.frontier_summary(session, policy=recrawl_policy())
    if show_failed:
        if as_json:
            print_json(rows)
            return 0
        table(
            rows,
            [
                ("state", "state", 9),
                ("attempts", "attempts", 8),
                ("last_error", "last error", 40),
                ("next_fetch_at", "retry at", 25),
                ("url", "url", 60),
            ],
            "no failed URLs",
        )
        footer(len(rows), offset, total, "failed URLs")
        return 0
    if as_json:
        print_json(summary)
        return 0
    print(f"owed: {summary['owed']:,} URLs (never fetched, or failed and due for a retry)\n")
    table(summary["by_state"], [("kind", "kind", 10), ("state", "state", 10), ("urls", "URLs", 9)], "no URLs")
    if summary["failed"]:
        print()
        table(summary["failed"], [("urls", "URLs", 7), ("reason", "failed because", 80)], "")
    return 0


def recrawl_policy() -> RecrawlPolicy:
    """The crawl's own retry rule (FXCRAWL_FRONTIER_MAX_ATTEMPTS …), so "owed" means what a crawl resumes."""
    from fxcrawl.run import project_settings_with
    from storage.frontier import RecrawlPolicy

    return RecrawlPolicy.from_settings(project_settings_with())


@click.group(cls=Group, help="search results as the listings showed them")
def hits() -> None:
    pass


@hits.command("list", cls=Command, help="search hits by keyword, page and rank")
@params.db
@params.as_json
@click.option("--keyword", help="only this keyword's (e.g. 现代)")
@click.option("--page", type=params.POSITIVE, help="only this results page")
@click.option("--run", "run_id", type=params.POSITIVE, help="only those last seen by this run")
@params.limit
@params.offset
def list_hits(
    db: str, as_json: bool, keyword: str | None, page: int | None, run_id: int | None, limit: int, offset: int
) -> int:
    from storage import reports

    with open_database(db).session() as session:
        rows, total = reports.list_hits(session, keyword=keyword, page=page, run_id=run_id, limit=limit, offset=offset)
    if as_json:
        print_json(rows)
        return 0
    table(
        rows,
        [
            ("keyword", "keyword", 10),
            ("page", "page", 5),
            ("rank", "rank", 4),
            ("source", "source", 10),
            ("listed_on", "listed on", 10),
            ("title", "title", 50),
        ],
        "no hits",
    )
    footer(len(rows), offset, total, "hits")
    return 0
