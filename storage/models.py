"""The relational model of what fxcrawl keeps: SQLAlchemy 2 typed declarative classes.

Natural keys (canonical URL for articles, name for sources, …) carry unique constraints: the
database, not the crawler's memory, is the authority on what is stored once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no time zones) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: fxcrawl stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    logo_url: Mapped[str | None] = mapped_column(String(1000))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    articles: Mapped[list[Article]] = relationship(back_populates="source")


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_published_at", "published_at"),
        UniqueConstraint("news_id", name="uq_articles_news_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    title: Mapped[str] = mapped_column(String(1000))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    author: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime | None]
    #: The page's date was not one it can have meant (unreadable, in the future): published_at
    #: is NULL, never a stand-in such as the crawl time, and published_text keeps what it said.
    published_unknown: Mapped[bool] = mapped_column(default=False, server_default=false())
    published_text: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]]
    content_hash: Mapped[str] = mapped_column(String(64))
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: The portal's newsId: every URL spelling of the article names it (None on the legacy host).
    news_id: Mapped[int | None] = mapped_column(BigInteger)
    #: "article", or "video" (no body; ``video`` holds the player's ids).
    kind: Mapped[str] = mapped_column(String(20), default="article", server_default="article")
    summary: Mapped[str | None] = mapped_column(Text)
    #: [{"id": 86, "name": "比特日报"}]: the 话题 the body links inline.
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Quote symbols the body links to.
    symbols: Mapped[list[str]] = mapped_column(default=list)
    video: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: A syndicated piece, stored under its original outlet.
    reprinted: Mapped[bool] = mapped_column(default=False, server_default=false())
    ai_generated: Mapped[bool] = mapped_column(default=False, server_default=false())
    image_url: Mapped[str | None] = mapped_column(String(1000))
    #: The archived page this version was read from (storage/archive): a file of the archive
    #: folder, the record's offset and length in it (None: archiving was off, or the file pruned).
    warc_file: Mapped[str | None] = mapped_column(String(200))
    warc_offset: Mapped[int | None] = mapped_column(BigInteger)
    warc_length: Mapped[int | None] = mapped_column(BigInteger)

    source: Mapped[Source] = relationship(back_populates="articles")


class ArticleRevision(Base):
    """A version of an article that a later crawl replaced: what it said, and when it stopped saying it."""

    __tablename__ = "article_revisions"
    __table_args__ = (UniqueConstraint("article_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    revision: Mapped[int]
    title: Mapped[str] = mapped_column(String(1000))
    author: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]]
    content_hash: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime]
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
    replaced_by_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))


class FrontierEntry(Base):
    """The durable crawl frontier: every article URL a listing showed and every listing page a
    walk meant to read, and where fetching each stands.

    ``kind`` is 'article' or 'listing'; ``state`` is 'discovered' (to fetch), 'fetched' or
    'failed'; ``next_fetch_at`` is when a failed URL may be retried or a fetched article
    revisited. ``listing_hash`` is what an article's listing entry said last time, so an edited
    title or snippet sends the crawler back to it; ``walk_until`` is the last page of the walk
    a listing page belongs to, so a walk cut short resumes where it stopped.
    """

    __tablename__ = "frontier"
    __table_args__ = (Index("ix_frontier_state_next", "state", "next_fetch_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="article")
    state: Mapped[str] = mapped_column(String(20), default="discovered")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    listing_hash: Mapped[str | None] = mapped_column(String(64))
    walk_until: Mapped[int | None]
    published_at: Mapped[datetime | None]
    etag: Mapped[str | None] = mapped_column(String(200))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow)
    fetched_at: Mapped[datetime | None]
    next_fetch_at: Mapped[datetime | None]


class JobLock(Base):
    """Who is running a scheduled job right now; stale once its heartbeat stops or its process is gone."""

    __tablename__ = "job_locks"

    job: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchHit(Base):
    """An article's appearance on a search listing page."""

    __tablename__ = "search_hits"
    __table_args__ = (UniqueConstraint("keyword", "tab", "page", "article_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    keyword: Mapped[str] = mapped_column(String(200))
    tab: Mapped[str] = mapped_column(String(50))
    page: Mapped[int]
    rank: Mapped[int]
    article_url: Mapped[str] = mapped_column(String(1000), index=True)
    title: Mapped[str] = mapped_column(String(1000))
    snippet: Mapped[str] = mapped_column(Text)
    highlights: Mapped[list[str]]
    source_name: Mapped[str] = mapped_column(String(200))
    listed_on: Mapped[date | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelEntry(Base):
    """An article's appearance on a channel list (/info/001 …), as last seen."""

    __tablename__ = "channel_entries"
    __table_args__ = (UniqueConstraint("channel", "article_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    article_url: Mapped[str] = mapped_column(String(1000), index=True)
    news_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(1000))
    published_at: Mapped[datetime | None]
    published_text: Mapped[str] = mapped_column(String(100))
    page: Mapped[int]
    rank: Mapped[int]
    image_url: Mapped[str | None] = mapped_column(String(1000))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class FastNews(Base):
    """A 快讯 item: its own id space, a few sentences, no article page."""

    __tablename__ = "fast_news"
    __table_args__ = (Index("ix_fast_news_published_at", "published_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fast_news_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    published_at: Mapped[datetime | None]
    published_unknown: Mapped[bool] = mapped_column(default=False, server_default=false())
    published_text: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: The trailing source tag as shown ('路透' for '…（路透）').
    source_tag: Mapped[str | None] = mapped_column(String(50))
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class HotEntry(Base):
    """An article as it stood on the 24小时热点 list when last seen."""

    __tablename__ = "hot_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(1000), unique=True)
    title: Mapped[str] = mapped_column(String(1000))
    rank: Mapped[int]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Topic(Base):
    """A 最新话题 entry with its latest discussion count."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    discussions: Mapped[int]
    rank: Mapped[int]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlRun(Base):
    """One crawl: when, with what arguments, how it ended and what it counted."""

    __tablename__ = "crawl_runs"
    __table_args__ = (Index("ix_crawl_runs_open", "finished_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spider: Mapped[str] = mapped_column(String(100))
    job: Mapped[str | None] = mapped_column(String(200), index=True)
    args: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    finish_reason: Mapped[str | None] = mapped_column(String(100))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    articles_new: Mapped[int] = mapped_column(Integer, default=0)
    articles_updated: Mapped[int] = mapped_column(Integer, default=0)
    # these four were added to a table with rows (migration 0002): the server default filled them
    articles_unchanged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    spooled: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    hits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    health: Mapped[str | None] = mapped_column(String(20))
    health_reasons: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The process running the crawl and when it last showed signs of life: a run left open by a
    #: process that is gone (SIGKILL, power loss) is marked crashed by the next run.
    host: Mapped[str | None] = mapped_column(String(200))
    pid: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]


class Reject(Base):
    """Something that could not be stored as data (an invalid item, a page that did not parse), with why."""

    __tablename__ = "rejects"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(String(1000))
    url: Mapped[str | None] = mapped_column(String(1000))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArchivePayload(Base):
    """A payload archived in full, by its digest: a later identical response is archived as a
    ``revisit`` record referring to this one (storage/archive)."""

    __tablename__ = "archive_payloads"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    uri: Mapped[str] = mapped_column(Text)
    #: The original's WARC-Date, as written (revisits repeat it).
    date: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(100))
    warc_file: Mapped[str] = mapped_column(String(200), index=True)
    warc_offset: Mapped[int] = mapped_column(BigInteger)
    warc_length: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(Integer)
