"""Whole crawls in child processes: SIGTERM flushes what the crawl holds; two crawls share one SQLite file."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from pipelines.db import Database
from pipelines.models import Article, CrawlRun

FXCRAWL = [sys.executable, "-m", "crawler.cli"]


def crawl_command(db: str, spool: Path, pages: int, *extra: str) -> list[str]:
    return [
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
        "--db",
        db,
        "--log-level",
        "INFO",
        "-s",
        f"FXCRAWL_SPOOL_DIR={spool}",
        *extra,
    ]


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
    time.sleep(4)
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
    commands = [
        crawl_command(
            db, tmp_path / "spool", 30, "-s", "FXCRAWL_STORE_BATCH_SIZE=5", "-s", "FXCRAWL_STORE_MAX_DELAY=0.05"
        )
        for _ in range(2)
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
