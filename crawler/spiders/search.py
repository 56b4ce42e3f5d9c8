"""Crawl keyword search results: listing pages through pagination, each result to its article."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import site
from crawler.items import NotModifiedItem, RejectItem, SourceItem
from crawler.parsing import PageParseError, parse_article_page, parse_search_page

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_page_spec(spec: str | None) -> list[tuple[int, int]]:
    """'951-955' or '1,951-955,1000' as inclusive (first, last) ranges; '' or None: no ranges."""
    if spec is None or not str(spec).strip():
        return []
    ranges = []
    for part in str(spec).split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"bad page range {part.strip()!r}: use N or N-M, comma-separated")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if not 1 <= first <= last <= site.MAX_SEARCH_PAGE:
            raise ValueError(f"bad page range {part.strip()!r}: pages run from 1 to {site.MAX_SEARCH_PAGE}")
        ranges.append((first, last))
    return ranges


class SearchSpider(scrapy.Spider):
    name = "search"

    def __init__(
        self,
        keyword: str = "现代",
        pages: str | None = None,
        max_pages: str | int | None = None,
        tab: str = site.ARTICLE_TAB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not keyword.strip():
            raise ValueError("keyword must not be empty")
        self.keyword = keyword.strip()
        self.tab = tab
        self.ranges = parse_page_spec(pages)
        self.max_pages = int(max_pages) if max_pages not in (None, "") else None
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.base_url = site.CANONICAL_BASE
        self.listings_requested = 0
        self.sidebar_seen: set[tuple[Any, ...]] = set()
        self.sources_seen: set[tuple[str, str | None]] = set()
        self.run_args = {"keyword": self.keyword, "tab": tab, "pages": pages, "max_pages": self.max_pages}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SearchSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.base_url = crawler.settings.get("FXCRAWL_BASE_URL")
        # follow nothing off the site we crawl (a listing may link elsewhere)
        spider.allowed_domains = [urlsplit(spider.base_url).hostname or "", *site.SITE_HOSTS]
        return spider

    async def start(self) -> AsyncIterator[Any]:
        for first, last in self.ranges or [(1, site.MAX_SEARCH_PAGE)]:
            if request := self.listing_request(site.search_url(self.keyword, first, self.tab, self.base_url), last):
                yield request

    def listing_request(self, url: str, last: int) -> scrapy.Request | None:
        if self.max_pages is not None and self.listings_requested >= self.max_pages:
            return None
        self.listings_requested += 1
        return scrapy.Request(url, callback=self.parse_listing, errback=self.failed, cb_kwargs={"last": last})

    def parse_listing(self, response: Response, last: int) -> Iterator[Any]:
        try:
            page = parse_search_page(response.text, response.url)
        except PageParseError as exc:
            yield self._unparsable(exc)
            return
        self._count("fxcrawl/pages/listing")
        fetched_at = datetime.now(UTC)  # relative dates ("3小时前") count from here
        for hit in page.hits:
            if (hit.source, hit.source_logo) not in self.sources_seen:  # a run's few outlets, once each
                self.sources_seen.add((hit.source, hit.source_logo))
                yield SourceItem(hit.source, hit.source_logo)
            hit.fetched_at = fetched_at
            yield hit
            if hit.url:
                yield self.article_request(hit.url)
        yield from self._new_sidebar_entries([*page.hot, *page.topics])
        pagination = page.pagination
        if (
            pagination.next_url
            and pagination.current < last
            and (request := self.listing_request(pagination.next_url, last))
        ):
            yield request

    def _new_sidebar_entries(self, entries: list[Any]) -> Iterator[Any]:
        """The 24小时热点 and 最新话题 entries this run has not yielded yet, exactly as shown.

        Every listing page carries the same two side lists; repeating an entry the run already
        yielded would only have it validated and then dropped as a duplicate. An entry that
        changed (a new rank, title or discussion count) is new and is yielded."""
        for entry in entries:
            key = (type(entry), *astuple(entry))
            if key not in self.sidebar_seen:
                self.sidebar_seen.add(key)
                yield entry

    def article_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_article, errback=self.failed)

    def parse_article(self, response: Response) -> Iterator[Any]:
        if response.status == 304:  # a conditional revisit: what is stored is current
            self._count("fxcrawl/pages/not_modified")
            yield NotModifiedItem(response.url)
            return
        try:
            article = parse_article_page(response.text, response.url)
        except PageParseError as exc:
            yield self._unparsable(exc)
            return
        article.etag = response.headers.get("ETag", b"").decode("latin-1") or None
        article.last_modified = response.headers.get("Last-Modified", b"").decode("latin-1") or None
        article.fetched_at = datetime.now(UTC)
        self._count("fxcrawl/pages/detail")
        yield article

    def failed(self, failure: Failure) -> Iterator[Any]:
        """A request that ended in an HTTP error or a network failure: recorded, never silent."""
        request = failure.request  # type: ignore[attr-defined]
        response = getattr(failure.value, "response", None)
        if response is not None:
            reason = f"HTTP {response.status}"
        elif message := failure.getErrorMessage():
            reason = f"{failure.type.__name__}: {message}"
        elif failure.check(DownloadCancelledError):  # Scrapy 2.19 cancels a body over the limit wordlessly
            reason = "DownloadCancelledError: body larger than DOWNLOAD_MAXSIZE"
        else:
            reason = failure.type.__name__
        self._count("fxcrawl/pages/failed")
        self.logger.error("could not fetch %s: %s", request.url, reason)
        yield RejectItem(kind="page", reason=reason, url=request.url)

    def _unparsable(self, exc: PageParseError) -> RejectItem:
        self._count("fxcrawl/pages/unparsable")
        self.logger.error("could not parse %s: %s", exc.url, exc.reason)
        return RejectItem(kind="page", reason=exc.reason, url=exc.url)

    def _count(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)
