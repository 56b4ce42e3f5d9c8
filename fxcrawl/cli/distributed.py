"""`fxcrawl seed`, `fxcrawl reconcile` and `fxcrawl workers start N`: one search job shared through Redis."""

from __future__ import annotations

import sys
from typing import Any

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import check_base_url, open_database
from fxcrawl.cli.errors import CommandError, UsageError


def job_name(job: str | None, keyword: str = "", spider: str = "search", channels: str | None = None) -> str:
    """The job a crawl runs for: --job, else named after its spider and what it reads."""
    if spider == "latest":
        return job or f"latest:{channels or '001'}"
    return job or f"search:{keyword.strip()}"


def connect(redis_url: str) -> Any:
    import redis

    server = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        server.ping()
    except redis.RedisError as exc:
        raise CommandError(f"Redis unavailable at {redis_url}: {exc}") from None
    return server


def queue_owed(server: Any, db: str, job: str, base_url: str) -> int:
    """Queue every URL the database frontier still owes (a worker that died took its share with it)."""
    from crawler.distributed import push, recovery_entries
    from storage.frontier import Frontier, RecrawlPolicy

    database = open_database(db, create=True)  # a job's first seed may come before its first crawl
    owed = Frontier(database, RecrawlPolicy()).pending()
    database.dispose()
    return push(server, job, recovery_entries(owed, base_url))


def record_starts(db: str, entries: list[dict[str, Any]], base_url: str) -> None:
    """The walks' first pages go into the frontier before Redis has them (see record_walk_starts)."""
    from fx168 import site
    from storage.frontier import record_walk_starts

    database = open_database(db, create=True)
    try:
        record_walk_starts(database, [(site.canonical_url(e["url"], base_url), int(e["last"])) for e in entries])
    finally:
        database.dispose()


@click.command("seed", cls=Command, help="queue a job's start requests (and the frontier's leftovers) in Redis")
@params.db
@params.redis_job
@click.option("--pages", help="page ranges, e.g. 1-200 (default: from page 1)")
def seed(db: str, keyword: str, job: str | None, redis_url: str, base_url: str, pages: str | None) -> int:
    from crawler.distributed import push, start_entries

    check_base_url(base_url)
    try:
        entries = start_entries(keyword, pages, base_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server = connect(redis_url)
    name = job_name(job, keyword)
    recovered = queue_owed(server, db, name, base_url)
    record_starts(db, entries, base_url)
    push(server, name, entries)
    print(f"job {name!r}: queued {len(entries)} listing walks and {recovered} URLs owed by earlier runs")
    return 0


@click.command("reconcile", cls=Command, help="queue every URL the database frontier still owes")
@params.db
@params.redis_job
def reconcile(db: str, keyword: str, job: str | None, redis_url: str, base_url: str) -> int:
    check_base_url(base_url)
    name = job_name(job, keyword)
    queued = queue_owed(connect(redis_url), db, name, base_url)
    print(f"queued {queued} URLs the frontier still owes for job {name!r}")
    return 0


@click.group(cls=Group, help="distributed workers")
def workers() -> None:
    pass


@workers.command("start", cls=Command, help="run N worker processes on this machine")
@params.db
@params.redis_job
@click.argument("count", metavar="N", type=params.POSITIVE)
@params.log_level
@params.settings_overrides()
@params.metrics_port
def start(
    db: str,
    keyword: str,
    job: str | None,
    redis_url: str,
    base_url: str,
    count: int,
    log_level: str,
    overrides: tuple[str, ...],
    metrics_port: int,
) -> int:
    import subprocess

    from storage.models import utcnow

    check_base_url(base_url)
    name = job_name(job, keyword)
    command = [sys.executable, "-m", "fxcrawl.cli", "crawl", "search", "--distributed", "--keyword", keyword]
    command += ["--db", db, "--redis-url", redis_url, "--base-url", base_url, "--log-level", log_level]
    if job:
        command += ["--job", job]
    for assignment in overrides:
        command += ["--set", assignment]
    given = {assignment.partition("=")[0].strip() for assignment in overrides}
    interval = progress_interval(overrides)
    live = live_line(log_level)
    # The combined line replaces the workers' own on a terminal; a heartbeat every 2 s keeps it current.
    command += ["--set", f"FXCRAWL_PROGRESS={'off' if live else 'log'}"] if "FXCRAWL_PROGRESS" not in given else []
    command += ["--set", "FXCRAWL_RUN_HEARTBEAT=2"] if "FXCRAWL_RUN_HEARTBEAT" not in given else []
    import redis

    # No ping: a Redis that is down is the workers' to ride out (FXCRAWL_REDIS_MAX_OUTAGE); the line says less.
    server = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    metrics = serve_worker_metrics(metrics_port, db, server, name) if metrics_port else None
    since = utcnow()
    processes = [subprocess.Popen(command) for _ in range(count)]
    from fxcrawl.workers import CombinedProgress, watch

    progress = CombinedProgress(db, name, server, [process.pid for process in processes], since)
    try:
        codes = watch(processes, progress, interval, live)
    finally:
        progress.close()
        if metrics is not None:
            metrics.shutdown()
    print(f"{count} workers finished; exit codes {codes}", file=sys.stderr)
    return 1 if any(code != 0 for code in codes) else 0


def progress_interval(overrides: tuple[str, ...]) -> float:
    """FXCRAWL_PROGRESS_INTERVAL as the workers get it (a --set, else the project's setting)."""
    from crawler import settings as project

    for assignment in reversed(overrides):
        name, _, value = assignment.partition("=")
        if name.strip() == "FXCRAWL_PROGRESS_INTERVAL":
            try:
                return float(value)
            except ValueError:
                raise UsageError(f"-s FXCRAWL_PROGRESS_INTERVAL={value!r}: takes a float") from None
    return float(project.FXCRAWL_PROGRESS_INTERVAL)


def live_line(log_level: str) -> bool:
    from crawler.progress import live_wanted

    return live_wanted("auto", log_level)


def serve_worker_metrics(port: int, db: str, server: Any, job: str) -> Any:
    from crawler import settings as project
    from fxcrawl.metrics import QueueCollector, StoreCollector, registry_with, serve

    try:
        return serve(port, registry_with(StoreCollector(db, project.FXCRAWL_SPOOL_DIR), QueueCollector(server, job)))
    except OSError as exc:
        raise CommandError(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}") from None
