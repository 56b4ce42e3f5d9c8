"""Prometheus metrics (prometheus-client): what the run ledger, the frontier and the spool say,
read from the database at each scrape, plus what this process counted (its jobs' exits, alerts).

Served on 127.0.0.1 by `fxcrawl schedule run --metrics-port PORT` and `fxcrawl workers start
--metrics-port PORT` (0: off); `fxcrawl crawl … --metrics-textfile PATH` writes the same series
once the crawl has ended, in the node exporter's textfile-collector format. README.md lists the
names. Reading the ledger rather than counting inside each crawl means one scrape sees every
crawl of the database — the scheduler's children, other schedulers' and workers' — with a
running crawl's counts as of its last heartbeat (``FXCRAWL_RUN_HEARTBEAT``, 10 s).

This module imports prometheus_client; the command line imports it only when a command serves
or writes metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

#: Item outcomes as ``fxcrawl runs list`` names them, and the crawl_runs column of each.
ITEM_OUTCOMES = {
    "new": "articles_new",
    "updated": "articles_updated",
    "unchanged": "articles_unchanged",
    "duplicate": "duplicates",
    "rejected": "rejected",
    "spooled": "spooled",
}

#: Every series this module exposes: name (as exposed), type, labels, meaning. README's table is this list.
METRICS: list[tuple[str, str, str, str]] = [
    ("fxcrawl_database_up", "gauge", "", "1 if the database answered this scrape, else 0 (and no store series)"),
    ("fxcrawl_runs_total", "counter", "job, health", "finished runs by health (healthy, unhealthy)"),
    ("fxcrawl_runs_running", "gauge", "job", "runs open now (started, not finished)"),
    ("fxcrawl_pages_total", "counter", "job", "pages fetched by all runs (a running one: as of its heartbeat)"),
    ("fxcrawl_items_total", "counter", "job, outcome", "items by outcome: " + ", ".join(ITEM_OUTCOMES)),
    ("fxcrawl_errors_total", "counter", "job", "errors logged by all runs"),
    ("fxcrawl_retries_total", "counter", "job", "retries (downloads and database writes) of all runs"),
    ("fxcrawl_job_last_run_timestamp_seconds", "gauge", "job", "when the job's latest finished run ended (Unix time)"),
    ("fxcrawl_job_last_run_duration_seconds", "gauge", "job", "how long the job's latest finished run took"),
    ("fxcrawl_job_last_run_healthy", "gauge", "job", "1 if the job's latest finished run was healthy, else 0"),
    ("fxcrawl_job_last_run_pages", "gauge", "job", "pages fetched by the job's latest finished run"),
    ("fxcrawl_job_last_success_timestamp_seconds", "gauge", "job", "when the job's latest healthy run ended"),
    ("fxcrawl_frontier_owed", "gauge", "", "URLs the database frontier still owes (discovered, or failed and due)"),
    ("fxcrawl_spool_items", "gauge", "", "items waiting in the spool for `fxcrawl spool replay`"),
    ("fxcrawl_spool_runs", "gauge", "", "run rows waiting in the spool"),
    (
        "fxcrawl_scheduler_job_runs_total",
        "counter",
        "job, outcome",
        "this scheduler's crawls by exit: ok, failed, skipped",
    ),
    ("fxcrawl_job_next_run_timestamp_seconds", "gauge", "job", "when this scheduler fires the job next (Unix time)"),
    (
        "fxcrawl_alerts_total",
        "counter",
        "job, channel, outcome",
        "alerts by channel (webhook, command), outcome (sent, failed)",
    ),
    ("fxcrawl_queue_requests", "gauge", "job", "`workers start`: requests waiting in the job's Redis queue"),
]
_HELP = {name.removesuffix("_total"): meaning for name, _, _, meaning in METRICS}


def _gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], labels=labels)


def _counter(name: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, _HELP[name], labels=labels)


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class StoreCollector(Collector):
    """Series read from the database (and the spool beside it) at each scrape."""

    def __init__(self, database_url: str, spool_dir: str | Path | None = None) -> None:
        self.database_url = database_url
        self.spool_dir = spool_dir
        self._database: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from storage.db import Database

        with self._lock:
            if self._database is None:
                self._database = Database(self.database_url, create=False)
            return self._database

    def close(self) -> None:
        with self._lock:
            if self._database is not None:
                self._database.dispose()
                self._database = None

    def collect(self) -> Iterator[Metric]:
        up = _gauge("fxcrawl_database_up")
        try:
            metrics = list(self._store_metrics())
        except Exception as exc:  # a scrape says the database is down rather than failing
            logger.warning("metrics: the database did not answer (%s)", exc)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield from metrics
        yield from self._spool_metrics()

    def _store_metrics(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from storage.frontier import Frontier, RecrawlPolicy
        from storage.models import CrawlRun

        database = self._open()
        job = func.coalesce(CrawlRun.job, CrawlRun.spider).label("job")
        with database.session() as session:
            totals = session.execute(
                select(
                    job,
                    func.sum(CrawlRun.pages),
                    func.sum(CrawlRun.errors),
                    func.sum(CrawlRun.retries),
                    *(func.sum(getattr(CrawlRun, column)) for column in ITEM_OUTCOMES.values()),
                ).group_by(job)
            ).all()
            by_health = session.execute(
                select(job, CrawlRun.health, func.count(CrawlRun.id))
                .where(CrawlRun.finished_at.is_not(None))
                .group_by(job, CrawlRun.health)
            ).all()
            running = session.execute(
                select(job, func.count(CrawlRun.id)).where(CrawlRun.finished_at.is_(None)).group_by(job)
            ).all()
            last_ids = session.scalars(
                select(func.max(CrawlRun.id)).where(CrawlRun.finished_at.is_not(None)).group_by(job)
            ).all()
            last_runs = session.scalars(select(CrawlRun).where(CrawlRun.id.in_(last_ids))).all() if last_ids else []
            successes = session.execute(
                select(job, func.max(CrawlRun.finished_at))
                .where(CrawlRun.finished_at.is_not(None), CrawlRun.health == "healthy")
                .group_by(job)
            ).all()
        owed = Frontier(database, RecrawlPolicy()).owed_count()

        pages, errors, retries = (_counter(n, ["job"]) for n in ("fxcrawl_pages", "fxcrawl_errors", "fxcrawl_retries"))
        items = _counter("fxcrawl_items", ["job", "outcome"])
        for name, page_sum, error_sum, retry_sum, *outcomes in totals:
            pages.add_metric([name], page_sum or 0)
            errors.add_metric([name], error_sum or 0)
            retries.add_metric([name], retry_sum or 0)
            for outcome, value in zip(ITEM_OUTCOMES, outcomes, strict=True):
                items.add_metric([name, outcome], value or 0)
        runs = _counter("fxcrawl_runs", ["job", "health"])
        for name, health, count in by_health:
            runs.add_metric([name, health or "unknown"], count)
        open_runs = _gauge("fxcrawl_runs_running", ["job"])
        for name, count in running:
            open_runs.add_metric([name], count)
        yield from (runs, open_runs, pages, items, errors, retries)

        last_at, duration, healthy, last_pages = (
            _gauge(n, ["job"])
            for n in (
                "fxcrawl_job_last_run_timestamp_seconds",
                "fxcrawl_job_last_run_duration_seconds",
                "fxcrawl_job_last_run_healthy",
                "fxcrawl_job_last_run_pages",
            )
        )
        for run in last_runs:
            name = run.job or run.spider
            assert run.finished_at is not None
            last_at.add_metric([name], run.finished_at.timestamp())
            duration.add_metric([name], max(0.0, (run.finished_at - run.started_at).total_seconds()))
            healthy.add_metric([name], 1 if run.health == "healthy" else 0)
            last_pages.add_metric([name], run.pages or 0)
        success = _gauge("fxcrawl_job_last_success_timestamp_seconds", ["job"])
        for name, finished in successes:
            if finished is not None:
                success.add_metric([name], _seconds(_aware(finished)) or 0)
        frontier = _gauge("fxcrawl_frontier_owed")
        frontier.add_metric([], owed)
        yield from (last_at, duration, healthy, last_pages, success, frontier)

    def _spool_metrics(self) -> Iterator[Metric]:
        from storage.spool import Spool, spool_dir_for

        items, runs = _gauge("fxcrawl_spool_items"), _gauge("fxcrawl_spool_runs")
        try:
            spool = Spool(spool_dir_for(self.spool_dir, self.database_url))
            items.add_metric([], spool.pending_items())
            runs.add_metric([], len(spool.run_files()))
        except Exception as exc:  # an unreadable spool leaves its series out
            logger.warning("metrics: could not read the spool (%s)", exc)
            return
        yield items
        yield runs


def _aware(value: datetime) -> datetime:
    """An aggregate (max) comes back without the column's type on some dialects: naive is UTC."""
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class SchedulerCollector(Collector):
    """What this scheduler process counted: its jobs' exits, its alerts, its next fire times."""

    def __init__(
        self,
        outcomes: Callable[[], dict[tuple[str, str], int]],
        next_runs: Callable[[], dict[str, datetime | None]] | None = None,
    ) -> None:
        self.outcomes = outcomes
        self.next_runs = next_runs

    def collect(self) -> Iterator[Metric]:
        runs = _counter("fxcrawl_scheduler_job_runs", ["job", "outcome"])
        for (job, outcome), count in sorted(self.outcomes().items()):
            runs.add_metric([job, outcome], count)
        yield runs
        if self.next_runs is not None:
            next_run = _gauge("fxcrawl_job_next_run_timestamp_seconds", ["job"])
            for job, when in sorted(self.next_runs().items()):
                if when is not None:
                    next_run.add_metric([job], when.timestamp())
            yield next_run
        yield from alert_metrics()


