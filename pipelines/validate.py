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
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from sqlalchemy.orm import InstrumentedAttribute

from crawler import site
from crawler.items import (
    ArticleItem,
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
from crawler.parsing.dates import DateError, parse_published
from crawler.parsing.encoding import garbled
from crawler.parsing.text import clean
from pipelines.models import Article, SearchHit, Source, Topic

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


class ValidatePipeline:
    def __init__(self, stats: StatsCollector, fetch_base: str, tz: str) -> None:
        self.stats = stats
        self.fetch_base = fetch_base
        self.tz = ZoneInfo(tz)

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
            self.stats.inc_value(f"fxcrawl/rejected/reason/{reason_category(item.reason)}")
            return item
        try:
            self.normalise(item)
        except Invalid as exc:
            reason = str(exc)
            self.stats.inc_value("fxcrawl/rejected")
            self.stats.inc_value(f"fxcrawl/rejected/{kind}")
            self.stats.inc_value(f"fxcrawl/rejected/reason/{reason_category(reason)}")
            return RejectItem(kind=kind, reason=reason, url=getattr(item, "url", None), payload=to_jsonable(item))
        self.stats.inc_value(f"fxcrawl/validated/{kind}")
        return item

    def normalise(self, item: Any) -> None:
        """Normalise in place, or raise Invalid."""
        match item:
            case ArticleItem():
                self._article(item)
            case SearchHitItem():
                self._hit(item)
            case SourceItem():
                item.name = _text(item.name, "source name", NAME_MAX)
                item.logo_url = self._optional_url(item.logo_url)
            case HotEntryItem():
                item.title = _text(item.title, "title", TITLE_MAX)
                item.url = self._url(item.url)
            case NotModifiedItem():
                item.url = self._url(item.url)
            case ListingVisitedItem():
                item.url = self._url(item.url)
                item.next_url = self._url(item.next_url) if item.next_url else None
            case TopicItem():
                item.name = _text(item.name, "topic name", TOPIC_MAX)
                item.url = self._url(item.url)
                if item.discussions < 0:
                    raise Invalid("unreadable discussion count")
            case _:
                raise Invalid(f"unknown item type {type(item).__name__}")

    def _article(self, item: ArticleItem) -> None:
        item.url = self._article_url(item)
        item.title = _text(item.title, "title", TITLE_MAX)
        item.source = _text(item.source, "source", NAME_MAX)
        item.author = _text(item.author, "author", AUTHOR_MAX, required=False) or None
        item.body = [text for text in (clean(p) for p in item.body) if text]
        if not item.body:
            raise Invalid("missing body")
        _check_encoding("body", "\n".join(item.body))
        item.tags = list(dict.fromkeys(clean(t) for t in item.tags if clean(t)))
        _check_encoding("tags", " ".join(item.tags))
        item.published = clean(item.published)[:PUBLISHED_TEXT_MAX]
        item.published_at = self._published(item.published, item.fetched_at, item.url, "article")
        item.content_hash = content_hash(item)

    def _hit(self, item: SearchHitItem) -> None:
        item.url = self._url(item.url)
        item.title = _text(item.title, "title", TITLE_MAX)
        item.source = _text(item.source, "source", NAME_MAX)
        item.keyword = _text(item.keyword, "keyword", KEYWORD_MAX)
        item.tab = _text(item.tab, "tab", TAB_MAX)
        item.snippet = clean(item.snippet)
        _check_encoding("snippet", item.snippet)
        item.source_logo = self._optional_url(item.source_logo)
        listed = self._published(item.date, item.fetched_at, item.url, "hit")
        item.listed_on = listed.date() if listed else None
        item.listing_hash = listing_hash(item)

    def _url(self, url: str | None) -> str:
        url = (url or "").strip()
        if not url.startswith(("http://", "https://")):
            raise Invalid(f"not an absolute http(s) URL: {url[:200]!r}")
        canonical = site.canonical_url(url, self.fetch_base)
        if len(canonical) > URL_MAX:
            raise Invalid(f"URL too long ({len(canonical)} characters, at most {URL_MAX})")
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
            if canonical and urlsplit(canonical).netloc == _CANONICAL_HOST and site.article_id(canonical):
                return canonical
            self.stats.inc_value("fxcrawl/validated/canonical_ignored")
        return self._url(item.url)

    def _published(self, text: str, fetched_at: datetime | None, url: str, kind: str) -> datetime | None:
        """When the page says it was published, or None (unknown) if that is not a date it can
        have meant. Never the current time: an unknown date stays unknown."""
        try:
            return parse_published(text, fetched_at or datetime.now(UTC), self.tz)
        except DateError as exc:
            self.stats.inc_value(f"fxcrawl/dates/unknown/{kind}")
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


#: What ``garbled`` looks for: U+FFFD, Latin-1 letters, '锟斤拷'. Text without any of them (nearly
#: all of it) cannot be garbled, and one C-level search says so without a pass per character.
_MAYBE_GARBLED = re.compile("[\x80-\xff\ufffd]|锟斤拷")


def _check_encoding(name: str, text: str) -> None:
    if _MAYBE_GARBLED.search(text) and (why := garbled(text)):
        raise Invalid(f"encoding: garbled {name}: {why}")


def reason_category(reason: str) -> str:
    """'encoding: garbled title: …' -> 'encoding'; 'title too long (1200 …)' -> 'title too long'."""
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() or "other"


def content_hash(item: ArticleItem) -> str:
    """What makes two versions of an article different: title, author, body and tags."""
    payload = json.dumps([item.title, item.author, item.body, item.tags], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def listing_hash(hit: SearchHitItem) -> str:
    """What a listing shows of an article (title, snippet, source, date)."""
    payload = json.dumps([clean(hit.title), clean(hit.snippet), clean(hit.source), clean(hit.date)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
