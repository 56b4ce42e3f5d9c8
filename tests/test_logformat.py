"""The log formatter drops only what LOG_LEVEL would hide anyway."""

import logging

import pytest
from conftest import article_item, make_crawler
from scrapy.exceptions import DropItem
from scrapy.http import HtmlResponse, Request

from crawler.logformat import LevelAwareLogFormatter

URL = "https://www.fx168news.com/article/1"


def formatter(level: str) -> LevelAwareLogFormatter:
    return LevelAwareLogFormatter.from_crawler(make_crawler(LOG_LEVEL=level))


@pytest.mark.parametrize(("level", "shown"), [("DEBUG", True), ("INFO", False), ("WARNING", False)])
def test_per_response_and_per_item_debug_messages_follow_log_level(level: str, shown: bool) -> None:
    crawler_formatter = formatter(level)
    response = HtmlResponse(URL, body=b"<html></html>", request=Request(URL))
    spider = make_crawler().spidercls
    crawled = crawler_formatter.crawled(response.request, response, spider)
    scraped = crawler_formatter.scraped(article_item(), response, spider)
    assert (crawled is not None, scraped is not None) == (shown, shown)
    if shown:
        assert crawled is not None and scraped is not None
        assert crawled["level"] == scraped["level"] == logging.DEBUG


def test_a_dropped_item_is_logged_at_its_own_level_when_that_is_shown() -> None:
    crawler = make_crawler(LOG_LEVEL="INFO")
    spider = crawler.spidercls.from_crawler(crawler)
    quiet = LevelAwareLogFormatter.from_crawler(crawler)
    assert quiet.dropped(article_item(), DropItem("dup", log_level="DEBUG"), None, spider) is None
    loud = quiet.dropped(article_item(), DropItem("bad", log_level="WARNING"), None, spider)
    assert loud is not None and loud["level"] == logging.WARNING


def test_the_crawl_uses_it() -> None:
    crawler = make_crawler()
    assert crawler.settings.get("LOG_FORMATTER") == "crawler.logformat.LevelAwareLogFormatter"
