"""The records that flow from parsers through spiders into the pipelines.

Plain dataclasses (Scrapy accepts them as items through itemadapter), so parsers and their
tests need no Scrapy at all. Parsers fill the fields that the page shows, as it shows them;
the validate pipeline fills the normalised ones (``published_at``, ``content_hash``). The
spider records when it fetched a page (``fetched_at``), so relative dates ('3小时前') resolve
against the fetch, not against whenever validation runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from typing import Any

#: Marks a field that the validate pipeline fills; parsers leave it empty.
DERIVED = {"derived": True}


@dataclass(slots=True)
class SourceItem:
    """An outlet that publishes on the portal (金融界, 金色财经 …)."""

    name: str
    logo_url: str | None = None


@dataclass(slots=True)
class ArticleItem:
    """An article detail page."""

    url: str
    title: str
    source: str
    author: str | None
    #: The time as the page shows it (a JSON path gives the JSON's text): two readings of one
    #: page may show it differently; they agree when their ``published_datetime`` does.
    published: str = field(metadata={"shown": "published_datetime"})
    body: list[str]
    tags: list[str]
    canonical_url: str | None = None
    #: The machine-readable publication time beside the visible one (a ``<time datetime>``
    #: attribute, a JSON timestamp), as the page gives it: it wins over coarser visible text.
    published_datetime: str | None = None
    #: None when ``published`` is not a date the portal could have meant: stored as unknown.
    published_at: datetime | None = field(default=None, metadata=DERIVED)
    content_hash: str | None = field(default=None, metadata=DERIVED)
    #: Validators from the response headers, for conditional revisits (set by the spider).
    etag: str | None = field(default=None, metadata=DERIVED)
    last_modified: str | None = field(default=None, metadata=DERIVED)
    #: When the page was fetched (aware; set by the spider). Validation falls back to its own clock.
    fetched_at: datetime | None = field(default=None, metadata=DERIVED)
    #: The URL the page was fetched from, when its canonical link (now ``url``) names another:
    #: the frontier marks both fetched, or the fetched one would be owed again every run.
    fetched_url: str | None = field(default=None, metadata=DERIVED)
    #: The archive record of the response the article was read from (its WARC-Record-ID, stamped
    #: as the response is archived) and, once the store's writer has written that record, where
    #: it is: the article row points there (``fxcrawl articles show ID --raw``).
    warc_record_id: str | None = field(default=None, metadata=DERIVED)
    warc_file: str | None = field(default=None, metadata=DERIVED)
    warc_offset: int | None = field(default=None, metadata=DERIVED)
    warc_length: int | None = field(default=None, metadata=DERIVED)
    #: The portal's newsId (None on the legacy host, whose ids are another space).
    news_id: int | None = None
    #: "article", or "video" for a video item (its ``video`` ids, no body).
    kind: str = "article"
    summary: str | None = None
    #: The 话题 the body links inline: [{"id": 86, "name": "比特日报"}].
    topics: list[dict[str, Any]] = field(default_factory=list)
    #: Quote symbols the body links to ('BINBTC').
    symbols: list[str] = field(default_factory=list)
    #: A video item's player ids: {"appId": …, "fileId": …}.
    video: dict[str, str] | None = None
    #: A syndicated piece: ``source`` is then its original outlet, as its reprint notice names it.
    reprinted: bool = False
    #: The piece says it was written by AI from third-party data.
    ai_generated: bool = False
    image: str | None = None


@dataclass(slots=True)
class SearchHitItem:
    """One result on a search listing page: where an article was found, and what it showed."""

    keyword: str
    tab: str
    page: int
    rank: int
    url: str
    title: str
    snippet: str
    highlights: list[str]
    source: str
    source_logo: str | None
    date: str
    #: dt.date, not date: the field above shadows the name in the class body.
    listed_on: dt.date | None = field(default=None, metadata=DERIVED)
    #: What the listing said of the article; a change sends the crawler back to it.
    listing_hash: str | None = field(default=None, metadata=DERIVED)
    #: When the listing page was fetched (aware; set by the spider), for relative dates.
    fetched_at: datetime | None = field(default=None, metadata=DERIVED)


@dataclass(slots=True)
class ChannelEntryItem:
    """One entry of a channel list (/info/001 …), from its page or from the JSON API."""

    channel: str
    page: int
    rank: int
    url: str
    title: str
    published: str
    news_id: int | None = None
    image: str | None = None
    published_at: datetime | None = field(default=None, metadata=DERIVED)
    listing_hash: str | None = field(default=None, metadata=DERIVED)
    fetched_at: datetime | None = field(default=None, metadata=DERIVED)


@dataclass(slots=True)
class FastNewsItem:
    """A 快讯 (fast news) item: a few sentences, its own id space, no article page."""

    fast_news_id: int
    url: str
    published: str
    text: str
    pinned: bool = False
    #: The trailing source tag, as shown: '路透' for '…（路透）'; the text keeps it.
    source_tag: str | None = None
    published_at: datetime | None = field(default=None, metadata=DERIVED)
    fetched_at: datetime | None = field(default=None, metadata=DERIVED)


@dataclass(slots=True)
class HotEntryItem:
    """An entry of the 24小时热点 side list."""

    rank: int
    title: str
    url: str


@dataclass(slots=True)
class TopicItem:
    """An entry of the 最新话题 side list, with its discussion count."""

    rank: int
    name: str
    url: str
    discussions: int


@dataclass(slots=True)
class Pagination:
    current: int
    last: int
    prev_url: str | None
    next_url: str | None


#: How a page was read (its ``via``): from its ``__NEXT_DATA__`` JSON, or from its HTML.
VIA_JSON = "json"
VIA_HTML = "html"
#: Page-level facts, not records: how it was read, and what did not match the site description.
PARSE_META = {"parse_meta": True}


@dataclass(slots=True)
class SearchPage:
    """Everything a search listing page shows."""

    url: str
    keyword: str
    tab: str
    hits: list[SearchHitItem]
    pagination: Pagination
    hot: list[HotEntryItem]
    topics: list[TopicItem]
    via: str = field(default=VIA_HTML, metadata=PARSE_META)
    #: What differed from the site description while the page still parsed ('json_missing: …').
    drift: list[str] = field(default_factory=list, metadata=PARSE_META)


@dataclass(slots=True)
class ArticlePage:
    url: str
    article: ArticleItem
    via: str = field(default=VIA_HTML, metadata=PARSE_META)
    drift: list[str] = field(default_factory=list, metadata=PARSE_META)


@dataclass(slots=True)
class ChannelPage:
    """A channel list: its entries, newest first (a JSON API page reads into the same record)."""

    url: str
    channel: str
    page: int
    entries: list[ChannelEntryItem]
    via: str = field(default=VIA_HTML, metadata=PARSE_META)
    drift: list[str] = field(default_factory=list, metadata=PARSE_META)


@dataclass(slots=True)
class ExpressPage:
    """The 快讯 feed (or a page of it from the JSON API), newest first, pinned items included."""

    url: str
    page: int
    items: list[FastNewsItem]
    via: str = field(default=VIA_HTML, metadata=PARSE_META)
    drift: list[str] = field(default_factory=list, metadata=PARSE_META)


@dataclass(slots=True)
class ListingVisitedItem:
    """A listing page read to the end: its results are in the items before this one, and
    ``next_url`` (a page of the same walk, ending at ``last``) is to be read next, if any."""

    url: str
    next_url: str | None
    last: int


@dataclass(slots=True)
class NotModifiedItem:
    """A conditional revisit answered 304: the stored article is current."""

    url: str


@dataclass(slots=True)
class RejectItem:
    """Something that could not be used (a page that did not parse, an invalid item), kept with its reason."""

    kind: str
    reason: str
    url: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def item_from_json(kind: str, data: dict[str, Any]) -> Any:
    """The inverse of ``to_jsonable`` for a record of the given kind (used by the spool)."""
    cls = _CLASSES[kind]
    values = dict(data)
    for f in fields(cls):
        value = values.get(f.name)
        if isinstance(value, str) and f.name in _DATETIME_FIELDS:
            values[f.name] = datetime.fromisoformat(value)
        elif isinstance(value, str) and f.name in _DATE_FIELDS:
            values[f.name] = date.fromisoformat(value)
    return cls(**values)


def item_kind(item: object) -> str:
    """The short name pipelines count and store items under ('article', 'hit', …)."""
    return _KINDS[type(item)]


_KINDS: dict[type, str] = {
    SourceItem: "source",
    ArticleItem: "article",
    SearchHitItem: "hit",
    ChannelEntryItem: "channel_entry",
    FastNewsItem: "fast_news",
    HotEntryItem: "hot",
    TopicItem: "topic",
    NotModifiedItem: "not_modified",
    ListingVisitedItem: "listing",
    RejectItem: "reject",
}
_CLASSES = {kind: cls for cls, kind in _KINDS.items()}
_DATETIME_FIELDS = {"published_at", "fetched_at"}
_DATE_FIELDS = {"listed_on"}


def to_jsonable(record: Any, derived: bool = True, meta: bool = True) -> Any:
    """A record as JSON-ready data (datetimes as ISO 8601); ``derived=False`` leaves out the
    fields the validate pipeline fills, giving exactly what the page showed; ``meta=False``
    leaves out how a page was read (``via``, ``drift``), giving only its records."""
    if is_dataclass(record) and not isinstance(record, type):
        return {
            f.name: to_jsonable(getattr(record, f.name), derived, meta)
            for f in fields(record)
            if (derived or not f.metadata.get("derived")) and (meta or not f.metadata.get("parse_meta"))
        }
    if isinstance(record, datetime | date):
        return record.isoformat()
    if isinstance(record, dict):
        return {k: to_jsonable(v, derived, meta) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [to_jsonable(v, derived, meta) for v in record]
    return record
