"""The store pipeline on a real database: SQLite always, PostgreSQL where it runs (always in CI)."""

import logging
import sqlite3
import time

import pytest
from conftest import article_item, make_crawler, unwritable
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from fx168.items import HotEntryItem, RejectItem, SearchHitItem, SourceItem, TopicItem
from fxcrawl.cli import main as cli
from pipelines.database import database_for
from pipelines.store import BatchWriter, StorePipeline, spool_dir_for
from pipelines.validate import ValidatePipeline
from storage.models import Article, FrontierEntry, HotEntry, Reject, SearchHit, Source, Topic
from storage.spool import Spool


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
    from storage.db import Database

    database = Database(database_url)
    with database.session() as session:
        result = {
            model.__tablename__: session.scalars(select(func.count()).select_from(model)).one()
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
    from storage.db import Database

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


def test_the_frontier_keeps_what_the_listing_said_when_an_article_comes_alone(database_url: str) -> None:
    """An article fetched with its listing entry in one batch is stored fetched, with the entry's
    hash; fetched again without the entry (a revisit) it keeps that hash; a changed entry sends
    it back to be fetched."""
    from storage.db import Database

    url = "https://www.fx168news.com/article/1"

    def row() -> tuple:
        database = Database(database_url)
        with database.session() as session:
            found = session.execute(
                select(FrontierEntry.state, FrontierEntry.listing_hash).where(FrontierEntry.url == url)
            ).one()
        database.dispose()
        return tuple(found)

    crawl_items(database_url, [hit(url), article_item(url)])
    state, listed = row()
    assert state == "fetched" and listed is not None
    crawl_items(database_url, [article_item(url, body=["改写后的正文。"])])
    assert row() == ("fetched", listed)
    changed = hit(url)
    changed.title = "改过的标题"
    crawl_items(database_url, [changed])
    state, relisted = row()
    assert state == "discovered" and relisted not in (None, listed)


@pytest.mark.parametrize("same_batch", [True, False])
def test_an_article_stored_under_its_canonical_link_leaves_nothing_owed(database_url: str, same_batch: bool) -> None:
    """The listing links /article/100; the page fetched there names /article/200 as canonical. The
    article is stored once, under 200, and both URLs are fetched: the next run owes neither."""
    from storage.db import Database
    from storage.frontier import Frontier, RecrawlPolicy

    listed, named = "https://www.fx168news.com/article/100", "https://www.fx168news.com/article/200"
    if same_batch:
        crawl_items(database_url, [hit(listed), article_item(listed, canonical_url=named)])
    else:
        crawl_items(database_url, [hit(listed)])
        crawl_items(database_url, [article_item(listed, canonical_url=named)])
    database = Database(database_url)
    try:
        with database.session() as session:
            assert session.scalars(select(Article.url)).all() == [named]
            states = dict(session.execute(select(FrontierEntry.url, FrontierEntry.state)).all())
            listed_hash = session.scalar(select(FrontierEntry.listing_hash).where(FrontierEntry.url == listed))
        assert states == {listed: "fetched", named: "fetched"}
        assert listed_hash is not None  # what the listing said of it, for the next run to compare
        assert Frontier(database, RecrawlPolicy()).pending() == []
    finally:
        database.dispose()


def test_source_logo_is_not_wiped_by_items_without_one(database_url: str) -> None:
    crawl_items(database_url, [SourceItem("金融界", "https://www.fx168news.com/static/source/jrj.png")])
    crawl_items(database_url, [article_item()])  # the article names 金融界 without a logo
    from storage.db import Database

    database = Database(database_url)
    with database.session() as session:
        assert session.scalars(select(Source.logo_url)).all() == ["https://www.fx168news.com/static/source/jrj.png"]
    database.dispose()


def test_a_bad_item_is_recorded_with_its_reason(database_url: str) -> None:
    stats = crawl_items(database_url, [article_item(title=""), RejectItem("page", "HTTP 503", "https://x/1")])
    from storage.db import Database

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


# -- failures: retries, the spool, replay ------------------------------------------------

FAST_RETRIES = {"FXCRAWL_STORE_RETRY_ATTEMPTS": 3, "FXCRAWL_STORE_RETRY_MAX_WAIT": 0.05}


def pipeline_for(database_url: str, spool_dir, **settings):
    crawler = make_crawler(
        FXCRAWL_DATABASE_URL=database_url, FXCRAWL_SPOOL_DIR=str(spool_dir), **{**FAST_RETRIES, **settings}
    )
    return crawler, ValidatePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)


def articles(start: int, stop: int) -> list:
    return [article_item(f"https://www.fx168news.com/article/{n}") for n in range(start, stop)]


