"""Several crawler processes sharing one frontier through scrapy-redis.

Workers run the ``search-distributed`` spider with scrapy-redis's scheduler and dupefilter:
requests and seen-fingerprints live in Redis (as JSON, never pickle), so any worker fetches
what any other discovered, and nothing is fetched twice. Shared state outlives a worker
(SCHEDULER_PERSIST): one that exits cleanly, or is killed, leaves the queue as it was.

What scrapy-redis does not do, this module adds:

- **knowing when the crawl is over**: each worker marks itself busy when it takes a request
  and idle when its engine runs dry; a worker stops once the shared queue and start list are
  empty and every live worker is idle;
- **surviving Redis restarts**: the scheduler retries Redis for FXCRAWL_REDIS_MAX_OUTAGE
  seconds, holding requests it could not queue, then closes the crawl with reason
  ``redis_unavailable`` (non-zero exit) rather than hanging or spinning;
- **recovering a killed worker's requests**: a request a worker had popped is gone from
  Redis; the database frontier still lists its URL as discovered, and ``reconcile`` (run by
  ``fxcrawl reconcile`` and at the start of every job) queues every such URL again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import load_object
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler
from scrapy_redis.spiders import RedisMixin

from crawler.spiders.search import SearchSpider, parse_page_spec
from fx168 import site
from storage.locks import process_alive

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
#: A worker whose heartbeat is older than this is presumed dead (its requests: reconcile's job).
WORKER_TTL = 30.0


def keys(job: str) -> dict[str, str]:
    """The Redis keys of one job; several jobs can share a Redis."""
    prefix = f"fxcrawl:{job}"
    return {
        "requests": f"{prefix}:requests",
        "dupefilter": f"{prefix}:dupefilter",
        "start_urls": f"{prefix}:start_urls",
        "workers": f"{prefix}:workers",
    }


def distributed_settings(redis_url: str, job: str) -> dict[str, Any]:
    """Scrapy settings that turn a crawl into a worker of ``job``."""
    k = keys(job)
    return {
        "SCHEDULER": "crawler.distributed.ResilientScheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_SERIALIZER": "crawler.distributed",  # this module's loads/dumps: JSON, not pickle
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_KEY": k["requests"],
        "SCHEDULER_DUPEFILTER_KEY": k["dupefilter"],
        "REDIS_START_URLS_KEY": k["start_urls"],
        # one start entry per read, so the first worker up does not take every listing walk
        "REDIS_START_URLS_BATCH_SIZE": 1,
        "REDIS_URL": redis_url,
        "REDIS_PARAMS": {"socket_timeout": 5, "socket_connect_timeout": 5, "retry_on_timeout": False},
        "FXCRAWL_JOB": job,
        "FXCRAWL_WORKERS_KEY": k["workers"],
        "FXCRAWL_FRONTIER_START": False,  # reconcile queues the frontier's leftovers once, for all workers
    }


class JsonSerializer:
    """scrapy-redis request serializer: JSON, with bytes (header names and values, bodies) as base64."""

    def _encode(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return {"__b64__": base64.b64encode(value).decode("ascii")}
        if isinstance(value, dict):
            if any(isinstance(key, bytes) for key in value):
                return {"__items__": [[self._encode(k), self._encode(v)] for k, v in value.items()]}
            return {key: self._encode(v) for key, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._encode(v) for v in value]
        return value

    def _decode(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__b64__"}:
                return base64.b64decode(value["__b64__"])
            if set(value) == {"__items__"}:
                return {self._decode(k): self._decode(v) for k, v in value["__items__"]}
            return {key: self._decode(v) for key, v in value.items()}
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        return value

    def dumps(self, obj: Any) -> str:
        return json.dumps(self._encode(obj), ensure_ascii=False)

    def loads(self, data: str | bytes) -> Any:
        return self._decode(json.loads(data))


json_serializer = JsonSerializer()
#: scrapy-redis imports SCHEDULER_SERIALIZER as a module and calls its loads and dumps.
loads, dumps = json_serializer.loads, json_serializer.dumps


class ResilientScheduler(Scheduler):
    """scrapy-redis's scheduler, riding out a Redis outage for a bounded time."""

    df: Any  # scrapy-redis (untyped) sets its dupefilter, or None until open()

    def __init__(self, *args: Any, max_outage: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_outage = max_outage
        self.outage_since: float | None = None
        self.held: list[Request] = []
        self.crawler: Crawler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResilientScheduler:
        instance = super().from_crawler(crawler)
        instance.max_outage = crawler.settings.getfloat("FXCRAWL_REDIS_MAX_OUTAGE", 30.0)
        instance.crawler = crawler
        return instance

    def open(self, spider: Any) -> None:
        """scrapy-redis 0.9.1's open, logging through the logger (it calls ``spider.log``, which
        Scrapy 2.19 deprecates, whenever a worker joins a queue that already holds requests)."""
        self.spider = spider
        self.queue = load_object(self.queue_cls)(
            server=self.server,
            spider=spider,
            key=self.queue_key % {"spider": spider.name},
            serializer=self.serializer,
        )
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()
        if queued := len(self.queue):
            logger.info("joining a shared queue that holds %d requests", queued)
        spider.redis_down = self._down  # the spider meets Redis errors too, when idle

    def _down(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.outage_since is None:
            self.outage_since = now
            logger.warning("Redis unavailable (%s); retrying for up to %.0f s", exc, self.max_outage)
        if self.stats:
            self.stats.inc_value("fxcrawl/redis/errors")
        if now - self.outage_since > self.max_outage and self.crawler and self.crawler.engine:
            logger.error("Redis unavailable for over %.0f s: stopping this worker", self.max_outage)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="redis_unavailable"))

    def _up(self) -> None:
        """After a Redis call succeeded: end the outage, queue what was held."""
        if self.outage_since is not None:
            logger.info("Redis is back after %.1f s", time.monotonic() - self.outage_since)
            self.outage_since = None
        while self.held:
            self._enqueue(self.held.pop())

    def _enqueue(self, request: Request) -> bool:
        """scrapy-redis 0.9.1's enqueue_request, counting through the stats API Scrapy 2.19
        supports (0.9.1, the newest release, still passes ``spider=``, which Scrapy deprecates)."""
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def _dequeue(self) -> Request | None:
        """scrapy-redis 0.9.1's next_request, counted without the deprecated ``spider=``."""
        request = self.queue.pop(self.idle_before_close)
        if request and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def enqueue_request(self, request: Request) -> bool:
        try:
            queued = self._enqueue(request)
            self._up()
            return queued
        except REDIS_ERRORS as exc:
            self.held.append(request)  # queued once Redis is back; the frontier has it either way
            self._down(exc)
            return True

    def next_request(self) -> Request | None:
        try:
            request = self._dequeue()
            self._up()
        except REDIS_ERRORS as exc:
            self._down(exc)
            return None
        if request is not None and isinstance(self.spider, DistributedSearchSpider):
            self.spider.registry.busy()
        return request

    def has_pending_requests(self) -> bool:
        try:
            return bool(self.held) or super().has_pending_requests()
        except REDIS_ERRORS as exc:
            self._down(exc)
            return bool(self.held)

    def close(self, reason: str) -> None:
        if self.held:
            logger.warning(
                "%d requests could not be queued in Redis; `fxcrawl reconcile` recovers them", len(self.held)
            )
        try:
            super().close(reason)
        except REDIS_ERRORS as exc:
            logger.warning("could not reach Redis while closing: %s", exc)


