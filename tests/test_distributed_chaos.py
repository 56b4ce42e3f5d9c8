"""Distributed crawls under faults (issue 14, bullet 6): two workers on PostgreSQL and Redis, one
killed with SIGKILL at a random moment, ten times with different seeds; ``reconcile`` after each
(itself killed mid-way in half of them, then run again). Every article is stored exactly once,
and after the reconcile nothing is fetched twice, nor anything fetched that was already stored.

Protocol (docs/operations.md, "When things go wrong"): the surviving worker finishes what the shared queue
holds; then ``reconcile`` queues what the killed one had taken; a worker fetches it.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from conftest import FXCRAWL
from sqlalchemy import select
from sqlalchemy.engine import make_url

from fx168 import site
from fxcrawl import cli
from replay.server import ReplayServer
from storage.db import Database
from storage.models import Article, CrawlRun

SEEDS = range(10)
PAGES = 3  # 30 articles per round: small, so ten rounds stay near a minute
FAST = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "FXCRAWL_STORE_MAX_DELAY=0.1"]


def fxcrawl(*args: str) -> list[str]:
    return [*FXCRAWL, *args]


@pytest.fixture
def databases(postgres_server: str) -> Iterator[list[str]]:
    """A fresh PostgreSQL database per round, dropped afterwards."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg", "postgresql")
    names = [f"fxcrawl_chaos_{uuid.uuid4().hex[:10]}" for _ in SEEDS]
    urls = [make_url(postgres_server).set(database=name).render_as_string(hide_password=False) for name in names]
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{names[0]}"')
            Database(urls[0]).prepare().dispose()  # migrated once; the others are copies of it
            for name in names[1:]:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{names[0]}"')
        yield urls
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def article_fetches(log: Path, since: float = 0.0) -> Counter[str]:
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return Counter(
        e["path"] for e in entries if e["path"].startswith("/article/") and e["status"] == 200 and e["t"] >= since
    )


def stored_urls(db: str) -> list[str]:
    database = Database(db, create=False)
    try:
        with database.session() as session:
            return list(session.scalars(select(Article.url)))
    finally:
        database.dispose()


def chaos_round(seed: int, db: str, redis_url: str, tmp_path: Path) -> None:
    rng = random.Random(seed)
    job = f"chaos-{uuid.uuid4().hex[:8]}-{seed}"
    log = tmp_path / f"access-{seed}.log"
    common = ["--job", job, "--db", db, "--redis-url", redis_url]
    try:
        with ReplayServer("--generate", str(PAGES), "--delay", "0.02", "--access-log", str(log)) as server:
            base = ["--base-url", server.base_url]
            assert cli.main(["seed", *common, *base, "--pages", f"1-{PAGES}"]) == 0  # in-process: quicker
            worker = fxcrawl("crawl", "search", "--distributed", *common, *base, "--log-level", "WARNING", *FAST)
            workers = [
                subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)
            ]
            time.sleep(rng.uniform(0.5, 4.0))  # anywhere from start-up to the end of the crawl
            victim = rng.randrange(2)
            workers[victim].kill()  # SIGKILL
            workers[victim].communicate()
            _, err = workers[1 - victim].communicate(timeout=120)
            assert workers[1 - victim].returncode == 0, f"seed {seed}: {err[-2000:]}"
            assert "DeprecationWarning" not in err  # scrapy-redis through the API Scrapy 2.19 supports

            before = set(stored_urls(db))
            reconciled_at = time.time()
            if seed % 2:  # reconcile itself killed at a random moment, then run again
                crashed = subprocess.Popen(
                    fxcrawl("reconcile", *common, *base), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(rng.uniform(0.0, 2.0))
                crashed.kill()
                crashed.wait()
            assert cli.main(["reconcile", *common, *base]) == 0
            last = subprocess.run(worker, capture_output=True, text=True, timeout=120)
            assert last.returncode == 0, f"seed {seed}: {last.stderr[-2000:]}"

            urls = stored_urls(db)
            assert len(urls) == len(set(urls)) == PAGES * 10, f"seed {seed}: {len(urls)} stored"
            after = article_fetches(log, since=reconciled_at)
            assert max(after.values(), default=0) <= 1, f"seed {seed}: fetched twice after reconcile: {after}"
            refetched = {path for path in after if site.canonical_url("https://www.fx168news.com" + path) in before}
            assert not refetched, f"seed {seed}: stored before the reconcile, fetched again: {refetched}"
        database = Database(db)
        with database.session() as session:
            open_runs = session.scalars(select(CrawlRun.id).where(CrawlRun.finished_at.is_(None))).all()
        database.dispose()
        assert open_runs == [], f"seed {seed}: runs left open {open_runs}"  # the killed worker's run: crashed
    finally:
        server_ = redis.Redis.from_url(redis_url)
        for key in server_.scan_iter(f"fxcrawl:{job}:*"):
            server_.delete(key)


def test_two_workers_one_killed_at_random_ten_times_store_each_article_once_and_fetch_none_twice_after_reconcile(
    databases: list[str], redis_server_url: str, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:  # two rounds at a time, each on its own job and database
        rounds = [
            pool.submit(chaos_round, seed, db, redis_server_url, tmp_path)
            for seed, db in zip(SEEDS, databases, strict=True)
        ]
        for done in rounds:
            done.result()
