"""Migration 0004: a store written by the release before it (fxcrawl at revision 0003) comes
over with nothing lost or doubled, every article keyed by its newsId.

``tests/releases/store-0003.json`` is that release's store after its `make run` crawl (every row of
every table, dumped through SQLAlchemy), so the test starts from what users actually have.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from conftest import article_item

from fx168 import site
from pipelines.store import BatchWriter
from pipelines.validate import content_hash
from storage import migrations
from storage.db import Database
from storage.migrations import head_revision

DUMP = Path(__file__).parent / "releases" / "store-0003.json"


def _load_release_store(url: str, dump: dict[str, Any]) -> sa.Engine:
    engine = sa.create_engine(url)
    migrations.upgrade(engine, dump["alembic_version"])
    meta = sa.MetaData()
    meta.reflect(engine)
    naive = engine.dialect.name == "sqlite"  # the release stored UTC without an offset there
    tables = [table for table in meta.sorted_tables if table.name != "alembic_version"]
    with engine.begin() as connection:
        for table in tables:
            if rows := [_typed(table, row, naive) for row in dump.get(table.name, [])]:
                connection.execute(table.insert(), rows)
        if engine.dialect.name == "postgresql":  # ids were given: move each sequence past them
            for table in tables:
                if "id" in table.c and dump.get(table.name):
                    sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
                    connection.execute(sa.text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table.name}))"))
    return engine


def _typed(table: sa.Table, row: dict[str, Any], naive: bool) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, str) and isinstance(table.c[key].type, sa.DateTime):
            parsed = datetime.fromisoformat(value)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            value = parsed.astimezone(UTC).replace(tzinfo=None) if naive else parsed
        elif isinstance(value, str) and isinstance(table.c[key].type, sa.Date):
            value = date.fromisoformat(value)
        out[key] = value
    return out


def test_a_release_0003_store_migrates_with_nothing_lost_or_doubled(database_url: str) -> None:
    dump = json.loads(DUMP.read_text(encoding="utf-8"))
    assert dump["alembic_version"] == "0003" and len(dump["articles"]) == 68
    engine = _load_release_store(database_url, dump)
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == head_revision()
    with engine.connect() as connection:
        articles = connection.execute(sa.text("SELECT id, url, news_id, title, body FROM articles ORDER BY id")).all()
        counts = {
            name: connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar()
            for name in ("search_hits", "frontier", "sources", "crawl_runs", "hot_entries", "topics")
        }
    before = {row["id"]: row for row in dump["articles"]}
    assert len(articles) == len(before)
    for row in articles:
        old = before[row.id]
        assert (row.url, row.title, row.body) == (old["url"], old["title"], old["body"])
        assert row.news_id == int(old["url"].rsplit("/", 1)[1])
        assert site.canonical_url(row.url) == row.url
    assert len({row.news_id for row in articles}) == len(articles)
    assert counts == {name: len(dump[name]) for name in counts}
    engine.dispose()

    # Written again by today's code under another spelling of its URL, an article stays one article.
    database = Database(database_url).prepare()
    first = before[min(before)]
    news_id = int(first["url"].rsplit("/", 1)[1])
    spelling = site.article_url(news_id, "现代")
    item = article_item(url=spelling, title=first["title"] + "（更新）", canonical_url=spelling)
    item.url = site.canonical_url(item.url)
    item.news_id = news_id
    item.published_at = datetime(2023, 2, 24, 11, tzinfo=UTC)
    item.content_hash = content_hash(item)
    written = BatchWriter(database).write([item], run_id=None)
    assert written.get("article/updated") == 1 and not written.get("article/new")
    with database.session() as session:
        assert session.scalar(sa.text("SELECT count(*) FROM articles")) == len(before)
        assert session.scalar(sa.text("SELECT count(*) FROM article_revisions")) == 1
    database.dispose()


def test_two_spellings_of_one_article_are_merged_into_one(sqlite_url: str) -> None:
    """Stored twice under two spellings (a keyword-id URL and a bare one), an article becomes one
    row: the later version current, the earlier kept as a revision, its hits and frontier rows moved."""
    engine = sa.create_engine(sqlite_url)
    migrations.upgrade(engine, "0003")
    now = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO sources (id, name, first_seen_at, last_seen_at) VALUES (1, '金融界', :t, :t)"),
            {"t": now},
        )
        for article_id, url, title in (
            (1, "https://www.fx168news.com/article/1049862", "旧标题"),
            (2, "https://www.fx168news.com/article/%E4%BC%8A%E6%9C%97-1049862", "新标题"),
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO articles (id, url, title, source_id, published_text, body, tags, content_hash, "
                    "first_seen_at, updated_at, revision, published_unknown) VALUES "
                    "(:id, :url, :title, 1, '', '正文', '[]', :hash, :t, :t, 1, 0)"
                ),
                {"id": article_id, "url": url, "title": title, "hash": title, "t": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO search_hits (keyword, tab, page, rank, article_url, title, snippet, highlights, "
                    "source_name, first_seen_at, last_seen_at) VALUES ('现代', 'article', :page, 1, :url, :title, '', "
                    "'[]', '金融界', :t, :t)"
                ),
                {"url": url, "title": title, "page": article_id, "t": now},
            )
    migrations.upgrade(engine)
    with engine.connect() as connection:
        articles = connection.execute(sa.text("SELECT id, url, news_id, revision FROM articles")).all()
        revisions = connection.execute(sa.text("SELECT article_id, title FROM article_revisions")).all()
        hits = connection.execute(sa.text("SELECT DISTINCT article_url FROM search_hits")).scalars().all()
        hit_count = connection.execute(sa.text("SELECT count(*) FROM search_hits")).scalar()
    assert [(a.id, a.url, a.news_id) for a in articles] == [(1, "https://www.fx168news.com/article/1049862", 1049862)]
    assert [(r.article_id, r.title) for r in revisions] == [(1, "新标题")]
    assert hits == ["https://www.fx168news.com/article/1049862"] and hit_count == 2
    engine.dispose()
