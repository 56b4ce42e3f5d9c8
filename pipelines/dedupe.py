"""Drop what this run has already seen. The database's unique keys remain the authority across
runs (the store upserts); this only saves re-writing the same item twice within a run."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

from crawler.items import (
    ArticleItem,
    HotEntryItem,
    ListingVisitedItem,
    NotModifiedItem,
    SearchHitItem,
    SourceItem,
    TopicItem,
    item_kind,
)


def dedupe_key(item: Any) -> tuple[Any, ...] | None:
    """The natural key an item is stored under (None: never deduplicated)."""
    match item:
        case ArticleItem(url=url) | HotEntryItem(url=url) | NotModifiedItem(url=url) | ListingVisitedItem(url=url):
            return (item_kind(item), url)
        case SourceItem(name=name) | TopicItem(name=name):
            return (item_kind(item), name)
        case SearchHitItem():
            return ("hit", item.keyword, item.tab, item.page, item.url)
    return None


class DedupePipeline:
    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
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
            self.stats.inc_value(f"fxcrawl/duplicate/{key[0]}")
            raise DropItem(f"duplicate {key[0]} in this run: {key[1:]}", log_level="DEBUG")
        self.seen.add(key)
        return item
