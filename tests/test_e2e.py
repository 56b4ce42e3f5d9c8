"""End to end: `fxcrawl crawl search --replay` in a child process, fetching the bundled site
over loopback HTTP from the fixture server, into a SQLite file; then the same crawl again."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT
from sqlalchemy import func, select

from fx168 import site
from replay.server import FIXTURE_SITE
from storage.db import Database
from storage.models import Article, HotEntry, SearchHit, Source, Topic

GOLDEN_953 = FIXTURE_SITE / "search" / "现代" / "article" / "page-953.expected.json"
PAGES = "1,951-955,1000"
LISTING_PAGES = {1, 951, 952, 953, 954, 955, 1000}
MODELS = {"articles": Article, "hits": SearchHit, "sources": Source, "hot": HotEntry, "topics": Topic}
EXPECTED = {"articles": 68, "hits": 70, "sources": 8, "hot": 5, "topics": 5}


def fxcrawl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxcrawl.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def crawl(db: str, pages: str, access_log: Path) -> subprocess.CompletedProcess[str]:
    return fxcrawl(
        "crawl",
        "search",
        "--keyword",
        "现代",
        "--pages",
        pages,
        "--replay",
        "--access-log",
        str(access_log),
        "--db",
        db,
    )


def counts(db: str) -> dict[str, int]:
    database = Database(db)
    try:
        with database.session() as session:
            return {
                name: session.scalar(select(func.count()).select_from(model)) or 0 for name, model in MODELS.items()
            }
    finally:
        database.dispose()


def stored_articles(db: str) -> dict[str, tuple[int, str]]:
    """url -> (id, title) of every stored article."""
    database = Database(db)
    try:
        with database.session() as session:
            return {
                url: (id_, title) for id_, url, title in session.execute(select(Article.id, Article.url, Article.title))
            }
    finally:
        database.dispose()


def access_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def seed_titles() -> dict[str, str]:
    """url -> title of the seed page's ten results, from its golden file."""
    hits = json.loads(GOLDEN_953.read_text(encoding="utf-8"))["hits"]
    assert len(hits) == 10
    return {site.canonical_url(hit["url"]): hit["title"] for hit in hits}


@dataclass
class TwoCrawls:
    db: str
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    after_first: dict[str, int]
    after_second: dict[str, int]
    articles_after_first: dict[str, tuple[int, str]]
    articles_after_second: dict[str, tuple[int, str]]
    first_log: list[dict[str, Any]]
    second_log: list[dict[str, Any]]


@pytest.fixture(scope="module")
def two_crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoCrawls]:
    """The same replay crawl twice into one SQLite file, with the database's state after each."""
    tmp = tmp_path_factory.mktemp("e2e")
    db = f"sqlite:///{tmp / 'e2e.db'}"
    first = crawl(db, PAGES, tmp / "access-1.log")
    after_first, articles_after_first = counts(db), stored_articles(db)
    second = crawl(db, PAGES, tmp / "access-2.log")
    yield TwoCrawls(
        db=db,
        first=first,
        second=second,
        after_first=after_first,
        after_second=counts(db),
        articles_after_first=articles_after_first,
        articles_after_second=stored_articles(db),
        first_log=access_log(tmp / "access-1.log"),
        second_log=access_log(tmp / "access-2.log"),
    )


def test_first_crawl_exits_0_and_reports_its_run(two_crawls: TwoCrawls) -> None:
    assert two_crawls.first.returncode == 0, two_crawls.first.stderr
    assert re.search(r"\brun 1 finished: 75 pages, 68 new\b", two_crawls.first.stdout), two_crawls.first.stdout
    assert "stored: 68 articles from 8 sources" in two_crawls.first.stdout


def test_first_crawl_stores_articles_hits_sources_hot_entries_and_topics(two_crawls: TwoCrawls) -> None:
    assert two_crawls.after_first == EXPECTED
    articles = two_crawls.articles_after_first
    assert all(url == site.canonical_url(url) and site.article_ref(url) for url in articles)
    assert sum(url.startswith("https://news.fx168news.com/") for url in articles) == 3  # the legacy host's


def test_fixture_server_saw_robots_seven_listings_and_each_article_once(two_crawls: TwoCrawls) -> None:
    log = two_crawls.first_log
    assert all(entry["status"] == 200 for entry in log), [e for e in log if e["status"] != 200]
    paths = Counter(entry["path"] for entry in log)
    assert paths["/robots.txt"] == 1
    assert log[0]["path"] == "/robots.txt"  # fetched before anything else

    listings = {path: n for path, n in paths.items() if path.startswith("/search?")}
    queries = [parse_qs(urlsplit(path).query) for path in listings]
    assert all(q["keyword"] == ["现代"] and q["type"] == ["article"] for q in queries)
    assert sorted(int(q["page"][0]) for q in queries) == sorted(LISTING_PAGES)
    assert set(listings.values()) == {1}

    articles: Counter[str] = Counter()
    for path, n in paths.items():
        if (ref := site.article_ref(site.LEGACY_BASE + path if path.endswith(".shtml") else path)) is not None:
            articles[ref.url] += n
    assert len(articles) == 68
    assert set(articles.values()) == {1}, {url: n for url, n in articles.items() if n != 1}
    assert set(articles) == set(two_crawls.articles_after_first)
    assert len(log) == 1 + len(LISTING_PAGES) + 68  # nothing else was requested


def test_second_crawl_requests_only_the_first_page_of_each_range(two_crawls: TwoCrawls) -> None:
    paths = [entry["path"] for entry in two_crawls.second_log]
    assert paths[0] == "/robots.txt"
    assert not [p for p in paths if p.startswith("/article/")]
    assert sorted(int(p.rsplit("page=", 1)[1]) for p in paths[1:]) == [1, 951, 1000]


def test_second_crawl_stores_nothing_twice(two_crawls: TwoCrawls) -> None:
    assert two_crawls.second.returncode == 0, two_crawls.second.stderr
    assert two_crawls.after_second == EXPECTED
    assert two_crawls.articles_after_second == two_crawls.articles_after_first  # same ids, same titles


def test_runs_list_shows_both_runs(two_crawls: TwoCrawls) -> None:
    done = fxcrawl("runs", "list", "--json", "--db", two_crawls.db)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert len(runs) == 2
    second, first = runs  # newest first
    assert second["id"] > first["id"]
    assert (first["finish_reason"], first["pages"], first["new"], first["duplicate"]) == ("finished", 75, 68, 0)
    # The second run is incremental: each range stops at its first page, whose ten results are all
    # stored already, and fetches no article again (pages 1, 951 and 1000: 30 known results).
    assert (second["finish_reason"], second["pages"], second["new"], second["duplicate"]) == ("finished", 3, 0, 30)
    assert second["updated"] == second["unchanged"] == second["rejected"] == second["errors"] == 0


def test_crawl_of_the_seed_page_stores_its_ten_articles(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'seed.db'}"
    done = crawl(db, "953", tmp_path / "access.log")
    assert done.returncode == 0, done.stderr
    stored = {url: title for url, (_, title) in stored_articles(db).items()}
    assert stored == seed_titles()
    assert counts(db)["hits"] == 10


def test_the_crawl_froze_its_startup_objects(two_crawls: TwoCrawls) -> None:
    """crawler.memory.FreezeStartupObjects ran at engine start (its count is in the run's stats)."""
    done = fxcrawl("runs", "show", "1", "--json", "--db", two_crawls.db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stats"]["fxcrawl/gc/frozen_objects"] > 10_000
