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
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from scrapy.utils.reactor import is_reactor_installed
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import defer, threads
from twisted.internet.defer import Deferred

from crawler.spiders.portal import LISTING as LISTING_PAGE
from crawler.spiders.portal import NEXT_PAGE
from fx168 import site
from fx168.items import ChannelEntryItem, FastNewsItem, ListingVisitedItem, RejectItem, SearchHitItem
from pipelines.database import database_for
from pipelines.store import StorePipeline, store_for
from pipelines.validate import entry_hash
from storage.frontier import FETCHED, LISTING, Frontier, KnownURL, RecrawlPolicy
from storage.models import utcnow
from storage.runs import LedgerPolicy, close_crashed_runs, unfinished_listing_pages
from storage.writer import Discovery, Listed

logger = logging.getLogger(__name__)

STREAK = "fxcrawl_known_streak"
#: What listings show of articles (and the 快讯 items, which are whole on the listing).
LISTING_ENTRIES = (SearchHitItem, ChannelEntryItem, FastNewsItem)

_T = TypeVar("_T")
#: Runs a blocking call off the reactor thread (twisted's thread pool); tests may run it in place.
InThread = Callable[..., "Deferred[Any]"]


class IncrementalMiddleware:
    """Reads the frontier (in a thread) and hands what listings show to the store's writer, the
    frontier's only writer; the reactor waits on neither."""

    def __init__(
        self,
        crawler: Crawler,
        frontier: Frontier,
        stop_after: int,
        store: StorePipeline | None = None,
        in_thread: InThread = threads.deferToThread,
    ) -> None:
        self.crawler = crawler
        self.frontier = frontier
        self.stop_after = stop_after
        self.store = store
        self.in_thread = in_thread
        #: How long a listing's requests wait for the writer's commit. Far longer than a commit
        #: takes; a writer stuck retrying (the database away) lets the walk go on, as before.
        self.record_timeout = crawler.settings.getfloat("FXCRAWL_FRONTIER_RECORD_TIMEOUT", 10.0)
        #: Whether a listing's requests wait for that commit: only where a request can outlive this
        #: process (a shared scrapy-redis queue, or a JOBDIR's disk queue). Otherwise a killed crawl
        #: loses its queue with it, and the facts ride with the page's items: committed in the batch
        #: that holds them (or an earlier one), so before any item read from its requests; waiting
        #: would only stall the walk behind whatever batch the writer is busy with.
        self.await_commit = _requests_outlive_process(crawler.settings)
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
        return cls(crawler, frontier, settings.getint("FXCRAWL_INCREMENTAL_STOP_AFTER"), store_for(crawler))

    async def _off_reactor(self, function: Callable[..., _T], *args: Any) -> _T:
        result: _T = await maybe_deferred_to_future(self.in_thread(function, *args))
        return result

    @property
    def enabled(self) -> bool:
        return self.stop_after > 0

    def _count(self, key: str, value: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"fxcrawl/incremental/{key}", value)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        await self._off_reactor(self._set_listing_budget)
        async for request in start:
            if self._within_budget(request):
                yield request
        spider = self.crawler.spider
        article_request = getattr(spider, "article_request", None)
        if not self.enabled or not self.frontier_start or article_request is None:
            return
        try:
            owed = await self._off_reactor(self.frontier.pending)
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
                yield article_request(entry.url)

    def _set_listing_budget(self) -> None:
        """--max-pages counts the listing pages of the whole job: the pages its latest unfinished
        runs fetched (a crash and its rerun are one job) come off this run's budget."""
        spider = self.crawler.spider
        max_pages = getattr(spider, "max_pages", None)
        if not max_pages or spider is None:
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

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        results = [item async for item in result]
        if not self.enabled or not response.meta.get(LISTING_PAGE):
            for item in results:
                if self._within_budget(item):
                    yield item
            return
        hits = [r for r in results if isinstance(r, LISTING_ENTRIES)]
        for hit in hits:  # hashed once, here; validation keeps it
            if not isinstance(hit, FastNewsItem) and getattr(hit, "listing_hash", None) is None:
                hit.listing_hash = entry_hash(hit)
        canonical = {hit.url: site.canonical_url(hit.url, self.fetch_base) for hit in hits if hit.url}
        try:
            known = await self._off_reactor(self.frontier.lookup, list(canonical.values()))
        except SQLAlchemyError as exc:  # the database is away: fetch everything, lose nothing
            logger.warning(
                "frontier unavailable (%s): fetching every result of %s", exc.__class__.__name__, response.url
            )
            self._count("frontier_unavailable")
            known = {}
        out, next_url = self._filter_listing(response, results, hits, canonical, known)
        # Committed before any request leaves, where requests can outlive this process: once one is
        # in the shared queue (and its fingerprint in the dupefilter), a worker killed before this
        # write would leave no record of it anywhere, and the page fetched again after `reconcile`
        # would have its links filtered as seen.
        if self.store is not None:
            discovery = self._discovery(hits, canonical, next_url, response)
            if self.await_commit:
                await self._committed(self.store.record(discovery), response.url)
            else:
                self.store.record_with_items(discovery)
        for item in out:
            yield item
        unreadable = any(isinstance(r, RejectItem) and r.url == response.url for r in results)
        if site.parse_search_url(response.url) is not None and not unreadable:
            # recorded after its results, so a crash never marks a page read too early
            yield ListingVisitedItem(response.url, next_url, _walk_until(response))

    async def _committed(self, committed: Deferred[None], url: str) -> None:
        if not committed.called and is_reactor_installed():  # (a test may drive this without one)
            from twisted.internet import reactor

            committed.addTimeout(self.record_timeout, reactor)
        try:
            await maybe_deferred_to_future(committed)
        except defer.TimeoutError:  # written when the writer can; the items carry the facts too
            self._count("frontier_record_late")
            logger.warning(
                "the frontier of %s is not committed after %.0f s (database away?): its requests go on",
                url,
                self.record_timeout,
            )

    def _filter_listing(
        self,
        response: Response,
        results: list[Any],
        hits: list[Any],
        canonical: dict[str, str],
        known: dict[str, KnownURL],
    ) -> tuple[list[Any], str | None]:
        """What of the page's output goes on (requests skipped, made conditional or kept), and the
        search walk's next page (None: not followed, or not a search walk)."""
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
        if site.parse_search_url(response.url) is None:
            next_url = None  # only a search walk is resumed from the frontier; other lists start afresh
        return out, next_url

    def _discovery(
        self, hits: list[Any], canonical: dict[str, str], next_url: str | None, response: Response
    ) -> Discovery:
        """What this page showed (not its 快讯, whole on the page) and where the walk goes next."""
        return Discovery(
            tuple(
                Listed(canonical[hit.url], _hash(hit))
                for hit in hits
                if hit.url in canonical and not isinstance(hit, FastNewsItem)
            ),
            site.canonical_url(next_url, self.fetch_base) if next_url else None,
            _walk_until(response),
        )


