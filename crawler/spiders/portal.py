"""What every spider of the portal shares: where to fetch from, reading article pages,
reporting markup drift, and turning failures into recorded rejects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from twisted.python.failure import Failure

from fx168 import site
from fx168.items import NotModifiedItem, RejectItem, SourceItem
from fx168.parsing import PageParseError, parse_article_page
from fx168.parsing.nextdata import DISAGREE, JSON_MISSING, MARKUP_CHANGED


class _Page(Protocol):
    """What a page parser returns: its records, and what it saw of markup drift."""

    drift: list[str]


P = TypeVar("P", bound=_Page)

#: Marks a request for a listing page (search results, a channel list, the 快讯 feed, a page of
#: the JSON API): the incremental middleware filters what such a page leads to.
LISTING = "fxcrawl_listing"
#: Marks the request that continues a listing walk (下一页, the API's next page, or the token
#: fetch it needs): the incremental middleware drops it once the walk reaches stored entries.
NEXT_PAGE = "fxcrawl_next_page"
#: Request meta: when the page was fetched (aware), where that is not now (a re-parse of the
#: archive gives the record's WARC-Date): relative dates ("3小时前") count from it.
FETCHED_AT = "fxcrawl_fetched_at"
#: Scrapy's default URLLENGTH_LIMIT: a longer request is dropped by its middleware.
URL_LENGTH_LIMIT = 2083
#: At most this many drifted URLs are kept in the stats (and so in the run's row) per counter.
DRIFT_URLS_KEPT = 20


def fetched_at(response: Response) -> datetime:
    """When the response was fetched: now, unless its request says otherwise (FETCHED_AT)."""
    moment = response.request.meta.get(FETCHED_AT) if response.request is not None else None
    return moment if isinstance(moment, datetime) else datetime.now(UTC)


class PortalSpider(scrapy.Spider):
    """A spider of www.fx168news.com, or of a replay server standing in for it (FXCRAWL_BASE_URL)."""

    base_url: str = site.CANONICAL_BASE
    api_base: str = site.API_BASE
    #: Set per crawl (from_crawler); Scrapy's OffsiteMiddleware reads it.
    allowed_domains: list[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources_seen: set[tuple[str, str | None]] = set()
        self.drift_warned: set[str] = set()
        self.pages_read: Counter[str] = Counter()
        self.verify_first, self.verify_every = 5, 10

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.base_url = crawler.settings.get("FXCRAWL_BASE_URL") or site.CANONICAL_BASE
        spider.verify_first = crawler.settings.getint("FXCRAWL_VERIFY_FIRST", 5)
        spider.verify_every = crawler.settings.getint("FXCRAWL_VERIFY_EVERY", 10)
        spider.api_base = crawler.settings.get("FXCRAWL_API_BASE_URL") or (
            site.API_BASE if spider.base_url == site.CANONICAL_BASE else spider.base_url
        )
        # follow nothing off the site we crawl (a listing may link elsewhere)
        local = {urlsplit(spider.base_url).hostname or "", urlsplit(spider.api_base).hostname or ""}
        spider.allowed_domains = sorted(local | site.ALL_HOSTS)
        return spider

    def verify(self, kind: site.PageKind | str) -> bool:
        """Read this page by its HTML too, to check it against its JSON? The first pages of each
        kind in a run, then one in VERIFY_EVERY: drift shows on the first pages a run reads, and
        the HTML path's cost is paid on a tenth of the rest."""
        self.pages_read[kind] += 1
        n = self.pages_read[kind]
        due = n <= self.verify_first or (self.verify_every > 0 and n % self.verify_every == 0)
        if due:
            self.count(f"fxcrawl/markup/verified/{kind}")
        return due

    # -- where to fetch ----------------------------------------------------------------------

    def fetchable(self, url: str) -> str:
        """The URL to request for a link of the portal: on the replay server, when one stands in."""
        return site.fetch_url(url, self.base_url)

    def refusal(self, url: str) -> str | None:
        """Why a link found on a page cannot be followed (None: it can)."""
        if not site.is_site_url(url, self.base_url):
            scheme = urlsplit(url).scheme or "relative"
            return f"not a link of the site ({scheme}: {url[:120]!r})"
        if len(self.fetchable(url)) > URL_LENGTH_LIMIT:
            return f"URL longer than {URL_LENGTH_LIMIT} characters"
        return None

    # -- article pages ------------------------------------------------------------------------

    def article_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(self.fetchable(url), callback=self.parse_article, errback=self.failed)

    def parse_article(self, response: Response) -> Iterator[Any]:
        if response.status == 304:  # a conditional revisit: what is stored is current
            self.count("fxcrawl/pages/not_modified")
            yield NotModifiedItem(response.url)
            return
        page = self.read(response, parse_article_page, site.page_kind(response.url) or site.PageKind.ARTICLE)
        if isinstance(page, RejectItem):
            yield page
            return
        article = page.article
        article.etag = (response.headers.get("ETag") or b"").decode("latin-1") or None
        article.last_modified = (response.headers.get("Last-Modified") or b"").decode("latin-1") or None
        article.fetched_at = fetched_at(response)
        self.count("fxcrawl/pages/detail")
        yield article

    def read(self, response: Response, parse: Callable[..., P], kind: site.PageKind) -> P | RejectItem:
        """The page record ``parse`` reads from the response (its drift noted, its HTML verified
        when due), or the reject that says why it could not be read."""
        try:
            page = parse(response.text, response.url, verify=self.verify(kind))
        except PageParseError as exc:
            return self.unparsable(exc, kind)
        self.note_drift(kind, response.url, page.drift)
        return page

    def source_once(self, name: str, logo: str | None) -> Iterator[SourceItem]:
        """An outlet's record, the first time this run meets it (a run meets a few, many times)."""
        if name and (name, logo) not in self.sources_seen:
            self.sources_seen.add((name, logo))
            yield SourceItem(name, logo)

    # -- failures and drift --------------------------------------------------------------------

    def failed(self, failure: Failure) -> Iterator[Any]:
        """A request that ended in an HTTP error or a network failure: recorded, never silent."""
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        response = getattr(failure.value, "response", None)
        if response is not None:
            reason = f"HTTP {response.status}"
        elif message := failure.getErrorMessage():
            reason = f"{failure.type.__name__}: {message}"
        elif failure.check(DownloadCancelledError):  # Scrapy 2.19 cancels a body over the limit wordlessly
            reason = "DownloadCancelledError: body larger than DOWNLOAD_MAXSIZE"
        else:
            reason = failure.type.__name__ if failure.type else "unknown failure"
        self.count("fxcrawl/pages/failed")
        self.logger.error("could not fetch %s: %s", request.url, reason)
        yield RejectItem(kind="page", reason=reason, url=request.url)

    def unparsable(self, exc: PageParseError, kind: site.PageKind | str) -> RejectItem:
        self.count("fxcrawl/pages/unparsable")
        if exc.reason.startswith(MARKUP_CHANGED):
            self.record_drift(f"fxcrawl/markup/changed/{kind}", exc.url)
        self.logger.error("could not parse %s: %s", exc.url, exc.reason)
        return RejectItem(kind="page", reason=exc.reason, url=exc.url)

    def note_drift(self, kind: site.PageKind | str, url: str, drift: list[str]) -> None:
        """Count what a page showed of a site that no longer matches its description; warn once
        per run and kind, so a redesign is one line in the log and a list of URLs in the run."""
        for reason in drift:
            what = JSON_MISSING if reason.startswith(JSON_MISSING) else DISAGREE
            key = f"fxcrawl/markup/{what}/{kind}"
            self.record_drift(key, url)
            if key not in self.drift_warned:
                self.drift_warned.add(key)
                self.logger.warning(
                    "the site no longer matches its description (%s page, %s): %s; the page was read "
                    "from its %s. Later pages like it are counted, not logged (see `fxcrawl runs show`)",
                    kind,
                    url,
                    reason,
                    "JSON" if what == DISAGREE else "HTML",
                )

    def record_drift(self, key: str, url: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(key)
        urls = stats.get_value(f"{key}/urls") or []
        if len(urls) < DRIFT_URLS_KEPT and url not in urls:
            stats.set_value(f"{key}/urls", [*urls, url])

    def count(self, key: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key, value)
