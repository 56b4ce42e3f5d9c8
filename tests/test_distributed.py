"""Several workers, one frontier in Redis, one PostgreSQL store: over loopback, for real."""

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from conftest import FXCRAWL
from sqlalchemy import func, select

from crawler.distributed import json_serializer
from replay.server import ReplayServer
from storage.db import Database
from storage.models import Article

PAGES = 200  # 2,000 articles
FAST = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "FXCRAWL_STORE_MAX_DELAY=0.2"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FXCRAWL, *args], capture_output=True, text=True, timeout=timeout)


def worker(job: str, db: str, redis_url: str, base_url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *FXCRAWL,
            "crawl",
            "search",
            "--distributed",
            "--job",
            job,
            "--db",
            db,
            "--redis-url",
            redis_url,
            "--base-url",
            base_url,
            "--log-level",
            "INFO",
            *FAST,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def seed(job: str, db: str, redis_url: str, base_url: str, pages: str) -> None:
    done = cli("seed", "--job", job, "--pages", pages, "--db", db, "--redis-url", redis_url, "--base-url", base_url)
    assert done.returncode == 0, done.stderr


def reconcile(job: str, db: str, redis_url: str, base_url: str) -> subprocess.CompletedProcess[str]:
    return cli("reconcile", "--job", job, "--db", db, "--redis-url", redis_url, "--base-url", base_url)


def stored(db: str) -> tuple[int, int]:
    database = Database(db)
    with database.session() as session:
        result = (
            session.scalars(select(func.count(Article.id))).one(),
            session.scalars(select(func.count(func.distinct(Article.url)))).one(),
        )
    database.dispose()
    return result


def detail_fetches(log: Path) -> Counter[str]:
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return Counter(e["path"] for e in entries if e["path"].startswith("/article/") and e["status"] == 200)


def test_the_queue_holds_json_not_pickle() -> None:
    from scrapy import Request

    request = Request("http://127.0.0.1/article/1", headers={"If-None-Match": '"x"'}, cb_kwargs={"last": 3})
    encoded = json_serializer.dumps(request.to_dict())
    assert json.loads(encoded)["url"] == "http://127.0.0.1/article/1"
    assert json_serializer.loads(encoded) == request.to_dict()


def test_three_workers_store_every_article_once_and_fetch_none_twice(
    postgres_url: str, redis_server_url: str, redis_job: str, tmp_path: Path
) -> None:
    Database(postgres_url).prepare().dispose()
    log = tmp_path / "access.log"
    with ReplayServer("--generate", str(PAGES), "--access-log", str(log)) as server:
        seed(redis_job, postgres_url, redis_server_url, server.base_url, "1-50,51-100,101-150,151-200")
        workers = [worker(redis_job, postgres_url, redis_server_url, server.base_url) for _ in range(3)]
        results = [w.communicate(timeout=300) for w in workers]
    for process, (_, err) in zip(workers, results, strict=True):
        assert process.returncode == 0, err[-2000:]
    assert stored(postgres_url) == (2000, 2000)
    fetched = detail_fetches(log)
    assert len(fetched) == 2000 and max(fetched.values()) == 1  # no detail URL fetched twice
    assert all("every worker idle" in err for _, err in results)
    # shared state outlives the workers' clean exit: the dupefilter still knows every request
    server_ = redis.Redis.from_url(redis_server_url)
    assert server_.scard(f"fxcrawl:{redis_job}:dupefilter") >= 2000


def test_a_worker_killed_mid_crawl_loses_nothing_after_reconcile(
    postgres_url: str, redis_server_url: str, redis_job: str, tmp_path: Path
) -> None:
    Database(postgres_url).prepare().dispose()
    with ReplayServer("--generate", str(PAGES), "--delay", "0.01") as server:
        seed(redis_job, postgres_url, redis_server_url, server.base_url, "1-50,51-100,101-150,151-200")
        workers = [worker(redis_job, postgres_url, redis_server_url, server.base_url) for _ in range(3)]
        deadline = time.monotonic() + 120
        while stored(postgres_url)[0] < 500 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert stored(postgres_url)[0] >= 500, "the crawl did not get going"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].communicate()
        done = reconcile(redis_job, postgres_url, redis_server_url, server.base_url)
        assert done.returncode == 0, done.stderr
        results = [w.communicate(timeout=300) for w in workers[1:]]
        for process, (_, err) in zip(workers[1:], results, strict=True):
            assert process.returncode == 0, err[-2000:]
        if stored(postgres_url)[0] < 2000:  # the reconcile raced the survivors' exit: one more pass finishes it
            reconcile(redis_job, postgres_url, redis_server_url, server.base_url)
            last = worker(redis_job, postgres_url, redis_server_url, server.base_url)
            _, err = last.communicate(timeout=300)
            assert last.returncode == 0, err[-2000:]
    assert stored(postgres_url) == (2000, 2000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port).ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("redis-server did not start")


needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


class OwnRedis:
    """A throwaway redis-server on a free loopback port (never the machine's), to stop and start at will."""

    def __init__(self, directory: Path) -> None:
        self.port, self.directory = _free_port(), directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = _start_redis(self.port, directory)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.process = _start_redis(self.port, self.directory)


@contextlib.contextmanager
def worker_on_own_redis(db: str, tmp_path: Path, job: str, max_outage: int):
    """One worker crawling a slow 600-article site through a throwaway Redis: yields (worker, redis)."""
    Database(db).prepare().dispose()
    own = OwnRedis(tmp_path)
    try:
        with ReplayServer("--generate", "60", "--delay", "0.05") as server:
            seed(job, db, own.url, server.base_url, "1-60")
            crawl = worker(
                job,
                db,
                own.url,
                server.base_url,
                "-s",
                f"FXCRAWL_REDIS_MAX_OUTAGE={max_outage}",
                "-s",
                "CONCURRENT_REQUESTS=2",
            )
            deadline = time.monotonic() + 60  # mid-crawl: it has stored something (not a fixed sleep: a
            while time.monotonic() < deadline:  # busy machine may take longer than that to start a worker)
                with contextlib.suppress(Exception):
                    if stored(db)[0] > 0:
                        break
                time.sleep(0.2)
            yield crawl, own
    finally:
        own.stop()


@needs_redis_server
def test_workers_reconnect_after_a_brief_redis_restart(sqlite_url: str, redis_server_url: str, tmp_path: Path) -> None:
    """Redis restarted mid-crawl: the worker carries on and ends cleanly."""
    with worker_on_own_redis(sqlite_url, tmp_path, "restart", max_outage=20) as (crawl, own):
        own.stop()  # it keeps nothing: back empty, which reconcile covers
        time.sleep(3)
        own.restart()
        _, err = crawl.communicate(timeout=120)
    assert "Redis unavailable" in err and "Redis is back" in err
    assert crawl.returncode == 0, err[-2000:]
    assert stored(sqlite_url)[0] > 0


@needs_redis_server
def test_workers_exit_non_zero_when_redis_stays_down(sqlite_url: str, redis_server_url: str, tmp_path: Path) -> None:
    with worker_on_own_redis(sqlite_url, tmp_path, "down", max_outage=5) as (crawl, own):
        own.stop()
        started = time.monotonic()
        _, err = crawl.communicate(timeout=120)
        took = time.monotonic() - started
    assert crawl.returncode == 1, err[-2000:]
    assert "Redis unavailable for over 5 s: stopping this worker" in err
    assert took < 45  # neither hung nor spun: gave up after the allowed outage


