"""The crawl_runs ledger: a row per crawl, opened when the spider opens, closed with its counts.

Every run ends with a finished row, however it ends:

- a crawl that closes writes its row (finish reason, counts, health);
- a crawl whose database is away as it closes spools its final row beside its items, and
  ``fxcrawl spool replay`` (or the next crawl's start) writes it;
- a crawl whose process dies (SIGKILL, power loss) leaves an open row naming its host and pid,
  kept fresh by a heartbeat; the next run, or a scheduler starting, marks it ``crashed`` with
  the counts the database holds for it.

The Scrapy side (the recorder that opens and closes the rows) is crawler/ledger.py.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.db import Database
from storage.health import HealthPolicy, assess
from storage.locks import process_alive
from storage.models import Article, ArticleRevision, CrawlRun, Reject, SearchHit, utcnow
from storage.settings import Settings

logger = logging.getLogger(__name__)

CRASHED = "crashed"
#: The listing pages a run read (also kept in its stats column: --max-pages counts them across a crash).
LISTING_PAGES = "fxcrawl/pages/listing"


class _Stats(Protocol):
    def get(self, key: str, default: Any = None, /) -> Any: ...


@dataclass(frozen=True)
class RunCount:
    """One count of a run, named once: the crawl stats it sums, its crawl_runs column, and the
    name people read (``runs list``/``show``, the JSON API); None: kept, not shown."""

    column: str
    shown: str | None
    stats: tuple[str, ...]


RUN_COUNTS = (
    RunCount(
        "pages", "pages", (LISTING_PAGES, "fxcrawl/pages/api", "fxcrawl/pages/detail", "fxcrawl/pages/not_modified")
    ),
    RunCount("articles_new", "new", ("fxcrawl/store/article/new",)),
    RunCount("articles_updated", "updated", ("fxcrawl/store/article/updated",)),
    # fetched (or revisited: 304) and found as stored
    RunCount(
        "articles_unchanged", "unchanged", ("fxcrawl/store/article/unchanged", "fxcrawl/store/article/not_modified")
    ),
    # seen again and not fetched: already stored and not due, or twice in this run
    RunCount("duplicates", "duplicate", ("fxcrawl/duplicate/article", "fxcrawl/incremental/skipped_details")),
    RunCount("rejected", "rejected", ("fxcrawl/rejected", "fxcrawl/pages/unparsable")),
    RunCount("spooled", "spooled", ("fxcrawl/store/spooled_items",)),
    RunCount("errors", "errors", ("log_count/ERROR",)),
    RunCount("retries", "retries", ("fxcrawl/store/retries", "retry/count")),
    RunCount("hits", None, ("fxcrawl/validated/hit",)),
)


def run_counts(stats: _Stats | Mapping[str, Any]) -> dict[str, int]:
    """The run row's counts (by column), summed from a crawl's stats."""
    return {count.column: sum(int(stats.get(key, 0) or 0) for key in count.stats) for count in RUN_COUNTS}


def shown_counts(run: CrawlRun) -> dict[str, int]:
    """A run row's counts under the names people read, in RUN_COUNTS order."""
    return {count.shown: getattr(run, count.column) for count in RUN_COUNTS if count.shown}


@dataclass(frozen=True)
class LedgerPolicy:
    #: Seconds between heartbeats of a running crawl (each also stores its counts so far).
    heartbeat: float = 10.0
    #: A run whose heartbeat is older than this is taken for dead, wherever it ran.
    stale_after: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerPolicy:
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


def one_line(exc: BaseException | None) -> str:
    """An error's first line, for a log line or a health reason (its type when it says nothing)."""
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


def counts_of_processes(database: Database, host: str, pids: Sequence[int], since: datetime) -> dict[str, int]:
    """The summed counts (by column) of the runs that processes ``pids`` on ``host`` opened since
    ``since``: several workers' totals so far, as their heartbeats (and final rows) recorded them."""
    if not pids:
        return {count.column: 0 for count in RUN_COUNTS}
    columns = [func.coalesce(func.sum(getattr(CrawlRun, count.column)), 0) for count in RUN_COUNTS]
    with database.session() as session:
        row = session.execute(
            select(*columns).where(CrawlRun.host == host, CrawlRun.pid.in_(list(pids)), CrawlRun.started_at >= since)
        ).one()
    return {count.column: int(value) for count, value in zip(RUN_COUNTS, row, strict=True)}
