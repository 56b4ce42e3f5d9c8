"""Re-parse the archive: archived pages through today's parsers and the same pipelines, no network.

A crawl in every other respect: a run in the ledger, the same item pipelines (validate, dedupe,
store), the same stats. But ``start()`` yields items, never a request: each archived page is
rebuilt as the Scrapy response the spider once received (its headers, body and fetch time,
decoded by today's EncodingMiddleware) and handed to the very callback of the search or latest
spider that read it then, whose requests are dropped. So a parser fixed today repairs what the
store holds, pages gone from the site included; the store's revision logic decides what changed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.spiders import Spider

from crawler.downloadermiddlewares import EncodingMiddleware
from crawler.spiders.latest import EXPRESS, LatestSpider
from crawler.spiders.portal import FETCHED_AT
from crawler.spiders.search import SearchSpider
from fx168 import site
from fx168.items import ArticleItem
from pipelines.database import database_for
from storage.archive import ArchivedPage, ReadReport, archive_dir_for
from storage.archive.selection import Selection, SelectionCounts, reparse_order, selected_pages

logger = logging.getLogger(__name__)

#: A re-parse fetches nothing, so nothing is archived, owed or due; and a run that stores nothing
#: new, or fewer listing results than the last, is what a faithful re-parse looks like, not a fault.
REPARSE_SETTINGS = {
    "FXCRAWL_ARCHIVE_ENABLED": False,
    "FXCRAWL_KEEP_FRONTIER": False,
    "FXCRAWL_HEALTH_MAX_SILENCE": 100 * 365 * 86400,
    "FXCRAWL_HEALTH_MIN_HITS_RATIO": 0,
}
#: The incremental middleware decides what to fetch (nothing is) and the stamp what was archived
#: (the records are known): both off, and so are Scrapy's spider middlewares that only look at
#: requests (none is made; each was one more async generator around every item), but for the
#: Referer one, which the redirect middlewares look for (and warn when it is gone). Progress is shown.
COMPONENTS: dict[str, dict[str, Any]] = {
    "SPIDER_MIDDLEWARES": {
        "crawler.middlewares.IncrementalMiddleware": None,
        "crawler.archive.ArchiveStampMiddleware": None,
        "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
        "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
        "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    },
    "EXTENSIONS": {"crawler.progress.CrawlProgress": None, "crawler.reparse_progress.ReparseProgress": 600},
}


class ReparseSpider(Spider):
    name = "reparse"

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        """REPARSE_SETTINGS over the project's, and COMPONENTS merged into its component lists
        (a custom_settings dict would replace them, the run ledger's extension with them)."""
        super().update_settings(settings)
        settings.setdict(REPARSE_SETTINGS, priority="spider")
        for name, changes in COMPONENTS.items():
            merged: dict[str, Any] = {**settings.getdict(name), **changes}
            settings.set(name, merged, priority="spider")

    def __init__(
        self, run: str | int | None = None, since: str | None = None, url: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.selection = Selection(
            run=int(run) if run not in (None, "") else None,
            since=_aware(datetime.fromisoformat(since)) if since else None,
            url=url or None,
        )
        self.run_args = {"run": self.selection.run, "since": since, "url": self.selection.url}
        self.report = ReadReport()
        self.counts = SelectionCounts()
        self.archive_dir = Path()
        self.search: SearchSpider
        self.latest: LatestSpider
        self.encoding: EncodingMiddleware
        self.database: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.database = database_for(crawler)
        spider.archive_dir = archive_dir_for(crawler.settings.get("FXCRAWL_ARCHIVE_DIR"), spider.database.url)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        # The spiders whose callbacks read these pages when they were fetched (their requests are
        # dropped), made once the crawl has its stats.
        self.search = SearchSpider.from_crawler(self.crawler)
        self.latest = LatestSpider.from_crawler(self.crawler)
        self.encoding = EncodingMiddleware.from_crawler(self.crawler)
        for item in self.items():
            yield item

    def items(self) -> Iterator[Any]:
        """Every item today's callbacks read from the selected archived pages."""
        stats = self.crawler.stats
        assert stats is not None
        total = sum(f.path.stat().st_size for f in reparse_order(self.archive_dir, self.selection))
        stats.set_value("reparse/bytes_total", total)
        done_before = 0
        current: Path | None = None
        for file, page in selected_pages(
            self.archive_dir, self.database, self.selection, self.report, self.counts, live_url
        ):
            if file.path != current:
                if current is not None:
                    done_before += current.stat().st_size
                current = file.path
            stats.set_value("reparse/bytes_done", done_before + page.location.offset + page.location.length)
            yield from self.page_items(page)
        self._count_outcome()

    def page_items(self, page: ArchivedPage) -> Iterator[Any]:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("reparse/pages")
        callback = self.callback_for(page) if page.status == 200 else None
        if callback is None:
            stats.inc_value("reparse/skipped/not_a_page" if page.status == 200 else "reparse/skipped/status")
            return
        response = self.response_for(page)
        for output in callback(response):
            if isinstance(output, Request):
                continue  # nothing is fetched
            if type(output) is ArticleItem:
                output.warc_file = page.location.file
                output.warc_offset = page.location.offset
                output.warc_length = page.location.length
            yield output

    def response_for(self, page: ArchivedPage) -> Response:
        """The response as the spider received it: its live URL, headers, body, fetch time and
        the encoding today's EncodingMiddleware decides."""
        url = live_url(page.url)
        headers = page.original_headers
        request = Request(url, meta={FETCHED_AT: page.fetched_at})
        encoded = {name.encode("latin-1"): value.encode("latin-1") for name, value in headers}
        cls = responsetypes.from_args(headers=encoded, url=url, body=page.body)
        response = cls(url=url, status=page.status, headers=headers, body=page.body, request=request)
        return self.encoding.process_response(request, response)

    def callback_for(self, page: ArchivedPage) -> Callable[[Response], Iterator[Any]] | None:
        """The callback that read this kind of page in the crawl (None: not a page with records)."""
        url = live_url(page.url)
        path = urlsplit(url).path
        query = parse_qs(urlsplit(url).query)
        number = int((query.get("pageNo") or ["1"])[0])
        if path == site.API_CHANNEL_PATH and (codes := query.get("channelCodes")):
            return lambda r: self.latest.parse_api(r, name=codes[0], page=number, refreshed=True)
        if path == site.API_FAST_NEWS_PATH:
            return lambda r: self.latest.parse_api(r, name=EXPRESS, page=number, refreshed=True)
        kind = site.page_kind(url)
        if kind == site.PageKind.SEARCH:
            query_ = site.parse_search_url(url)
            return lambda r: self.search.parse_listing(r, last=query_.page if query_ else 1)
        if kind in (site.PageKind.ARTICLE, site.PageKind.LEGACY_ARTICLE):
            return self.search.parse_article
        if kind == site.PageKind.CHANNEL and (code := site.channel_code(url)):
            return lambda r: self.latest.parse_channel(r, name=code)
        if kind == site.PageKind.EXPRESS and path.rstrip("/") == "/express":
            return lambda r: self.latest.parse_express(r, name=EXPRESS)
        return None

    def _count_outcome(self) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("reparse/records_read", self.report.records)
        stats.set_value("reparse/skipped/not_selected", self.counts.not_selected)
        stats.set_value("reparse/skipped/original_missing", self.counts.original_missing)
        stats.set_value("reparse/skipped/unreadable", self.report.skipped_total)
        stats.set_value("reparse/damaged_files", dict(self.report.skipped))
        for name, skipped in sorted(self.report.skipped.items()):
            logger.error("archive file %s is damaged: %d unreadable records skipped, the rest read", name, skipped)
        if self.counts.original_missing:
            logger.warning(
                "%d revisits were skipped: their original records are no longer archived (pruned)",
                self.counts.original_missing,
            )


def _aware(moment: datetime) -> datetime:
    """A time without a zone is the site's (Asia/Shanghai), as the command line reads dates."""
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(site.SITE_TIMEZONE))


def live_url(url: str) -> str:
    """The live site's URL of an archived page: a replay server's URL rebased onto the site (or
    the API) it stood for; the live site's own URLs as they are."""
    host = (urlsplit(url).hostname or "").lower()
    if host in site.ALL_HOSTS:
        return url
    path = urlsplit(url).path
    if path in (site.API_CHANNEL_PATH, site.API_FAST_NEWS_PATH):
        return site.rebase(url, site.API_BASE)
    return site.rebase(url)
