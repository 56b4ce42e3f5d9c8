"""Progress of long work that knows its size (a re-parse of the archive; a crawl's, whose size
grows as it goes, is crawler/progress.py): pages done, their rate
and the time left, as one live line on a terminal and as a log line now and then otherwise.

The size is in bytes of archive read (``reparse/bytes_done`` of ``reparse/bytes_total``): known
before the first page without a pass over the files, and pages are near enough the same size.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from twisted.internet.task import LoopingCall

logger = logging.getLogger(__name__)


class ReparseProgress:
    def __init__(self, stats: StatsCollector, stream: IO[str] | None = None, interval: float | None = None) -> None:
        self.stats = stats
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        #: A terminal line is redrawn twice a second; a log (no terminal) gets a line every 10 s.
        self.interval = interval if interval is not None else (0.5 if self.live else 10.0)
        self.started = time.monotonic()
        self.loop: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReparseProgress:
        assert crawler.stats is not None
        progress = cls(crawler.stats)
        if not progress.live:  # a log gets a line every FXCRAWL_PROGRESS_INTERVAL, as a crawl's does
            progress.interval = crawler.settings.getfloat("FXCRAWL_PROGRESS_INTERVAL") or progress.interval
        crawler.signals.connect(progress.opened, signal=signals.spider_opened)
        crawler.signals.connect(progress.closed, signal=signals.spider_closed)
        return progress

    def opened(self, spider: Any = None) -> None:
        self.started = time.monotonic()
        self.loop = LoopingCall(self.show)
        self.loop.start(self.interval, now=False)

    def closed(self, spider: Any = None) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.show(final=True)

    def line(self) -> str:
        pages = int(self.stats.get_value("reparse/pages", 0) or 0)
        done = int(self.stats.get_value("reparse/bytes_done", 0) or 0)
        total = int(self.stats.get_value("reparse/bytes_total", 0) or 0)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = pages / elapsed
        share = done / total if total else 1.0
        left = elapsed * (1 - share) / share if share > 0 else None
        eta = "?" if left is None else _clock(left)
        return f"reparse: {pages:,} pages, {rate:,.0f} pages/s, {share:.0%} of {total / 1e6:,.1f} MB, {eta} left"

    def show(self, final: bool = False) -> None:
        text = self.line()
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        else:
            logger.info("%s", text)


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
