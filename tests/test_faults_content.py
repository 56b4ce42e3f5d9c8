"""Issue 5, content half: what hostile or broken pages do to a crawl, on SQLite and PostgreSQL.

Pages are handed to the real spider as responses; what it yields goes through validate and the
store into a real database, and the tests read back what was kept, what was rejected and why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import article_item, make_crawler
from scrapy import Request
from scrapy.http import HtmlResponse
from sqlalchemy import func, inspect, select, text

from crawler.spiders.search import SearchSpider
from fx168.items import HotEntryItem, SearchHitItem
from fx168.parsing import PageParseError, parse_article_page, parse_search_page
from fx168.parsing.text import TRUNCATED
from pipelines.store import StorePipeline
from pipelines.validate import ValidatePipeline
from replay.server import FIXTURE_SITE
from storage import queries
from storage.db import Database
from storage.migrations import upgrade
from storage.models import Article, FrontierEntry, Reject, SearchHit

BASE = "http://127.0.0.1:8168"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SEARCH_1 = FIXTURE_SITE / "search" / "现代" / "article" / "page-1.html"


def article_html(
    title: str = "央行发布报告",
    body: str = "<p>第一段。</p><p>第二段。</p>",
    *,
    source: str = "金融界",
    published: str = "2023-02-24 19:12",
    canonical: str | None = None,
    head: str = "",
) -> str:
    """An article page in the portal's markup (the selectors of fx168.site)."""
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>FX168</title>'
        f"{link}{head}</head><body><main class='article-page'><article class='article-detail'>"
        f"<h1 class='article-title'>{title}</h1>"
        "<div class='article-meta'><span class='article-source'>来源:"
        f"<a class='source-name' href='/source/jrj'>{source}</a></span>"
        "<span class='article-author'>作者:<span class='author-name'>张晓</span></span>"
        f"<time class='article-time'>{published}</time></div>"
        f"<div class='article-body'>{body}</div>"
        "<div class='article-tags'><a class='tag' href='/tag/x'>央行</a></div>"
        "</article></main><script>window.__FX168__ = {};</script></body></html>"
    )


