"""`fxcrawl runs list|show`: the crawl ledger, and one run's counts, health and the pages behind it."""

from __future__ import annotations

import json
import sys

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database
from fxcrawl.cli.output import footer, minutes, print_json, table


def run_fields() -> tuple[str, ...]:
    """What `runs show` prints, the counts under the names storage.runs.RUN_COUNTS gives them."""
    from storage.runs import RUN_COUNTS

    shown = tuple(count.shown for count in RUN_COUNTS if count.shown)
    return ("id", "job", "spider", "args", "started_at", "finished_at", "finish_reason", *shown, "health")


@click.group(cls=Group, help="crawl runs")
def runs() -> None:
    pass


@runs.command("list", cls=Command, help="crawl runs, newest first")
@params.db
@params.as_json
@click.option("--job", help="only this job's runs (a schedule's job name, or search:KEYWORD)")
@click.option("--unhealthy", is_flag=True, help="only runs judged unhealthy")
@params.limit
@params.offset
@params.tz
def list_runs(db: str, as_json: bool, job: str | None, unhealthy: bool, limit: int, offset: int, tz: str) -> int:
    from storage import queries

    with open_database(db).session() as session:
        rows = queries.list_runs(session, limit=limit, offset=offset, job=job, unhealthy=unhealthy)
        total = queries.count_runs(session, job=job, unhealthy=unhealthy) if not as_json else 0
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["started"] = minutes(row["started_at"], 19, zone=tz)
    table(
        rows,
        [
            ("id", "run", 5),
            ("started", "started", 19),
            ("finish_reason", "finish", 12),
            ("pages", "pages", 6),
            ("new", "new", 6),
            ("updated", "updated", 7),
            ("unchanged", "unchanged", 9),
            ("duplicate", "duplicate", 9),
            ("rejected", "rejected", 8),
            ("spooled", "spooled", 7),
            ("errors", "errors", 6),
            ("health", "health", 9),
            ("job", "job", 20),
        ],
        "no runs recorded",
    )
    footer(len(rows), offset, total, "runs", tz)
    return 0


@runs.command("show", cls=Command, help="one run: counts, health and why")
@params.db
@params.as_json
@click.argument("run_id", metavar="ID", type=params.POSITIVE)
def show_run(db: str, as_json: bool, run_id: int) -> int:
    from storage import queries
    from storage.health import drift_urls

    with open_database(db).session() as session:
        run = queries.get_run(session, run_id, with_stats=True)
    if run is None:
        print(f"fxcrawl: no run {run_id}", file=sys.stderr)
        return 1
    if as_json:
        print_json(run)
        return 0
    for key in run_fields():
        value = json.dumps(run[key], ensure_ascii=False) if isinstance(run[key], dict) else run[key]
        print(f"{key:>13}: {'' if value is None else value}")
    for reason in run["health_reasons"]:
        print(f"{'':>13}  - {reason}")
    for counter, urls in drift_urls(run.get("stats") or {}).items():
        print(f"{'':>13}  {counter.removeprefix('fxcrawl/markup/')}:")
        for url in urls:
            print(f"{'':>13}    {url}")
    return 0
