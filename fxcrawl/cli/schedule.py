"""`fxcrawl schedule run|list|once`: the crawls of schedule.toml, fired by APScheduler or by hand."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database
from fxcrawl.cli.errors import CommandError, UsageError
from fxcrawl.cli.output import minutes, print_json, table

if TYPE_CHECKING:
    from fxcrawl.alerts import AlertTarget
    from fxcrawl.schedule import Job

schedule_file = click.option(
    "--file", "path", type=params.PATH, default=Path("schedule.toml"), help="schedule file (TOML)"
)


@click.group(cls=Group, help="scheduled crawls")
def schedule() -> None:
    pass


@schedule.command("run", cls=Command, help="run jobs on their schedule until SIGTERM")
@params.db
@schedule_file
@params.metrics_port
def run(db: str, path: Path, metrics_port: int) -> int:
    import logging

    from fxcrawl.schedule import Runner, run_scheduler

    jobs = load(path)
    runner = Runner(db, default_alert())
    close_crashed(db)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    try:
        run_scheduler(jobs, runner, metrics_port)
    except OSError as exc:  # the metrics port is taken: refused before any job runs
        raise CommandError(f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc.strerror or exc}") from None
    return 0


def default_alert() -> AlertTarget | None:
    """Alerts for jobs that name none: FXCRAWL_ALERT_WEBHOOK / FXCRAWL_ALERT_COMMAND (settings, environment)."""
    from fxcrawl.alerts import AlertTarget
    from fxcrawl.run import project_settings_with

    try:
        return AlertTarget.from_settings(project_settings_with()) or None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@schedule.command("list", cls=Command, help="the jobs and their next run times (with --db: their last run too)")
@schedule_file
@click.option("--db", metavar="URL", help="also show each job's last run and its health, from this database")
@params.as_json
def list_jobs(path: Path, db: str | None, as_json: bool) -> int:
    from fx168.site import SITE_TZ

    now = datetime.now(SITE_TZ)
    jobs = load(path)
    rows = [
        {
            "job": job.name,
            "spider": job.spider,
            "trigger": job.describe_trigger,
            "next": f"{job.next_run(now):%Y-%m-%d %H:%M %z}",
            "options": json.dumps(job.options, ensure_ascii=False),
        }
        for job in jobs
    ]
    columns = [("job", "job", 20), ("trigger", "trigger", 40), ("next", "next run", 22)]
    if db is not None:
        from storage import queries

        with open_database(db).session() as session:
            last = queries.last_runs(session, [job.name for job in jobs])
        for row in rows:
            run = last.get(row["job"])
            row["last_run"] = run  # type: ignore[assignment]  # the JSON carries the whole run
            row["last"] = f"{run['id']} {minutes(run['started_at'], 19)}" if run else "never"
            row["health"] = (run["health"] or run["finish_reason"] or "running") if run else ""
        columns += [("last", "last run", 25), ("health", "health", 9)]
    if as_json:
        print_json(rows)
        return 0
    table(rows, [*columns, ("options", "options", 50)], "no jobs")
    return 0


@schedule.command("once", cls=Command, help="run one job now")
@params.db
@schedule_file
@click.argument("job", metavar="JOB")
def once(db: str, path: Path, job: str) -> int:
    from fxcrawl.schedule import Runner

    jobs = {each.name: each for each in load(path)}
    if job not in jobs:
        raise UsageError(f"no job {job!r} in {path} (jobs: {', '.join(jobs)})")
    close_crashed(db)
    runner = Runner(db, default_alert())
    code = runner.run(jobs[job])
    runner.wait_for_alerts()
    return code


def load(path: Path) -> list[Job]:
    from fxcrawl.schedule import ScheduleError, load_schedule

    try:
        return load_schedule(path)
    except ScheduleError as exc:
        raise CommandError(str(exc)) from None


def close_crashed(db: str) -> None:
    """A scheduler starting closes the ledger rows of crawls that died (SIGKILL, power loss)."""
    from storage.runs import close_crashed_runs

    database = open_database(db, create=True)
    crashed = close_crashed_runs(database)
    database.dispose()
    if crashed:
        print(
            f"fxcrawl: marked crashed runs {', '.join(map(str, crashed))} (their processes are gone)", file=sys.stderr
        )
