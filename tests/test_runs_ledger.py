"""The run ledger closes, however a run ends (issue 14, bullet 1): a crawl killed with SIGKILL is
marked crashed by the next run with the counts the database holds of it; a crawl whose database
is away as it closes spools its final row, and ``spool replay`` finishes it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from conftest import FXCRAWL, article_item, make_crawler, replay_crawl_command, unwritable
from scrapy import Spider
from sqlalchemy import func, select

from crawler.ledger import RunRecorder
from fxcrawl import cli
from pipelines.store import BatchWriter
from pipelines.validate import ValidatePipeline
from storage.db import Database
from storage.health import HealthPolicy
from storage.models import Article, CrawlRun, utcnow
from storage.runs import CRASHED, LedgerPolicy, close_crashed_runs
from storage.spool import Spool, spool_dir_for


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def open_run(database: Database, **columns: object) -> int:
    with database.write_session() as session:
        run = CrawlRun(spider="search", job="search:现代", args={}, stats={}, health_reasons=[], **columns)
        session.add(run)
        session.flush()
        return run.id


def test_an_open_run_whose_process_is_gone_is_marked_crashed_with_its_stored_counts(database_url: str) -> None:
    database = Database(database_url).prepare()
    host, now = socket.gethostname(), utcnow()
    dead = open_run(database, host=host, pid=dead_pid(), heartbeat_at=now)
    silent = open_run(database, host="elsewhere", pid=1, heartbeat_at=now - timedelta(minutes=5))
    alive = open_run(database, host=host, pid=os.getppid(), heartbeat_at=now)
    elsewhere_alive = open_run(database, host="elsewhere", pid=1, heartbeat_at=now)
    validate = ValidatePipeline.from_crawler(make_crawler(FXCRAWL_DATABASE_URL=database_url))
    items = [validate.process_item(article_item(f"https://www.fx168news.com/article/{i}")) for i in range(7)]
    BatchWriter(database).write(items, dead)

    assert sorted(close_crashed_runs(database, LedgerPolicy(stale_after=60))) == [dead, silent]
    with database.session() as session:
        rows = {run.id: run for run in session.scalars(select(CrawlRun))}
    database.dispose()
    assert rows[dead].finish_reason == rows[silent].finish_reason == CRASHED
    assert rows[dead].finished_at is not None and rows[dead].articles_new == 7
    assert rows[dead].health == "unhealthy" and "crashed" in rows[dead].health_reasons[0]
    assert rows[alive].finished_at is None and rows[elsewhere_alive].finished_at is None


def test_a_run_whose_database_is_away_at_close_spools_its_row_and_replay_finishes_it(
    database_url: str, tmp_path: Path, capsys
) -> None:
    db = f"{database_url}?timeout=0.2" if database_url.startswith("sqlite") else database_url
    database = Database(db).prepare()
    crawler = make_crawler(FXCRAWL_DATABASE_URL=db, FXCRAWL_SPOOL_DIR=str(tmp_path / "spool"))
    recorder = RunRecorder(
        database, crawler.stats, None, HealthPolicy(), LedgerPolicy(heartbeat=3600), tmp_path / "spool"
    )
    spider = Spider(name="search", run_args={"keyword": "现代"})  # Spider sets keyword arguments as attributes
    recorder.spider_opened(spider)
    crawler.stats.set_value("fxcrawl/pages/listing", 3)
    crawler.stats.set_value("fxcrawl/store/spooled_items", 12)
    with unwritable(db):
        database.dispose()
        recorder.spider_closed(spider, "finished")  # no traceback: the row waits in the spool
    assert crawler.stats.get_value("fxcrawl/health") == "unhealthy"
    spool = Spool(spool_dir_for(tmp_path / "spool", db))
    assert [path.name for path in spool.run_files()] == [f"run-{recorder.run_id}.json"]

    assert cli.main(["spool", "replay", "--db", db, "--spool-dir", str(tmp_path / "spool")]) == 0
    assert "1 run rows" in capsys.readouterr().out
    with database.session() as session:
        run = session.get_one(CrawlRun, recorder.run_id)
    database.dispose()
    assert run.finish_reason == "finished" and run.finished_at is not None
    assert run.pages == 3 and run.spooled == 12 and run.health == "unhealthy"
    assert any("database was unavailable as the run closed" in why for why in run.health_reasons)
    assert spool.run_files() == []


def test_a_crawl_killed_with_sigkill_leaves_no_open_run_row_after_the_next_run(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    spool = tmp_path / "spool"
    command = replay_crawl_command(
        40, spool, "--replay-delay", "0.05", "-s", "CONCURRENT_REQUESTS=4", "-s", "FXCRAWL_STORE_MAX_DELAY=0.2", db=db
    )
    # its own process group: SIGKILL takes the crawl and its fixture server, as a power cut would
    crawl = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    database = Database(db)
    deadline = time.monotonic() + 60
    stored = 0
    while stored < 30 and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with database.session() as session:
                stored = session.scalar(select(func.count(Article.id))) or 0
        except Exception:  # the schema is not built yet
            stored = 0
    os.killpg(crawl.pid, signal.SIGKILL)
    crawl.communicate(timeout=30)
    assert 30 <= stored < 400, "the crawl was not killed mid-run"
    with database.session() as session:
        killed = session.scalars(select(CrawlRun)).one()
    assert killed.finished_at is None  # what SIGKILL leaves behind

    rerun = subprocess.run(replay_crawl_command(40, spool, db=db), capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    with database.session() as session:
        rows = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
        first_stored = session.scalars(select(func.count(Article.id)).where(Article.first_run_id == killed.id)).one()
        total = session.scalars(select(func.count(Article.id))).one()
    database.dispose()
    assert [row.finished_at is not None for row in rows] == [True, True]  # no open run row
    crashed, finished = rows
    assert crashed.finish_reason == CRASHED and finished.finish_reason == "finished"
    assert crashed.articles_new == first_stored >= stored > 0  # the counts it did store
    assert total == 400 and crashed.articles_new + finished.articles_new == 400

    listing = subprocess.run(
        [*FXCRAWL, "runs", "list", "--db", db], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    line = next(line for line in listing.splitlines() if line.split()[:1] == [str(crashed.id)])
    assert CRASHED in line.split() and str(crashed.articles_new) in line.split()


def listing_requests(log: Path) -> list[tuple[int, float]]:
    """The listing pages a fixture server was asked for, in order, with when each was asked."""
    import json

    from fx168 import site

    pages = []
    for line in log.read_text().splitlines() if log.exists() else []:
        entry = json.loads(line)
        query = site.parse_search_url("http://replay" + entry["path"])
        if query is not None:
            pages.append((query.page, entry["t"]))
    return pages


def recorded_listing_pages(database: Database) -> int:
    """The listing pages the running crawl's heartbeat has recorded so far."""
    try:
        with database.session() as session:
            stats = session.scalar(select(CrawlRun.stats).order_by(CrawlRun.id.desc()).limit(1))
    except Exception:  # not built yet
        return 0
    return int((stats or {}).get("fxcrawl/pages/listing", 0))


