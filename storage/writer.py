"""The batch writer: a batch of items (and listing facts) becomes a handful of idempotent
upserts in one transaction; the natural keys' unique constraints make replays and concurrent
crawlers harmless. It is the only writer of the articles, hits and frontier tables during a
crawl; the Scrapy side (``pipelines.store``) decides when a batch goes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Insert, func
from sqlalchemy.orm import Session

from fx168 import site
from fx168.items import (
    ArticleItem,
    ChannelEntryItem,
    FastNewsItem,
    HotEntryItem,
    ListingVisitedItem,
    NotModifiedItem,
    RejectItem,
    SearchHitItem,
    SourceItem,
    TopicItem,
    item_kind,
)
from fx168.parsing.text import clean
from storage import frontier, fulltext
from storage.db import Database, select_in, table_of, upsert, write_rows
from storage.frontier import RecrawlPolicy
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


#: Column widths (a reject says what went wrong, so it is cut to fit rather than refused).
def _width(model: type[Any], column: str) -> int:
    width = getattr(table_of(model).c[column].type, "length", None)
    assert isinstance(width, int), f"{model.__name__}.{column} has no width"
    return width


PUBLISHED_TEXT_MAX = _width(Article, "published_text")
URL_MAX = _width(Article, "url")
REJECT_KIND_MAX = _width(Reject, "kind")
REJECT_TEXT_MAX = _width(Reject, "reason")


class Listed(NamedTuple):
    """An article a listing shows: its canonical URL and the listing's hash of it (None: nothing to compare)."""

    url: str
    listing_hash: str | None


@dataclass(frozen=True, slots=True)
class Discovery:
    """What one listing page showed and the page its walk reads next: committed before any of
    the page's requests leaves (a worker killed after sharing them must leave a record of them)."""

    listed: tuple[Listed, ...]
    next_listing: str | None
    walk_until: int


DISCOVERY = "discovery"


def natural_key(item: Any) -> tuple[Any, ...] | None:
    """The key an item is stored under (its table's unique key), None for what is never merged:
    where the run's dedupe (pipelines.dedupe) and a batch's merge of repeats both look."""
    key = _NATURAL_KEYS.get(type(item))
    return key(item) if key else None


_NATURAL_KEYS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    ArticleItem: lambda item: ("article", item.url),
    HotEntryItem: lambda item: ("hot", item.url),
    NotModifiedItem: lambda item: ("not_modified", item.url),
    ListingVisitedItem: lambda item: ("listing", item.url),
    SourceItem: lambda item: ("source", item.name),
    TopicItem: lambda item: ("topic", item.name),
    SearchHitItem: lambda item: ("hit", item.keyword, item.tab, item.page, item.url),
    ChannelEntryItem: lambda item: ("channel_entry", item.channel, item.url),
    FastNewsItem: lambda item: ("fast_news", item.fast_news_id),
}


def kind_of(item: Any) -> str:
    return DISCOVERY if type(item) is Discovery else item_kind(item)