def test_the_idle_poller_wakes_the_engine_through_public_doors_only() -> None:
    """Each tick hands the engine a wake-up through its public crawl(); the poller's own
    request_scheduled handler drops it (IgnoreRequest, as Scrapy documents) before the scheduler."""
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.utils.test import get_crawler

    from crawler.distributed import DistributedSearchSpider, IdlePoller

    crawler = get_crawler(DistributedSearchSpider, settings_dict={"FXCRAWL_IDLE_POLL_INTERVAL": 0.25})
    poller = IdlePoller(crawler)
    assert poller.interval == 0.25
    woken: list[Request] = []
    crawler.engine = SimpleNamespace(spider=object(), running=True, crawl=woken.append)  # type: ignore[assignment]  # a stand-in engine
    poller.wake()
    (wake_up,) = woken
    with pytest.raises(IgnoreRequest):
        poller.request_scheduled(wake_up)
    poller.request_scheduled(Request("http://127.0.0.1/article/1"))  # real requests go on to the scheduler
    crawler.engine.running = False
    poller.wake()  # an engine stopping: nothing to wake
    assert len(woken) == 1


def test_an_idle_worker_takes_from_the_shared_queue_every_poll_interval_not_every_5_s(
    sqlite_url: str, redis_server_url: str, redis_job: str, tmp_path: Path
) -> None:
    """A worker with nothing to do takes what another pushes to the shared queue within
    FXCRAWL_IDLE_POLL_INTERVAL (0.25 s here), not on Scrapy's 5 s engine heartbeat: four times in a
    row (by chance, under a 5 s heartbeat, all four within 1.5 s: under 1 %)."""
    from scrapy.utils.test import get_crawler

    from crawler.distributed import DistributedSearchSpider, ResilientScheduler, distributed_settings, keys

    server = redis.Redis.from_url(redis_server_url)
    workers_key = keys(redis_job)["workers"]
    # another worker, busy for the whole test: the idle one must not conclude the crawl is over
    busy = {"state": "busy", "t": time.time() + 600, "host": "elsewhere", "pid": 1}
    server.hset(workers_key, "elsewhere:1", json.dumps(busy))
    log = tmp_path / "access.log"
    with ReplayServer("--access-log", str(log)) as site_server:
        crawler = get_crawler(DistributedSearchSpider, settings_dict=distributed_settings(redis_server_url, redis_job))
        spider = DistributedSearchSpider.from_crawler(crawler, keyword="现代")
        pusher = ResilientScheduler.from_crawler(crawler)
        pusher.open(spider)
        idle = worker(
            redis_job, sqlite_url, redis_server_url, site_server.base_url, "-s", "FXCRAWL_IDLE_POLL_INTERVAL=0.25"
        )
        try:
            name = f"{socket.gethostname()}:{idle.pid}"

            def is_idle() -> bool:
                raw = server.hget(workers_key, name)
                return raw is not None and json.loads(raw)["state"] == "idle"

            waits = []
            for article in (1049185, 1049176, 1048612, 1048655):
                deadline = time.monotonic() + 60
                while not is_idle() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert is_idle(), "the worker never went idle"
                time.sleep(0.3)  # and stays so for a moment
                pushed = time.monotonic()
                pusher.enqueue_request(spider.article_request(f"{site_server.base_url}/article/{article}"))
                while not (log.exists() and f"/article/{article}" in log.read_text()):
                    assert time.monotonic() - pushed < 30, f"article {article} was never taken from the queue"
                    time.sleep(0.02)
                waits.append(time.monotonic() - pushed)
            assert max(waits) < 1.5, waits
            server.hdel(workers_key, "elsewhere:1")  # the other worker is done: so is this one, promptly
            _, err = idle.communicate(timeout=30)
            assert idle.returncode == 0, err[-2000:]
            assert "every worker idle" in err
        finally:
            if idle.poll() is None:
                idle.kill()
                idle.communicate()


