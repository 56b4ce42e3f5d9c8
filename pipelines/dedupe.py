"""Drop what this run has already seen. The database's unique keys remain the authority across
runs (the store upserts); this only saves re-writing the same item twice within a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

from fx168.items import (
    ArticleItem,
    ChannelEntryItem,
    FastNewsItem,
    HotEntryItem,
    ListingVisitedItem,
    NotModifiedItem,
    SearchHitItem,
    SourceItem,
    TopicItem,
)
from pipelines.counting import BufferedCounts


def dedupe_key(item: Any) -> tuple[Any, ...] | None:
    """The natural key an item is stored under (None: never deduplicated)."""
    key = _KEYS.get(type(item))
    return key(item) if key else None


_KEYS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    ArticleItem: lambda item: ("article", item.url),
    HotEntryItem: lambda item: ("hot", item.url),
    NotModifiedItem: lambda item: ("not_modified", item.url),
    ListingVisitedItem: lambda item: ("listing", item.url),
    SourceItem: lambda item: ("source", item.name),
    TopicItem: lambda item: ("topic", item.name),
    SearchHitItem: lambda item: ("hit", item.keyword, item.tab, item.page, item.url),
    ChannelEntryItem: lambda item: ("channel_entry", item.channel, item.url),
    FastNewsItem: lambda item: ("fast_news", item.fast_news_id),
}


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
