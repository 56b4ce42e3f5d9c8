"""Whole crawls in child processes: SIGTERM flushes what the crawl holds; two crawls share one SQLite file."""

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

from conftest import FXCRAWL, replay_crawl_command, unwritable
from sqlalchemy import func, select

from fx168.items import item_kind
from pipelines.store import spool_dir_for
from storage.db import Database
from storage.models import Article, CrawlRun
from storage.spool import Spool


def crawl_command(db: str, spool: Path, pages: int, *extra: str) -> list[str]:
    return replay_crawl_command(pages, spool, *extra, db=db)


def _wait_for_run(db: str, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the crawl's run is in the ledger (the ledger opens it when the spider opens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(Exception):  # the file or its schema may not be there yet
            database = Database(db)
            try:
                with database.session() as session:
                    if session.scalar(select(func.count(CrawlRun.id))):
                        return
            finally:
                database.dispose()
        time.sleep(0.1)
    raise AssertionError(f"the crawl's run never began (exit {process.poll()})")


def test_sigterm_mid_crawl_flushes_what_the_crawl_holds(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    # Nothing is written before the crawl closes: one huge batch that never ages out.
    command = crawl_command(
        db,
        tmp_path / "spool",
        40,
        "--replay-delay",
        "0.05",
        "-s",
        "FXCRAWL_STORE_BATCH_SIZE=100000",
        "-s",
        "FXCRAWL_STORE_MAX_DELAY=3600",
        "-s",
        "CONCURRENT_REQUESTS=4",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupted once its run has begun (a loaded machine can take longer than a fixed sleep to
    # start, and a signal before Scrapy's handlers are in place just kills the process), then a
    # second on: some 20 pages of 440 fetched, the huge batch holding their articles.
    _wait_for_run(db, process)
    time.sleep(1)
    assert process.poll() is None, "the crawl finished before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1  # it did not finish: the command says so
    database = Database(db)
    with database.session() as session:
        run = session.scalars(select(CrawlRun)).one()
        stored = session.scalar(select(func.count(Article.id)))
    database.dispose()
    assert run.finish_reason == "shutdown", err[-2000:]
    parsed = run.stats["fxcrawl/pages/detail"]
    assert 0 < parsed < 400  # interrupted mid-crawl, with articles in hand
    assert stored == parsed == run.articles_new  # every parsed article reached the database
    assert not run.stats.get("fxcrawl/store/spooled_items")


def test_two_crawls_writing_one_sqlite_file_both_succeed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    Database(db).prepare().dispose()  # both crawls find the schema in place
    # Two jobs (two crawls of one job, or of the spider without --job, run one after the other)
    commands = [
        crawl_command(
            db,
            tmp_path / "spool",
            30,
            "-s",
            "FXCRAWL_STORE_BATCH_SIZE=5",
            "-s",
            "FXCRAWL_STORE_MAX_DELAY=0.05",
            "--job",
            f"job-{n}",
        )
        for n in range(2)
    ]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
        assert "database is locked" not in err
    database = Database(db)
    with database.session() as session:
        stored = session.scalar(select(func.count(Article.id)))
        distinct = session.scalar(select(func.count(func.distinct(Article.url))))
        runs = session.scalars(select(CrawlRun)).all()
    database.dispose()
    assert stored == distinct == 300
    assert [run.finish_reason for run in runs] == ["finished", "finished"]
    assert sum(run.articles_new for run in runs) == 300  # each article stored by exactly one of them
    assert all(json.dumps(run.stats) for run in runs)


def test_database_unwritable_mid_crawl_spools_then_replay_stores_each_once(database_url: str, tmp_path: Path) -> None:
    db = f"{database_url}?timeout=0.2" if database_url.startswith("sqlite") else database_url
    command = crawl_command(
        db,
        tmp_path / "spool",
        30,
        "--replay-delay",
        "0.03",
        "-s",
        "FXCRAWL_STORE_BATCH_SIZE=100",
        "-s",
        "FXCRAWL_STORE_MAX_DELAY=0.5",
        "-s",
        "FXCRAWL_STORE_RETRY_ATTEMPTS=2",
        "-s",
        "FXCRAWL_STORE_RETRY_MAX_WAIT=0.1",
        "-s",
        "CONCURRENT_REQUESTS=4",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    database = Database(db)
    deadline = time.monotonic() + 60
    stored_before = 0
    while stored_before < 20 and time.monotonic() < deadline:  # wait until the crawl is writing
        time.sleep(0.2)
        with contextlib.suppress(Exception), database.session() as session:
            stored_before = session.scalar(select(func.count(Article.id))) or 0
    database.dispose()
    assert stored_before >= 20, "the crawl never started writing"
    with unwritable(db):
        _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err[-3000:]  # items were spooled: the command says so
    assert "spooled to" in err

    database = Database(db)
    with database.session() as session:
        stored = session.scalar(select(func.count(Article.id)))
    spool = Spool(spool_dir_for(tmp_path / "spool", db))
    assert stored is not None and 0 < stored < 300 and stored + sum(1 for i in _spooled_articles(spool)) == 300

    replay = subprocess.run(
        [*FXCRAWL, "spool", "replay", "--db", db, "--spool-dir", str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    with database.session() as session:
        assert session.scalar(select(func.count(Article.id))) == 300
        assert session.scalar(select(func.count(func.distinct(Article.url)))) == 300
    assert spool.files() == []
    database.dispose()


def _spooled_articles(spool: Spool):
    for path in spool.files():
        yield from (item for item in Spool.read(path) if item_kind(item) == "article")


def test_a_second_crawl_of_the_spider_without_job_waits_or_is_skipped_and_fetches_nothing_meanwhile(
    tmp_path: Path,
) -> None:
    from fxcrawl.cli import EXIT_SKIPPED
    from storage.locks import JobLock

    db = f"sqlite:///{tmp_path / 'fx.db'}"
    database = Database(db).prepare()
    first = JobLock(database, "crawl:search")  # a first crawl of the spider, running
    first.acquire()
    log = tmp_path / "access.log"
    try:
        skipped = subprocess.run(
            crawl_command(db, tmp_path / "spool", 3, "--no-wait", "--access-log", str(log)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert skipped.returncode == EXIT_SKIPPED, skipped.stderr[-2000:]
        assert "skipped: job 'crawl:search' is already running" in skipped.stderr
        waiting = subprocess.Popen(
            crawl_command(db, tmp_path / "spool", 3, "--access-log", str(log)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4)
        assert waiting.poll() is None  # it waits for the first
        assert not log.exists() or log.read_text() == ""  # and has fetched nothing meanwhile
    finally:
        first.release()
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err[-2000:]
    assert "waiting: job 'crawl:search' is already running" in err
    with database.session() as session:
        assert session.scalar(select(func.count(Article.id))) == 30
    database.dispose()