def test_a_worker_joining_a_queue_that_holds_requests_warns_of_nothing_deprecated(redis_server_url: str) -> None:
    """scrapy-redis 0.9.1 greets a non-empty queue with ``spider.log``, deprecated in Scrapy 2.19:
    the chaos test met it whenever the second worker started after the first had queued."""
    import uuid
    import warnings

    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from crawler.distributed import DistributedSearchSpider, ResilientScheduler, distributed_settings

    job = f"join-{uuid.uuid4().hex[:8]}"
    crawler = get_crawler(DistributedSearchSpider, settings_dict=distributed_settings(redis_server_url, job))
    server = redis.Redis.from_url(redis_server_url)
    try:
        first = ResilientScheduler.from_crawler(crawler)
        spider = DistributedSearchSpider.from_crawler(crawler, keyword="现代")
        first.open(spider)
        first.enqueue_request(Request("http://127.0.0.1/article/1049903"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = ResilientScheduler.from_crawler(crawler)
            second.open(spider)
        assert len(second.queue) == 1
    finally:
        for key in server.scan_iter(f"fxcrawl:{job}:*"):
            server.delete(key)


def test_a_worker_killed_holding_a_walks_first_page_leaves_it_owed_for_reconcile(
    sqlite_url: str, redis_server_url: str, redis_job: str
) -> None:
    """`seed` writes each walk's first page into the frontier before Redis has it: the chaos test
    once stored nothing at all, its only walk taken by the worker it killed and known nowhere else."""
    from crawler.distributed import keys
    from fx168 import site

    server = redis.Redis.from_url(redis_server_url)
    with ReplayServer("--generate", "2") as site_server:
        seed(redis_job, sqlite_url, redis_server_url, site_server.base_url, "1-2")
        taken = server.lpop(keys(redis_job)["start_urls"])  # a worker took it, then died (SIGKILL)
        assert isinstance(taken, bytes) and server.llen(keys(redis_job)["start_urls"]) == 0
        done = reconcile(redis_job, sqlite_url, redis_server_url, site_server.base_url)
        assert done.returncode == 0 and "queued 1 URLs" in done.stdout, done.stdout + done.stderr
        (requeued,) = [json.loads(entry) for entry in server.lrange(keys(redis_job)["start_urls"], 0, -1)]
        assert requeued["kind"] == "listing" and requeued["last"] == 2
        assert site.canonical_url(requeued["url"], site_server.base_url) == site.canonical_url(
            json.loads(taken)["url"], site_server.base_url
        )

        last = worker(redis_job, sqlite_url, redis_server_url, site_server.base_url)
        _, err = last.communicate(timeout=120)
        assert last.returncode == 0, err[-2000:]
        assert stored(sqlite_url) == (20, 20)
        again = reconcile(redis_job, sqlite_url, redis_server_url, site_server.base_url)
        assert "queued 0 URLs" in again.stdout, again.stdout  # the walk's pages are read: nothing owed


def test_workers_start_shows_one_combined_total_and_serves_metrics(
    postgres_url: str, redis_server_url: str, redis_job: str, tmp_path: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    Database(postgres_url).prepare().dispose()
    with ReplayServer("--generate", "20", "--delay", "0.02") as server:
        seed(redis_job, postgres_url, redis_server_url, server.base_url, "1-10,11-20")
        command = [*FXCRAWL, "workers", "start", "2", "--job", redis_job, "--db", postgres_url]
        command += ["--redis-url", redis_server_url, "--base-url", server.base_url, "--log-level", "INFO"]
        command += [*FAST, "-s", "FXCRAWL_PROGRESS_INTERVAL=0.5", "--metrics-port", str(port)]
        started = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        families: set[str] = set()
        while started.poll() is None:
            with contextlib.suppress(OSError):
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                families |= {family.name for family in text_string_to_metric_families(text)}
            time.sleep(0.3)
        _, err = started.communicate(timeout=300)
    assert started.returncode == 0, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("fxcrawl: progress")]
    assert len(lines) >= 2, err[-3000:]
    assert lines[-1].startswith(f"fxcrawl: progress (done): {redis_job} (0/2 workers) 220/220 pages (100%) · new 200")
    assert "[crawler.progress] INFO: progress" in err  # each worker logs its own line as well
    assert {"fxcrawl_queue_requests", "fxcrawl_pages", "fxcrawl_runs_running"} <= families
