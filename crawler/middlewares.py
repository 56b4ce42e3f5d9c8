"""Incremental crawling, as a spider middleware between the spider and the frontier.

The spider follows everything a listing shows; this middleware, which knows the durable
frontier, decides what is worth fetching:

- at start, it adds every URL the frontier still owes (discovered but never fetched, or
  failed and due for another attempt), so a crashed run's leftovers are fetched;
- on each listing page, a result that is stored and unchanged is not fetched again unless
  the recrawl policy says it is due, and then only conditionally (If-None-Match /
  If-Modified-Since, a 304 costs nothing); a result whose listing entry changed is fetched;
- once FXCRAWL_INCREMENTAL_STOP_AFTER consecutive results are already stored and unchanged,
  it stops following 下一页;
- ``max_pages`` is a budget of the whole job: a run after one that did not finish (crashed,
  shut down) fetches only what the earlier run left of it, as the run ledger counts it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import replace
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from sqlalchemy.exc import SQLAlchemyError

from crawler.spiders.portal import LISTING as LISTING_PAGE
from crawler.spiders.portal import NEXT_PAGE
from fx168 import site
from fx168.items import ChannelEntryItem, FastNewsItem, ListingVisitedItem, RejectItem, SearchHitItem
from pipelines.validate import entry_hash
from storage.frontier import FETCHED, LISTING, Frontier, KnownURL, RecrawlPolicy
from storage.models import utcnow
from storage.runs import LedgerPolicy, close_crashed_runs, database_for, unfinished_listing_pages

logger = logging.getLogger(__name__)

STREAK = "fxcrawl_known_streak"
#: What listings show of articles (and the 快讯 items, which are whole on the listing).
LISTING_ENTRIES = (SearchHitItem, ChannelEntryItem, FastNewsItem)


class IncrementalMiddleware:
    def __init__(self, crawler: Crawler, frontier: Frontier, stop_after: int) -> None:
        self.crawler = crawler
        self.frontier = frontier
        self.stop_after = stop_after
        self.fetch_base = crawler.settings.get("FXCRAWL_BASE_URL")
        #: Distributed workers leave this to `fxcrawl reconcile`, which queues the leftovers once for all.
        self.frontier_start = crawler.settings.getbool("FXCRAWL_FRONTIER_START", True)
        #: Listing pages this run may still request (None: no --max-pages), the job's earlier
        #: unfinished runs' pages taken off.
        self.listing_budget: int | None = None
        #: The listing pages charged to it (Scrapy's dupefilter drops a second request for one).
        self.budgeted: set[Any] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalMiddleware:
        settings = crawler.settings
        frontier = Frontier(database_for(crawler), RecrawlPolicy.from_settings(settings))
        return cls(crawler, frontier, settings.getint("FXCRAWL_INCREMENTAL_STOP_AFTER"))

    @property
    def enabled(self) -> bool:
        return self.stop_after > 0

    def _count(self, key: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"fxcrawl/incremental/{key}", value)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        self._set_listing_budget()
        async for request in start:
            if self._within_budget(request):
                yield request
        spider = self.crawler.spider
        if not self.enabled or not self.frontier_start or not hasattr(spider, "article_request"):
            return
        try:
            owed = self.frontier.pending()
        except SQLAlchemyError as exc:
            logger.error("frontier unavailable at start (%s): earlier runs' leftovers wait for the next run", exc)
            return
        self._count("frontier_requests", len(owed))
        if owed:
            logger.info("the frontier owes %d article URLs from earlier runs; fetching them", len(owed))
        for entry in owed:
            if entry.kind == LISTING:  # a search walk's page: only a spider that walks them resumes it
                listing_request = getattr(spider, "listing_request", None)
                url = site.fetch_url(entry.url, self.fetch_base)
                request = listing_request(url, entry.walk_until or site.MAX_SEARCH_PAGE) if listing_request else None
                if request is not None and self._within_budget(request):
                    yield request
            else:
                yield spider.article_request(entry.url)

    def _set_listing_budget(self) -> None:
        """--max-pages counts the listing pages of the whole job: the pages its latest unfinished
        runs fetched (a crash and its rerun are one job) come off this run's budget."""
        spider = self.crawler.spider
        max_pages = getattr(spider, "max_pages", None)
        if not max_pages:
            return
        job = self.crawler.settings.get("FXCRAWL_JOB") or f"{spider.name}:{getattr(spider, 'keyword', '')}"
        database = self.frontier.database
        try:
            close_crashed_runs(database, LedgerPolicy.from_settings(self.crawler.settings))
            earlier = unfinished_listing_pages(database, job)
        except SQLAlchemyError as exc:  # said and counted; the run keeps its own budget
            logger.error("could not read the job's earlier runs (%s): --max-pages counts this run only", exc)
            self._count("max_pages_unknown_earlier")
            earlier = 0
        self.listing_budget = max(0, int(max_pages) - earlier)
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("fxcrawl/max_pages/earlier_unfinished", earlier)
        if earlier:
            logger.info(
                "job %r: its unfinished earlier runs fetched %d listing pages; %d of --max-pages %d left",
                job,
                earlier,
                self.listing_budget,
                max_pages,
            )

    def _within_budget(self, request: Any) -> bool:
        """A listing request the job's --max-pages still allows (counting it), or any other request."""
        if self.listing_budget is None or not isinstance(request, Request):
            return True
        query = site.parse_search_url(request.url)
        if query is None:
            return True
        if query in self.budgeted:  # asked for again (the frontier's leftover and a 下一页 link): one page
            return True
        if self.listing_budget <= 0:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("fxcrawl/max_pages/dropped_listings")
            return False
        self.listing_budget -= 1
        self.budgeted.add(query)
        return True

    def process_spider_output(
        self, response: Response, result: Iterable[Any], spider: Spider | None = None
    ) -> Iterator[Any]:
        if not self.enabled or not response.meta.get(LISTING_PAGE):
            yield from (item for item in result if self._within_budget(item))
            return
        yield from self._filter_listing(response, list(result))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        collected = [item async for item in result]
        for item in self.process_spider_output(response, collected):
            yield item

    def _filter_listing(self, response: Response, results: list[Any]) -> Iterator[Any]:
        hits = [r for r in results if isinstance(r, LISTING_ENTRIES)]
        canonical = {hit.url: site.canonical_url(hit.url, self.fetch_base) for hit in hits if hit.url}
        try:
            known = self.frontier.lookup(canonical.values())
        except SQLAlchemyError as exc:  # the database is away: fetch everything, lose nothing
            logger.warning(
                "frontier unavailable (%s): fetching every result of %s", exc.__class__.__name__, response.url
            )
            self._count("frontier_unavailable")
            known = {}
        now = utcnow()
        streak = int(response.meta.get(STREAK, 0))
        # canonical URL -> "fetch", "revisit" or "skip" (a request's URL is the link as Scrapy
        # escaped it, so both sides are compared canonical)
        decisions: dict[str, str] = {}
        for hit in hits:
            if not hit.url:
                continue
            key = canonical[hit.url]
            entry = known.get(key)
            if entry is not None and isinstance(hit, FastNewsItem):  # stored; nothing to fetch
                streak += entry.state == FETCHED
                continue
            shown = _hash(hit)  # None: the listing shows nothing to compare (a channel entry)
            if (
                entry is None
                or entry.state != FETCHED
                or (shown is not None and entry.listing_hash not in (None, shown))
            ):
                decisions[key] = "fetch"
                streak = 0
            else:
                if decisions.get(key) != "fetch":  # one link to it that wants a fetch is enough
                    decisions[key] = "revisit" if entry.due(self.frontier.policy, now) else "skip"
                streak += 1
        stop = streak >= self.stop_after
        next_url = None
        out: list[Any] = []
        for item in results:
            if not isinstance(item, Request):
                out.append(item)
            elif item.meta.get(NEXT_PAGE):
                if stop:
                    self._count("stopped_paging")
                    logger.info("%d consecutive results already stored: not following %s", streak, item.url)
                    continue
                if not self._within_budget(item):
                    logger.info("--max-pages reached for the job: not following %s", item.url)
                    continue
                item.meta[STREAK] = streak
                next_url = item.url
                out.append(item)
            elif (decision := decisions.get(key := site.canonical_url(item.url, self.fetch_base))) == "skip":
                self._count("skipped_details")
            elif decision == "revisit":
                self._count("conditional_requests")
                out.append(_conditional(item, known[key]))
            else:
                out.append(item)
        search = site.parse_search_url(response.url) is not None
        if not search:
            next_url = None  # only a search walk is resumed from the frontier; other lists start afresh
        # Written before any request leaves: once one is in the shared queue (and its fingerprint in
        # the dupefilter), a worker killed before this write would leave no record of it anywhere,
        # and the page fetched again after `reconcile` would have its links filtered as seen.
        self._record([hit for hit in hits if not isinstance(hit, FastNewsItem)], canonical, next_url, response)
        yield from out
        unreadable = any(isinstance(r, RejectItem) and r.url == response.url for r in results)
        if search and not unreadable:  # recorded after its results, so a crash never marks a page read too early
            yield ListingVisitedItem(
                response.url, next_url, int(response.request.cb_kwargs.get("last", 0)) if response.request else 0
            )

    def _record(
        self, hits: list[SearchHitItem], canonical: dict[str, str], next_url: str | None, response: Response
    ) -> None:
        """Durably note what this page showed and where the walk goes next, before it goes there."""
        discovered = [
            replace(hit, url=canonical[hit.url], listing_hash=_hash(hit)) for hit in hits if hit.url in canonical
        ]
        last = int(response.request.cb_kwargs.get("last", 0)) if response.request else 0
        try:
            self.frontier.discover(
                discovered, site.canonical_url(next_url, self.fetch_base) if next_url else None, last
            )
        except SQLAlchemyError as exc:  # the batched store records them too, a little later
            logger.warning("could not record the frontier of %s now (%s)", response.url, exc.__class__.__name__)


def _hash(hit: Any) -> str | None:
    if getattr(hit, "listing_hash", None) is not None:
        return str(hit.listing_hash)
    return entry_hash(hit)


def _conditional(request: Request, entry: KnownURL) -> Request:
    headers = {}
    if entry.etag:
        headers["If-None-Match"] = entry.etag
    if entry.last_modified:
        headers["If-Modified-Since"] = entry.last_modified
    meta = {**request.meta, "handle_httpstatus_list": [304]}
    return request.replace(headers={**request.headers.to_unicode_dict(), **headers}, meta=meta)
