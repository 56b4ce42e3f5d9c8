"""Distributed: the same generated site, 50 ms per response, crawled by 1 and by 2 workers.

Each measurement seeds a fresh Redis job (``fxcrawl seed``, the pages split into a few
ranges so that several listing walks run at once) and a fresh PostgreSQL database, then
starts the workers as ``fxcrawl workers start`` starts them (``crawl search --distributed``
subprocesses), each capped at CONCURRENCY requests in flight. The clock runs from the first
worker's start to the last worker's exit; responses are counted in the fixture server's
access log. Every measurement is checked: every article stored exactly once, none fetched
twice. Rounds alternate 1/2, 2/1 … workers; figures are medians (one round by default).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    KEYWORD,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    Row,
    median,
    postgres_database,
    postgres_unavailable,
    ratio,
)
from benchmarks.e2e import server_cpu_seconds
from fx168 import site
from replay.generator import GeneratedSite
from replay.server import ReplayServer

DELAY = 0.05  # seconds the fixture server waits before each response
CONCURRENCY = 4  # requests in flight per worker
RANGES = 4  # listing walks the job is seeded with
WORKER_TIMEOUT = 300.0
FXCRAWL = [sys.executable, "-m", "fxcrawl.cli"]
#: Loopback: no politeness delay (as REPLAY_OVERRIDES), and each worker's concurrency capped.
WORKER_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CONCURRENT_REQUESTS": str(CONCURRENCY),
    "CONCURRENT_REQUESTS_PER_DOMAIN": str(CONCURRENCY),
}


def redis_unavailable(redis_url: str) -> str | None:
    """None if Redis answers at redis_url, else why not."""
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"Redis not reachable at {redis_url}: {exc}"


def page_ranges(pages: int, count: int = RANGES) -> str:
    """1..pages as at most ``count`` contiguous ranges of (nearly) equal size, e.g. '1-10,11-20,…'."""
    count = max(1, min(count, pages))
    bounds = [round(pages * i / count) for i in range(count + 1)]
    return ",".join(f"{bounds[i] + 1}-{bounds[i + 1]}" for i in range(count))


def expected_urls(pages: int) -> set[str]:
    generated = GeneratedSite(keyword=KEYWORD, pages=pages)
    return {site.article_url(generated.article(index)["id"]) for index in range(pages * 10)}


def _cli(*args: str) -> None:
    done = subprocess.run([*FXCRAWL, *args], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"fxcrawl {args[0]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def _worker_command(job: str, db: str, redis_url: str, base_url: str) -> list[str]:
    """The command line `fxcrawl workers start` runs for each worker, plus the settings above."""
    command = [
        *FXCRAWL,
        "crawl",
        "search",
        "--distributed",
        "--keyword",
        KEYWORD,
        "--db",
        db,
        "--redis-url",
        redis_url,
        "--base-url",
        base_url,
        "--log-level",
        "INFO",
        "--job",
        job,
    ]
    for name, value in WORKER_SETTINGS.items():
        command += ["--set", f"{name}={value}"]
    return command


def _delete_job(redis_url: str, job: str) -> None:
    import redis

    server = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
    for key in list(server.scan_iter(f"fxcrawl:{job}:*")):
        server.delete(key)
    server.close()


def _read_log(path: Path, offset: int) -> list[dict[str, Any]]:
    with path.open("rb") as log:
        log.seek(offset)
        return [json.loads(line) for line in log.read().decode("utf-8").splitlines() if line.strip()]


def _stored(db: str) -> tuple[int, set[str], list[dict[str, Any]]]:
    from sqlalchemy import func, select

    from storage.db import Database
    from storage.models import Article, CrawlRun

    database = Database(db)
    try:
        with database.session() as session:
            count = int(session.scalar(select(func.count(Article.id))) or 0)
            urls = set(session.scalars(select(Article.url)))
            runs = [
                {
                    "id": run.id,
                    "finish_reason": run.finish_reason,
                    "health": run.health,
                    "responses": int(run.stats.get("downloader/response_count") or 0),
                    "articles_new": run.articles_new,
                    "articles_updated": run.articles_updated,
                    "articles_unchanged": run.articles_unchanged,
                    "duplicates": run.duplicates,
                    "elapsed": run.stats.get("elapsed_time_seconds"),
                }
                for run in session.scalars(select(CrawlRun).order_by(CrawlRun.id))
            ]
    finally:
        database.dispose()
    return count, urls, runs


def measure(
    workers: int,
    server: ReplayServer,
    access_log: Path,
    pages: int,
    expected: set[str],
    workdir: Path,
    tag: str,
    postgres_url: str,
    redis_url: str,
) -> dict[str, Any]:
    """One crawl of the site by ``workers`` workers into a fresh database and a fresh Redis job."""
    job = f"bench-{uuid.uuid4().hex[:10]}"
    with postgres_database(postgres_url, prefix="fxcrawl_bench_dist") as db:
        try:
            # seed prepares the schema and queues the listing walks; not timed
            seed = ["seed", "--keyword", KEYWORD, "--job", job, "--pages", page_ranges(pages), "--db", db]
            _cli(*seed, "--redis-url", redis_url, "--base-url", server.base_url)
            offset = access_log.stat().st_size
            command = _worker_command(job, db, redis_url, server.base_url)
            logs = [workdir / f"distributed-{tag}-worker{i + 1}.log" for i in range(workers)]
            handles = [path.open("w", encoding="utf-8") for path in logs]
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_before = server_cpu_seconds(server.process.pid) if server.process else None
            started = time.perf_counter()
            started_at = time.time()
            processes = []
            for handle in handles:
                processes.append(subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT))
            exits: list[float | None] = [None] * workers
            try:
                while any(e is None for e in exits):
                    for i, process in enumerate(processes):
                        if exits[i] is None and process.poll() is not None:
                            exits[i] = time.perf_counter() - started
                    if time.perf_counter() - started > WORKER_TIMEOUT:
                        raise RuntimeError(f"{workers} worker(s) still running after {WORKER_TIMEOUT:.0f} s")
                    time.sleep(0.005)
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                for handle in handles:
                    handle.close()
            elapsed = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_after = server_cpu_seconds(server.process.pid) if server.process else None
            for i, process in enumerate(processes):
                if process.returncode != 0:
                    tail = logs[i].read_text(encoding="utf-8", errors="replace")[-3000:]
                    raise RuntimeError(f"worker {i + 1} of {workers} exited {process.returncode}:\n{tail}")
            entries = _read_log(access_log, offset)
            count, urls, runs = _stored(db)
        finally:
            _delete_job(redis_url, job)

    if not entries:
        raise RuntimeError(f"{workers} worker(s) exited 0 but no request reached the fixture server")
    served = [e for e in entries if e["status"] == 200]
    articles = Counter(e["path"] for e in served if e["path"].startswith("/article/"))
    listings = sum(1 for e in served if site.parse_search_url(e["path"]) is not None)
    robots = sum(1 for e in served if e["path"].startswith("/robots.txt"))
    first = min(e["t"] for e in entries)
    last = max(e["t"] for e in entries)
    window = last - first + DELAY  # first request's arrival to (about) the last response
    once = (
        count == len(expected)
        and urls == expected
        and sum(run["articles_new"] for run in runs) == len(expected)
        and all(run["duplicates"] == 0 and run["articles_updated"] == 0 for run in runs)
    )
    fetched_once = len(articles) == len(expected) and max(articles.values(), default=0) == 1
    return {
        "workers": workers,
        "job": job,
        "elapsed": elapsed,
        "responses": len(entries),
        "served_200": len(served),
        "listings": listings,
        "article_fetches": sum(articles.values()),
        "robots": robots,
        "pages_per_s": len(entries) / elapsed,
        "window": window,
        "window_pages_per_s": len(entries) / window,
        "first_request_after": first - started_at,
        "tail_after_last_request": elapsed - (last - started_at),
        "worker_exits": exits,
        "cpu": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
        "server_cpu": server_after - server_before if server_before is not None and server_after is not None else None,
        "stored": count,
        "stored_once": once,
        "fetched_once": fetched_once,
        "runs": runs,
        "logs": [str(path) for path in logs],
    }


def run(
    pages: int,
    rounds: int,
    workdir: Path,
    postgres_url: str = POSTGRES_ADMIN_URL,
    redis_url: str = REDIS_URL,
    log: Any = print,
) -> list[Row]:
    missing = postgres_unavailable(postgres_url) or redis_unavailable(redis_url)
    if missing:
        return [Row("distributed", "pages/s, 2 workers", None, "pages/s", status="SKIP", note=missing)]
    expected = expected_urls(pages)
    access_log = workdir / "distributed-access.log"
    access_log.write_text("")
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    with ReplayServer("--generate", str(pages), "--delay", str(DELAY), "--access-log", str(access_log)) as server:
        log(
            f"  distributed: server {server.base_url}, {pages} listing pages × 10 articles, {DELAY * 1000:.0f} ms "
            f"per response, {CONCURRENCY} requests per worker, seeded {page_ranges(pages)}"
        )
        for round_ in range(rounds):
            order = (1, 2) if round_ % 2 == 0 else (2, 1)
            for workers in order:
                tag = f"{round_}-{workers}"
                result = measure(workers, server, access_log, pages, expected, workdir, tag, postgres_url, redis_url)
                runs[workers].append(result)
                shares = "/".join(str(r["responses"]) for r in result["runs"])
                exits = ", ".join(f"{e:.2f}" for e in result["worker_exits"])
                log(
                    f"  distributed round {round_ + 1}/{rounds}, {workers} worker(s): {result['responses']} responses "
                    f"in {result['elapsed']:.2f} s = {result['pages_per_s']:.0f} pages/s "
                    f"(serving window {result['window']:.2f} s = {result['window_pages_per_s']:.0f} pages/s; "
                    f"first request at {result['first_request_after']:.2f} s, worker exits at {exits} s; "
                    f"responses per worker {shares}; workers' CPU {result['cpu']:.1f} s, "
                    f"server CPU {result['server_cpu'] or 0:.1f} s; "
                    f"stored {result['stored']}, once: {'yes' if result['stored_once'] else 'NO'}, "
                    f"fetched once: {'yes' if result['fetched_once'] else 'NO'})"
                )

    one = median([r["pages_per_s"] for r in runs[1]])
    two = median([r["pages_per_s"] for r in runs[2]])
    one_window = median([r["window_pages_per_s"] for r in runs[1]])
    two_window = median([r["window_pages_per_s"] for r in runs[2]])
    everything = runs[1] + runs[2]
    all_once = all(r["stored_once"] and r["fetched_once"] for r in everything)
    splits = [[run["responses"] for run in r["runs"]] for r in runs[2]]
    note = (
        f"{pages * 10} articles, {DELAY * 1000:.0f} ms/response, {CONCURRENCY} req/worker, "
        f"{len(page_ranges(pages).split(','))} seeded ranges, fresh PostgreSQL DB + Redis job each; "
        f"every article stored exactly once, none fetched twice: {'yes' if all_once else 'NO (see JSON)'} "
        f"({len(everything)} crawls); 2-worker split {' '.join('/'.join(map(str, s)) for s in splits)} "
        f"responses; median of {rounds}"
    )

    def overhead(key: str) -> str:
        return " / ".join(f"{median([r[key] for r in runs[n]]):.1f}" for n in (1, 2))

    return [
        Row(
            "distributed",
            "pages/s, 2 workers",
            two,
            "pages/s",
            baseline=one,
            baseline_name="1 worker",
            ratio=ratio(two, one),
            note=note,
            extra={
                "runs": runs,
                "pages": pages,
                "delay": DELAY,
                "concurrency": CONCURRENCY,
                "ranges": page_ranges(pages),
                "all_stored_once": all_once,
            },
        ),
        Row(
            "distributed",
            "pages/s, serving window only",
            two_window,
            "pages/s",
            baseline=one_window,
            baseline_name="1 worker",
            ratio=ratio(two_window, one_window),
            note=(
                f"first request to last response in the access log (ceiling {CONCURRENCY / DELAY:.0f} pages/s per "
                f"worker); outside it, 1 / 2 workers: start to first request {overhead('first_request_after')} s, "
                f"last request to last exit {overhead('tail_after_last_request')} s"
            ),
        ),
    ]