def alert_metrics() -> Iterator[Metric]:
    from fxcrawl.alerts import alert_counts

    alerts = _counter("fxcrawl_alerts", ["job", "channel", "outcome"])
    for (job, channel, outcome), count in sorted(alert_counts().items()):
        alerts.add_metric([job, channel, outcome], count)
    yield alerts


class AlertCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from alert_metrics()


class QueueCollector(Collector):
    """`workers start`: the job's requests waiting in Redis."""

    def __init__(self, server: Any, job: str) -> None:
        self.server = server
        self.job = job

    def collect(self) -> Iterator[Metric]:
        from crawler.distributed import keys

        queue = _gauge("fxcrawl_queue_requests", ["job"])
        try:
            size = self.server.zcard(keys(self.job)["requests"])  # scrapy_redis.queue.PriorityQueue: a sorted set
        except Exception as exc:  # Redis away: the series is left out of this scrape
            logger.warning("metrics: Redis did not answer (%s)", exc)
            return
        queue.add_metric([self.job], size)
        yield queue


def registry_with(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def serve(port: int, registry: CollectorRegistry, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on host:port in a daemon thread; returns the server (``shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    logger.info("metrics served at http://%s:%d/metrics", host, server.server_port)
    return server


def write_textfile(path: Path, registry: CollectorRegistry) -> None:
    """The textfile collector's format, written atomically (a temporary file renamed)."""
    write_to_textfile(str(path), registry)
