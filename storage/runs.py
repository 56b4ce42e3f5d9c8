"""The crawl_runs ledger: a row per crawl, opened when the spider opens, closed with its counts.

Every run ends with a finished row, however it ends:

- a crawl that closes writes its row (finish reason, counts, health);
- a crawl whose database is away as it closes spools its final row beside its items, and
  ``fxcrawl spool replay`` (or the next crawl's start) writes it;
- a crawl whose process dies (SIGKILL, power loss) leaves an open row naming its host and pid,
  kept fresh by a heartbeat; the next run, or a scheduler starting, marks it ``crashed`` with
  the counts the database holds for it.

Also the one place a crawler gets its Database from, so every component of a crawl shares
one engine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.db import Database
from storage.health import HealthPolicy, assess
from storage.locks import process_alive
from storage.models import Article, ArticleRevision, CrawlRun, Reject, SearchHit, utcnow

logger = logging.getLogger(__name__)

_databases: WeakKeyDictionary[Crawler, Database] = WeakKeyDictionary()

CRASHED = "crashed"
#: Stats of a crawl that are also columns of its run row (run_counts maps them).
LISTING_PAGES = "fxcrawl/pages/listing"


def database_for(crawler: Crawler) -> Database:
    """The crawl's Database (from FXCRAWL_DATABASE_URL), migrated to the current schema on first
    use and checked writable, so a crawl that could store nothing never starts."""
    database = _databases.get(crawler)
    if database is None:
        database = Database(crawler.settings.get("FXCRAWL_DATABASE_URL"))
        database.check_writable(before_open=True)
        database.prepare().check_writable()
        _databases[crawler] = database
    return database


class _Stats(Protocol):
    def get(self, key: str, default: Any = None, /) -> Any: ...


def run_counts(stats: _Stats | Mapping[str, Any]) -> dict[str, int]:
    """The run-row counts, derived from a crawl's stats."""

    def get(key: str) -> int:
        return int(stats.get(key, 0) or 0)

    return {
        "pages": get(LISTING_PAGES)
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


class _LiveStats:
    """A StatsCollector read from another thread, key by key (never iterated while it changes)."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    def get(self, key: str, default: Any = None, /) -> Any:
        return self.stats.get_value(key, default)


@dataclass(frozen=True)
class LedgerPolicy:
    #: Seconds between heartbeats of a running crawl (each also stores its counts so far).
    heartbeat: float = 10.0
    #: A run whose heartbeat is older than this is taken for dead, wherever it ran.
    stale_after: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any) -> LedgerPolicy:
        return cls(
            heartbeat=settings.getfloat("FXCRAWL_RUN_HEARTBEAT", cls.heartbeat),
            stale_after=settings.getfloat("FXCRAWL_RUN_STALE_AFTER", cls.stale_after),
        )


def close_crashed_runs(
    database: Database, policy: LedgerPolicy | None = None, now: datetime | None = None
) -> list[int]:
    """Mark every open run whose process is gone as crashed, with the counts the database holds
    for it; returns their ids. Gone: a process on this host that no longer exists, or, for a run
    on another host, a heartbeat (for a row without one, a start) older than ``stale_after``.
    A run marked crashed that was only slow finishes its own row when it closes."""
    policy = policy or LedgerPolicy()
    now = now or utcnow()
    host = socket.gethostname()
    stale_before = now - timedelta(seconds=policy.stale_after)
    closed: list[int] = []
    with database.write_session() as session:
        open_runs = session.scalars(select(CrawlRun).where(CrawlRun.finished_at.is_(None)).with_for_update()).all()
        for run in open_runs:
            if run.host == host and run.pid == os.getpid():
                continue  # this process's own run (a crawl opening its row is not a crash)
            last_sign = run.heartbeat_at or run.started_at
            if run.host == host and run.pid is not None:  # this machine knows: is the process there?
                dead_here = not process_alive(run.pid)
                if not dead_here:
                    continue
            else:  # another machine's (or a row from before 0003_run_ledger): its heartbeat says
                dead_here = False
                if last_sign > stale_before:
                    continue
            _mark_crashed(session, run, now, "its process is gone" if dead_here else "no heartbeat since")
            closed.append(run.id)
    for run_id in closed:
        logger.warning("crawl run %d had crashed (its process is gone): marked crashed with its stored counts", run_id)
    return closed


def stored_counts(session: Session, run_id: int) -> dict[str, int]:
    """What the database holds of one run: new articles, updated ones, listing results, listing
    pages and rejects (for a run that could not count them itself)."""

    def count(expression: Any, where: Any) -> int:
        return int(session.scalar(select(expression).where(where)) or 0)

    return {
        "articles_new": count(func.count(Article.id), Article.first_run_id == run_id),
        "articles_updated": count(func.count(ArticleRevision.id), ArticleRevision.replaced_by_run_id == run_id),
        "hits": count(func.count(SearchHit.id), SearchHit.run_id == run_id),
        "listing_pages": int(
            session.scalar(
                select(func.count()).select_from(
                    select(SearchHit.keyword, SearchHit.tab, SearchHit.page)
                    .where(SearchHit.run_id == run_id)
                    .distinct()
                    .subquery()
                )
            )
            or 0
        ),
        "rejected": count(func.count(Reject.id), Reject.run_id == run_id),
    }


def _mark_crashed(session: Session, run: CrawlRun, now: datetime, why: str) -> None:
    stored = stored_counts(session, run.id)
    last_sign = run.heartbeat_at or run.started_at
    run.finished_at = last_sign
    run.finish_reason = CRASHED
    # The heartbeat's counts are the crawl's own up to its last beat; what the database holds
    # may be more (batches stored after it): the larger of the two.
    run.articles_new = max(run.articles_new or 0, stored["articles_new"])
    run.articles_updated = max(run.articles_updated or 0, stored["articles_updated"])
    run.hits = max(run.hits or 0, stored["hits"])
    run.rejected = max(run.rejected or 0, stored["rejected"])
    listing_pages = max(int((run.stats or {}).get(LISTING_PAGES, 0) or 0), stored["listing_pages"])
    run.pages = max(run.pages or 0, listing_pages)
    run.stats = {**(run.stats or {}), LISTING_PAGES: listing_pages, "finish_reason": CRASHED}
    run.health = "unhealthy"
    run.health_reasons = [
        f"the crawl did not finish (crashed: pid {run.pid} on {run.host}; {why} "
        f"{last_sign:%Y-%m-%d %H:%M:%S} UTC); counts are what the database holds of it"
    ]


def unfinished_listing_pages(database: Database, job: str, before_run: int | None = None) -> int:
    """Listing pages already fetched by the job's latest runs that did not finish (crashed,
    shut down, lost their database): a rerun's --max-pages budget continues from them."""
    with database.session() as session:
        query = select(CrawlRun).where(CrawlRun.job == job, CrawlRun.finished_at.is_not(None))
        if before_run is not None:
            query = query.where(CrawlRun.id < before_run)
        pages = 0
        for run in session.scalars(query.order_by(CrawlRun.id.desc()).limit(100)):
            if run.finish_reason == "finished":
                break
            pages += int((run.stats or {}).get(LISTING_PAGES, 0) or 0)
        return pages