def test_a_transient_error_is_retried_then_the_batch_is_stored(sqlite_url, tmp_path, monkeypatch, caplog) -> None:
    real_write, calls = BatchWriter.write, []

    def flaky(self, items, run_id):
        calls.append(len(items))
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return real_write(self, items, run_id)

    monkeypatch.setattr(BatchWriter, "write", flaky)
    crawler, validate, store = pipeline_for(sqlite_url, tmp_path)
    store.open_spider()
    with caplog.at_level(logging.WARNING, logger="pipelines.store"):
        for item in articles(0, 3):
            store.process_item(validate.process_item(item))
        store.close_spider()
    assert calls == [3, 3]
    assert crawler.stats.get_value("fxcrawl/store/retries") == 1
    assert crawler.stats.get_value("fxcrawl/store/article/new") == 3
    assert not crawler.stats.get_value("fxcrawl/store/spooled_items")
    assert any(
        "retrying" in record.getMessage() and "database is locked" in record.getMessage() for record in caplog.records
    )
    assert counts(sqlite_url)["articles"] == 3


def test_an_integrity_error_is_not_retried(sqlite_url, tmp_path, monkeypatch) -> None:
    def broken(self, items, run_id):
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL constraint failed"))

    monkeypatch.setattr(BatchWriter, "write", broken)
    crawler, validate, store = pipeline_for(sqlite_url, tmp_path)
    store.open_spider()
    for item in articles(0, 2):
        store.process_item(validate.process_item(item))
    store.close_spider()
    assert not crawler.stats.get_value("fxcrawl/store/retries")
    assert crawler.stats.get_value("fxcrawl/store/spooled_items") == 2


def test_an_unwritable_database_spools_then_replay_stores_each_item_once(database_url, tmp_path) -> None:
    db = f"{database_url}?timeout=0.2" if database_url.startswith("sqlite") else database_url
    crawler, validate, store = pipeline_for(db, tmp_path, FXCRAWL_STORE_BATCH_SIZE=5)
    store.open_spider()
    for item in articles(0, 5):  # one full batch: stored
        store.process_item(validate.process_item(item))
    deadline = time.monotonic() + 10
    while crawler.stats.get_value("fxcrawl/store/article/new", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    with unwritable(db):
        for item in articles(5, 17):  # 12 more: the database refuses them
            store.process_item(validate.process_item(item))
        store.close_spider()
    database_for(crawler).dispose()

    spooled = crawler.stats.get_value("fxcrawl/store/spooled_items")
    assert counts(db)["articles"] == 5
    assert spooled == 12  # spool count equals what is missing
    spool = Spool(spool_dir_for(tmp_path, db))
    assert spool.pending_items() == 12

    assert cli(["spool", "replay", "--db", db, "--spool-dir", str(tmp_path)]) == 0
    assert counts(db)["articles"] == 17 and spool.files() == []
    assert cli(["spool", "replay", "--db", db, "--spool-dir", str(tmp_path)]) == 0
    assert counts(db)["articles"] == 17


def test_the_next_crawl_replays_the_spool_first(sqlite_url, tmp_path) -> None:
    spool = Spool(spool_dir_for(tmp_path, sqlite_url))
    crawler, validate, _ = pipeline_for(sqlite_url, tmp_path)
    spool.write([validate.process_item(item) for item in articles(0, 4)], "test")
    crawler, validate, store = pipeline_for(sqlite_url, tmp_path)
    store.open_spider()
    store.close_spider()
    assert crawler.stats.get_value("fxcrawl/spool/replayed_items") == 4
    assert counts(sqlite_url)["articles"] == 4 and spool.files() == []


def frontier_rows(database_url: str) -> dict[str, tuple]:
    from storage.db import Database

    database = Database(database_url)
    with database.session() as session:
        rows = session.execute(select(FrontierEntry.url, FrontierEntry.kind, FrontierEntry.state)).all()
    database.dispose()
    return {url: (kind, state) for url, kind, state in rows}


def test_a_listings_facts_ride_with_its_items_in_one_transaction(database_url, tmp_path, monkeypatch) -> None:
    """In one process nothing waits for a listing's facts: they are written with the batch that
    holds the page's items, not in a transaction of their own per page."""
    from storage.writer import Discovery, Listed

    real_write, calls = BatchWriter.write, []

    def counted(self, items, run_id):
        calls.append(sorted({type(item).__name__ for item in items}))
        return real_write(self, items, run_id)

    monkeypatch.setattr(BatchWriter, "write", counted)
    _, validate, store = pipeline_for(database_url, tmp_path)
    shown, owed = "https://www.fx168news.com/article/1", "https://www.fx168news.com/article/2"
    next_page = "https://www.fx168news.com/search?keyword=x&page=2"
    store.open_spider()
    store.record_with_items(Discovery((Listed(shown, "h1"), Listed(owed, "h2")), next_page, 5))
    store.process_item(validate.process_item(hit(shown)))
    store.process_item(validate.process_item(article_item(shown)))
    store.close_spider()
    assert calls == [["ArticleItem", "Discovery", "SearchHitItem"]]
    assert frontier_rows(database_url) == {
        shown: ("article", "fetched"),
        owed: ("article", "discovered"),
        next_page: ("listing", "discovered"),
    }
    assert counts(database_url)["articles"] == 1


def test_a_spooled_batch_keeps_its_items_and_leaves_the_listings_facts_to_them(sqlite_url, tmp_path, monkeypatch):
    from storage.writer import Discovery, Listed

    def broken(self, items, run_id):
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("NOT NULL constraint failed"))

    monkeypatch.setattr(BatchWriter, "write", broken)
    crawler, validate, store = pipeline_for(sqlite_url, tmp_path)
    url = "https://www.fx168news.com/article/1"
    store.open_spider()
    store.record_with_items(Discovery((Listed(url, "h1"),), None, 0))
    store.process_item(validate.process_item(hit(url)))
    store.close_spider()
    assert crawler.stats.get_value("fxcrawl/store/spooled_items") == 1
    spool = Spool(spool_dir_for(tmp_path, sqlite_url))
    assert spool.pending_items() == 1
    monkeypatch.undo()
    assert cli(["spool", "replay", "--db", sqlite_url, "--spool-dir", str(tmp_path)]) == 0
    assert frontier_rows(sqlite_url) == {url: ("article", "discovered")}  # the hit carried it


