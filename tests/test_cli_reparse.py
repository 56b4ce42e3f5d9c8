"""`fxcrawl reparse` after the crawls of `make run`, each command in a child process: the archive
re-derives the store exactly without a request; a changed parser turns into revisions; a damaged
archive file is named and the rest read; `articles show --raw` prints the page as fetched; a
second crawl archives identical pages as revisits of the first crawl's records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from sqlalchemy import func, select

from replay.server import FIXTURE_SITE, ReplayServer
from storage.archive import archive_files
from storage.db import Database
from storage.models import Article, ArticleRevision, ChannelEntry, CrawlRun, FastNews, SearchHit, Source

WARCIO = Path(sys.executable).with_name("warcio")
#: What `make run` crawls.
MAKE_RUN = (
    ("crawl", "search", "--keyword", "现代", "--pages", "1,951-955,1000", "--replay"),
    ("crawl", "latest", "--replay"),
)
#: A deliberate parser change, made in the child before the command runs: every article's title
#: gains a suffix, as a fix to the title parser would change it.
CHANGED_TITLE_PARSER = """
import crawler.spiders.portal as portal
original = portal.parse_article_page
def changed(text, url, **kwargs):
    page = original(text, url, **kwargs)
    page.article.title += "（修订）"
    return page
portal.parse_article_page = changed
"""


def fxcrawl(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport sys\nfrom fxcrawl.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


def snapshot(db: str) -> dict[str, object]:
    """What the store holds, as a re-parse must leave it: every article's content and version,
    and the rows of every table the pipelines write."""
    database = Database(db)
    try:
        with database.session() as session:
            articles = sorted(
                session.execute(
                    select(Article.url, Article.content_hash, Article.revision, Article.title, Article.published_at)
                ).all()
            )
            counts = {
                model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Article, ArticleRevision, SearchHit, ChannelEntry, FastNews, Source)
            }
        return {"articles": articles, "counts": counts}
    finally:
        database.dispose()


@dataclass
class MadeRun:
    db: str
    folder: Path


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> MadeRun:
    """The two crawls of `make run` into a fresh SQLite file (its archive beside it)."""
    folder = tmp_path_factory.mktemp("makerun")
    db = f"sqlite:///{folder / 'fx.db'}"
    for command in MAKE_RUN:
        done = fxcrawl(*command, "--log-level", "WARNING", "--db", db)
        assert done.returncode == 0, done.stderr[-2000:]
    return MadeRun(db, folder)


def copy_of(made: MadeRun, target: Path) -> str:
    """A copy of the made store and its archive (each test changes its own)."""
    shutil.copy(made.folder / "fx.db", target / "fx.db")
    shutil.copytree(made.folder / "archive", target / "archive")
    return f"sqlite:///{target / 'fx.db'}"


@pytest.fixture
def store(made_run: MadeRun, tmp_path: Path) -> Iterator[str]:
    yield copy_of(made_run, tmp_path)


def test_every_stored_article_points_to_its_archived_page(store: str) -> None:
    database = Database(store)
    with database.session() as session:
        rows = session.execute(select(Article.url, Article.warc_file, Article.warc_offset)).all()
    database.dispose()
    assert rows and all(file and offset is not None for _, file, offset in rows)


def test_reparse_reproduces_the_store_exactly_without_a_request(store: str, tmp_path: Path) -> None:
    before = snapshot(store)
    log = tmp_path / "access.log"
    log.touch()
    with ReplayServer("--access-log", str(log)) as server:  # where a stray request would go
        done = fxcrawl("reparse", "--db", store, "-s", f"FXCRAWL_BASE_URL={server.base_url}", "--log-level", "INFO")
    assert done.returncode == 0, done.stderr[-3000:]
    assert log.read_text(encoding="utf-8") == ""  # the fixture server saw no request
    assert "0 new, 0 revisions, 78 unchanged" in done.stdout
    assert snapshot(store) == before
    database = Database(store)
    with database.session() as session:
        run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc())).first()
    database.dispose()
    assert run is not None and run.spider == "reparse" and run.finish_reason == "finished"
    assert (run.articles_new, run.articles_updated, run.articles_unchanged) == (0, 0, 78)
    assert run.health == "healthy"
    assert not any(key.startswith("downloader/request") for key in run.stats)
    assert run.stats["reparse/pages"] > 78
    assert "pages/s" in done.stderr  # progress: log lines here (no terminal), the last at the end


def test_a_changed_parser_turns_into_revisions(store: str) -> None:
    done = fxcrawl("reparse", "--db", store, "--log-level", "WARNING", prelude=CHANGED_TITLE_PARSER)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 new, 78 revisions, 0 unchanged" in done.stdout
    database = Database(store)
    with database.session() as session:
        titles = session.scalars(select(Article.title)).all()
        revisions = session.scalar(select(func.count()).select_from(ArticleRevision))
        revised_by = set(session.scalars(select(ArticleRevision.replaced_by_run_id)))
    database.dispose()
    assert len(titles) == 78 and all(title.endswith("（修订）") for title in titles)
    assert revisions == 78 and len(revised_by) == 1
    again = fxcrawl("reparse", "--db", store, "--log-level", "WARNING", prelude=CHANGED_TITLE_PARSER)
    assert "0 new, 0 revisions, 78 unchanged" in again.stdout


def test_a_selection_reparses_only_its_pages(store: str) -> None:
    done = fxcrawl(
        "reparse", "--db", store, "--url", "*/article/*1049849", "--log-level", "WARNING", prelude=CHANGED_TITLE_PARSER
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 pages read, 0 new, 1 revisions, 0 unchanged" in done.stdout
    by_run = fxcrawl("reparse", "--db", store, "--run", "2", "--log-level", "WARNING")
    assert "0 new, 0 revisions, 10 unchanged" in by_run.stdout


def test_a_damaged_archive_file_is_named_and_the_rest_read(store: str, tmp_path: Path) -> None:
    files = archive_files(tmp_path / "archive", 1)
    data = files[0].path.read_bytes()
    files[0].path.write_bytes(data[: len(data) * 2 // 3])  # a crawl's file cut short
    done = fxcrawl("reparse", "--db", store, "--log-level", "WARNING", prelude=CHANGED_TITLE_PARSER)
    assert done.returncode == 1
    assert f"damaged: {files[0].name}: 1 unreadable records skipped" in done.stderr
    # what could be read was re-parsed; nothing of the cut record changed the store
    assert ", 0 new," in done.stdout and "revisions" in done.stdout
    database = Database(store)
    with database.session() as session:
        revised = session.scalar(select(func.count()).select_from(ArticleRevision))
        unrevised = session.scalar(select(func.count()).where(~Article.title.endswith("（修订）")))
    database.dispose()
    assert 0 < (revised or 0) < 78 and (revised or 0) + (unrevised or 0) == 78


def test_articles_show_raw_prints_the_page_as_fetched(store: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fxcrawl.cli",
            "articles",
            "show",
            "https://www.fx168news.com/article/1049849",
            "--raw",
            "--db",
            store,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (FIXTURE_SITE / "article" / "1049849.html").read_bytes()


def test_a_second_crawl_archives_identical_pages_as_revisits_of_the_first(store: str, tmp_path: Path) -> None:
    done = fxcrawl(*MAKE_RUN[0], "--log-level", "WARNING", "--db", store)
    assert done.returncode == 0, done.stderr[-2000:]
    (first_file,) = archive_files(tmp_path / "archive", 1)
    first = {record["warc-record-id"]: record for record in warcio_index(first_file.path)}
    (third,) = archive_files(tmp_path / "archive", 3)
    revisits = [record for record in warcio_index(third.path) if record["warc-type"] == "revisit"]
    assert revisits  # page 1 and robots.txt at least are the same as the first crawl's
    for revisit in revisits:
        original = first[revisit["warc-refers-to"]]
        assert original["warc-type"] == "response"
        assert original["warc-payload-digest"] == revisit["warc-payload-digest"]
        assert original["warc-target-uri"].split("/", 3)[3] == revisit["warc-target-uri"].split("/", 3)[3]


def warcio_index(path: Path) -> list[dict[str, str]]:
    fields = "warc-type,warc-target-uri,warc-record-id,warc-refers-to,warc-payload-digest"
    out = subprocess.run([str(WARCIO), "index", "-f", fields, str(path)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]
