"""Write items to the database in batches of idempotent upserts.

Items are buffered and written together (on batch size, on age, and when the spider
closes), one statement per table per batch; the natural keys' unique constraints make
every write an upsert, so replays and concurrent crawlers cannot store anything twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque, namedtuple
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import func
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from fx168 import site
from fx168.items import ArticleItem, ChannelEntryItem, FastNewsItem, RejectItem, SearchHitItem, item_kind
from fx168.parsing.text import clean
from storage import frontier, fulltext
from storage.db import Database, insert_many, insert_rows, is_transient, select_in, upsert
from storage.frontier import RecrawlPolicy
from storage.logsafety import redact_text
from storage.models import (
    Article,
    ArticleRevision,
    ChannelEntry,
    FastNews,
    HotEntry,
    Reject,
    SearchHit,
    Source,
    Topic,
    utcnow,
)
from storage.runs import database_for, finish_run
from storage.spool import Spool, spool_dir_for

logger = logging.getLogger(__name__)

#: Column widths (a reject says what went wrong, so it is cut to fit rather than refused).
PUBLISHED_TEXT_MAX = Article.__table__.c.published_text.type.length
URL_MAX = Article.__table__.c.url.type.length
REJECT_KIND_MAX = Reject.__table__.c.kind.type.length
REJECT_TEXT_MAX = Reject.__table__.c.reason.type.length


class BatchWriter:
    """Turns a batch of items into a handful of statements in one transaction."""

    def __init__(self, database: Database, policy: RecrawlPolicy | None = None) -> None:
        self.database = database
        self.policy = policy or RecrawlPolicy()
        self.source_ids: dict[str, int] = {}

    def write(self, items: Sequence[Any], run_id: int | None) -> dict[str, int]:
        """Store the items; returns counts such as {'article/new': 3, 'article/unchanged': 7}."""
        by_kind: dict[str, list[Any]] = defaultdict(list)
        for item in items:
            by_kind[item_kind(item)].append(item)
        counts: dict[str, int] = defaultdict(int)
        now = utcnow()
        try:
            with self.database.write_session() as session:
                self._write(session, by_kind, run_id, now, counts)
        except BaseException:
            self.source_ids.clear()  # ids cached during a rolled-back transaction may not exist
            raise
        return dict(counts)

    def _write(
        self, session: Session, by_kind: dict[str, list[Any]], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        dialect = self.database.dialect
        self._sources(session, by_kind, now, counts)
        # A listed article fetched in the same batch ends up fetched with its listing's hash:
        # its frontier row is written once, with both, rather than discovered and then fetched.
        fetched_urls = {item.url for item in by_kind["article"]}
        fetched_urls.update(item.fetched_url for item in by_kind["article"] if item.fetched_url)
        entries = [*by_kind["hit"], *by_kind["channel_entry"]]  # what listings showed of articles
        listing_hashes = {entry.url: entry.listing_hash for entry in entries if entry.url in fetched_urls}
        frontier.record_discovered(session, dialect, [e for e in entries if e.url not in listing_hashes], now)
        self._articles(session, by_kind["article"], run_id, now, counts, listing_hashes)
        not_modified = [frontier.not_modified_row(item.url, now) for item in _latest(by_kind["not_modified"])]
        frontier.record_fetched(session, dialect, frontier.NOT_MODIFIED_COLUMNS, not_modified)
        counts["article/not_modified"] += len(not_modified)
        self._hits(session, by_kind["hit"], run_id, now, counts)
        self._channel_entries(session, by_kind["channel_entry"], run_id, now, counts)
        self._fast_news(session, by_kind["fast_news"], run_id, now, counts)
        self._simple(
            session,
            HotEntry,
            "url",
            by_kind["hot"],
            now,
            counts,
            "hot",
            lambda e: {"url": e.url, "title": e.title, "rank": e.rank},
        )
        self._simple(
            session,
            Topic,
            "name",
            by_kind["topic"],
            now,
            counts,
            "topic",
            lambda t: {"name": t.name, "url": t.url, "discussions": t.discussions, "rank": t.rank},
        )
        self._rejects(session, by_kind["reject"], run_id, now, counts)
        frontier.record_listings(session, dialect, by_kind["listing"], now)
        failures = {
            r.url: f"{r.kind}: {r.reason}"
            for r in by_kind["reject"]
            if r.url and len(r.url) <= URL_MAX and (site.article_ref(r.url) or site.parse_search_url(r.url))
        }
        forbidden = {url: why for url, why in failures.items() if frontier.ROBOTS_FORBIDDEN_REASON in why}
        frontier.record_forbidden(session, dialect, forbidden, now)
        counts["frontier/forbidden"] += len(forbidden)
        failures = {url: why for url, why in failures.items() if url not in forbidden}
        frontier.record_failed(session, dialect, failures, self.policy, now)

    # -- tables -------------------------------------------------------------------------

    def _sources(self, session: Session, by_kind: dict[str, list[Any]], now: Any, counts: dict[str, int]) -> None:
        logos: dict[str, str | None] = {}
        for item in by_kind["source"]:
            logos[item.name] = item.logo_url or logos.get(item.name)
        for item in (*by_kind["article"], *by_kind["hit"]):
            logos.setdefault(item.source, None)
        if not logos:
            return
        missing = [name for name in logos if name not in self.source_ids]  # a cached id is a stored source
        counts["source/new"] += len(missing) - len(_existing(session, Source.name, missing))
        rows = [
            {"name": name, "logo_url": logo, "first_seen_at": now, "last_seen_at": now} for name, logo in logos.items()
        ]
        insert_many(session, _sources_upsert(self.database.dialect), rows)
        self.source_ids.update(select_in(session, (Source.name, Source.id), Source.name, missing))

    def _articles(
        self,
        session: Session,
        items: list[ArticleItem],
        run_id: int | None,
        now: Any,
        counts: dict[str, int],
        listing_hashes: dict[str, str | None],
    ) -> None:
        """New articles are inserted; changed ones updated, their previous version kept as a revision."""
        latest = {item.url: item for item in items}  # a later version in the same batch wins
        if not latest:
            return
        # Which are stored, and as what: a light lookup by URL; the full previous version
        # (kept as a revision) is read only for the articles that changed.
        stored = {
            url: (hash_, revision)
            for url, hash_, revision in select_in(session, _VERSION_COLUMNS, Article.url, list(latest))
        }
        changed = [url for url, item in latest.items() if url in stored and stored[url][0] != item.content_hash]
        previous_versions = {
            row.url: row for row in map(_Revision._make, select_in(session, _REVISION_COLUMNS, Article.url, changed))
        }
        rows, revisions = [], []
        source_ids = self.source_ids
        for url, item in latest.items():
            # The full read is the one to trust for a changed article (another crawl may have
            # written it between the two reads): its id, revision and hash, nothing from the first.
            previous = previous_versions.get(url)
            if url not in stored:
                counts["article/new"] += 1
            elif previous is not None and previous.content_hash != item.content_hash:
                counts["article/updated"] += 1
                revisions.append(
                    (
                        previous.id,
                        previous.revision,
                        previous.title,
                        previous.author,
                        previous.body,
                        previous.tags,
                        previous.content_hash,
                        previous.updated_at,
                        now,
                        run_id,
                    )
                )
            else:
                counts["article/unchanged"] += 1
                continue
            rows.append(
                (
                    url,
                    item.title,
                    source_ids[item.source],
                    item.author,
                    item.published_at,
                    item.published_at is None,
                    item.published[:PUBLISHED_TEXT_MAX],
                    "\n\n".join(item.body),
                    item.tags,
                    item.content_hash,
                    run_id,
                    now,
                    now,
                    previous.revision + 1 if previous is not None else 1,
                    item.news_id,
                    item.kind,
                    item.summary,
                    item.topics,
                    item.symbols,
                    item.video,
                    item.reprinted,
                    item.ai_generated,
                    item.image,
                )
            )
        dialect = self.database.dialect
        if revisions:
            stmt = upsert(dialect, ArticleRevision.__table__, ["article_id", "revision"])
            insert_rows(session, stmt, _REVISION_ROW, revisions)
        if rows:
            insert_rows(session, upsert(dialect, Article.__table__, ["url"], _ARTICLE_UPDATE), _ARTICLE_ROW, rows)
            fulltext.index_articles(session, [row[0] for row in rows])  # the search index, same transaction
        next_visit = self.policy.revisits(now)
        fetched_row = frontier.fetched_row
        # Each article's URL, and the one it was fetched from when its canonical link names another
        # (else the fetched one would stay owed and be fetched again every run); the article's own first.
        fetched = [*latest.items(), *((item.fetched_url, item) for item in latest.values() if item.fetched_url)]
        visited: dict[str, tuple[Any, ...]] = {}
        for url, item in fetched:
            if url not in visited:
                visited[url] = fetched_row(
                    url,
                    now,
                    next_visit(item.published_at),
                    item.published_at,
                    item.etag,
                    item.last_modified,
                    listing_hashes.get(url),
                )
        frontier.record_fetched(session, dialect, frontier.FETCHED_COLUMNS, list(visited.values()))

    def _hits(
        self, session: Session, items: list[SearchHitItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = {(h.keyword, h.tab, h.page, h.url): h for h in items}
        if not latest:
            return
        rows = [
            (
                h.keyword,
                h.tab,
                h.page,
                h.rank,
                h.url,
                h.title,
                h.snippet,
                h.highlights,
                h.source,
                h.listed_on,
                run_id,
                now,
                now,
            )
            for h in latest.values()
        ]
        stmt = upsert(self.database.dialect, SearchHit.__table__, _HIT_KEY, _HIT_UPDATE)
        insert_rows(session, stmt, _HIT_ROW, rows)
        counts["hit/written"] += len(rows)

    def _channel_entries(
        self, session: Session, items: list[ChannelEntryItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = {(e.channel, e.url): e for e in items}
        if not latest:
            return
        rows = [
            {
                "channel": e.channel,
                "article_url": e.url,
                "news_id": e.news_id,
                "title": e.title,
                "published_at": e.published_at,
                "published_text": e.published[:PUBLISHED_TEXT_MAX],
                "page": e.page,
                "rank": e.rank,
                "image_url": e.image,
                "run_id": run_id,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for e in latest.values()
        ]
        insert_many(session, _channel_entries_upsert(self.database.dialect), rows)
        counts["channel_entry/written"] += len(rows)

    def _fast_news(
        self, session: Session, items: list[FastNewsItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        """快讯 items by their id; each is also marked fetched in the frontier (its permalink), so
        the next run's walk of the feed stops where this one's items begin."""
        latest = {item.fast_news_id: item for item in items}
        if not latest:
            return
        existing = _existing(session, FastNews.fast_news_id, latest)
        counts["fast_news/new"] += len(latest.keys() - existing)
        rows = [
            {
                "fast_news_id": item.fast_news_id,
                "url": item.url,
                "published_at": item.published_at,
                "published_unknown": item.published_at is None,
                "published_text": item.published[:PUBLISHED_TEXT_MAX],
                "text": item.text,
                "pinned": item.pinned,
                "source_tag": item.source_tag,
                "first_run_id": run_id,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for item in latest.values()
        ]
        insert_many(session, _fast_news_upsert(self.database.dialect), rows)
        visited = [
            frontier.fetched_row(item.url, now, None, item.published_at, None, None, None) for item in latest.values()
        ]
        frontier.record_fetched(session, self.database.dialect, frontier.FETCHED_COLUMNS, visited)

    def _simple(
        self,
        session: Session,
        model: Any,
        key: str,
        items: list[Any],
        now: Any,
        counts: dict[str, int],
        kind: str,
        to_row: Any,
    ) -> None:
        latest = {getattr(item, key): item for item in items}
        if not latest:
            return
        existing = _existing(session, getattr(model, key), latest)
        counts[f"{kind}/new"] += len(latest.keys() - existing)
        rows = [{**to_row(item), "first_seen_at": now, "last_seen_at": now} for item in latest.values()]
        update = [column for column in rows[0] if column not in (key, "first_seen_at")]
        insert_many(session, upsert(self.database.dialect, model.__table__, [key], update), rows)

    def _rejects(
        self, session: Session, items: list[RejectItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        if items:
            insert_many(
                session,
                _REJECT_INSERT,
                [
                    {
                        "run_id": run_id,
                        "kind": _fit(r.kind, REJECT_KIND_MAX) or "unknown",
                        "reason": _fit(r.reason, REJECT_TEXT_MAX),
                        "url": _fit(r.url, REJECT_TEXT_MAX) or None,
                        "payload": r.payload,
                        "created_at": now,
                    }
                    for r in items
                ],
            )
            counts["reject/written"] += len(items)


class StorePipeline:
    """Hands items to a writer thread that batches them by size and by age.

    The crawl never waits on the database: items go into a bounded queue (a full queue is
    the only back-pressure), and the writer thread retries transient failures with bounded
    exponential backoff. A batch that still cannot be written is spooled to disk, counted
    and reported; the next crawl, or ``fxcrawl spool replay``, writes it.
    """

    def __init__(
        self,
        database: Database,
        stats: StatsCollector,
        *,
        batch_size: int = 500,
        max_delay: float = 2.0,
        max_pending: int = 10_000,
        retry_attempts: int = 15,
        retry_max_wait: float = 8.0,
        retry_budget: float = 90.0,
        spool_dir: Path | str | None,
        policy: RecrawlPolicy | None = None,
    ) -> None:
        self.writer = BatchWriter(database, policy)
        self.stats = stats
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.retry_budget = retry_budget
        self.spool = Spool(spool_dir_for(spool_dir, database.url))
        # Items collect in ``pending`` (an append per item); a full batch moves to ``full``, which
        # the writer thread empties oldest first. One lock guards both, so batches are written in
        # the order they filled (a listing page's hits before its visit), and the writer takes
        # ``pending`` early (its oldest item has waited max_delay) only when no full batch waits.
        # Past ``max_pending`` items in full batches, process_item waits: back-pressure, not a drop.
        self.pending: list[Any] = []
        self.pending_since = 0.0
        self.full: deque[list[Any]] = deque()
        self.max_batches = max(1, max_pending // max(1, batch_size))
        self.changed = threading.Condition(threading.Lock())
        self.closing = False
        self.in_hand: list[Any] = []
        self.thread: threading.Thread | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        assert crawler.stats is not None
        return cls(
            database_for(crawler),
            crawler.stats,
            batch_size=settings.getint("FXCRAWL_STORE_BATCH_SIZE"),
            max_delay=settings.getfloat("FXCRAWL_STORE_MAX_DELAY"),
            max_pending=settings.getint("FXCRAWL_STORE_MAX_PENDING"),
            retry_attempts=settings.getint("FXCRAWL_STORE_RETRY_ATTEMPTS"),
            retry_max_wait=settings.getfloat("FXCRAWL_STORE_RETRY_MAX_WAIT"),
            retry_budget=settings.getfloat("FXCRAWL_STORE_RETRY_BUDGET"),
            spool_dir=settings.get("FXCRAWL_SPOOL_DIR"),
            policy=RecrawlPolicy.from_settings(settings),
        )

    def open_spider(self) -> None:
        if self.spool.files() or self.spool.run_files():
            result = self.spool.replay(
                self.write, lambda run_id, values: finish_run(self.writer.database, run_id, values)
            )
            self.stats.inc_value("fxcrawl/spool/replayed_items", result.items)
            logger.info(
                "replayed %d spooled items from %d files and %d run rows before crawling",
                result.items,
                result.files,
                result.runs,
            )
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="fxcrawl-store", daemon=True)
        self.thread.start()

    def process_item(self, item: Any) -> Any:
        if self.thread is None:  # Scrapy opens pipelines first; a caller that did not gets a writer all the same
            self.open_spider()
        with self.changed:
            self.pending.append(item)
            if len(self.pending) >= self.batch_size:
                self.full.append(self.pending)
                self.pending = []
                self.changed.notify_all()
                while len(self.full) > self.max_batches and self._writing():
                    self.changed.wait(1.0)
            elif len(self.pending) == 1:  # the max_delay clock starts
                self.pending_since = time.monotonic()
                self.changed.notify_all()
        return item

    def close_spider(self) -> None:
        """Flush everything still held (also on SIGTERM, which Scrapy turns into a clean close)."""
        if self.thread is None:
            return
        with self.changed:
            self.closing = True
            self.changed.notify_all()
        self.thread.join()
        self.thread = None
        with self.changed:  # only if the writer died: what it left is spooled, not dropped
            leftovers, self.pending, self.in_hand = [self.in_hand, *self.full, self.pending], [], []
            self.full.clear()
        for batch in leftovers:
            if batch:
                self._spool(batch, RuntimeError("the store's writer thread stopped"))

    def write(self, items: Sequence[Any]) -> dict[str, int]:
        """Write one batch, retrying transient database errors; raises once retries run out."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retry_attempts) | stop_after_delay(self.retry_budget),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        counts = retrying(self.writer.write, items, self.stats.get_value("fxcrawl/run_id"))
        for key, value in counts.items():
            self.stats.inc_value(f"fxcrawl/store/{key}", value)
        self.stats.inc_value("fxcrawl/store/batches")
        return counts

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self.in_hand = batch  # until written or spooled: a writer that dies leaves it to close_spider
            self._flush(batch)
            self.in_hand = []

    def _next_batch(self) -> list[Any] | None:
        """The oldest full batch; else the pending items once the oldest has waited max_delay
        (or the crawl is closing); None when closing with nothing left."""
        with self.changed:
            while True:
                if self.full:
                    batch = self.full.popleft()
                    self.changed.notify_all()  # room for a process_item that waits
                    return batch
                if self.pending:
                    wait = self.pending_since + self.max_delay - time.monotonic()
                    if wait <= 0 or self.closing:
                        batch, self.pending = self.pending, []
                        return batch
                    self.changed.wait(wait)
                elif self.closing:
                    return None
                else:
                    self.changed.wait()

    def _writing(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _flush(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        try:
            counts = self.write(batch)
        except Exception as exc:
            self._spool(batch, exc)
        else:
            logger.debug("stored %d items in %.1f ms: %s", len(batch), (time.perf_counter() - started) * 1000, counts)

    def _spool(self, batch: list[Any], exc: BaseException) -> None:
        try:
            path = self.spool.write(batch, redact_text(f"{type(exc).__name__}: {exc}"))
        except Exception as spool_exc:  # the last resort failed too: say so as loudly as we can
            self.stats.inc_value("fxcrawl/store/failed_items", len(batch))
            logger.critical(
                "could not store %d items (%s) nor spool them (%s): they are lost",
                len(batch),
                _one_line(exc),
                _one_line(spool_exc),
            )
            return
        self.stats.inc_value("fxcrawl/store/spooled_items", len(batch))
        logger.error("could not store %d items (%s); spooled to %s", len(batch), _one_line(exc), path)

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.inc_value("fxcrawl/store/retries")
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        logger.warning(
            "database write failed (attempt %d of %d), retrying in %.1f s: %s",
            state.attempt_number,
            self.retry_attempts,
            wait,
            _one_line(exc),
        )


def _fit(text: str | None, limit: int) -> str:
    """Text a column takes: no NUL or other controls (PostgreSQL refuses NUL), at most ``limit`` long."""
    return clean(text)[:limit]


def _one_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else type(exc).__name__


_REJECT_INSERT = Reject.__table__.insert()
#: Row tuples, in these columns' order, that the batch writes (no dict per row).
_ARTICLE_ROW = (
    "url",
    "title",
    "source_id",
    "author",
    "published_at",
    "published_unknown",
    "published_text",
    "body",
    "tags",
    "content_hash",
    "first_run_id",
    "first_seen_at",
    "updated_at",
    "revision",
    "news_id",
    "kind",
    "summary",
    "topics",
    "symbols",
    "video",
    "reprinted",
    "ai_generated",
    "image_url",
)
#: What a changed article's new version replaces (all but its URL and when it was first seen).
_ARTICLE_UPDATE = tuple(c for c in _ARTICLE_ROW if c not in ("url", "first_run_id", "first_seen_at"))
_REVISION_ROW = (
    "article_id",
    "revision",
    "title",
    "author",
    "body",
    "tags",
    "content_hash",
    "valid_from",
    "replaced_at",
    "replaced_by_run_id",
)
_HIT_ROW = (
    "keyword",
    "tab",
    "page",
    "rank",
    "article_url",
    "title",
    "snippet",
    "highlights",
    "source_name",
    "listed_on",
    "run_id",
    "first_seen_at",
    "last_seen_at",
)
_HIT_KEY = ("keyword", "tab", "page", "article_url")
_HIT_UPDATE = ("rank", "title", "snippet", "highlights", "source_name", "listed_on", "run_id", "last_seen_at")
_VERSION_COLUMNS = (Article.url, Article.content_hash, Article.revision)
_REVISION_COLUMNS = (
    Article.id,
    Article.url,
    Article.content_hash,
    Article.revision,
    Article.title,
    Article.author,
    Article.body,
    Article.tags,
    Article.updated_at,
)
_Revision = namedtuple("_Revision", [column.key for column in _REVISION_COLUMNS])  # type: ignore[misc]


@cache
def _sources_upsert(dialect: str) -> Executable:
    """A source's logo is kept when a later sighting has none; last_seen_at moves on."""
    table = Source.__table__
    return upsert(
        dialect,
        table,
        ["name"],
        {
            "logo_url": lambda excluded: func.coalesce(excluded.logo_url, table.c.logo_url),
            "last_seen_at": lambda excluded: excluded.last_seen_at,
        },
    )


@cache
def _channel_entries_upsert(dialect: str) -> Executable:
    return upsert(
        dialect,
        ChannelEntry.__table__,
        ["channel", "article_url"],
        ("news_id", "title", "published_at", "published_text", "page", "rank", "image_url", "run_id", "last_seen_at"),
    )


@cache
def _fast_news_upsert(dialect: str) -> Executable:
    """A fast news item edited or unpinned on the site is stored as it is now."""
    return upsert(
        dialect,
        FastNews.__table__,
        ["fast_news_id"],
        ("published_at", "published_unknown", "published_text", "text", "pinned", "source_tag", "last_seen_at"),
    )


def _latest(items: Sequence[Any]) -> list[Any]:
    """One item per URL, the last one seen."""
    return list({item.url: item for item in items}.values())


def _existing(session: Session, column: Any, keys: Iterable[Any]) -> set[Any]:
    return {key for (key,) in select_in(session, (column,), column, list(keys))}
