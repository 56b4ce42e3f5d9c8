"""Check and normalise every item; turn the ones that fail into RejectItems that say why.

A rejected item is not dropped: it continues down the pipeline as a RejectItem carrying the
reason and the original data, so the store records it in the rejects table and the run's
counts show it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

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
from crawler.parsing.dates import DateError, parse_site_datetime
from crawler.parsing.text import clean


class Invalid(ValueError):
    """The item cannot be stored; the message is the reason recorded with it."""


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
        if kind == "reject":
            if item.url and item.url.startswith(("http://", "https://")):
                item.url = site.canonical_url(item.url, self.fetch_base)
            return item
        try:
            self.normalise(item)
        except Invalid as exc:
            reason = str(exc)
            self.stats.inc_value("fxcrawl/rejected")
            self.stats.inc_value(f"fxcrawl/rejected/{kind}")
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
                item.name = _required(item.name, "source name")
                item.logo_url = self._url(item.logo_url) if item.logo_url else None
            case HotEntryItem():
                item.title = _required(item.title, "title")
                item.url = self._url(item.url)
            case NotModifiedItem():
                item.url = self._url(item.url)
            case ListingVisitedItem():
                item.url = self._url(item.url)
                item.next_url = self._url(item.next_url) if item.next_url else None
            case TopicItem():
                item.name = _required(item.name, "topic name")
                item.url = self._url(item.url)
                if item.discussions < 0:
                    raise Invalid("unreadable discussion count")
            case _:
                raise Invalid(f"unknown item type {type(item).__name__}")

    def _article(self, item: ArticleItem) -> None:
        item.url = self._url(item.canonical_url or item.url)
        item.title = _required(item.title, "title")
        item.source = _required(item.source, "source")
        item.author = clean(item.author) or None
        item.body = [text for text in (clean(p) for p in item.body) if text]
        if not item.body:
            raise Invalid("missing body")
        item.tags = list(dict.fromkeys(clean(t) for t in item.tags if clean(t)))
        item.published_at = self._date(item.published)
        item.content_hash = content_hash(item)

    def _hit(self, item: SearchHitItem) -> None:
        item.url = self._url(item.url)
        item.title = _required(item.title, "title")
        item.source = _required(item.source, "source")
        item.keyword = _required(item.keyword, "keyword")
        item.snippet = clean(item.snippet)
        item.source_logo = self._url(item.source_logo) if item.source_logo else None
        item.listed_on = self._date(item.date).date()
        item.listing_hash = listing_hash(item)

    def _url(self, url: str | None) -> str:
        url = (url or "").strip()
        if not url.startswith(("http://", "https://")):
            raise Invalid(f"not an absolute http(s) URL: {url!r}")
        return site.canonical_url(url, self.fetch_base)

    def _date(self, text: str) -> datetime:
        try:
            return parse_site_datetime(text, datetime.now(UTC), self.tz)
        except DateError as exc:
            raise Invalid(str(exc)) from exc


def _required(value: str | None, name: str) -> str:
    text = clean(value)
    if not text:
        raise Invalid(f"missing {name}")
    return text


def content_hash(item: ArticleItem) -> str:
    """What makes two versions of an article different: title, author, body and tags."""
    payload = json.dumps([item.title, item.author, item.body, item.tags], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def listing_hash(hit: SearchHitItem) -> str:
    """What a listing shows of an article (title, snippet, source, date)."""
    payload = json.dumps([clean(hit.title), clean(hit.snippet), clean(hit.source), clean(hit.date)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
