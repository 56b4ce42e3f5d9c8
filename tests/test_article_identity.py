"""An article is its newsId: reached by every URL shape the site uses, it is stored once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import FXCRAWL
from sqlalchemy import create_engine, text

from fx168 import site

#: In the fixtures: percent-encoded on search page 1, raw on /info/001, bare on /info/001001.
NEWS_ID = 1049958


@pytest.mark.parametrize(
    "url",
    [
        "https://www.fx168news.com/article/黄金-1049958",
        "https://www.fx168news.com/article/%E9%BB%84%E9%87%91-1049958",
        "https://www.fx168news.com/article/1049958",
        "http://fx168news.com/article/黄金-1049958?utm_source=wx#top",
        "https://m.fx168news.com/article/other-keyword-1049958/",
        "http://127.0.0.1:8168/article/%E9%BB%84%E9%87%91-1049958",
    ],
)
def test_every_spelling_is_one_article(url: str) -> None:
    assert site.canonical_url(url, "http://127.0.0.1:8168") == "https://www.fx168news.com/article/1049958"
    assert site.article_ref(url) == site.ArticleRef("news", NEWS_ID)


def test_legacy_ids_stay_apart_from_news_ids() -> None:
    legacy = site.article_ref("https://news.fx168news.com/stock/2303/1049958.shtml")
    assert legacy == site.ArticleRef("legacy", 1049958, "stock", "2303") != site.ArticleRef("news", NEWS_ID)
    assert legacy.url == "https://news.fx168news.com/stock/2303/1049958.shtml"
    # a replay server answers the legacy path itself: still the legacy article
    replayed = site.canonical_url("http://127.0.0.1:8168/stock/2303/1049958.shtml", "http://127.0.0.1:8168")
    assert replayed == legacy.url


def test_one_article_reached_by_three_shapes_is_stored_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    log = tmp_path / "access.jsonl"
    # incremental crawling off: every link is followed, so the store alone must see they are one
    common = ["--replay", "--access-log", str(log), "--log-level", "WARNING", "--db", db]
    common += ["-s", "FXCRAWL_INCREMENTAL_STOP_AFTER=0"]
    search = subprocess.run(
        [*FXCRAWL, "crawl", "search", "--keyword", "现代", "--pages", "1", *common],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert search.returncode == 0, search.stdout + search.stderr
    latest = subprocess.run(
        [*FXCRAWL, "crawl", "latest", "--channels", "001,001001", "--no-express", "--max-pages", "1", *common],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert latest.returncode == 0, latest.stdout + latest.stderr
    requested = {
        unquote(entry["path"])
        for entry in map(json.loads, log.read_text().splitlines())
        if site.article_id(entry["path"]) == str(NEWS_ID)
    }
    assert requested == {"/article/黄金-1049958", "/article/1049958"}  # raw and encoded spell one path
    paths = [entry["path"] for entry in map(json.loads, log.read_text().splitlines())]
    assert paths.count("/article/%E9%BB%84%E9%87%91-1049958") == 2  # the encoded link and the raw one
    assert paths.count("/article/1049958") == 1
    engine = create_engine(db)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT url, news_id FROM articles WHERE news_id = :id"), {"id": NEWS_ID}).all()
        entries = (
            connection.execute(
                text("SELECT DISTINCT article_url FROM channel_entries WHERE news_id = :id"), {"id": NEWS_ID}
            )
            .scalars()
            .all()
        )
        hits = (
            connection.execute(text("SELECT DISTINCT article_url FROM search_hits WHERE article_url LIKE '%1049958'"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert [tuple(row) for row in rows] == [("https://www.fx168news.com/article/1049958", NEWS_ID)]
    assert entries == hits == ["https://www.fx168news.com/article/1049958"]