def test_text_postgresql_would_refuse_is_cleaned_first(database_url) -> None:
    item = article_item(title="央行\x00发布", body=["第一段\x00。", "\x00"], tags=["央\x00行"], author="张\x00晓")
    crawl_items(database_url, [item])
    from storage.db import Database

    database = Database(database_url)
    with database.session() as session:
        article = session.scalars(select(Article)).one()
    database.dispose()
    assert (article.title, article.body, article.tags, article.author) == ("央行发布", "第一段。", ["央行"], "张晓")


def test_items_before_open_spider_still_reach_the_database(sqlite_url) -> None:
    crawler = make_crawler(FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_STORE_MAX_PENDING=2, FXCRAWL_STORE_BATCH_SIZE=1)
    validate, store = ValidatePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    for item in articles(0, 5):  # more than the queue holds: a writer must be draining it
        store.process_item(validate.process_item(item))
    store.close_spider()
    database_for(crawler).dispose()
    assert counts(sqlite_url)["articles"] == 5


def test_batches_are_written_in_the_order_they_filled(sqlite_url, monkeypatch) -> None:
    """Full batches and the age-swept remainder reach the database oldest first, even with the
    writer slow and the age deadline passing while full batches wait."""
    crawler = make_crawler(FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_STORE_BATCH_SIZE=3, FXCRAWL_STORE_MAX_DELAY=0.001)
    store = StorePipeline.from_crawler(crawler)
    written: list = []

    def slow_write(batch):
        time.sleep(0.005)
        written.extend(batch)
        return {}

    monkeypatch.setattr(store, "write", slow_write)
    store.open_spider()
    items = [SourceItem(f"outlet {n}") for n in range(200)]
    for n, item in enumerate(items):
        store.process_item(item)
        if n % 7 == 0:
            time.sleep(0.002)  # let the age deadline pass now and then
    store.close_spider()
    database_for(crawler).dispose()
    assert written == items


def test_a_partial_batch_is_written_after_max_delay(sqlite_url) -> None:
    crawler = make_crawler(FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_STORE_BATCH_SIZE=1000, FXCRAWL_STORE_MAX_DELAY=0.2)
    validate, store = ValidatePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    store.open_spider()
    try:
        for item in articles(0, 3):
            store.process_item(validate.process_item(item))
        deadline = time.monotonic() + 10
        while counts(sqlite_url)["articles"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counts(sqlite_url)["articles"] == 3  # written while the crawl still runs
    finally:
        store.close_spider()
        database_for(crawler).dispose()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_items_a_dead_writer_leaves_are_spooled_not_dropped(sqlite_url, tmp_path, monkeypatch) -> None:
    crawler = make_crawler(
        FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_STORE_BATCH_SIZE=2, FXCRAWL_SPOOL_DIR=str(tmp_path / "spool")
    )
    validate, store = ValidatePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)

    def crash(batch):
        raise SystemExit("writer thread gone")  # not an Exception: nothing in the thread catches it

    monkeypatch.setattr(store, "_flush", crash)
    store.open_spider()
    for item in articles(0, 5):
        store.process_item(validate.process_item(item))
    store.close_spider()
    database_for(crawler).dispose()
    assert crawler.stats.get_value("fxcrawl/store/spooled_items") == 5  # the batch in hand too
    spool = Spool(spool_dir_for(tmp_path / "spool", sqlite_url))
    assert sorted(item.url for path in spool.files() for item in spool.read(path) if hasattr(item, "title")) == sorted(
        item.url for item in articles(0, 5)
    )