def assess_run(session: Session, run: CrawlRun, policy: HealthPolicy) -> list[str]:
    """Reasons a run is unhealthy, judged against the same job's recent finished runs."""
    earlier = (CrawlRun.job == run.job) & (CrawlRun.id < run.id)
    recent = session.scalars(
        select(CrawlRun)
        .where(earlier, CrawlRun.finish_reason == "finished")
        .order_by(CrawlRun.id.desc())
        .limit(policy.history)
    ).all()
    last_new = session.scalar(select(func.max(CrawlRun.started_at)).where(earlier, CrawlRun.articles_new > 0))
    first_run = session.scalar(select(func.min(CrawlRun.started_at)).where(earlier))
    return assess(run, recent, last_new, first_run, policy, utcnow())


def finish_run(database: Database, run_id: int, values: dict[str, Any], policy: HealthPolicy | None = None) -> CrawlRun:
    """Write a run's final row (finish reason, counts, stats) and judge its health."""
    with database.write_session() as session:
        run = session.get_one(CrawlRun, run_id)
        run.finished_at = datetime.fromisoformat(values["finished_at"])
        run.finish_reason = values["finish_reason"]
        run.stats = values["stats"]
        for column, value in values["counts"].items():
            setattr(run, column, value)
        reasons = [*values.get("reasons", []), *assess_run(session, run, policy or HealthPolicy())]
        run.health = "unhealthy" if reasons else "healthy"
        run.health_reasons = list(dict.fromkeys(reasons))
    return run


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
        reason = f"the database was unavailable as the run closed ({_one_line(exc)})"
        values["reasons"] = [reason]
        self.stats.set_value("fxcrawl/health", "unhealthy")
        self.stats.set_value("fxcrawl/runs/row_spooled", 1)
        try:
            path = Spool(spool_dir_for(self.spool_dir, self.database.url)).write_run(self.run_id, values)
        except Exception as spool_exc:
            logger.critical(
                "crawl run %d: could not store its final row (%s) nor spool it (%s); the next run marks it crashed",
                self.run_id,
                _one_line(exc),
                _one_line(spool_exc),
            )
            return
        logger.error(
            "crawl run %d: could not store its final row (%s); spooled to %s: `fxcrawl spool replay` finishes it",
            self.run_id,
            _one_line(exc),
            path,
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
