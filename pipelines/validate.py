"""Check and normalise every item; turn the ones that fail into RejectItems that say why.

A rejected item is not dropped: it continues down the pipeline as a RejectItem carrying the
reason and the original data, so the store records it in the rejects table and the run's
counts show it (``fxcrawl/rejected``, per kind; every reject, the spider's page rejects too, per
reason under ``fxcrawl/rejected/reason/``).

What is checked here is what would otherwise poison the store: garbled text (mojibake), text
longer than its column (PostgreSQL refuses it and the whole batch would fail with it), URLs
that are not the portal's own. A date the portal cannot have meant is not a reason to lose
the article: it is kept with ``published_at`` unknown (None) and its text as shown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy.orm import InstrumentedAttribute

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
    to_jsonable,
)
from fx168.parsing.dates import DateError, parse_published
from fx168.parsing.encoding import garbled
from fx168.parsing.text import clean, clean_lines, strip_invisible
from pipelines.counting import BufferedCounts
from storage.models import Article, ChannelEntry, FastNews, SearchHit, Source, Topic

logger = logging.getLogger(__name__)

_CANONICAL_HOST = urlsplit(site.CANONICAL_BASE).netloc


class Invalid(ValueError):
    """The item cannot be stored; the message is the reason recorded with it."""


def _limit(column: InstrumentedAttribute[Any]) -> int:
    return column.property.columns[0].type.length


#: Column widths the text must fit (PostgreSQL refuses longer strings; SQLite would take them).
URL_MAX = _limit(Article.url)
TITLE_MAX = _limit(Article.title)
NAME_MAX = _limit(Source.name)
AUTHOR_MAX = _limit(Article.author)
PUBLISHED_TEXT_MAX = _limit(Article.published_text)
KEYWORD_MAX = _limit(SearchHit.keyword)
TAB_MAX = _limit(SearchHit.tab)
TOPIC_MAX = _limit(Topic.name)
CHANNEL_MAX = _limit(ChannelEntry.channel)
SOURCE_TAG_MAX = _limit(FastNews.source_tag)
#: JSON fields of an article that hold text a reader sees.
TOPIC_NAME_MAX = 200


class ValidatePipeline:
    def __init__(self, stats: StatsCollector, fetch_base: str, tz: str) -> None:
        self.stats = stats
        self.count = stats.inc_value  # rare events, counted at once
        self.validated = BufferedCounts(stats)  # one per item
        self.fetch_base = fetch_base
        self.tz = ZoneInfo(tz)
        self.normalisers: dict[type, Callable[[Any], None]] = {
            ArticleItem: self._article,
            SearchHitItem: self._hit,
            SourceItem: self._source,
            HotEntryItem: self._hot,
            NotModifiedItem: self._not_modified,
            ListingVisitedItem: self._listing,
            TopicItem: self._topic,
            ChannelEntryItem: self._channel_entry,
            FastNewsItem: self._fast_news,
        }

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        settings = crawler.settings
        assert crawler.stats is not None
        return cls(crawler.stats, settings.get("FXCRAWL_BASE_URL"), settings.get("FXCRAWL_TIMEZONE"))

    def process_item(self, item: Any) -> Any:
        kind = item_kind(item)
        if kind == "reject":  # made by the spider: a page that failed or did not parse
            if item.url and item.url.startswith(("http://", "https://")):
                item.url = site.canonical_url(item.url, self.fetch_base)
            self.count(f"fxcrawl/rejected/reason/{reason_category(item.reason)}")
            return item
        try:
            self.normalise(item)
        except Invalid as exc:
            reason = str(exc)
            self.count("fxcrawl/rejected")
            self.count(f"fxcrawl/rejected/{kind}")
            self.count(f"fxcrawl/rejected/reason/{reason_category(reason)}")
            return RejectItem(kind=kind, reason=reason, url=getattr(item, "url", None), payload=to_jsonable(item))
        self.validated.inc(f"fxcrawl/validated/{kind}")
        return item

    def close_spider(self) -> None:
        self.validated.flush()

    def normalise(self, item: Any) -> None:
        """Normalise in place, or raise Invalid."""
        normalise = self.normalisers.get(type(item))
        if normalise is None:
            raise Invalid(f"unknown item type {type(item).__name__}")
        normalise(item)

    def _source(self, item: SourceItem) -> None:
        item.name = _text(item.name, "source name", NAME_MAX)
        item.logo_url = self._optional_url(item.logo_url)

    def _hot(self, item: HotEntryItem) -> None:
        item.title = _text(item.title, "title", TITLE_MAX)
        item.url = self._url(item.url)

    def _not_modified(self, item: NotModifiedItem) -> None:
        item.url = self._url(item.url)

    def _listing(self, item: ListingVisitedItem) -> None:
        item.url = self._url(item.url)
        item.next_url = self._url(item.next_url) if item.next_url else None

    def _topic(self, item: TopicItem) -> None:
        item.name = _text(item.name, "topic name", TOPIC_MAX)
        item.url = self._url(item.url)
        if item.discussions < 0:
            raise Invalid("unreadable discussion count")

    def _article(self, item: ArticleItem) -> None:
        item.url = self._article_url(item)
        item.title = _text(item.title, "title", TITLE_MAX)
        item.source = _text(item.source, "source", NAME_MAX)
        item.author = _text(item.author, "author", AUTHOR_MAX, required=False) or None
        item.summary = clean(item.summary) or None
        item.body = _paragraphs(item.body, lines=True)
        if item.kind == "video":
            if not item.video or not item.video.get("fileId"):
                raise Invalid("video without its player's ids")
        elif not item.body:
            raise Invalid("missing body")
        if item.news_id is None and (ref := site.article_ref(item.url)) is not None and ref.kind == "news":
            item.news_id = ref.id
        item.topics = [
            {"id": int(topic["id"]), "name": clean(str(topic.get("name", "")))[:TOPIC_NAME_MAX]}
            for topic in item.topics
        ]
        item.symbols = list(dict.fromkeys(symbol for symbol in map(clean, item.symbols) if symbol))
        item.image = self._optional_url(item.image)
        _check_encoding("body", "\n".join(item.body))
        item.tags = list(dict.fromkeys(_paragraphs(item.tags)))
        _check_encoding("tags", " ".join(item.tags))
        item.published = clean(item.published)[:PUBLISHED_TEXT_MAX]
        item.published_at = self._published(
            item.published, item.fetched_at, item.url, "article", machine=item.published_datetime
        )
        item.content_hash = content_hash(item)

    def _channel_entry(self, item: ChannelEntryItem) -> None:
        item.url = self._site_url(item.url)
        item.title = _text(item.title, "title", TITLE_MAX)
        item.channel = _text(item.channel, "channel", CHANNEL_MAX)
        item.published = clean(item.published)[:PUBLISHED_TEXT_MAX]
        item.published_at = self._published(item.published, item.fetched_at, item.url, "channel_entry")
        item.image = self._optional_url(item.image)
        item.listing_hash = None  # see entry_hash

    def _fast_news(self, item: FastNewsItem) -> None:
        if item.fast_news_id <= 0:
            raise Invalid(f"bad fast news id {item.fast_news_id}")
        item.url = self._site_url(item.url)
        item.text = _text(item.text, "text", 1_000_000)
        item.source_tag = clean(item.source_tag)[:SOURCE_TAG_MAX] or None
        item.published = clean(item.published)[:PUBLISHED_TEXT_MAX]
        item.published_at = self._published(item.published, item.fetched_at, item.url, "fast_news")

    def _hit(self, item: SearchHitItem) -> None:
        item.url = self._site_url(item.url)
        item.title = _text(item.title, "title", TITLE_MAX)
        item.source = _text(item.source, "source", NAME_MAX)
        item.keyword = _text(item.keyword, "keyword", KEYWORD_MAX)
        item.tab = _text(item.tab, "tab", TAB_MAX)
        item.snippet = clean(item.snippet)
        _check_encoding("snippet", item.snippet)
        item.source_logo = self._optional_url(item.source_logo)
        listed = self._published(item.date, item.fetched_at, item.url, "hit")
        item.listed_on = listed.date() if listed else None
        if item.listing_hash is None:  # the incremental middleware hashed what the page showed already
            # title, snippet and source are clean by now: the hash listing_hash(item) would give, at less cost
            item.listing_hash = _listing_hash(item.title, item.snippet, item.source, clean(item.date))

    def _url(self, url: str | None) -> str:
        url = strip_invisible(url or "").strip()
        if not url.startswith(("http://", "https://")):
            raise Invalid(f"not an absolute http(s) URL: {url[:200]!r}")
        canonical = site.canonical_url(url, self.fetch_base)
        if len(canonical) > URL_MAX:
            raise Invalid(f"URL too long ({len(canonical)} characters, at most {URL_MAX})")
        return canonical

    def _site_url(self, url: str | None) -> str:
        """A link that must lead to the portal: another host, or no http(s) link at all, is not one."""
        canonical = self._url(url)
        if not site.is_site_url(canonical, self.fetch_base):
            raise Invalid(f"not a link of the site: {canonical[:200]!r}")
        return canonical

    def _optional_url(self, url: str | None) -> str | None:
        """A URL that is nice to have (a logo): one that would not do is dropped, not fatal."""
        try:
            return self._url(url) if url else None
        except Invalid:
            return None

    def _article_url(self, item: ArticleItem) -> str:
        """The page's rel=canonical when it names an article of the portal; otherwise the URL it
        was fetched from. A canonical link is the page's say, and pages lie: one pointing off
        the portal or at its home page would store the article under a URL that is not it."""
        if item.canonical_url:
            try:
                canonical = self._url(item.canonical_url)
            except Invalid:
                canonical = None
            if canonical and _is_portal_article(canonical):
                fetched = self._url(item.url)
                item.fetched_url = fetched if fetched != canonical else None
                return canonical
            self.count("fxcrawl/validated/canonical_ignored")
        return self._url(item.url)

    def _published(
        self, text: str, fetched_at: datetime | None, url: str, kind: str, machine: str | None = None
    ) -> datetime | None:
        """When the page says it was published (its machine-readable time where that is finer
        than the text), or None (unknown) if that is not a date it can have meant, counted by
        kind and by reason. Never the current time: an unknown date stays unknown."""
        try:
            return parse_published(text, fetched_at or datetime.now(UTC), self.tz, machine=machine)
        except DateError as exc:
            self.count(f"fxcrawl/dates/unknown/{kind}")
            self.count(f"fxcrawl/dates/unknown/reason/{exc.reason}")
            logger.warning("%s, stored as unknown: %s", exc, url)
            return None


def _text(value: str | None, name: str, limit: int, required: bool = True) -> str:
    """The field as clean text; Invalid if it is required and empty, too long for its column,
    or garbled."""
    text = clean(value)
    if not text:
        if required:
            raise Invalid(f"missing {name}")
        return text
    if len(text) > limit:
        raise Invalid(f"{name} too long ({len(text)} characters, at most {limit})")
    _check_encoding(name, text)
    return text


def _paragraphs(texts: list[str], lines: bool = False) -> list[str]:
    """Each text cleaned, the empty ones dropped; ``lines``: line breaks (a body paragraph's
    ``<br>``) are kept, each line cleaned."""
    return [text for text in map(clean_lines if lines else clean, texts) if text]


#: What ``garbled`` looks for: U+FFFD, Latin-1 letters, '锟斤拷'. Text without any of them (nearly
#: all of it) cannot be garbled, and one C-level search says so without a pass per character.
_MAYBE_GARBLED = re.compile("[\x80-\xff\ufffd]|锟斤拷")


def _is_portal_article(url: str) -> bool:
    """A (canonical) URL naming an article on the portal or its legacy host."""
    host = urlsplit(url).hostname or ""
    return (host in site.SITE_HOSTS or host in site.LEGACY_HOSTS) and site.article_ref(url) is not None


def _check_encoding(name: str, text: str) -> None:
    if _MAYBE_GARBLED.search(text) and (why := garbled(text)):
        raise Invalid(f"encoding: garbled {name}: {why}")


def reason_category(reason: str) -> str:
    """'encoding: garbled title: …' -> 'encoding'; 'title too long (1200 …)' -> 'title too long'."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() or "other"


