"""The store pipeline on a real database: SQLite always, PostgreSQL where it runs (always in CI)."""

import pytest
from conftest import article_item, make_crawler
from sqlalchemy import func, select

from crawler.items import HotEntryItem, RejectItem, SearchHitItem, SourceItem, TopicItem
from pipelines.models import Article, HotEntry, Reject, SearchHit, Source, Topic
from pipelines.runs import database_for
from pipelines.store import StorePipeline
from pipelines.validate import ValidatePipeline


def crawl_items(database_url: str, items: list, batch_size: int = 500) -> dict:
    """Validate and store items as one crawl would; returns the crawl's stats."""
    crawler = make_crawler(FXCRAWL_DATABASE_URL=database_url, FXCRAWL_STORE_BATCH_SIZE=batch_size)
    validate = ValidatePipeline.from_crawler(crawler)
    store = StorePipeline.from_crawler(crawler)
    store.open_spider()
    for item in items:
        store.process_item(validate.process_item(item))
    store.close_spider()
    database_for(crawler).dispose()
    return crawler.stats.get_stats()


def counts(database_url: str) -> dict[str, int]:
    from pipelines.db import Database

    database = Database(database_url)
    with database.session() as session:
        result = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Article, Source, SearchHit, HotEntry, Topic, Reject)
        }
    database.dispose()
    return result


def hit(url: str, page: int = 953, rank: int = 1) -> SearchHitItem:
    return SearchHitItem(
        "现代",
        "article",
        page,
        rank,
        url,
        "标题",
        "片段",
        ["现代"],
        "金融界",
        "https://www.fx168news.com/static/source/jrj.png",
        "2023-02-24",
    )


def test_storing_twice_stores_once(database_url: str) -> None:
    items = [
        SourceItem("金融界", "https://www.fx168news.com/static/source/jrj.png"),
        *(article_item(f"https://www.fx168news.com/article/{n}") for n in range(5)),
        *(hit(f"https://www.fx168news.com/article/{n}", rank=n + 1) for n in range(5)),
        HotEntryItem(1, "热点", "https://www.fx168news.com/article/99"),
        TopicItem(1, "#话题#", "https://www.fx168news.com/topic/1", 14),
    ]
    first = crawl_items(database_url, items)
    second = crawl_items(database_url, items)
    assert counts(database_url) == {
        "articles": 5,
        "sources": 1,
        "search_hits": 5,
        "hot_entries": 1,
        "topics": 1,
        "rejects": 0,
    }
    assert first["fxcrawl/store/article/new"] == 5
    assert second.get("fxcrawl/store/article/new", 0) == 0
    assert second["fxcrawl/store/article/unchanged"] == 5


def test_duplicates_inside_one_batch_are_merged_last_wins(database_url: str) -> None:
    url = "https://www.fx168news.com/article/1"
    crawl_items(database_url, [article_item(url, title="旧标题"), article_item(url + "?from=wx", title="新标题")])
    from pipelines.db import Database

    database = Database(database_url)
    with database.session() as session:
        assert session.scalars(select(Article.title)).all() == ["新标题"]
    database.dispose()


def test_a_changed_article_is_updated_not_duplicated(database_url: str) -> None:
    url = "https://www.fx168news.com/article/1"
    crawl_items(database_url, [article_item(url)])
    stats = crawl_items(database_url, [article_item(url, body=["改写后的正文。"])])
    assert stats["fxcrawl/store/article/updated"] == 1
    assert counts(database_url)["articles"] == 1


def test_source_logo_is_not_wiped_by_items_without_one(database_url: str) -> None:
    crawl_items(database_url, [SourceItem("金融界", "https://www.fx168news.com/static/source/jrj.png")])
    crawl_items(database_url, [article_item()])  # the article names 金融界 without a logo
    from pipelines.db import Database

    database = Database(database_url)
    with database.session() as session:
        assert session.scalars(select(Source.logo_url)).all() == ["https://www.fx168news.com/static/source/jrj.png"]
    database.dispose()


def test_a_bad_item_is_recorded_with_its_reason(database_url: str) -> None:
    stats = crawl_items(database_url, [article_item(title=""), RejectItem("page", "HTTP 503", "https://x/1")])
    from pipelines.db import Database

    database = Database(database_url)
    with database.session() as session:
        rejects = session.execute(select(Reject.kind, Reject.reason, Reject.url)).all()
        payload = session.scalars(select(Reject.payload).where(Reject.kind == "article")).one()
    database.dispose()
    assert sorted(rejects) == [
        ("article", "missing title", "https://www.fx168news.com/article/1"),
        ("page", "HTTP 503", "https://x/1"),
    ]
    assert payload["source"] == "金融界" and payload["body"] == ["第一段。", "第二段。"]
    assert stats["fxcrawl/rejected"] == 1 and counts(database_url)["articles"] == 0


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_batch_size_does_not_change_what_is_stored(sqlite_url: str, batch_size: int) -> None:
    items = [article_item(f"https://www.fx168news.com/article/{n}") for n in range(7)]
    stats = crawl_items(sqlite_url, items, batch_size=batch_size)
    assert counts(sqlite_url)["articles"] == 7
    assert stats["fxcrawl/store/batches"] == -(-7 // batch_size)
