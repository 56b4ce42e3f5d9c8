"""The durable crawl frontier: which article URLs are known, fetched, failed or due again.

The store's writer is its only writer (in the same transactions as the articles, and the
listing facts the incremental middleware hands it); the middleware reads it to decide what a
run still has to fetch. Because it lives in the database, a run
that crashed or was killed leaves its unfinished work where the next run finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Insert, case, func, or_, select
from sqlalchemy.orm import Session

from fx168 import site
from storage.db import Database, select_in, upsert, write_rows
from storage.models import FrontierEntry, utcnow
from storage.settings import Settings

DISCOVERED, FETCHED, FAILED = "discovered", "fetched", "failed"
#: robots.txt forbids it: never fetched, never retried (robots.txt answered; asking again changes nothing).
FORBIDDEN = "forbidden"
#: What Scrapy's RobotsTxtMiddleware says when it drops a request.
ROBOTS_FORBIDDEN_REASON = "Forbidden by robots.txt"
ARTICLE, LISTING = "article", "listing"


@dataclass(frozen=True)
class RecrawlPolicy:
    """When a fetched article is visited again, and when a failed one is retried."""

    max_age: timedelta = timedelta(days=3)
    interval: timedelta = timedelta(hours=6)
    retry_delay: timedelta = timedelta(minutes=10)
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> RecrawlPolicy:
        return cls(
            max_age=timedelta(seconds=settings.getfloat("FXCRAWL_RECRAWL_MAX_AGE")),
            interval=timedelta(seconds=settings.getfloat("FXCRAWL_RECRAWL_INTERVAL")),
            retry_delay=timedelta(seconds=settings.getfloat("FXCRAWL_FRONTIER_RETRY_DELAY")),
            max_attempts=settings.getint("FXCRAWL_FRONTIER_MAX_ATTEMPTS"),
        )

    def next_visit(self, published_at: datetime | None, now: datetime) -> datetime | None:
        """Young articles are revisited (conditionally) after ``interval``; old ones never."""
        if published_at is None or now - published_at >= self.max_age:
            return None
        return now + self.interval

    def revisits(self, now: datetime) -> Callable[[datetime | None], datetime | None]:
        """``next_visit`` for a batch at one ``now``: the cut-off and the revisit time are worked
        out once, and every young article shares the one revisit value (converted once on write)."""
        cutoff, revisit_at = now - self.max_age, now + self.interval
        return lambda published_at: None if published_at is None or published_at <= cutoff else revisit_at

    def retry_at(self, attempts: int, now: datetime) -> datetime:
        return now + self.retry_delay * (1 << max(0, attempts - 1))


@dataclass(frozen=True)
class KnownURL:
    url: str
    kind: str
    walk_until: int | None
    state: str
    listing_hash: str | None
    etag: str | None
    last_modified: str | None
    next_fetch_at: datetime | None
    attempts: int
    fetched_at: datetime | None = None
    published_at: datetime | None = None

    def due(self, policy: RecrawlPolicy, now: datetime) -> bool:
        """Is a fetched article due for a (conditional) revisit under the policy as it is now?"""
        if self.fetched_at is None or self.published_at is None:
            return False
        return now - self.published_at < policy.max_age and now - self.fetched_at >= policy.interval


class Frontier:
    """Reads of the frontier for one crawl."""

    def __init__(self, database: Database, policy: RecrawlPolicy) -> None:
        self.database = database
        self.policy = policy

    def lookup(self, urls: Iterable[str]) -> dict[str, KnownURL]:
        with self.database.session() as session:
            rows = select_in(session, _KNOWN, FrontierEntry.url, list(dict.fromkeys(urls)))
        return {row[0]: KnownURL(*row) for row in rows}

    def _owed(self, now: datetime) -> Any:
        return owed(self.policy, now)

    def pending(self, now: datetime | None = None, limit: int = 100_000) -> list[KnownURL]:
        """URLs still to fetch: discovered and never fetched, or failed and due for another attempt."""
        query = (
            select(*_KNOWN)
            .where(self._owed(now or utcnow()))
            .order_by(FrontierEntry.discovered_at, FrontierEntry.id)
            .limit(limit)
        )
        with self.database.session() as session:
            return [KnownURL(*row) for row in session.execute(query)]

    def owed_count(self, now: datetime | None = None) -> int:
        """How many URLs ``pending`` would return without a limit (the fxcrawl_frontier_owed gauge)."""
        query = select(func.count(FrontierEntry.id)).where(self._owed(now or utcnow()))
        with self.database.session() as session:
            return int(session.scalar(query) or 0)


def owed(policy: RecrawlPolicy, now: datetime) -> Any:
    """The frontier rows still owed a fetch: discovered and never fetched, or failed with attempts
    left and due again (what a crawl resumes, the owed gauge counts and `fxcrawl frontier` shows)."""
    return or_(
        FrontierEntry.state == DISCOVERED,
        (FrontierEntry.state == FAILED)
        & (FrontierEntry.attempts < policy.max_attempts)
        & ((FrontierEntry.next_fetch_at.is_(None)) | (FrontierEntry.next_fetch_at <= now)),
    )


@cache
def _next_listing_upsert(dialect: str) -> Insert:
    """The walk's next page: discovered again if it was read before (a new walk goes through it)."""
    table = FrontierEntry.__table__
    return upsert(
        dialect,
        table,
        ["url"],
        {
            "walk_until": lambda excluded: excluded.walk_until,
            "state": lambda excluded: case((table.c.state == FETCHED, DISCOVERED), else_=table.c.state),
        },
    )


