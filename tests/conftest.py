"""Shared test helpers: the seed, fixture pages, databases (SQLite always, PostgreSQL when it runs)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html
from sqlalchemy.engine import make_url

from replay.server import FIXTURE_SITE

ROOT = Path(__file__).resolve().parents[1]
#: The page the project was created from (a copy of shared/seed/, kept with the fixtures it defines).
SEED = ROOT / "fixtures" / "seed" / "000_184a772e7408968f.txt"
SEARCH_953 = FIXTURE_SITE / "search" / "现代" / "article" / "page-953.html"
SEARCH_953_URL = "https://www.fx168news.com/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=953"

POSTGRES_ADMIN_URL = os.environ.get("FXCRAWL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_SKIP_TAGS = {"script", "style", "noscript", "template", "head"}


def render_text(document: str) -> list[str]:
    """A page as a text browser shows it: one line per non-blank text node (and per image's alt
    text) inside <body>, trimmed, in document order."""
    lines: list[str] = []

    def emit(text: str | None) -> None:
        if text and text.strip():
            lines.append(text.strip())

    def walk(element: lxml_html.HtmlElement) -> None:
        if isinstance(element.tag, str) and element.tag not in _SKIP_TAGS:
            if element.tag == "img":
                emit(element.get("alt"))
            emit(element.text)
            for child in element:
                walk(child)
        emit(element.tail)

    body = lxml_html.document_fromstring(document).find("body")
    emit(body.text)
    for child in body:
        walk(child)
    return lines


def seed_lines() -> list[str]:
    return SEED.read_text(encoding="utf-8").rstrip("\n").split("\n")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fxcrawl.db'}"


def _postgres_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a running PostgreSQL; skips (mandatory in CI: fails) when there is none."""
    why = _postgres_available()
    if why:
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg", "postgresql")
    name = f"fxcrawl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fxcrawl.db'}"
    return request.getfixturevalue("postgres_url")


def make_crawler(**settings: object):
    """A Scrapy crawler with the project's settings plus overrides (no engine, no network)."""
    import tempfile

    from scrapy.utils.test import get_crawler

    from crawler import settings as project
    from crawler.spiders.search import SearchSpider

    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    values.pop("TWISTED_REACTOR", None)
    scratch = tempfile.mkdtemp(prefix="fxcrawl-test-")
    values["FXCRAWL_SPOOL_DIR"] = f"{scratch}/spool"
    values["FXCRAWL_DATABASE_URL"] = f"sqlite:///{scratch}/fxcrawl.db"  # never the developer's data/
    return get_crawler(SearchSpider, settings_dict={**values, **settings})


def article_item(url: str = "https://www.fx168news.com/article/1", **changes: object):
    from fx168.items import ArticleItem

    fields: dict[str, Any] = {
        "url": url,
        "title": "央行发布报告",
        "source": "金融界",
        "author": "张晓",
        "published": "2023-02-24 19:12",
        "body": ["第一段。", "第二段。"],
        "tags": ["央行"],
        "canonical_url": url,
    }
    fields.update(changes)
    return ArticleItem(**fields)


@contextlib.contextmanager
def unwritable(database_url: str) -> Iterator[None]:
    """Make the database refuse writes: SQLite held locked by another connection, PostgreSQL
    switched to read-only with its sessions cut."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None, "a SQLite file, not an in-memory database"
        blocker = sqlite3.connect(url.database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    import psycopg

    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)

    def set_read_only(on: bool) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = {"on" if on else "off"}')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [url.database])

    set_read_only(True)
    try:
        yield
    finally:
        set_read_only(False)


REDIS_URL = os.environ.get("FXCRAWL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The machine's Redis; skips (mandatory in CI: fails) when there is none."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        why = f"Redis not reachable at {REDIS_URL}: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    return REDIS_URL


@pytest.fixture
def redis_job(redis_server_url: str) -> Iterator[str]:
    """A job name of its own (its Redis keys are fxcrawl:JOB:*), cleaned up afterwards."""
    import redis

    job = f"test-{uuid.uuid4().hex[:10]}"
    yield job
    server = redis.Redis.from_url(redis_server_url)
    for key in server.scan_iter(f"fxcrawl:{job}:*"):
        server.delete(key)


FXCRAWL = [sys.executable, "-m", "fxcrawl.cli"]


def replay_crawl_command(pages: int, spool: Path, *extra: str, db: str | None = None) -> list[str]:
    """`fxcrawl crawl search` over a generated site of PAGES listing pages, in a child process."""
    command = [
        *FXCRAWL,
        "crawl",
        "search",
        "--keyword",
        "现代",
        "--pages",
        f"1-{pages}",
        "--replay",
        "--replay-generate",
        str(pages),
        "--log-level",
        "INFO",
        "-s",
        f"FXCRAWL_SPOOL_DIR={spool}",
        *extra,
    ]
    return [*command, "--db", db] if db else command


GOLDEN_953 = FIXTURE_SITE / "search" / "现代" / "article" / "page-953.expected.json"
#: What a copy of the project leaves out (caches, builds, the virtualenv, local data).
_NOT_PROJECT = {".venv", ".git", "data", "build", "dist", "spool", "test-artifacts", ".scrapy"}


def copy_project(target: Path) -> Path:
    """The project's files in ``target`` (what a user builds a wheel or deploys an egg from), so a
    build writes its build/ and *.egg-info there, not in the checkout."""
    import shutil

    def ignored(folder: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name in _NOT_PROJECT or name.endswith((".egg-info", "_cache", ".pyc")) or name == "__pycache__"
        }

    shutil.copytree(ROOT, target, ignore=ignored)
    return target


def assert_page_953_stored(database_url: str) -> None:
    """Every result the parsers find on page 953 (its golden file) is stored: the article with its
    title, and its search hit on page 953."""
    import json

    from sqlalchemy import select

    from fx168 import site
    from storage.db import Database
    from storage.models import Article, SearchHit

    golden = json.loads(GOLDEN_953.read_text(encoding="utf-8"))
    expected = {site.canonical_url(hit["url"]): hit["title"] for hit in golden["hits"]}
    assert expected
    database = Database(database_url, create=False)
    try:
        with database.session() as session:
            titles = dict(session.execute(select(Article.url, Article.title).where(Article.url.in_(expected))).all())
            hits = set(
                session.scalars(
                    select(SearchHit.article_url).where(SearchHit.keyword == golden["keyword"], SearchHit.page == 953)
                )
            )
    finally:
        database.dispose()
    assert titles == expected
    assert hits == set(expected)


@dataclass
class Result:
    """What an in-process `fxcrawl` command gave: its exit code, standard output and error."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)
