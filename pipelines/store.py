"""Write items to the database in batches of idempotent upserts.

Items are buffered and written together (on batch size, on age, and when the spider
closes), one statement per table per batch; the natural keys' unique constraints make
every write an upsert, so replays and concurrent crawlers cannot store anything twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.items import ArticleItem, RejectItem, SearchHitItem, item_kind
from pipelines.db import Database, upsert
from pipelines.models import Article, HotEntry, Reject, SearchHit, Source, Topic, utcnow
from pipelines.runs import database_for

logger = logging.getLogger(__name__)

#: Rows per IN (…) lookup; well under SQLite's and PostgreSQL's parameter limits.
LOOKUP_CHUNK = 900


class BatchWriter:
    """Turns a batch of items into a handful of statements in one transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.source_ids: dict[str, int] = {}

    def write(self, items: Sequence[Any], run_id: int | None) -> dict[str, int]:
        """Store the items; returns counts such as {'article/new': 3, 'article/unchanged': 7}."""
        by_kind: dict[str, list[Any]] = defaultdict(list)
        for item in items:
            by_kind[item_kind(item)].append(item)
        counts: dict[str, int] = defaultdict(int)
        now = utcnow()
        with self.database.session() as session, session.begin():
            self._sources(session, by_kind, now, counts)
            self._articles(session, by_kind["article"], run_id, now, counts)
            self._hits(session, by_kind["hit"], run_id, now, counts)
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
        return dict(counts)

    def forget_cache(self) -> None:
        """Drop cached source ids (after a rolled-back transaction they may not exist)."""
        self.source_ids.clear()

    # -- tables -------------------------------------------------------------------------

    def _sources(self, session: Session, by_kind: dict[str, list[Any]], now: Any, counts: dict[str, int]) -> None:
        logos: dict[str, str | None] = {}
        for item in by_kind["source"]:
            logos[item.name] = item.logo_url or logos.get(item.name)
        for item in (*by_kind["article"], *by_kind["hit"]):
            logos.setdefault(item.source, None)
        if not logos:
            return
        existing = _existing(session, Source.name, logos)
        counts["source/new"] += len(logos.keys() - existing)
        rows = [
            {"name": name, "logo_url": logo, "first_seen_at": now, "last_seen_at": now} for name, logo in logos.items()
        ]
        table = Source.__table__
        session.execute(
            upsert(
                self.database.dialect,
                table,
                ["name"],
                {
                    "logo_url": lambda excluded: func.coalesce(excluded.logo_url, table.c.logo_url),
                    "last_seen_at": lambda excluded: excluded.last_seen_at,
                },
            ),
            rows,
        )
        missing = [name for name in logos if name not in self.source_ids]
        for chunk in _chunks(missing):
            self.source_ids.update(
                session.execute(select(Source.name, Source.id).where(Source.name.in_(chunk))).all()
            )

    def _articles(
        self, session: Session, items: list[ArticleItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = {item.url: item for item in items}  # a later version in the same batch wins
        if not latest:
            return
        stored: dict[str, str] = {}
        for chunk in _chunks(list(latest)):
            stored.update(
                session.execute(select(Article.url, Article.content_hash).where(Article.url.in_(chunk))).all()
            )
        rows = []
        for url, item in latest.items():
            if url not in stored:
                counts["article/new"] += 1
            elif stored[url] != item.content_hash:
                counts["article/updated"] += 1
            else:
                counts["article/unchanged"] += 1
                continue
            rows.append(
                {
                    "url": url,
                    "title": item.title,
                    "source_id": self.source_ids[item.source],
                    "author": item.author,
                    "published_at": item.published_at,
                    "published_text": item.published,
                    "body": "\n\n".join(item.body),
                    "tags": item.tags,
                    "content_hash": item.content_hash,
                    "first_run_id": run_id,
                    "first_seen_at": now,
                    "updated_at": now,
                }
            )
        if rows:
            session.execute(
                upsert(
                    self.database.dialect,
                    Article.__table__,
                    ["url"],
                    [
                        "title",
                        "source_id",
                        "author",
                        "published_at",
                        "published_text",
                        "body",
                        "tags",
                        "content_hash",
                        "updated_at",
                    ],
                ),
                rows,
            )

    def _hits(
        self, session: Session, items: list[SearchHitItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = {(h.keyword, h.tab, h.page, h.url): h for h in items}
        if not latest:
            return
        rows = [
            {
                "keyword": h.keyword,
                "tab": h.tab,
                "page": h.page,
                "rank": h.rank,
                "article_url": h.url,
                "title": h.title,
                "snippet": h.snippet,
                "highlights": h.highlights,
                "source_name": h.source,
                "listed_on": h.listed_on,
                "run_id": run_id,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for h in latest.values()
        ]
        session.execute(
            upsert(
                self.database.dialect,
                SearchHit.__table__,
                ["keyword", "tab", "page", "article_url"],
                ["rank", "title", "snippet", "highlights", "source_name", "listed_on", "run_id", "last_seen_at"],
            ),
            rows,
        )
        counts["hit/written"] += len(rows)

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
        session.execute(upsert(self.database.dialect, model.__table__, [key], update), rows)

    def _rejects(
        self, session: Session, items: list[RejectItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        if items:
            session.execute(
                Reject.__table__.insert(),
                [
                    {
                        "run_id": run_id,
                        "kind": r.kind,
                        "reason": r.reason[:1000],
                        "url": r.url,
                        "payload": r.payload,
                        "created_at": now,
                    }
                    for r in items
                ],
            )
            counts["reject/written"] += len(items)


class StorePipeline:
    """Buffers items and hands them to the BatchWriter by size, by age and at close."""

    def __init__(self, database: Database, stats: StatsCollector, batch_size: int, max_delay: float) -> None:
        self.writer = BatchWriter(database)
        self.stats = stats
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.buffer: list[Any] = []
        self.oldest: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        assert crawler.stats is not None
        return cls(
            database_for(crawler),
            crawler.stats,
            settings.getint("FXCRAWL_STORE_BATCH_SIZE"),
            settings.getfloat("FXCRAWL_STORE_MAX_DELAY"),
        )

    def process_item(self, item: Any) -> Any:
        if not self.buffer:
            self.oldest = time.monotonic()
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size or time.monotonic() - (self.oldest or 0) >= self.max_delay:
            self.flush()
        return item

    def close_spider(self) -> None:
        self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        started = time.perf_counter()
        try:
            counts = self.writer.write(batch, self.stats.get_value("fxcrawl/run_id"))
        except Exception:
            self.writer.forget_cache()
            self.stats.inc_value("fxcrawl/store/failed_items", len(batch))
            logger.exception("could not store a batch of %d items", len(batch))
            raise
        for key, value in counts.items():
            self.stats.inc_value(f"fxcrawl/store/{key}", value)
        self.stats.inc_value("fxcrawl/store/batches")
        logger.debug("stored %d items in %.1f ms: %s", len(batch), (time.perf_counter() - started) * 1000, counts)


def _existing(session: Session, column: Any, keys: Iterable[Any]) -> set[Any]:
    found: set[Any] = set()
    for chunk in _chunks(list(keys)):
        found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def _chunks(values: list[Any], size: int = LOOKUP_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
