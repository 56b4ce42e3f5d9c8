"""Plain `scrapy crawl` with a database it cannot use: one ERROR line, the spider closed with the
reason database_unusable, nothing fetched, no traceback (as a Scrapyd job's log shows it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import Database

ROOT = Path(__file__).resolve().parents[1]


def scrapy_crawl(*settings: str) -> str:
    """`scrapy crawl search` from the project folder; its log."""
    command = [sys.executable, "-m", "scrapy", "crawl", "search", "-a", "keyword=现代", "-a", "pages=953"]
    for setting in ("FXCRAWL_BASE_URL=http://127.0.0.1:9", *settings):  # port 9: nothing may be fetched
        command += ["-s", setting]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def assert_refused(log: str, why: str) -> None:
    errors = [line for line in log.splitlines() if " ERROR: " in line or " CRITICAL: " in line]
    assert len(errors) == 1, log
    assert "cannot crawl into the database" in errors[0] and why in errors[0], errors[0]
    assert "Traceback" not in log
    assert "Spider closed (database_unusable)" in log
    assert "Crawled 0 pages" in log and "downloader/request_count" not in log


@pytest.mark.parametrize(
    ("version", "why"),
    [("f00d", "is newer than this fxcrawl knows"), ("0004_news_identity", "run `fxcrawl db upgrade`")],
    ids=["ahead", "behind"],
)
def test_a_schema_at_another_version_closes_the_spider_in_one_line(sqlite_url: str, version: str, why: str) -> None:
    database = Database(sqlite_url).prepare()
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
    database.dispose()
    assert_refused(scrapy_crawl(f"FXCRAWL_DATABASE_URL={sqlite_url}"), why)


def test_a_database_that_does_not_answer_closes_the_spider_in_one_line() -> None:
    log = scrapy_crawl("FXCRAWL_DATABASE_URL=postgresql+psycopg://fxcrawl:secret@127.0.0.1:1/fxcrawl")
    assert_refused(log, "Connection refused")
    assert "secret" not in log


def test_a_url_that_is_no_database_closes_the_spider_in_one_line() -> None:
    assert_refused(scrapy_crawl("FXCRAWL_DATABASE_URL=mysql://user@host/name"), "unsupported database 'mysql'")


@pytest.mark.parametrize("database", ["current", "empty"])
def test_a_crawl_into_a_current_database_does_not_load_the_migration_tool(
    sqlite_url: str, tmp_path: Path, database: str
) -> None:
    """Alembic (with Mako and Pygments) costs a crawl's start about 0.2 s; a database at head
    needs none of it, and an empty one is given the head schema without it."""
    if database == "current":
        Database(sqlite_url).prepare().dispose()
    crawl = ["crawl", "search", "--db", sqlite_url, "--keyword", "现代", "--pages", "1", "--replay"]
    script = (
        "import sys\nfrom fxcrawl.cli import main\n"
        f"main({[*crawl, '--log-level', 'WARNING']!r})\n"
        "print('loaded:', *[m for m in ('alembic', 'mako', 'pygments') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded:", result.stdout
    articles = Database(sqlite_url)
    with articles.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM articles")).scalar_one() > 0  # it did crawl
    articles.dispose()
