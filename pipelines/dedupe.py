"""Drop what this run has already seen. The database's unique keys remain the authority across
runs (the store upserts); this only saves re-writing the same item twice within a run."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

from pipelines.counting import BufferedCounts
from storage.writer import natural_key

#: The key an item is stored under: decided in storage, where the unique keys are.
dedupe_key = natural_key


class DedupePipeline:
    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self.duplicates = BufferedCounts(stats)
        self.seen: set[tuple[Any, ...]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        assert crawler.stats is not None
        return cls(crawler.stats)

    def process_item(self, item: Any) -> Any:
        key = dedupe_key(item)
        if key is None:
            return item
        if key in self.seen:
            self.duplicates.inc(f"fxcrawl/duplicate/{key[0]}")
            raise DropItem(f"duplicate {key[0]} in this run: {key[1:]}", log_level="DEBUG")
        self.seen.add(key)
        return item

    def close_spider(self) -> None:
        self.duplicates.flush()
