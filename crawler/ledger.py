"""The run ledger's Scrapy side: a row per crawl in crawl_runs, opened as the spider opens, kept
fresh by a heartbeat, closed with its counts and health (storage/runs.py holds the rules)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import update

from pipelines.database import check_database, database_for
from storage.db import Database
from storage.health import HealthPolicy
from storage.models import CrawlRun, utcnow
from storage.runs import LISTING_PAGES, LedgerPolicy, close_crashed_runs, finish_run, one_line, run_counts

logger = logging.getLogger(__name__)


class _LiveStats:
    """A StatsCollector read from another thread, key by key (never iterated while it changes)."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    def get(self, key: str, default: Any = None, /) -> Any:
        return self.stats.get_value(key, default)


class RunRecorder:
    def __init__(
        self,
        database: Database,
        stats: StatsCollector,
        job: str | None,
        health: HealthPolicy,
        ledger: LedgerPolicy | None = None,
        spool_dir: Any = None,
    ) -> None:
        self.database = database
        self.stats = stats
        self.job = job
        self.health = health
        self.ledger = ledger or LedgerPolicy()
        self.spool_dir = spool_dir
        self.run_id: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        assert crawler.stats is not None
        settings = crawler.settings
        recorder = cls(
            database_for(crawler),
            crawler.stats,
            settings.get("FXCRAWL_JOB"),
            HealthPolicy.from_settings(settings),
            LedgerPolicy.from_settings(settings),
            settings.get("FXCRAWL_SPOOL_DIR"),
        )
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    def spider_opened(self, spider: Spider) -> None:
        check_database(self.database)  # one the crawl cannot use: no row, the spider closes (CloseSpider)
        crashed = close_crashed_runs(self.database, self.ledger)
        self.stats.set_value("fxcrawl/runs/marked_crashed", len(crashed))
        now = utcnow()
        with self.database.write_session() as session:
            args = dict(getattr(spider, "run_args", {}))
            job = self.job or f"{spider.name}:{args.get('keyword') or args.get('channels') or ''}"
            run = CrawlRun(
                spider=spider.name,
                job=job,
                args=args,
                stats={},
                health_reasons=[],
                started_at=now,
                host=socket.gethostname(),
                pid=os.getpid(),
                heartbeat_at=now,
            )
            session.add(run)
            session.flush()
            self.run_id = run.id
            self.job = job
        self.stats.set_value("fxcrawl/run_id", self.run_id)
        self.stats.set_value("fxcrawl/job", self.job)
        logger.info("crawl run %d started", self.run_id)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="fxcrawl-run-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        """Keep the row's heartbeat fresh and its counts current, so a crash leaves both behind."""
        view = _LiveStats(self.stats)
        while not self._stop.wait(self.ledger.heartbeat):
            try:
                with self.database.write_session() as session:
                    session.execute(
                        update(CrawlRun)
                        .where(CrawlRun.id == self.run_id, CrawlRun.finished_at.is_(None))
                        .values(
                            heartbeat_at=utcnow(),
                            stats={LISTING_PAGES: int(view.get(LISTING_PAGES, 0) or 0)},
                            **run_counts(view),
                        )
                    )
            except Exception as exc:  # the next beat tries again; counted, and said
                self.stats.inc_value("fxcrawl/runs/heartbeat_failed")
                logger.warning("could not refresh the heartbeat of crawl run %s: %s", self.run_id, exc)

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        self._stop_heartbeat()
        try:
            self.database.verify_file()
        except Exception as exc:  # the store spooled its batches already; the run row goes with them
            self.stats.inc_value("fxcrawl/database/file_changed")
            logger.critical("%s: this run's row and items are spooled, not stored", exc)
            reason = "database_replaced" if reason == "finished" else reason
        stats = {key: _jsonable(value) for key, value in self.stats.get_stats().items()}
        stats["finish_reason"] = reason
        values = {
            "finished_at": utcnow().isoformat(),
            "finish_reason": reason,
            "stats": stats,
            "counts": run_counts(stats),
        }
        try:
            run = finish_run(self.database, self.run_id, values, self.health)
        except Exception as exc:  # the database is away: the row waits in the spool with the items
            self._spool_row(values, exc)
            return
        self.stats.set_value("fxcrawl/health", run.health)
        logger.info("crawl run %d finished (%s): %s", self.run_id, reason, values["counts"])
        for why in run.health_reasons:
            logger.error("crawl run %d is unhealthy: %s", self.run_id, why)

    def _spool_row(self, values: dict[str, Any], exc: BaseException) -> None:
        from storage.spool import Spool, spool_dir_for

        assert self.run_id is not None
        reason = f"the database was unavailable as the run closed ({one_line(exc)})"
        values["reasons"] = [reason]
        self.stats.set_value("fxcrawl/health", "unhealthy")
        self.stats.set_value("fxcrawl/runs/row_spooled", 1)
        try:
            path = Spool(spool_dir_for(self.spool_dir, self.database.url)).write_run(self.run_id, values)
        except Exception as spool_exc:
            logger.critical(
                "crawl run %d: could not store its final row (%s) nor spool it (%s); the next run marks it crashed",
                self.run_id,
                one_line(exc),
                one_line(spool_exc),
            )
            return
        logger.error(
            "crawl run %d: could not store its final row (%s); spooled to %s: `fxcrawl spool replay` finishes it",
            self.run_id,
            one_line(exc),
            path,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