class Crawl:
    """The spider, validate and store of one crawl, fed responses by hand."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.crawler = make_crawler(FXCRAWL_DATABASE_URL=database_url, FXCRAWL_BASE_URL=BASE)
        self.spider = SearchSpider.from_crawler(self.crawler)
        self.validate = ValidatePipeline.from_crawler(self.crawler)
        self.store = StorePipeline.from_crawler(self.crawler)
        self.store.open_spider()

    def page(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8") -> None:
        url = BASE + path
        raw = body.encode("utf-8") if isinstance(body, str) else body
        response = HtmlResponse(url, body=raw, headers={"Content-Type": content_type}, request=Request(url))
        for item in self.spider.parse_article(response):
            self.item(item)

    def item(self, item: Any) -> None:
        self.store.process_item(self.validate.process_item(item))

    def finish(self) -> dict[str, Any]:
        self.store.close_spider()
        self.store.writer.database.dispose()
        return self.crawler.stats.get_stats()


def read(database_url: str, statement: Any) -> list[Any]:
    database = Database(database_url)
    try:
        with database.session() as session:
            return list(session.execute(statement).all())
    finally:
        database.dispose()


def rejects(database_url: str) -> dict[str, tuple[str, str]]:
    """url -> (kind, reason)"""
    return {
        url: (kind, reason) for url, kind, reason in read(database_url, select(Reject.url, Reject.kind, Reject.reason))
    }


def canonical(article_id: int) -> str:
    return f"https://www.fx168news.com/article/{article_id}"


# -- 1. malformed HTML ----------------------------------------------------------------------

NESTED = "<div>" * 10_000 + "深" + "</div>" * 10_000


def test_malformed_html_is_read_or_rejected_with_its_reason(database_url: str) -> None:
    crawl = Crawl(database_url)
    unclosed = article_html(
        "央行发布报告<b>要闻",
        "<p>第一段<p>第二段<b>加粗</p><p>第三段<a href='/article/9'>链接</p><p>第四段<span class='x'>尾",
    ).replace("</article>", "")  # nor is the article element
    whole = article_html(body="<p>第一段。</p>" * 50)
    crawl.page("/article/1", unclosed)
    crawl.page("/article/2", whole[: len(whole) // 2])  # the download stopped halfway
    crawl.page("/article/3", article_html(title=""))  # no title
    crawl.page("/article/4", article_html(body=f"<p>正文。</p>{NESTED}<p>更多正文。</p>"))
    crawl.page("/article/5", article_html(head=NESTED))  # nested in the head, before the article
    crawl.page("/article/6", b"")  # an empty 200
    stats = crawl.finish()

    stored = read(database_url, select(Article.url, Article.title, Article.body))
    assert stored == [(canonical(1), "央行发布报告要闻", "第一段\n\n第二段加粗\n\n第三段链接\n\n第四段尾")]
    deep = "markup nested too deeply to read to the end (Excessive depth in document: 2048)"
    assert rejects(database_url) == {
        canonical(2): ("page", TRUNCATED),
        canonical(3): ("article", "missing title"),
        canonical(4): ("page", deep),
        canonical(5): ("page", deep),
        canonical(6): ("page", TRUNCATED),
    }
    assert stats["fxcrawl/pages/unparsable"] == 4  # pages: truncated, nested twice, empty
    assert stats["fxcrawl/rejected/article"] == 1  # items: the one without a title
    assert stats["fxcrawl/rejected/reason/missing title"] == 1
    assert stats["fxcrawl/rejected/reason/truncated page"] == 2
    assert stats["fxcrawl/rejected/reason/markup nested too deeply to read to the end"] == 2
    assert stats["fxcrawl/store/reject/written"] == 5
    assert "spider_exceptions" not in str(stats)


def test_a_broken_listing_page_says_why() -> None:
    url = "https://www.fx168news.com/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=1"
    listing = SEARCH_1.read_text(encoding="utf-8")
    assert len(parse_search_page(listing, url).hits) == 10
    with pytest.raises(PageParseError) as cut:
        parse_search_page(listing[: len(listing) * 3 // 4], url)
    assert cut.value.reason == TRUNCATED
    nested = listing.replace("<ul class=", NESTED + "<ul class=", 1)
    with pytest.raises(PageParseError, match="nested too deeply"):
        parse_search_page(nested, url, use_json=False)
    # its JSON still reads: the records come from there, and the unreadable HTML is reported
    page = parse_search_page(nested, url)
    assert len(page.hits) == 10 and len(page.drift) == 1
    assert page.drift[0].startswith("disagree: the HTML gives no record (markup nested too deeply")


# -- 2. dates ------------------------------------------------------------------------------

FETCHED = datetime(2023, 2, 25, 3, 0, tzinfo=UTC)  # 11:00 on 25 February in Shanghai
DATES = {
    "3小时前": datetime(2023, 2, 25, 8, 0, tzinfo=SHANGHAI),
    "昨天 10:30": datetime(2023, 2, 24, 10, 30, tzinfo=SHANGHAI),
    "2月24日": datetime(2023, 2, 24, 0, 0, tzinfo=SHANGHAI),
    "2023年02月24日 10:05": datetime(2023, 2, 24, 10, 5, tzinfo=SHANGHAI),
    "2023-13-45": None,
    "": None,
    "2099-01-01 10:00": None,
    "1900-01-01": None,
}


def test_dates_resolve_against_the_fetch_time_and_unknown_ones_are_kept_as_unknown(database_url: str) -> None:
    crawl = Crawl(database_url)
    for n, shown in enumerate(DATES):
        crawl.item(article_item(canonical(n), published=shown, fetched_at=FETCHED))
    stats = crawl.finish()

    stored = {
        url: (published_at, unknown, shown)
        for url, published_at, unknown, shown in read(
            database_url, select(Article.url, Article.published_at, Article.published_unknown, Article.published_text)
        )
    }
    assert len(stored) == len(DATES), "every article is kept, whatever its date says"
    for n, (shown, expected) in enumerate(DATES.items()):
        assert stored[canonical(n)] == (expected, expected is None, shown), shown
    assert stats["fxcrawl/dates/unknown/article"] == 4
    assert "fxcrawl/rejected" not in stats
    # Unknown dates are listed last, on both databases.
    database = Database(database_url)
    with database.session() as session:
        listed = queries.list_articles(session, limit=100)
        undated = queries.get_article(session, canonical(4))
    database.dispose()
    assert [a["published_at"] is None for a in listed] == [False] * 4 + [True] * 4
    assert undated is not None
    assert (undated["published_at"], undated["published_unknown"], undated["published_text"]) == (
        None,
        True,
        "2023-13-45",
    )


def test_without_a_fetch_time_relative_dates_fall_back_to_the_clock(sqlite_url: str) -> None:
    crawl = Crawl(sqlite_url)
    before = datetime.now(UTC)
    crawl.item(article_item(canonical(1), published="3小时前"))
    crawl.finish()
    [(published_at,)] = read(sqlite_url, select(Article.published_at))
    assert before - timedelta(hours=3, seconds=1) <= published_at <= datetime.now(UTC) - timedelta(hours=3)


def test_a_listing_date_that_is_unreadable_keeps_the_hit(database_url: str) -> None:
    crawl = Crawl(database_url)
    hit = SearchHitItem("现代", "article", 1, 1, canonical(1), "标题", "片段", [], "金融界", None, "明天?")
    crawl.item(hit)
    stats = crawl.finish()
    assert read(database_url, select(SearchHit.article_url, SearchHit.listed_on)) == [(canonical(1), None)]
    assert stats["fxcrawl/dates/unknown/hit"] == 1


def test_migration_0003_marks_existing_articles_as_dated(database_url: str) -> None:
    database = Database(database_url)
    upgrade(database.engine, "0002")
    with database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO sources (name, first_seen_at, last_seen_at) VALUES ('金融界', :t, :t)"), {"t": FETCHED}
        )
        connection.execute(
            text(
                "INSERT INTO articles (url, title, source_id, published_at, published_text, body, tags,"
                " content_hash, first_seen_at, updated_at)"
                " VALUES (:url, '标题', 1, :t, '2023-02-25 11:00', '正文', '[]', 'h', :t, :t)"
            ),
            {"url": canonical(1), "t": FETCHED},
        )
    upgrade(database.engine, "head")
    database.dispose()
    assert read(database_url, select(Article.url, Article.published_unknown)) == [(canonical(1), False)]


# -- 3. one article, many spellings of its URL ------------------------------------------------

SPELLINGS = [
    "https://www.fx168news.com/article/7",
    "http://www.fx168news.com/article/7",
    "https://www.fx168news.com/article/7#comments",
    "https://www.fx168news.com/article/7?from=timeline",
    "https://www.fx168news.com/article/7?utm_source=wx&utm_medium=share&utm_campaign=x",
    "http://WWW.FX168NEWS.COM/article/7?utm_term=a&from=groupmessage#top",
    "https://m.fx168news.com/article/7?spm=a.b.c",
    f"{BASE}/article/7?from=wx",  # the replay server standing in for the portal
]


def test_tracking_parameters_fragments_and_schemes_make_one_row(database_url: str) -> None:
    crawl = Crawl(database_url)
    for rank, url in enumerate(SPELLINGS, start=1):
        crawl.item(article_item(url, canonical_url=None, title=f"标题{rank}"))
        crawl.item(article_item(canonical(8), canonical_url=url, title=f"规范{rank}"))  # rel=canonical spelled so
        crawl.item(SearchHitItem("现代", "article", 1, rank, url, "标题", "片段", [], "金融界", None, "2023-02-24"))
    stats = crawl.finish()

    assert read(database_url, select(Article.url, Article.title)) == [(canonical(7), f"规范{len(SPELLINGS)}")]
    assert read(database_url, select(SearchHit.article_url)) == [(canonical(7),)]
    # /article/8, whose page names 7 as canonical, was fetched too: nothing is owed for it
    frontier = read(database_url, select(FrontierEntry.url, FrontierEntry.state).order_by(FrontierEntry.url))
    assert frontier == [(canonical(7), "fetched"), (canonical(8), "fetched")]
    assert stats["fxcrawl/store/article/new"] == 1
    assert "fxcrawl/rejected" not in stats


# -- 4. hostile content -----------------------------------------------------------------------

SQL_TITLE = "'); DROP TABLE articles; -- 央行报告"
SQL_BODY = "Robert'); DROP TABLE students;-- 1=1 OR '1'='1'; DELETE FROM rejects WHERE 1=1;"


def test_hostile_markup_is_stored_as_plain_text_and_sql_looking_text_verbatim(database_url: str) -> None:
    crawl = Crawl(database_url)
    body = (
        "<p>第一段<script>alert('x')</script>。<img src=x onerror=alert(1)></p>"
        "<p><a href='javascript:alert(2)' onclick='steal()'>第二段链接</a><style>p{color:red}</style></p>"
        "<p><noscript>请启用脚本</noscript><template><b>模板</b></template>第三段\x00结束</p>"
        f"<p>{SQL_BODY.replace('<', '&lt;')}</p>"
    )
    crawl.page("/article/1", article_html(SQL_TITLE.replace("'", "&#39;"), body, canonical="javascript:alert(3)"))
    crawl.page("/article/2", article_html("另一篇", canonical="https://evil.example/article/2"))
    crawl.page("/article/3", article_html("站内首页", canonical="https://www.fx168news.com/"))
    crawl.item(HotEntryItem(1, "热点", "javascript:alert(4)"))
    crawl.item(HotEntryItem(2, "热\x00点", "javascript:\x00alert(6)"))  # a reject full of NULs is stored too
    crawl.item(
        SearchHitItem("现代", "article", 1, 1, "javascript:alert(5)", "标题", "片段", [], "金融界", None, "2023-02-24")
    )
    stats = crawl.finish()

    stored = dict(read(database_url, select(Article.url, Article.body)))
    assert sorted(stored) == [canonical(1), canonical(2), canonical(3)]  # hostile canonical links ignored
    assert stored[canonical(1)] == f"第一段。\n\n第二段链接\n\n第三段结束\n\n{SQL_BODY}"
    for forbidden in ("alert", "onerror", "javascript", "<", "color:red", "请启用脚本", "模板", "\x00"):
        assert all(forbidden not in text_ for text_ in stored.values()), forbidden
    assert read(database_url, select(Article.title).where(Article.url == canonical(1))) == [(SQL_TITLE,)]
    assert stats["fxcrawl/validated/canonical_ignored"] == 3
    assert sorted(reason for kind, reason in rejects(database_url).values()) == sorted(
        [
            "not an absolute http(s) URL: 'javascript:alert(4)'",
            "not an absolute http(s) URL: 'javascript:alert(5)'",
            "not an absolute http(s) URL: 'javascript:\\x00alert(6)'",
        ]
    )
    # Every table is still there, and searching for SQL finds it as text.
    database = Database(database_url)
    assert {"articles", "rejects", "sources", "search_hits"} <= set(inspect(database.engine).get_table_names())
    with database.session() as session:
        assert session.scalar(select(func.count(Reject.id))) == 3
        payload = session.scalar(select(Reject.payload).where(Reject.url == "javascript:alert(6)"))
        assert payload == {"rank": 2, "title": "热点", "url": "javascript:\x00alert(6)"}
        found = queries.list_articles(session, search="DROP TABLE students;--")
        assert [a["url"] for a in found] == [canonical(1)]
        assert queries.list_articles(session, search="%'; --") == []
    database.dispose()


def test_overlong_fields_are_rejected_not_left_to_fail_the_batch(database_url: str) -> None:
    crawl = Crawl(database_url)
    crawl.item(article_item(canonical(1), title="长" * 1001))
    crawl.item(article_item(canonical(2), source="源" * 201))
    long_url = canonical(int("9" * 1000))  # whatever the query says, an article's URL is its id
    crawl.item(article_item(long_url))
    crawl.item(article_item(canonical(4), published="时间" * 100))  # kept: its text is cut to the column
    crawl.item(article_item(canonical(5)))
    stats = crawl.finish()
    assert sorted(url for (url,) in read(database_url, select(Article.url))) == [canonical(4), canonical(5)]
    assert sorted(reason for _, reason in rejects(database_url).values()) == [
        f"URL too long ({len(long_url)} characters, at most 1000)",
        "source too long (201 characters, at most 200)",
        "title too long (1001 characters, at most 1000)",
    ]
    assert "fxcrawl/store/spooled_items" not in stats  # nothing failed the batch it was in


# -- 5. mojibake ----------------------------------------------------------------------------

TITLE, BODY = "央行发布2022年第四季度中国货币政策执行报告", "中国人民银行今日发布报告，强调稳健的货币政策要精准有力。"


def garbled_by(title: str, body: str, encoding: str) -> tuple[str, str]:
    """What GBK bytes look like decoded as ``encoding``."""
    garbled = [s.encode("gbk").decode(encoding, errors="replace") for s in (title, body)]
    return garbled[0], garbled[1]


def test_mojibake_is_rejected_with_an_encoding_reason(database_url: str) -> None:
    crawl = Crawl(database_url)
    latin1_title, latin1_body = garbled_by(TITLE, BODY, "iso-8859-1")
    utf8_title, utf8_body = garbled_by(TITLE, BODY, "utf-8")
    crawl.item(article_item(canonical(1), title=latin1_title, body=[latin1_body]))
    crawl.item(article_item(canonical(2), title=utf8_title, body=[utf8_body]))
    crawl.item(article_item(canonical(3), body=[latin1_body]))  # only the body garbled
    crawl.item(SearchHitItem("现代", "article", 1, 1, canonical(4), utf8_title, "", [], "金融界", None, "2023-02-24"))
    # Whole pages served as GBK but labelled otherwise: the decoding itself garbles them.
    page = article_html(TITLE, f"<p>{BODY}</p>").replace('charset="utf-8"', 'charset="gbk"').encode("gbk")
    crawl.page("/article/5", page, "text/html; charset=iso-8859-1")
    crawl.page("/article/6", page, "text/html; charset=utf-8")
    crawl.page("/article/7", page, "text/html; charset=gbk")  # labelled right: kept
    # Western names and the punctuation Chinese text uses are not mojibake.
    crawl.item(
        article_item(canonical(8), title="法国兴业银行(Société Générale)·埃隆·马斯克 ±3°", body=["Nestlé 与 L'Oréal。"])
    )
    stats = crawl.finish()

    kept = sorted(url for (url,) in read(database_url, select(Article.url)))
    assert kept == [canonical(7), canonical(8)]
    reasons = rejects(database_url)
    assert sorted(reasons) == [canonical(n) for n in range(1, 7)]
    assert all(reason.startswith("encoding") for _, reason in reasons.values()), reasons
    assert reasons[canonical(1)][1].startswith("encoding: garbled title: Latin-1 characters")
    assert reasons[canonical(2)][1].startswith("encoding: garbled title:") and "U+FFFD" in reasons[canonical(2)][1]
    assert reasons[canonical(3)][1].startswith("encoding: garbled body")
    assert reasons[canonical(4)] == ("hit", reasons[canonical(4)][1])
    assert stats["fxcrawl/rejected/reason/encoding"] == 6
    assert stats["fxcrawl/rejected"] == 6
    assert read(database_url, select(Article.title).where(Article.url == canonical(7))) == [(TITLE,)]


def test_an_article_page_parses_in_a_few_milliseconds_without_its_scripts() -> None:
    import time

    html = (FIXTURE_SITE / "article" / "1049185.html").read_text(encoding="utf-8")
    started = time.perf_counter()
    for _ in range(50):
        article = parse_article_page(html, canonical(1049185)).article
    assert (time.perf_counter() - started) / 50 < 0.02
    assert "__FX168__" not in " ".join(article.body)


def test_the_fetch_time_survives_the_spool(tmp_path) -> None:
    from storage.spool import Spool

    spool = Spool(tmp_path)
    item = article_item(canonical(1), published="3小时前", fetched_at=FETCHED)
    hit = SearchHitItem("现代", "article", 1, 1, canonical(1), "标题", "片段", [], "金融界", None, "昨天")
    hit.fetched_at = FETCHED
    [read_item, read_hit] = Spool.read(spool.write([item, hit], "test"))
    assert read_item.fetched_at == FETCHED and read_hit.fetched_at == FETCHED