@cache
def _discovered_upsert(dialect: str) -> Insert:
    table = FrontierEntry.__table__
    return upsert(
        dialect,
        table,
        ["url"],
        {
            # a listing that shows nothing to compare (a channel entry) keeps what another showed
            "listing_hash": lambda excluded: func.coalesce(excluded.listing_hash, table.c.listing_hash),
            "state": lambda excluded: case(
                (
                    (table.c.state == FETCHED)
                    & table.c.listing_hash.is_not(None)
                    & (table.c.listing_hash != excluded.listing_hash),
                    DISCOVERED,
                ),
                else_=table.c.state,
            ),
        },
    )


#: KnownURL's fields, read as columns (no ORM objects: a listing page looks up ten URLs per page).
_KNOWN = (
    FrontierEntry.url,
    FrontierEntry.kind,
    FrontierEntry.walk_until,
    FrontierEntry.state,
    FrontierEntry.listing_hash,
    FrontierEntry.etag,
    FrontierEntry.last_modified,
    FrontierEntry.next_fetch_at,
    FrontierEntry.attempts,
    FrontierEntry.fetched_at,
    FrontierEntry.published_at,
)


# -- writes, inside the store's batch transaction ------------------------------------------


def record_discovered(session: Session, dialect: str, hits: Sequence[Any], now: datetime) -> None:
    """Listing entries: new URLs become 'discovered'; a fetched one whose listing changed goes back to it."""
    rows = {
        hit.url: {
            "url": hit.url,
            "state": DISCOVERED,
            "attempts": 0,
            "listing_hash": hit.listing_hash,
            "discovered_at": now,
        }
        for hit in hits
    }
    write_rows(session, _discovered_upsert(dialect), list(rows.values()))


def record_next_listing(session: Session, dialect: str, url: str, walk_until: int, now: datetime) -> None:
    """The page a search walk reads next, before its request leaves (see Discovery)."""
    write_rows(session, _next_listing_upsert(dialect), [_listing_row(url, walk_until, now)])


def _listing_row(url: str, walk_until: int, now: datetime) -> dict[str, Any]:
    """A walk's page not read yet (discovered again if an earlier walk read it)."""
    return {
        "url": url,
        "kind": LISTING,
        "state": DISCOVERED,
        "attempts": 0,
        "walk_until": walk_until,
        "discovered_at": now,
    }


def record_walk_starts(database: Database, walks: Sequence[tuple[str, int]]) -> None:
    """A shared job's first listing pages, written before ``fxcrawl seed`` queues them in Redis:
    a worker killed while it holds one leaves it owed here for ``reconcile``, not lost with it."""
    now = utcnow()
    with database.write_session() as session:
        write_rows(
            session, _next_listing_upsert(database.dialect), [_listing_row(url, last, now) for url, last in walks]
        )


#: A fetched article's frontier row (record_fetched): what a response said of it, and when to look again.
FETCHED_COLUMNS = (
    "url",
    "state",
    "attempts",
    "last_error",
    "discovered_at",
    "fetched_at",
    "next_fetch_at",
    "published_at",
    "etag",
    "last_modified",
    "listing_hash",
)
#: A 304's frontier row: confirmed current, nothing else learnt.
NOT_MODIFIED_COLUMNS = FETCHED_COLUMNS[:7]