def _walk_until(response: Response) -> int:
    return int(response.request.cb_kwargs.get("last", 0)) if response.request else 0


def _hash(hit: Any) -> str | None:
    if getattr(hit, "listing_hash", None) is not None:
        return str(hit.listing_hash)
    return entry_hash(hit)


def _conditional(request: Request, entry: KnownURL) -> Request:
    headers: dict[str, str] = {}
    if entry.etag:
        headers["If-None-Match"] = entry.etag
    if entry.last_modified:
        headers["If-Modified-Since"] = entry.last_modified
    meta = {**request.meta, "handle_httpstatus_list": [304]}
    merged: dict[str | bytes, Any] = dict(request.headers.to_unicode_dict().items())
    merged.update(headers)
    return request.replace(headers=merged, meta=meta)


def _requests_outlive_process(settings: Any) -> bool:
    """A scheduler whose queue is shared (scrapy-redis's, or one built on it) or on disk (JOBDIR);
    FXCRAWL_FRONTIER_AWAIT_COMMIT, when set, decides instead."""
    if settings.get("FXCRAWL_FRONTIER_AWAIT_COMMIT") is not None:
        return settings.getbool("FXCRAWL_FRONTIER_AWAIT_COMMIT")
    if settings.get("JOBDIR"):
        return True
    scheduler = settings.get("SCHEDULER")
    cls = load_object(scheduler) if isinstance(scheduler, str) else scheduler
    return any(base.__module__.startswith("scrapy_redis") for base in getattr(cls, "__mro__", ()))
