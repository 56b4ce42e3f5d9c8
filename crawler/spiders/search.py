"""Crawl keyword search results: listing pages through pagination, each result to its article."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import astuple
from datetime import datetime
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.spiders.portal import LISTING, NEXT_PAGE, URL_LENGTH_LIMIT, PortalSpider, fetched_at
from fx168 import site
from fx168.items import RejectItem, SearchHitItem, to_jsonable
from fx168.parsing import parse_search_page

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


def check_keyword(keyword: str, tab: str = site.ARTICLE_TAB, base: str = site.CANONICAL_BASE) -> str:
    """The keyword, stripped; ValueError when it is empty or makes a URL no crawl can fetch."""
    keyword = keyword.strip()
    if not keyword:
        raise ValueError("keyword must not be empty")
    length = len(site.search_url(keyword, site.MAX_SEARCH_PAGE, tab, base))
    if length > URL_LENGTH_LIMIT:
        raise ValueError(
            f"keyword too long: its search URL would be {length} characters, over the {URL_LENGTH_LIMIT} "
            f"a crawl can fetch ({len(keyword)} characters given)"
        )
    return keyword


class SearchSpider(PortalSpider):
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
        self.keyword = check_keyword(keyword, tab)
        self.tab = tab
        self.ranges = parse_page_spec(pages)
        self.max_pages = int(max_pages) if max_pages not in (None, "") else None
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.listings_requested = 0
        self.sidebar_seen: set[tuple[Any, ...]] = set()
        self.run_args = {"keyword": self.keyword, "tab": tab, "pages": pages, "max_pages": self.max_pages}

    async def start(self) -> AsyncIterator[Any]:
        for first, last in self.ranges or [(1, site.MAX_SEARCH_PAGE)]:
            if request := self.listing_request(site.search_url(self.keyword, first, self.tab, self.base_url), last):
                yield request

    def listing_request(self, url: str, last: int) -> scrapy.Request | None:
        if self.max_pages is not None and self.listings_requested >= self.max_pages:
            return None
        self.listings_requested += 1
        return scrapy.Request(
            self.fetchable(url),
            callback=self.parse_listing,
            errback=self.failed,
            cb_kwargs={"last": last},
            meta={LISTING: True},
        )

    def parse_listing(self, response: Response, last: int) -> Iterator[Any]:
        page = self.read(response, parse_search_page, site.PageKind.SEARCH)
        if isinstance(page, RejectItem):
            yield page
            return
        self.count("fxcrawl/pages/listing")
        fetched = fetched_at(response)  # relative dates ("3小时前") count from here
        for hit in page.hits:
            yield from self._entry(hit, fetched)
        yield from self._new_sidebar_entries([*page.hot, *page.topics])
        pagination = page.pagination
        if (
            pagination.next_url
            and pagination.current < last
            and (request := self.listing_request(pagination.next_url, last))
        ):
            request.meta[NEXT_PAGE] = True
            yield request

    def _entry(self, hit: SearchHitItem, fetched_at: datetime) -> Iterator[Any]:
        """One result: its source, the hit, and its article's request. A result that cannot be
        followed costs that result (a rejected hit, with why), never the page or the pages after it."""
        try:
            yield from self.source_once(hit.source, hit.source_logo)
            hit.fetched_at = fetched_at
            if not hit.url:
                yield hit  # validation rejects it: a result without a link
                return
            if (why := self.refusal(hit.url)) is not None:
                self.count("fxcrawl/hits/not_followed")
                yield RejectItem(kind="hit", reason=why, url=None, payload=to_jsonable(hit, derived=False))
                return
            yield hit
            yield self.article_request(hit.url)
        except Exception as exc:  # one entry's trouble, whatever it is, stays with that entry
            self.count("fxcrawl/hits/failed")
            self.logger.error("could not follow a result on %s: %r", hit.url, exc)
            yield RejectItem(kind="hit", reason=f"{exc.__class__.__name__}: {exc}", url=None, payload={"url": hit.url})

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
