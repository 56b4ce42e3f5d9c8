"""Scrapy's log messages, minus the per-item and per-response ones no handler will show.

Scrapy filters by level at its log handler, not at its loggers, so at LOG_LEVEL=INFO it still
builds a DEBUG record for every response ("Crawled (200) …"), every item ("Scraped from …",
with the item in it) and every dropped duplicate, then throws each away. A LogFormatter that
returns None tells Scrapy not to log at all; this one does so for messages below LOG_LEVEL.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.logformatter import LogFormatter, LogFormatterResult


class LevelAwareLogFormatter(LogFormatter):
    def __init__(self, threshold: int = logging.DEBUG) -> None:
        self.threshold = threshold

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LevelAwareLogFormatter:
        return cls(_level(crawler.settings.get("LOG_LEVEL")))

    # Scrapy's crawled and scraped messages are always DEBUG; a dropped item's level is its DropItem's.
    # Returning None omits a message, as LogFormatter's docstring says; its return annotation leaves None out.

    def crawled(  # type: ignore[override]  # None omits the message (documented)
        self, request: Any, response: Any, spider: Any
    ) -> LogFormatterResult | None:
        return super().crawled(request, response, spider) if self.threshold <= logging.DEBUG else None

    def scraped(  # type: ignore[override]  # None omits the message (documented)
        self, item: Any, response: Any, spider: Any
    ) -> LogFormatterResult | None:
        return super().scraped(item, response, spider) if self.threshold <= logging.DEBUG else None

    def dropped(  # type: ignore[override]  # None omits the message (documented)
        self, item: Any, exception: BaseException, response: Any, spider: Any
    ) -> LogFormatterResult | None:
        result = super().dropped(item, exception, response, spider)
        return result if result["level"] >= self.threshold else None


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value or "DEBUG").upper())
    return level if isinstance(level, int) else logging.DEBUG
