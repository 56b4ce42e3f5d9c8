import pytest
from conftest import article_item, make_crawler
from scrapy.exceptions import DropItem

from fx168.items import RejectItem, SearchHitItem, SourceItem
from pipelines.dedupe import DedupePipeline


def hit(page: int, url: str = "https://www.fx168news.com/article/1") -> SearchHitItem:
    return SearchHitItem("现代", "article", page, 1, url, "t", "s", [], "金融界", None, "2023-02-24")


def test_second_sighting_in_a_run_is_dropped_and_counted() -> None:
    crawler = make_crawler()
    dedupe = DedupePipeline.from_crawler(crawler)
    dedupe.process_item(article_item())
    with pytest.raises(DropItem):
        dedupe.process_item(article_item())
    dedupe.process_item(SourceItem("金融界"))
    with pytest.raises(DropItem):
        dedupe.process_item(SourceItem("金融界"))
    assert crawler.stats.get_value("fxcrawl/duplicate/article") is None  # held until close (or 1,000 counts)
    dedupe.close_spider()
    assert crawler.stats.get_value("fxcrawl/duplicate/article") == 1
    assert crawler.stats.get_value("fxcrawl/duplicate/source") == 1


def test_the_same_article_on_two_pages_is_two_hits() -> None:
    dedupe = DedupePipeline.from_crawler(make_crawler())
    dedupe.process_item(hit(952))
    dedupe.process_item(hit(953))
    with pytest.raises(DropItem):
        dedupe.process_item(hit(953))


def test_rejects_are_never_deduplicated() -> None:
    dedupe = DedupePipeline.from_crawler(make_crawler())
    reject = RejectItem("page", "HTTP 404", "u")
    assert dedupe.process_item(reject) is reject
    assert dedupe.process_item(reject) is reject
