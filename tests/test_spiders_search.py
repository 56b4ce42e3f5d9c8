"""The spider's routing, on fixture pages handed to it as responses (no engine, no network)."""

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_crawler
from scrapy import Request
from scrapy.http import HtmlResponse

from crawler.spiders.search import SearchSpider, parse_page_spec
from fx168 import site
from fx168.items import HotEntryItem, RejectItem, SearchHitItem, SourceItem, TopicItem
from replay.server import FixtureDirectory

BASE = "http://127.0.0.1:8168"
FIXTURES = FixtureDirectory()


def spider(**args) -> SearchSpider:
    return SearchSpider.from_crawler(make_crawler(FXCRAWL_BASE_URL=BASE), **args)


def response(url: str, request: Request | None = None) -> HtmlResponse:
    parts = url.removeprefix(BASE).partition("?")
    body = FIXTURES.get(parts[0], parts[2])
    assert body is not None, url
    return HtmlResponse(url=url, body=body, encoding="utf-8", request=request or Request(url))


def start_requests(s: SearchSpider) -> list[Request]:
    async def collect():
        return [request async for request in s.start()]

    return asyncio.run(collect())


def test_page_spec() -> None:
    assert parse_page_spec("951-955") == [(951, 955)]
    assert parse_page_spec("1, 951-955 ,1000") == [(1, 1), (951, 955), (1000, 1000)]
    assert parse_page_spec(None) == parse_page_spec("") == []
    for bad in ("0-3", "5-2", "1001", "a", "1-", "3,,4"):
        with pytest.raises(ValueError):
            parse_page_spec(bad)


def test_starts_at_the_first_page_of_each_range_on_the_configured_host() -> None:
    requests = start_requests(spider(keyword="现代", pages="1,951-955"))
    assert [r.url for r in requests] == [site.search_url("现代", 1, base=BASE), site.search_url("现代", 951, base=BASE)]
    assert [r.cb_kwargs["last"] for r in requests] == [1, 955]
    assert [r.url for r in start_requests(spider())] == [site.search_url("现代", 1, base=BASE)]


def test_a_listing_yields_records_follows_results_and_the_next_page() -> None:
    s = spider(pages="951-955")
    url = site.search_url("现代", 953, base=BASE)
    out = list(s.parse_listing(response(url), last=955))
    hits = [o for o in out if isinstance(o, SearchHitItem)]
    details = [o for o in out if isinstance(o, Request) and "/article/" in o.url]
    listings = [o for o in out if isinstance(o, Request) and "/search" in o.url]
    assert len(hits) == 10 and len(details) == 10
    assert [site.canonical_url(r.url, BASE) for r in details] == [site.canonical_url(h.url, BASE) for h in hits]
    sources = [o for o in out if isinstance(o, SourceItem)]
    assert [(o.name, o.logo_url) for o in sources] == list(dict.fromkeys((h.source, h.source_logo) for h in hits))
    assert len(sources) == 4  # 金融界, 金色财经, 格上财富, 证券之星: each outlet once, not once per result
    assert sum(isinstance(o, HotEntryItem) for o in out) == 5
    assert sum(isinstance(o, TopicItem) for o in out) == 5
    assert [r.url for r in listings] == [site.search_url("现代", 954, base=BASE)]
    again = list(s.parse_listing(response(url), last=955))
    assert not [o for o in again if isinstance(o, SourceItem)]  # already yielded in this run
    assert len([o for o in again if isinstance(o, SearchHitItem)]) == 10


def test_paging_stops_at_the_end_of_the_range_and_at_max_pages() -> None:
    url = site.search_url("现代", 955, base=BASE)
    out = list(spider(pages="951-955").parse_listing(response(url), last=955))
    assert not [o for o in out if isinstance(o, Request) and "/search" in o.url]
    limited = spider(pages="951-955", max_pages="1")
    start_requests(limited)
    out = list(limited.parse_listing(response(site.search_url("现代", 951, base=BASE)), last=955))
    assert not [o for o in out if isinstance(o, Request) and "/search" in o.url]


def test_an_article_page_yields_one_article() -> None:
    s = spider()
    out = list(s.parse_article(response(f"{BASE}/article/1049185")))
    assert len(out) == 1 and out[0].title == "央行发布2022年第四季度中国货币政策执行报告"
    assert s.crawler.stats.get_value("fxcrawl/pages/detail") == 1


def test_a_page_that_does_not_parse_is_recorded_not_dropped() -> None:
    s = spider()
    bad = HtmlResponse(url=f"{BASE}/article/1", body=b"<html><body>maintenance</body></html>", encoding="utf-8")
    out = list(s.parse_article(bad))
    assert len(out) == 1 and isinstance(out[0], RejectItem)
    assert out[0].kind == "page" and "not an article page" in out[0].reason and out[0].url == f"{BASE}/article/1"
    assert s.crawler.stats.get_value("fxcrawl/pages/unparsable") == 1


def test_side_lists_already_yielded_by_the_run_are_not_yielded_again() -> None:
    s = spider(pages="951-955")
    first = list(s.parse_listing(response(site.search_url("现代", 953, base=BASE)), last=955))
    again = list(s.parse_listing(response(site.search_url("现代", 953, base=BASE)), last=955))
    assert sum(isinstance(o, HotEntryItem | TopicItem) for o in first) == 10
    assert not [o for o in again if isinstance(o, HotEntryItem | TopicItem)]
    assert sum(isinstance(o, SearchHitItem) for o in again) == 10


def test_no_callback_is_a_generator_that_returns_a_value() -> None:
    """What Scrapy's WARN_ON_GENERATOR_RETURN_VALUE would check on every response (it is off)."""
    from scrapy.utils.misc import is_generator_with_return_value

    s = spider()
    callbacks: list[Callable[..., Any]] = [s.parse_listing, s.parse_article, s.failed, s._new_sidebar_entries]
    assert all(inspect.isgeneratorfunction(c) for c in callbacks)
    assert not any(is_generator_with_return_value(c) for c in callbacks)