#: json.dumps(…, ensure_ascii=False) without building an encoder per call (the same text).
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def content_hash(item: ArticleItem) -> str:
    """What makes two versions of an article different: title, author, body and tags, and what
    the real site's pages add (topics, symbols, a video's ids) when they have it; an article
    without those hashes as it did before they were read."""
    fields: list[Any] = [item.title, item.author, item.body, item.tags]
    if item.topics or item.symbols or item.video or item.summary:
        fields += [item.topics, item.symbols, item.video, item.summary]
    payload = _JSON(fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def listing_hash(hit: SearchHitItem) -> str:
    """What a listing shows of an article (title, snippet, source, date), as the page shows it
    or once validated: the same hash either way."""
    return _listing_hash(clean(hit.title), clean(hit.snippet), clean(hit.source), clean(hit.date))


def entry_hash(entry: Any) -> str | None:
    """What a listing shows of an entry, hashed as validation hashes it (None: no listing hash)."""
    if isinstance(entry, SearchHitItem):
        return listing_hash(entry)
    # A channel entry shows little (a title and a time) and the same article is also listed
    # elsewhere: it adds nothing to compare, and must not overwrite what a search hit showed.
    return None


def _listing_hash(title: str, snippet: str, source: str, date: str) -> str:
    payload = _JSON([title, snippet, source, date])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