def test_max_pages_counts_the_listing_pages_of_the_whole_job_across_a_crash_and_its_rerun(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    spool = tmp_path / "spool"
    # each response takes 0.3 s: a listing page asked for is, for that long, in flight
    slow = ["--replay-delay", "0.3", "-s", "CONCURRENT_REQUESTS=16", "-s", "FXCRAWL_STORE_MAX_DELAY=0.1"]
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    crawl = subprocess.Popen(
        replay_crawl_command(
            40,
            spool,
            "--max-pages",
            "12",
            "--access-log",
            str(first_log),
            "-s",
            "FXCRAWL_RUN_HEARTBEAT=0.05",
            *slow,
            db=db,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    database = Database(db)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # kill it just after it asked for a listing page, long before the answer
        asked = listing_requests(first_log)
        if len(asked) >= 5 and time.time() - asked[-1][1] < 0.1 and recorded_listing_pages(database) == len(asked) - 1:
            break
        time.sleep(0.02)
    os.killpg(crawl.pid, signal.SIGKILL)
    crawl.communicate(timeout=30)
    before = listing_requests(first_log)
    assert 5 <= len(before) < 12, before

    rerun = subprocess.run(
        replay_crawl_command(40, spool, "--max-pages", "12", "--access-log", str(second_log), *slow, db=db),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = listing_requests(second_log)
    with database.session() as session:
        crashed, finished = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
    database.dispose()
    # The killed run read every page it asked for but the last (in flight when it died, never read).
    assert crashed.finish_reason == CRASHED and crashed.stats["fxcrawl/pages/listing"] == len(before) - 1
    assert finished.stats["fxcrawl/max_pages/earlier_unfinished"] == len(before) - 1
    # Pages of the job read: 12, the budget, not 12 for each run.
    assert crashed.stats["fxcrawl/pages/listing"] + finished.stats["fxcrawl/pages/listing"] == 12
    assert len(after) <= 12 - (len(before) - 1), (before, after)  # the rerun asked for no more than was left


def test_each_run_count_is_named_once_from_stats_to_column_to_what_people_read() -> None:
    """storage.runs.RUN_COUNTS is the one place a count gets its names: the crawl_runs column it
    fills, the stats it sums, and the name `runs list/show` and the JSON API print."""
    from storage.models import CrawlRun
    from storage.queries import run_json
    from storage.runs import RUN_COUNTS, run_counts

    columns = set(CrawlRun.__table__.c.keys())
    assert {count.column for count in RUN_COUNTS} <= columns
    stats = {key: i + 1 for i, count in enumerate(RUN_COUNTS) for key in count.stats}
    counts = run_counts(stats)
    assert counts == {count.column: sum(stats[key] for key in count.stats) for count in RUN_COUNTS}
    shown = run_json(CrawlRun(**counts, args={}, stats={}, health_reasons=[]))
    for count in RUN_COUNTS:
        if count.shown:
            assert shown[count.shown] == counts[count.column]
