"""The Scrapy side of the store: items go to a writer thread that writes them in batches (by
size, by age, and when the spider closes) through ``storage.writer.BatchWriter``. A listing's
facts handed over by the incremental middleware ride with the items, or, where the crawl's
requests outlive its process, are written ahead of them, and the middleware is told (on the
reactor thread) once they are committed.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import maybe_deferred_to_future
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.python.threadable import isInIOThread

from fx168.items import ArticleItem
from pipelines.database import check_database, database_for
from storage.archive import ArchivePolicy, ArchiveWriter, Exchange, archive_dir_for, prune
from storage.db import Database, is_transient
from storage.frontier import RecrawlPolicy
from storage.logsafety import redact_text
from storage.runs import finish_run, one_line
from storage.spool import Spool, spool_dir_for
from storage.writer import BatchWriter, Discovery

__all__ = ["BatchWriter", "Discovery", "StorePipeline", "spool_dir_for", "store_for"]

logger = logging.getLogger(__name__)

#: One store per crawl, shared by the item pipeline and the incremental middleware.
_STORES: weakref.WeakKeyDictionary[Crawler, StorePipeline] = weakref.WeakKeyDictionary()


def store_for(crawler: Crawler) -> StorePipeline:
    """The crawl's store (made on first use): its writer thread is the frontier's only writer."""
    store = _STORES.get(crawler)
    if store is None:
        store = _STORES[crawler] = StorePipeline.build(crawler)
    return store


class StorePipeline:
    """Hands items to a writer thread that batches them by size and by age.

    The crawl never waits on the database: items go into a bounded queue (a full queue is
    the only back-pressure), and the writer thread retries transient failures with bounded
    exponential backoff. A batch that still cannot be written is spooled to disk, counted
    and reported; the next crawl, or ``fxcrawl spool replay``, writes it.
    """

    def __init__(
        self,
        database: Database,
        stats: StatsCollector,
        *,
        batch_size: int = 500,
        max_delay: float = 2.0,
        max_pending: int = 10_000,
        retry_attempts: int = 15,
        retry_max_wait: float = 8.0,
        retry_budget: float = 90.0,
        spool_dir: Path | str | None,
        policy: RecrawlPolicy | None = None,
        archive: ArchiveWriter | None = None,
        archive_group: int = 100,
        keep_frontier: bool = True,
    ) -> None:
        self.writer = BatchWriter(database, policy, keep_frontier=keep_frontier)
        self.stats = stats
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.retry_budget = retry_budget
        self.spool = Spool(spool_dir_for(spool_dir, database.url))
        # Items collect in ``pending`` (an append per item); a full batch moves to ``full``, which
        # the writer thread empties oldest first. One lock guards both, so batches are written in
        # the order they filled (a listing page's hits before its visit), and the writer takes
        # ``pending`` early (its oldest item has waited max_delay) only when no full batch waits.
        # Past ``max_pending`` items in full batches, process_item waits: back-pressure, not a drop.
        self.pending: list[Any] = []
        self.pending_since = 0.0
        self.full: deque[list[Any]] = deque()
        self.max_batches = max(1, max_pending // max(1, batch_size))
        self.changed = threading.Condition(threading.Lock())
        self.closing = False
        self.in_hand: list[Any] = []
        #: Listing facts waiting to be committed, each with what to call once they are (or once
        #: the writer gave up on them): written ahead of any batch, in a transaction of their own.
        self.urgent: list[tuple[Discovery, Callable[[], None]]] = []
        self.thread: threading.Thread | None = None
        self.opened = False
        #: Responses to archive (storage.archive), written by the writer thread ahead of any batch,
        #: and where each went, until the article read from it is stamped with it. They are
        #: written in groups (``archive_group`` of them, or all that waited ``max_delay``, or all
        #: there are when a batch or a listing's facts are written): a write per response cost
        #: the writer a wake-up, a payload-index query and a flush each.
        self.archive = archive
        self.archive_group = archive_group
        self.exchanges: list[Exchange] = []
        self.exchanges_since = 0.0
        #: (file, offset, length) by record id: a plain tuple, out of the cycle collector's walk (one
        #: stays for each response no article claims, a listing page's: see ArchiveWriter.originals).
        self.archived: dict[str, tuple[str, int, int]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return store_for(crawler)

    @classmethod
    def build(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        assert crawler.stats is not None
        return cls(
            database_for(crawler),
            crawler.stats,
            batch_size=settings.getint("FXCRAWL_STORE_BATCH_SIZE"),
            max_delay=settings.getfloat("FXCRAWL_STORE_MAX_DELAY"),
            max_pending=settings.getint("FXCRAWL_STORE_MAX_PENDING"),
            retry_attempts=settings.getint("FXCRAWL_STORE_RETRY_ATTEMPTS"),
            retry_max_wait=settings.getfloat("FXCRAWL_STORE_RETRY_MAX_WAIT"),
            retry_budget=settings.getfloat("FXCRAWL_STORE_RETRY_BUDGET"),
            spool_dir=settings.get("FXCRAWL_SPOOL_DIR"),
            policy=RecrawlPolicy.from_settings(settings),
            archive=archive_for(crawler),
            keep_frontier=settings.getbool("FXCRAWL_KEEP_FRONTIER", True),
        )

    def open_spider(self) -> None:
        check_database(self.writer.database)  # one the crawl cannot use closes the spider here (CloseSpider)
        if self.archive is not None:
            self._prune_archive()
        if self.spool.files() or self.spool.run_files():
            result = self.spool.replay(
                self.write, lambda run_id, values: finish_run(self.writer.database, run_id, values)
            )
            self.stats.inc_value("fxcrawl/spool/replayed_items", result.items)
            logger.info(
                "replayed %d spooled items from %d files and %d run rows before crawling",
                result.items,
                result.files,
                result.runs,
            )
        self.closing = False
        self.opened = True
        self.thread = threading.Thread(target=self._run, name="fxcrawl-store", daemon=True)
        self.thread.start()

    def process_item(self, item: Any) -> Any:
        self._append(item)
        return item

    def record_with_items(self, discovery: Discovery) -> None:
        """Hand a listing's facts over to ride with the items: committed with the batch that holds
        the page's own items (or an earlier one), so before any item read from its requests. For a
        crawl whose requests die with its process: there nothing waits for the commit, and a
        transaction of its own per listing page cost the writer about a fifth of its time."""
        self._append(discovery)

    def _append(self, entry: Any) -> None:
        if self.thread is None:  # Scrapy opens pipelines first; a caller that did not gets a writer all the same
            self.open_spider()
        with self.changed:
            self.pending.append(entry)
            if len(self.pending) >= self.batch_size:
                self.full.append(self.pending)
                self.pending = []
                self.changed.notify_all()
                while len(self.full) > self.max_batches and self._writing():
                    self.changed.wait(1.0)
            elif len(self.pending) == 1:  # the max_delay clock starts
                self.pending_since = time.monotonic()
                self.changed.notify_all()

    def record(self, discovery: Discovery) -> Deferred[None]:
        """Hand a listing's facts to the writer thread. The Deferred fires on the reactor thread
        once they are committed (or the writer gave up on them: the page's items still carry
        them, and are spooled if they cannot be stored); the reactor never waits on the database."""
        from twisted.internet import reactor

        done: Deferred[None] = Deferred()
        if self.thread is None and not self.opened:
            self.open_spider()
        with self.changed:
            if self._writing() and not self.closing:
                self.urgent.append((discovery, lambda: reactor.callFromThread(_fire, done)))  # type: ignore[attr-defined]  # twisted's reactor is typed as a module
                self.changed.notify_all()
                return done
        done.callback(None)  # no writer left (the crawl is closing): the items record them
        return done

    def archive_exchange(self, exchange: Exchange) -> None:
        """Hand a response to the writer thread for the archive: written before any batch that
        follows, so before the rows of the items read from it (the reactor never waits on a file)."""
        if self.thread is None and not self.opened:
            self.open_spider()
        with self.changed:
            self.exchanges.append(exchange)
            if len(self.exchanges) == 1:  # the max_delay clock starts
                self.exchanges_since = time.monotonic()
                self.changed.notify_all()
            elif len(self.exchanges) >= self.archive_group:
                self.changed.notify_all()

    def _prune_archive(self) -> None:
        assert self.archive is not None
        policy = self.archive.policy
        if policy.keep_days is None and policy.keep_bytes is None:
            return
        try:
            result = prune(
                self.archive.directory, self.writer.database, keep_days=policy.keep_days, keep_bytes=policy.keep_bytes
            )
        except Exception as exc:  # retention is housekeeping: the crawl goes on, and says so
            logger.warning("could not prune the archive (%s)", one_line(exc))
            return
        if result.files:
            self.stats.inc_value("archive/pruned_files", len(result.files))
            logger.info("archive retention: removed %d files (%d bytes) of old runs", len(result.files), result.bytes)

    def close_spider(self) -> Coroutine[Any, Any, None] | None:
        """Flush everything still held (also on SIGTERM, which Scrapy turns into a clean close).
        In a crawl, the flush runs in a thread and Scrapy awaits it: the reactor does not wait
        on the last batch; a direct caller gets it done before this returns."""
        if self.thread is None:
            return None
        if _on_running_reactor():
            return self._close_in_thread()
        self._close()
        return None

    async def _close_in_thread(self) -> None:
        await maybe_deferred_to_future(threads.deferToThread(self._close))

    def _close(self) -> None:
        if self.thread is None:
            return
        with self.changed:
            self.closing = True
            self.changed.notify_all()
        self.thread.join()
        self.thread = None
        with self.changed:  # only if the writer died: what it left is spooled, not dropped
            leftovers, self.pending, self.in_hand = [self.in_hand, *self.full, self.pending], [], []
            self.full.clear()
            waiting, self.urgent = self.urgent, []
        for _, done in waiting:
            done()
        for batch in leftovers:
            if batch:
                self._spool(batch, RuntimeError("the store's writer thread stopped"))
        self.writer.database.dispose()

    def write(self, items: Sequence[Any]) -> dict[str, int]:
        """Write one batch, retrying transient database errors; raises once retries run out."""
        counts = self._retrying()(self.writer.write, items, self.stats.get_value("fxcrawl/run_id"))
        for key, value in counts.items():
            self.stats.inc_value(f"fxcrawl/store/{key}", value)
        self.stats.inc_value("fxcrawl/store/batches")
        return counts

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.retry_attempts) | stop_after_delay(self.retry_budget),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._write_archive()
                if self.urgent:
                    self._record_urgent()
                if batch:
                    self.in_hand = batch  # until written or spooled: a writer that dies leaves it to close_spider
                    self._sync_archive(batch)
                    self._flush(batch)
                    self.in_hand = []
        finally:
            self._close_archive()

    def _write_archive(self) -> None:
        """Write the responses waiting for the archive (to the operating system, not yet fsynced)."""
        if self.archive is None or not self.exchanges:
            return
        with self.changed:
            exchanges, self.exchanges = self.exchanges, []
        try:
            result = self.archive.write(exchanges, self.stats.get_value("fxcrawl/run_id"))
        except Exception as exc:  # the pages are lost to the archive, not to the store: their items carry no pointer
            self.stats.inc_value("archive/failed", len(exchanges))
            logger.error("could not archive %d responses (%s)", len(exchanges), one_line(exc))
            return
        self.archived.update((record, (at.file, at.offset, at.length)) for record, at in result.locations.items())
        self.stats.inc_value("archive/records", result.records)
        self.stats.inc_value("archive/revisits", result.revisits)
        self.stats.inc_value("archive/bytes", result.bytes)

    def _sync_archive(self, batch: list[Any]) -> None:
        """Before the batch commits: the archive durable, and each article given its record's place."""
        if self.archive is None:
            return
        try:
            self.archive.sync()
        except Exception as exc:  # an article must not point at what may not be on disk
            logger.error("could not sync the archive (%s): this batch's articles keep no record", one_line(exc))
            self.archived.clear()
        for item in batch:
            if type(item) is ArticleItem and item.warc_record_id and item.warc_file is None:
                where = self.archived.pop(item.warc_record_id, None)
                if where is not None:
                    item.warc_file, item.warc_offset, item.warc_length = where

    def _close_archive(self) -> None:
        if self.archive is None:
            return
        self._write_archive()
        try:
            self.archive.close()
        except Exception as exc:
            logger.error("could not close the archive (%s)", one_line(exc))
        if self.archive.child_cpu_seconds:  # work done off this process: counted nowhere else
            self.stats.set_value("archive/child_cpu_seconds", round(self.archive.child_cpu_seconds, 3))

    def _record_urgent(self) -> None:
        with self.changed:
            waiting, self.urgent = self.urgent, []
        try:
            self._retrying()(self.writer.write, [facts for facts, _ in waiting], self.stats.get_value("fxcrawl/run_id"))
        except Exception as exc:  # the pages' items carry the same facts to the batch (or the spool)
            logger.warning("could not record the frontier of %d listing pages now (%s)", len(waiting), one_line(exc))
        finally:
            for _, done in waiting:
                done()

    def _next_batch(self) -> list[Any] | None:
        """Listing facts or a group of responses to archive first (an empty batch with them); then
        the oldest full batch; else the pending items (and responses) once the oldest has waited
        max_delay (or the crawl is closing); None when closing with nothing left."""
        with self.changed:
            while True:
                if self.urgent or len(self.exchanges) >= self.archive_group:
                    return []
                if self.full:
                    batch = self.full.popleft()
                    self.changed.notify_all()  # room for a process_item that waits
                    return batch
                if self.pending or self.exchanges:
                    wait = self._oldest_since() + self.max_delay - time.monotonic()
                    if wait <= 0 or self.closing:
                        batch, self.pending = self.pending, []
                        return batch
                    self.changed.wait(wait)
                elif self.closing:
                    return None
                else:
                    self.changed.wait()

    def _oldest_since(self) -> float:
        """When the oldest of what waits (items, responses to archive) was handed over."""
        return min(
            self.pending_since if self.pending else math.inf, self.exchanges_since if self.exchanges else math.inf
        )

    def _writing(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _flush(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        try:
            counts = self.write(batch)
        except Exception as exc:
            self._spool(batch, exc)
        else:
            logger.debug("stored %d items in %.1f ms: %s", len(batch), (time.perf_counter() - started) * 1000, counts)

    def _spool(self, batch: list[Any], exc: BaseException) -> None:
        # a listing's facts are no items: the page's hits and its visit carry them to the spool
        batch = [entry for entry in batch if type(entry) is not Discovery]
        if not batch:
            return
        try:
            path = self.spool.write(batch, redact_text(f"{type(exc).__name__}: {exc}"))
        except Exception as spool_exc:  # the last resort failed too: say so as loudly as we can
            self.stats.inc_value("fxcrawl/store/failed_items", len(batch))
            logger.critical(
                "could not store %d items (%s) nor spool them (%s): they are lost",
                len(batch),
                one_line(exc),
                one_line(spool_exc),
            )
            return
        self.stats.inc_value("fxcrawl/store/spooled_items", len(batch))
        logger.error("could not store %d items (%s); spooled to %s", len(batch), one_line(exc), path)

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.inc_value("fxcrawl/store/retries")
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        logger.warning(
            "database write failed (attempt %d of %d), retrying in %.1f s: %s",
            state.attempt_number,
            self.retry_attempts,
            wait,
            one_line(exc),
        )


def archive_for(crawler: Crawler) -> ArchiveWriter | None:
    """The crawl's archive writer (None: FXCRAWL_ARCHIVE_ENABLED is off): its folder from
    FXCRAWL_ARCHIVE_DIR, else beside the SQLite database."""
    settings = crawler.settings
    if not settings.getbool("FXCRAWL_ARCHIVE_ENABLED", True):
        return None
    database = database_for(crawler)
    directory = archive_dir_for(settings.get("FXCRAWL_ARCHIVE_DIR"), database.url)
    return ArchiveWriter(
        directory,
        database,
        ArchivePolicy.from_settings(settings),
        separate_process=settings.getbool("FXCRAWL_ARCHIVE_PROCESS", True),
        process_after=settings.getint("FXCRAWL_ARCHIVE_PROCESS_AFTER", 200),
        info={"fxcrawl-fetch-base": settings.get("FXCRAWL_BASE_URL") or ""},
    )


def _fire(done: Deferred[None]) -> None:
    if not done.called:  # a waiter that timed out has gone on without it
        done.callback(None)


def _on_running_reactor() -> bool:
    """Called on the thread of a running Twisted reactor (never installs one)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return bool(reactor is not None and getattr(reactor, "running", False) and isInIOThread())