def fetched_row(
    url: str,
    fetched_at: datetime,
    next_fetch_at: datetime | None,
    published_at: datetime | None,
    etag: str | None,
    last_modified: str | None,
    listing_hash: str | None,
) -> dict[str, Any]:
    """A FETCHED_COLUMNS row. ``listing_hash`` None keeps the stored one (no listing seen with it)."""
    return {
        "url": url,
        "state": FETCHED,
        "attempts": 0,
        "last_error": None,
        "discovered_at": fetched_at,
        "fetched_at": fetched_at,
        "next_fetch_at": next_fetch_at,
        "published_at": published_at,
        "etag": etag,
        "last_modified": last_modified,
        "listing_hash": listing_hash,
    }


def not_modified_row(url: str, fetched_at: datetime) -> dict[str, Any]:
    """A NOT_MODIFIED_COLUMNS row: a 304 confirms the stored version, nothing else."""
    return {
        "url": url,
        "state": FETCHED,
        "attempts": 0,
        "last_error": None,
        "discovered_at": fetched_at,
        "fetched_at": fetched_at,
        "next_fetch_at": None,
    }


def record_fetched(session: Session, dialect: str, rows: Sequence[dict[str, Any]]) -> None:
    """Fetched (or confirmed unchanged by a 304): rows made by ``fetched_row`` / ``not_modified_row``."""
    if rows:
        write_rows(session, _fetched_upsert(dialect, tuple(rows[0])), rows)


@cache
def _fetched_upsert(dialect: str, columns: tuple[str, ...]) -> Insert:
    """Everything but the URL and when it was first discovered is what the fetch says now; the
    listing hash only when the batch saw the listing (else the stored one stays)."""
    table = FrontierEntry.__table__
    update: dict[str, Any] = {
        column: (lambda excluded, column=column: excluded[column])
        for column in columns
        if column not in ("url", "discovered_at", "listing_hash")
    }
    if "listing_hash" in columns:
        update["listing_hash"] = lambda excluded: func.coalesce(excluded.listing_hash, table.c.listing_hash)
    return upsert(dialect, table, ["url"], update)


def record_failed(
    session: Session, dialect: str, failures: dict[str, str], policy: RecrawlPolicy, now: datetime
) -> None:
    """Failed fetches: attempts counted, reason kept, next attempt backed off exponentially."""
    if not failures:
        return
    attempts = dict(
        session.execute(
            select(FrontierEntry.url, FrontierEntry.attempts).where(FrontierEntry.url.in_(list(failures)))
        ).all()
    )
    rows = []
    for url, reason in failures.items():
        tries = attempts.get(url, 0) + 1
        rows.append(
            {
                "url": url,
                "kind": LISTING if site.parse_search_url(url) else ARTICLE,
                "state": FAILED,
                "attempts": tries,
                "last_error": reason[:1000],
                "discovered_at": now,
                "next_fetch_at": policy.retry_at(tries, now),
            }
        )
    write_rows(
        session,
        upsert(dialect, FrontierEntry.__table__, ["url"], ["state", "attempts", "last_error", "next_fetch_at"]),
        rows,
    )


def record_forbidden(session: Session, dialect: str, forbidden: dict[str, str], now: datetime) -> None:
    """URLs robots.txt forbids: settled, not failed, so no later run or reconcile asks again."""
    if not forbidden:
        return
    rows = [
        {
            "url": url,
            "kind": LISTING if site.parse_search_url(url) else ARTICLE,
            "state": FORBIDDEN,
            "attempts": 1,
            "last_error": reason[:1000],
            "discovered_at": now,
            "next_fetch_at": None,
        }
        for url, reason in forbidden.items()
    ]
    write_rows(
        session,
        upsert(dialect, FrontierEntry.__table__, ["url"], ["state", "attempts", "last_error", "next_fetch_at"]),
        rows,
    )


def record_listings(session: Session, dialect: str, visits: Sequence[Any], now: datetime) -> None:
    """Listing pages read (fetched) and the next page each walk will read (discovered), so a
    walk cut short by a crash resumes at the page it had not read yet."""
    table = FrontierEntry.__table__
    fetched = {
        v.url: {
            "url": v.url,
            "kind": LISTING,
            "state": FETCHED,
            "attempts": 0,
            "last_error": None,
            "walk_until": v.last,
            "discovered_at": now,
            "fetched_at": now,
        }
        for v in visits
    }
    upcoming = {
        v.next_url: _listing_row(v.next_url, v.last, now) for v in visits if v.next_url and v.next_url not in fetched
    }
    write_rows(session, upsert(dialect, table, ["url"], ["state", "attempts", "walk_until"]), list(upcoming.values()))
    write_rows(
        session,
        upsert(dialect, table, ["url"], ["state", "attempts", "last_error", "walk_until", "fetched_at"]),
        list(fetched.values()),
    )