class BatchWriter:
    """Turns a batch of items into a handful of statements in one transaction."""

    def __init__(self, database: Database, policy: RecrawlPolicy | None = None, *, keep_frontier: bool = True) -> None:
        self.database = database
        self.policy = policy or RecrawlPolicy()
        self.source_ids: dict[str, int] = {}
        #: A re-parse of archived pages fetched nothing: what is owed and when to revisit stay as they are.
        self.frontier: Any = frontier if keep_frontier else _FrontierLeftAlone()

    def write(self, items: Sequence[Any], run_id: int | None) -> dict[str, int]:
        """Store the items; returns counts such as {'article/new': 3, 'article/unchanged': 7}."""
        by_kind: dict[str, list[Any]] = defaultdict(list)
        for item in items:
            by_kind[kind_of(item)].append(item)
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
        discoveries: list[Discovery] = by_kind[DISCOVERY]
        entries = [  # what listings showed of articles
            *(listed for discovery in discoveries for listed in discovery.listed),
            *by_kind["hit"],
            *by_kind["channel_entry"],
        ]
        listing_hashes = {entry.url: entry.listing_hash for entry in entries if entry.url in fetched_urls}
        self.frontier.record_discovered(session, dialect, [e for e in entries if e.url not in listing_hashes], now)
        for discovery in discoveries:
            if discovery.next_listing:
                self.frontier.record_next_listing(session, dialect, discovery.next_listing, discovery.walk_until, now)
        self._articles(session, by_kind["article"], run_id, now, counts, listing_hashes)
        not_modified = [frontier.not_modified_row(item.url, now) for item in _latest(by_kind["not_modified"]).values()]
        self.frontier.record_fetched(session, dialect, not_modified)
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
        self.frontier.record_listings(session, dialect, by_kind["listing"], now)
        failures = {
            r.url: f"{r.kind}: {r.reason}"
            for r in by_kind["reject"]
            if r.url and len(r.url) <= URL_MAX and (site.article_ref(r.url) or site.parse_search_url(r.url))
        }
        forbidden = {url: why for url, why in failures.items() if frontier.ROBOTS_FORBIDDEN_REASON in why}
        self.frontier.record_forbidden(session, dialect, forbidden, now)
        counts["frontier/forbidden"] += len(forbidden)
        failures = {url: why for url, why in failures.items() if url not in forbidden}
        self.frontier.record_failed(session, dialect, failures, self.policy, now)

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
        write_rows(session, _sources_upsert(self.database.dialect), rows)
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
                    {
                        "article_id": previous.id,
                        "revision": previous.revision,
                        "title": previous.title,
                        "author": previous.author,
                        "body": previous.body,
                        "tags": previous.tags,
                        "content_hash": previous.content_hash,
                        "valid_from": previous.updated_at,
                        "replaced_at": now,
                        "replaced_by_run_id": run_id,
                    }
                )
            else:
                counts["article/unchanged"] += 1
                continue
            rows.append(
                {
                    "url": url,
                    "title": item.title,
                    "source_id": source_ids[item.source],
                    "author": item.author,
                    "published_at": item.published_at,
                    "published_unknown": item.published_at is None,
                    "published_text": item.published[:PUBLISHED_TEXT_MAX],
                    "body": "\n\n".join(item.body),
                    "tags": item.tags,
                    "content_hash": item.content_hash,
                    "first_run_id": run_id,
                    "first_seen_at": now,
                    "updated_at": now,
                    "revision": previous.revision + 1 if previous is not None else 1,
                    "news_id": item.news_id,
                    "kind": item.kind,
                    "summary": item.summary,
                    "topics": item.topics,
                    "symbols": item.symbols,
                    "video": item.video,
                    "reprinted": item.reprinted,
                    "ai_generated": item.ai_generated,
                    "image_url": item.image,
                    "warc_file": item.warc_file,
                    "warc_offset": item.warc_offset,
                    "warc_length": item.warc_length,
                }
            )
        dialect = self.database.dialect
        write_rows(session, upsert(dialect, ArticleRevision.__table__, ["article_id", "revision"]), revisions)
        if rows:
            write_rows(session, upsert(dialect, Article.__table__, ["url"], _ARTICLE_UPDATE), rows)
            fulltext.index_articles(session, rows)  # the search index, same transaction
        next_visit = self.policy.revisits(now)
        fetched_row = frontier.fetched_row
        # Each article's URL, and the one it was fetched from when its canonical link names another
        # (else the fetched one would stay owed and be fetched again every run); the article's own first.
        fetched = [*latest.items(), *((item.fetched_url, item) for item in latest.values() if item.fetched_url)]
        visited: dict[str, dict[str, Any]] = {}
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
        self.frontier.record_fetched(session, dialect, list(visited.values()))

    def _hits(
        self, session: Session, items: list[SearchHitItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = _latest(items)
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
        write_rows(session, upsert(self.database.dialect, SearchHit.__table__, _HIT_KEY, _HIT_UPDATE), rows)
        counts["hit/written"] += len(rows)

    def _channel_entries(
        self, session: Session, items: list[ChannelEntryItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        latest = _latest(items)
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
        write_rows(session, _channel_entries_upsert(self.database.dialect), rows)
        counts["channel_entry/written"] += len(rows)

    def _fast_news(
        self, session: Session, items: list[FastNewsItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        """快讯 items by their id; each is also marked fetched in the frontier (its permalink), so
        the next run's walk of the feed stops where this one's items begin."""
        latest = {item.fast_news_id: item for item in _latest(items).values()}
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
        write_rows(session, _fast_news_upsert(self.database.dialect), rows)
        visited = [
            frontier.fetched_row(item.url, now, None, item.published_at, None, None, None) for item in latest.values()
        ]
        self.frontier.record_fetched(session, self.database.dialect, visited)

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
        latest = {getattr(item, key): item for item in _latest(items).values()}
        if not latest:
            return
        existing = _existing(session, getattr(model, key), latest)
        counts[f"{kind}/new"] += len(latest.keys() - existing)
        rows = [{**to_row(item), "first_seen_at": now, "last_seen_at": now} for item in latest.values()]
        update = [column for column in rows[0] if column not in (key, "first_seen_at")]
        write_rows(session, upsert(self.database.dialect, model.__table__, [key], update), rows)

    def _rejects(
        self, session: Session, items: list[RejectItem], run_id: int | None, now: Any, counts: dict[str, int]
    ) -> None:
        if items:
            write_rows(
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


class _FrontierLeftAlone:
    """The frontier module's writes (``record_*``) turned into nothing (``keep_frontier=False``)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not name.startswith("record_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def _fit(text: str | None, limit: int) -> str:
    """Text a column takes: no NUL or other controls (PostgreSQL refuses NUL), at most ``limit`` long."""
    return clean(text)[:limit]


_REJECT_INSERT = table_of(Reject).insert()
#: An article row's columns.
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
    "warc_file",
    "warc_offset",
    "warc_length",
)
#: What a changed article's new version replaces (all but its URL and when it was first seen).
_ARTICLE_UPDATE = tuple(c for c in _ARTICLE_ROW if c not in ("url", "first_run_id", "first_seen_at"))
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


class _Revision(NamedTuple):
    """An article's stored version as _REVISION_COLUMNS reads it (kept as a revision when it changes)."""

    id: int
    url: str
    content_hash: str
    revision: int
    title: str
    author: str | None
    body: str
    tags: list[str]
    updated_at: datetime


@cache
def _sources_upsert(dialect: str) -> Insert:
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
def _channel_entries_upsert(dialect: str) -> Insert:
    return upsert(
        dialect,
        ChannelEntry.__table__,
        ["channel", "article_url"],
        ("news_id", "title", "published_at", "published_text", "page", "rank", "image_url", "run_id", "last_seen_at"),
    )


@cache
def _fast_news_upsert(dialect: str) -> Insert:
    """A fast news item edited or unpinned on the site is stored as it is now."""
    return upsert(
        dialect,
        FastNews.__table__,
        ["fast_news_id"],
        ("published_at", "published_unknown", "published_text", "text", "pinned", "source_tag", "last_seen_at"),
    )


def _latest(items: Sequence[Any]) -> dict[Any, Any]:
    """One item per natural key, the last one seen (one statement may not upsert a row twice)."""
    return {natural_key(item): item for item in items}


def _existing(session: Session, column: Any, keys: Iterable[Any]) -> set[Any]:
    return {key for (key,) in select_in(session, (column,), column, list(keys))}
