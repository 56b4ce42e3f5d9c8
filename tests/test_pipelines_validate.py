from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import article_item, make_crawler

from fx168.items import HotEntryItem, RejectItem, SearchHitItem, SourceItem, TopicItem
from pipelines.validate import ValidatePipeline, listing_hash


@pytest.fixture
def crawler():
    return make_crawler(FXCRAWL_BASE_URL="http://127.0.0.1:8168")


@pytest.fixture
def validate(crawler):
    return ValidatePipeline.from_crawler(crawler)


def test_a_good_article_is_normalised(validate) -> None:
    item = article_item(
        url="http://127.0.0.1:8168/article/7?from=wx",
        canonical_url=None,
        title="  央行 \n 发布报告 ",
        body=["  第一段。 ", "", "第二段。"],
        tags=["央行", " 央行 ", "货币政策"],
    )
    result = validate.process_item(item)
    assert result is item
    assert item.url == "https://www.fx168news.com/article/7"
    assert item.title == "央行发布报告"  # a line break between CJK characters shows as nothing
    assert item.body == ["第一段。", "第二段。"]
    assert item.tags == ["央行", "货币政策"]
    assert item.published_at == datetime(2023, 2, 24, 19, 12, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert item.content_hash and len(item.content_hash) == 64


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": "  "}, "missing title"),
        ({"source": ""}, "missing source"),
        ({"body": ["  ", ""]}, "missing body"),
        ({"url": "/article/1", "canonical_url": None}, "not an absolute http(s) URL: '/article/1'"),
    ],
)
def test_a_bad_article_becomes_a_reject_with_its_reason(validate, crawler, changes, reason) -> None:
    result = validate.process_item(article_item(**changes))
    assert isinstance(result, RejectItem)
    assert result.kind == "article" and result.reason == reason
    assert result.payload["title"] == changes.get("title", "央行发布报告")  # the original data is kept
    assert crawler.stats.get_value("fxcrawl/rejected") == 1
    assert crawler.stats.get_value("fxcrawl/rejected/article") == 1


def test_hits_sources_hot_entries_and_topics(validate) -> None:
    hit = SearchHitItem(
        "现代",
        "article",
        953,
        1,
        "http://127.0.0.1:8168/article/7",
        "标题",
        " 片段 ",
        ["现代"],
        "金融界",
        "http://127.0.0.1:8168/static/source/jrj.png",
        "2023-02-24",
    )
    assert validate.process_item(hit) is hit
    assert hit.url == "https://www.fx168news.com/article/7" and hit.snippet == "片段"
    assert hit.listed_on.isoformat() == "2023-02-24"
    assert validate.process_item(SourceItem(" 金融界 ")).name == "金融界"
    assert isinstance(validate.process_item(SourceItem("")), RejectItem)
    assert isinstance(validate.process_item(HotEntryItem(1, "", "https://www.fx168news.com/article/1")), RejectItem)
    bad_topic = validate.process_item(TopicItem(1, "#话题#", "https://www.fx168news.com/topic/1", -1))
    assert isinstance(bad_topic, RejectItem) and bad_topic.reason == "unreadable discussion count"


@pytest.mark.parametrize(
    ("title", "snippet", "date"),
    [("标题", "片段", "2023-02-24"), (" 标题\t ", "片\x00段  现代\n", " 2023-02-24 "), ("标题", "·", "3小时前")],
)
def test_a_validated_hit_has_the_listing_hash_of_the_page_as_shown(validate, title, snippet, date) -> None:
    """The incremental middleware hashes hits as parsed, the store as validated: the two must agree."""
    url = "https://www.fx168news.com/article/7"
    hit = SearchHitItem("现代", "article", 1, 1, url, title, snippet, [], "金融界", None, date)
    as_shown = listing_hash(hit)
    validate.process_item(hit)
    assert hit.listing_hash == as_shown


def test_rejects_pass_through_untouched(validate) -> None:
    reject = RejectItem("page", "HTTP 503", "https://www.fx168news.com/article/1")
    assert validate.process_item(reject) is reject


@pytest.mark.parametrize(
    ("published", "reason"),
    [
        ("2023-13-45", "unreadable date"),
        ("", "empty date"),
        ("2099-01-01 10:00", "date in the future"),
        ("昨天下午", "unreadable date"),
        ("1989-06-01", "date before 1990"),
    ],
)
def test_an_unreadable_date_keeps_the_article_with_its_date_unknown(validate, crawler, published, reason) -> None:
    item = article_item(published=published)
    assert validate.process_item(item) is item  # kept, not rejected
    assert item.published_at is None  # unknown: never the crawl time
    assert item.published == published
    assert crawler.stats.get_value("fxcrawl/dates/unknown/article") == 1
    assert crawler.stats.get_value(f"fxcrawl/dates/unknown/reason/{reason}") == 1  # counted by why
    assert not crawler.stats.get_value("fxcrawl/rejected")


def test_the_machine_readable_time_wins_over_coarser_visible_text(validate) -> None:
    item = article_item(published="02-24", published_datetime="2023-02-24T19:12:30+08:00")
    item.fetched_at = datetime(2023, 2, 25, 3, 0, tzinfo=ZoneInfo("UTC"))
    validate.process_item(item)
    assert item.published_at == datetime(2023, 2, 24, 19, 12, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert item.published == "02-24"  # the page's own text is what is stored as shown


def test_invisible_characters_are_dropped_from_every_text_name_and_key(validate) -> None:
    zw = "\u200b\ufeff\u00ad\u2060"
    item = article_item(
        url=f"http://127.0.0.1:8168/article/7{zw}",
        canonical_url=None,
        title=f"央行{zw}发布报告",
        source=f"\u200b金融界{zw}",
        author=f"张{zw}晓",
        body=[f"第一段。{zw}", f"{zw}", f"第二\u200c段。\n{zw}第三行"],
        tags=[f"央行{zw}", "央行"],
    )
    validate.process_item(item)
    assert (item.url, item.title, item.source, item.author) == (
        "https://www.fx168news.com/article/7",
        "央行发布报告",
        "金融界",
        "张晓",
    )
    assert item.body == ["第一段。", "第二段。\n第三行"]  # a <br> line break is kept
    assert item.tags == ["央行"]
    source = SourceItem(f"金融{zw}界")
    hit = SearchHitItem(f"现{zw}代", "article", 1, 1, item.url, f"央{zw}行", f"片{zw}段", [], f"金融界{zw}", None, "")
    validate.process_item(source)
    validate.process_item(hit)
    assert (source.name, hit.source, hit.keyword, hit.title, hit.snippet) == (
        "金融界",
        "金融界",
        "现代",
        "央行",
        "片段",
    )


def test_relative_dates_resolve_against_the_fetch_time_not_the_clock(validate) -> None:
    from datetime import UTC

    fetched = datetime(2023, 2, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    item = article_item(published="3小时前", fetched_at=fetched)
    validate.process_item(item)
    assert item.published_at == datetime(2023, 2, 24, 7, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
