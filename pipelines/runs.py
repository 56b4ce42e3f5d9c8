"""The crawl_runs ledger: a row per crawl, opened when the spider opens, closed with its counts.

Also the one place a crawler gets its Database from, so every component of a crawl shares
one engine.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.db import Database
from pipelines.health import HealthPolicy, assess
from pipelines.models import CrawlRun, utcnow

logger = logging.getLogger(__name__)

_databases: WeakKeyDictionary[Crawler, Database] = WeakKeyDictionary()


def database_for(crawler: Crawler) -> Database:
    """The crawl's Database (from FXCRAWL_DATABASE_URL), migrated to the current schema on first use."""
    database = _databases.get(crawler)
    if database is None:
        database = Database(crawler.settings.get("FXCRAWL_DATABASE_URL")).prepare()
        _databases[crawler] = database
    return database


def run_counts(stats: dict[str, Any]) -> dict[str, int]:
    """The run-row counts, derived from a crawl's stats."""

    def get(key: str) -> int:
        return int(stats.get(key, 0) or 0)

    return {
        "pages": get("fxcrawl/pages/listing")
        + get("fxcrawl/pages/api")
        + get("fxcrawl/pages/detail")
        + get("fxcrawl/pages/not_modified"),
        "articles_new": get("fxcrawl/store/article/new"),
        "articles_updated": get("fxcrawl/store/article/updated"),
        # fetched (or revisited: 304) and found as stored
        "articles_unchanged": get("fxcrawl/store/article/unchanged") + get("fxcrawl/store/article/not_modified"),
        # seen again and not fetched: already stored and not due, or twice in this run
        "duplicates": get("fxcrawl/duplicate/article") + get("fxcrawl/incremental/skipped_details"),
        "rejected": get("fxcrawl/rejected") + get("fxcrawl/pages/unparsable"),
        "spooled": get("fxcrawl/store/spooled_items"),
        "errors": get("log_count/ERROR"),
        "retries": get("fxcrawl/store/retries") + get("retry/count"),
        "hits": get("fxcrawl/validated/hit"),
    }


class RunRecorder:
    def __init__(self, database: Database, stats: StatsCollector, job: str | None, health: HealthPolicy) -> None:
        self.database = database
        self.stats = stats
        self.job = job
        self.health = health
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        assert crawler.stats is not None
        settings = crawler.settings
        recorder = cls(
            database_for(crawler), crawler.stats, settings.get("FXCRAWL_JOB"), HealthPolicy.from_settings(settings)
        )
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    def spider_opened(self, spider: Spider) -> None:
        with self.database.write_session() as session:
            args = dict(getattr(spider, "run_args", {}))
            job = self.job or f"{spider.name}:{args.get('keyword') or args.get('channels') or ''}"
            run = CrawlRun(spider=spider.name, job=job, args=args, stats={}, health_reasons=[])
            session.add(run)
            session.flush()
            self.run_id = run.id
        self.stats.set_value("fxcrawl/run_id", self.run_id)
        logger.info("crawl run %d started", self.run_id)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        stats = {key: _jsonable(value) for key, value in self.stats.get_stats().items()}
        with self.database.write_session() as session:
            run = session.get_one(CrawlRun, self.run_id)
            run.finished_at = utcnow()
            run.finish_reason = reason
            run.stats = stats
            for column, value in run_counts(stats).items():
                setattr(run, column, value)
            reasons = self._assess(session, run)
            run.health = "unhealthy" if reasons else "healthy"
            run.health_reasons = reasons
        self.stats.set_value("fxcrawl/health", run.health)
        logger.info("crawl run %d finished (%s): %s", self.run_id, reason, run_counts(stats))
        for why in reasons:
            logger.error("crawl run %d is unhealthy: %s", self.run_id, why)

    def _assess(self, session: Session, run: CrawlRun) -> list[str]:
        earlier = (CrawlRun.job == run.job) & (CrawlRun.id < run.id)
        recent = session.scalars(
            select(CrawlRun)
            .where(earlier, CrawlRun.finish_reason == "finished")
            .order_by(CrawlRun.id.desc())
            .limit(self.health.history)
        ).all()
        last_new = session.scalar(select(func.max(CrawlRun.started_at)).where(earlier, CrawlRun.articles_new > 0))
        first_run = session.scalar(select(func.min(CrawlRun.started_at)).where(earlier))
        return assess(run, recent, last_new, first_run, self.health, utcnow())


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
