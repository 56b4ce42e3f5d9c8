"""A crawl's progress: a live line on a terminal (rich), a periodic INFO line in logs.

``FXCRAWL_PROGRESS``: ``auto`` (default: the live line when stderr is a terminal and LOG_LEVEL is
not ERROR, else log lines), ``live``, ``log`` or ``off``. ``FXCRAWL_PROGRESS_INTERVAL`` (30 s)
spaces the log lines, as Scrapy's LogStats does; the live line is redrawn every second. Both
run on the reactor in a LoopingCall and only read the crawl's stats, so they never block it.

What a line says (storage/progress.py formats it): pages done — what ``runs list`` counts as
pages — of pages discovered (done, plus requests waiting in the scheduler and in flight; a
distributed worker's queue is shared, so its total is unknown and `workers start` shows the
job's), items new / updated / rejected as the store has counted them, errors, the rate over the
last 30 s and the time left at that rate.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from storage.progress import Progress, RateMeter, format_progress
from storage.runs import run_counts

logger = logging.getLogger(__name__)

MODES = ("auto", "live", "log", "off")


class _Stats:
    def __init__(self, crawler: Crawler) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats

    def get(self, key: str, default: Any = None, /) -> Any:
        return self.stats.get_value(key, default)


def live_wanted(mode: str, log_level: str, stream: Any = None) -> bool:
    """The live line: asked for, or ``auto`` on a terminal at a log level that is not asking for quiet."""
    if mode == "live":
        return True
    if mode != "auto":
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    quiet = str(log_level).upper() in ("ERROR", "CRITICAL")
    return bool(isatty and isatty()) and not quiet


class CrawlProgress:
    def __init__(self, crawler: Crawler, live: bool, interval: float) -> None:
        self.crawler = crawler
        self.live = live
        self.interval = interval
        self.stats = _Stats(crawler)
        self.meter = RateMeter()
        self.started = time.monotonic()
        self.label = ""
        self.distributed = "distributed" in str(crawler.settings.get("SCHEDULER") or "")
        self.loop: task.LoopingCall | None = None
        self.display: Any = None  # rich.live.Live while the live line shows
        self._swapped: list[tuple[logging.StreamHandler[Any], Any]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        settings = crawler.settings
        mode = str(settings.get("FXCRAWL_PROGRESS") or "auto").lower()
        if mode not in MODES:
            raise NotConfigured(f"FXCRAWL_PROGRESS={mode!r}: one of {', '.join(MODES)}")
        interval = settings.getfloat("FXCRAWL_PROGRESS_INTERVAL", 30.0)
        live = live_wanted(mode, settings.get("LOG_LEVEL", "INFO"))
        if mode == "off" or (not live and interval <= 0):
            raise NotConfigured("progress lines are off")
        extension = cls(crawler, live, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def snapshot(self) -> Progress:
        counts = run_counts(self.stats)
        done = counts["pages"]
        discovered: int | None = None
        if not self.distributed:
            enqueued = int(self.stats.get("scheduler/enqueued", 0) or 0)
            waiting = enqueued - int(self.stats.get("scheduler/dequeued", 0) or 0)
            engine = getattr(self.crawler, "engine", None)
            in_flight = len(getattr(getattr(engine, "downloader", None), "active", ()) or ())
            discovered = done + max(0, waiting) + in_flight
        now = time.monotonic()
        return Progress.from_counts(
            counts,
            done=done,
            discovered=discovered,
            elapsed=now - self.started,
            rate=self.meter.update(now, done),
            label=self.label,
        )

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self.label = str(self.stats.get("fxcrawl/job") or spider.name)
        if self.live:
            self._start_live()
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(1.0 if self.live else self.interval, now=False)

    def tick(self) -> None:
        line = format_progress(self.snapshot())
        if self.display is not None:
            from rich.text import Text

            self.display.update(Text(line, style="bold", no_wrap=True, overflow="ellipsis"), refresh=True)
        else:
            logger.info("progress: %s", line)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self._stop_live()
        logger.info("progress (%s): %s", reason, format_progress(self.snapshot()))

    def _start_live(self) -> None:
        """A transient rich line at the bottom of the terminal; log records print above it (the
        root handlers writing to stderr are pointed at rich's stderr proxy while it shows)."""
        from rich.console import Console
        from rich.live import Live

        original = sys.stderr
        self.display = Live(console=Console(file=original), transient=True, auto_refresh=False, redirect_stdout=False)
        self.display.start()
        if sys.stderr is original:  # not a terminal: rich redirects nothing, and neither do we
            return
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is original:
                handler.setStream(sys.stderr)
                self._swapped.append((handler, original))

    def _stop_live(self) -> None:
        if self.display is None:
            return
        for handler, stream in self._swapped:
            handler.setStream(stream)
        self._swapped.clear()
        self.display.stop()
        self.display = None