class WorkerRegistry:
    """Which workers of a job are busy, in a Redis hash: field = worker, value = state and time."""

    def __init__(self, server: redis.Redis, key: str, worker: str) -> None:
        self.server = server
        self.key = key
        self.worker = worker

    def _set(self, state: str) -> None:
        try:
            self.server.hset(
                self.key,
                self.worker,
                json.dumps({"state": state, "t": time.time(), "host": socket.gethostname(), "pid": os.getpid()}),
            )
        except REDIS_ERRORS as exc:
            logger.debug("worker registry unavailable: %s", exc)

    def busy(self) -> None:
        self._set("busy")

    def idle(self) -> None:
        self._set("idle")

    def leave(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            self.server.hdel(self.key, self.worker)

    def others_busy(self) -> list[str]:
        now = time.time()
        busy = []
        host = socket.gethostname()
        for worker, raw in self.server.hgetall(self.key).items():
            name = worker.decode() if isinstance(worker, bytes) else worker
            entry = json.loads(raw)
            if name == self.worker or entry["state"] != "busy" or now - entry["t"] >= WORKER_TTL:
                continue
            if entry.get("host") == host and entry.get("pid") and not process_alive(int(entry["pid"])):
                # a worker of this machine that was killed: not busy, whatever it last said
                logger.warning("worker %s is gone (its process died): `fxcrawl reconcile` recovers its requests", name)
                with contextlib.suppress(*REDIS_ERRORS):
                    self.server.hdel(self.key, worker)
                continue
            busy.append(name)
        return busy


class DistributedSearchSpider(RedisMixin, SearchSpider):
    """The search spider as a worker: start requests come from Redis, not from arguments."""

    name = "search-distributed"

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> DistributedSearchSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        spider.registry = WorkerRegistry(spider.server, crawler.settings.get("FXCRAWL_WORKERS_KEY"), worker)
        crawler.signals.connect(spider.registry.leave, signal=signals.spider_closed)
        spider.idle_poller = IdlePoller(crawler)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        self.registry.busy()
        for request in self.next_requests():
            yield request

    def make_request_from_data(self, data: bytes) -> Request | None:
        """JSON from ``fxcrawl seed`` / ``reconcile``: {"url", "kind": "listing"|"article", "last"}."""
        entry = json.loads(data)
        if entry.get("kind") == "listing":
            request = self.listing_request(entry["url"], int(entry.get("last") or site.MAX_SEARCH_PAGE))
        else:
            request = self.article_request(entry["url"])
        # A recovered entry's fingerprint was taken off the dupefilter by reconcile: whichever comes
        # first, it or the same URL from a listing page, is fetched, and the other is filtered.
        return request

    def spider_idle(self) -> None:
        """Stop only when nothing is left anywhere: no start entries, no queued requests, no busy worker."""
        try:
            if self.count_size(self.redis_key) > 0:
                self.schedule_next_requests()
                raise DontCloseSpider
            self.registry.idle()
            queued = self.server.zcard(self.settings.get("SCHEDULER_QUEUE_KEY"))
            others = self.registry.others_busy()
        except REDIS_ERRORS as exc:
            self.redis_down(exc)  # counts the outage; past the limit, closes the crawl
            raise DontCloseSpider from None
        if queued or others:
            raise DontCloseSpider
        logger.info("shared queue empty and every worker idle: this worker is done")


class IdlePoller:
    """Has the engine look at the shared queue every FXCRAWL_IDLE_POLL_INTERVAL seconds, not every 5.

    An engine whose scheduler came back empty looks again only after a download ends or on its
    heartbeat (5 s in Scrapy, no setting); meanwhile the other workers drain what the listing
    pages push, and one worker ended up serving 990 of 1,102 responses. So, from spider_opened to
    spider_closed, a looping call hands the engine a *wake-up* request through its public
    ``crawl()``: this poller's request_scheduled handler drops it before it reaches the scheduler
    (raising IgnoreRequest, as Scrapy documents), and ``crawl()`` then has the engine ask the
    scheduler for work (a request from Redis) or, finding none, fire spider_idle (start entries,
    or the decision that the crawl is over): what the heartbeat does, only sooner.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("FXCRAWL_IDLE_POLL_INTERVAL", 0.5)
        self.wake_url = crawler.settings.get("FXCRAWL_BASE_URL") or site.CANONICAL_BASE
        self.wakes = 0
        self.call: Any = None
        if self.interval > 0:
            crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
            crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
            crawler.signals.connect(self.request_scheduled, signal=signals.request_scheduled)

    def spider_opened(self) -> None:
        self.call = create_looping_call(self.wake)
        self.call.start(self.interval, now=False)

    def spider_closed(self) -> None:
        if self.call is not None and self.call.running:
            self.call.stop()

    def wake(self) -> None:
        engine = self.crawler.engine
        if engine is None or engine.spider is None or not engine.running:
            return
        self.wakes += 1
        engine.crawl(Request(self.wake_url, callback=NO_CALLBACK, dont_filter=True, meta={WAKE_UP: True}))

    def request_scheduled(self, request: Request) -> None:
        if request.meta.get(WAKE_UP):
            raise IgnoreRequest("the idle poller's wake-up: never scheduled")


#: Marks the idle poller's wake-up request.
WAKE_UP = "fxcrawl_wake_up"


def start_entries(keyword: str, pages: str | None, base_url: str) -> list[dict[str, Any]]:
    """The listing walks a job begins with, as JSON-ready start entries."""
    ranges = parse_page_spec(pages) or [(1, site.MAX_SEARCH_PAGE)]
    return [
        {"url": site.search_url(keyword, first, base=base_url), "kind": "listing", "last": last}
        for first, last in ranges
    ]


def recovery_entries(pending: Iterable[Any], base_url: str) -> list[dict[str, Any]]:
    """Frontier URLs still owed (a killed worker's, a crashed run's), as start entries."""
    return [
        {"url": site.rebase(entry.url, base_url), "kind": entry.kind, "last": entry.walk_until, "recovered": True}
        for entry in pending
    ]


def push(server: redis.Redis, job: str, entries: list[dict[str, Any]]) -> int:
    """Queue start entries in one transaction (a crash queues all of them or none).

    Recovered entries (``reconcile``) are queued at most once: any copy still waiting from an
    earlier reconcile (one that crashed, or ran twice) is removed in the same transaction, so
    a URL owed is fetched once, however many times reconcile ran."""
    if not entries:
        return 0
    job_keys = keys(job)
    encoded = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in entries]
    recovered = [e for e in entries if e.get("recovered")]
    with server.pipeline(transaction=True) as pipe:
        for entry, text in zip(entries, encoded, strict=True):
            if entry.get("recovered"):
                pipe.lrem(job_keys["start_urls"], 0, text)
        if recovered:
            # The worker that lost them had them fingerprinted: forget that, so each is fetched
            # once more (and only once: the first request for it marks it seen again).
            pipe.srem(job_keys["dupefilter"], *(fingerprint(e["url"]) for e in recovered))
        pipe.rpush(job_keys["start_urls"], *encoded)
        pipe.execute()
    return len(entries)


def fingerprint(url: str) -> str:
    """The dupefilter's fingerprint of the GET request a worker makes for ``url``."""
    # scrapy-redis 0.9.1's fingerprint is an instance method that never reads its instance
    return RFPDupeFilter.request_fingerprint(None, Request(url))  # type: ignore[arg-type]  # no instance needed (above)
