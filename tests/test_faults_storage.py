"""Issue 5, storage half: whole crawls in child processes against faults of the database and the
process, on real SQLite and PostgreSQL.

- PostgreSQL goes away for 30 s mid-crawl (a TCP proxy in front of it is cut, never the
  machine's shared server): the crawl keeps downloading, retries its writes, and stores every
  article exactly once;
- SIGTERM mid-crawl, then another run: every article stored exactly once;
- a password in the database URL shows up nowhere: logs at DEBUG, error messages, the spool,
  stats, ``runs show``;
- a crawl opens no listening port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
from conftest import FXCRAWL, replay_crawl_command
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from storage import logsafety
from storage.db import Database
from storage.models import Article, ArticleRevision, CrawlRun

ARTICLES_PER_PAGE = 10


def stored(db: str) -> dict[str, int]:
    """Articles, distinct article URLs and revisions in the database."""
    database = Database(db)
    try:
        with database.session() as session:
            return {
                "articles": session.scalar(select(func.count(Article.id))) or 0,
                "distinct": session.scalar(select(func.count(func.distinct(Article.url)))) or 0,
                "revisions": session.scalar(select(func.count(ArticleRevision.id))) or 0,
            }
    finally:
        database.dispose()


def runs(db: str) -> list[CrawlRun]:
    database = Database(db)
    try:
        with database.session() as session:
            return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
    finally:
        database.dispose()


def wait_for_articles(db: str, at_least: int, process: subprocess.Popen[str], timeout: float = 60) -> int:
    """Block until the crawl has stored ``at_least`` articles (read directly, not through any proxy)."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(Exception):
            count = stored(db)["articles"]
        if count >= at_least:
            return count
        time.sleep(0.2)
    raise AssertionError(f"the crawl stored {count} articles, not {at_least}, before {timeout} s or its end")


# -- 6. PostgreSQL away for 30 s mid-crawl --------------------------------------------------


class CuttableProxy:
    """A loopback TCP proxy in front of PostgreSQL that a test cuts and restores.

    Cut: every proxied connection is shut down and new ones are reset as they arrive, which is
    what a client sees of a database server that stopped. Bounded: at most ``max_connections``
    at once, threads that end with the test, loopback only.
    """

    def __init__(self, target: tuple[str, int], max_connections: int = 64) -> None:
        self.target = target
        self.max_connections = max_connections
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.is_cut = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.refused = 0
        self.threads = [threading.Thread(target=self._accept, name="proxy-accept", daemon=True)]
        self.threads[0].start()

    def url_for(self, database_url: str) -> str:
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        self.is_cut.set()
        with self.lock:
            doomed, self.sockets = self.sockets, set()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        self.is_cut.clear()

    def close(self) -> None:
        self.stopped.set()
        self.cut()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                full = len(self.sockets) >= 2 * self.max_connections
            if self.is_cut.is_set() or full:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update({client, upstream})
            for source, sink in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(source, sink), name="proxy-pump", daemon=True)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.sockets.difference_update({source, sink})
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _reset(sock: socket.socket) -> None:
    """Refuse a connection: close it with a TCP reset."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def postgres_proxy(postgres_url: str) -> Iterator[CuttableProxy]:
    url = make_url(postgres_url)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()


OUTAGE = 30.0


def test_postgresql_away_30s_mid_crawl_loses_nothing_and_stores_nothing_twice(
    postgres_url: str, postgres_proxy: CuttableProxy, tmp_path: Path
) -> None:
    pages = 40
    access_log = tmp_path / "access.jsonl"
    through_proxy = postgres_proxy.url_for(postgres_url)
    Database(postgres_url).prepare().dispose()
    command = replay_crawl_command(
        pages,
        tmp_path / "spool",
        "--replay-delay",
        "0.2",
        "--access-log",
        str(access_log),
        "-s",
        "CONCURRENT_REQUESTS=2",
        "-s",
        "FXCRAWL_STORE_BATCH_SIZE=20",
        "-s",
        "FXCRAWL_STORE_MAX_DELAY=0.5",
        db=through_proxy,
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = wait_for_articles(postgres_url, 20, process)
        postgres_proxy.cut()
        cut_at = time.time()
        time.sleep(OUTAGE)
        restored_at = time.time()
        postgres_proxy.restore()
        assert process.poll() is None, "the crawl ended during the outage; make it slower"
        _, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err[-3000:]
    expected = pages * ARTICLES_PER_PAGE
    assert before < expected
    assert stored(postgres_url) == {"articles": expected, "distinct": expected, "revisions": 0}
    [run] = runs(postgres_url)
    assert (run.finish_reason, run.spooled, run.health) == ("finished", 0, "healthy"), run.health_reasons
    assert run.articles_new + run.articles_unchanged == expected  # a write retried after its commit: unchanged
    assert run.stats["fxcrawl/store/retries"] >= 1 and run.retries >= 1
    # Downloads went on while the database was away.
    requests = [json.loads(line) for line in access_log.read_text(encoding="utf-8").splitlines()]
    during = [r for r in requests if cut_at + 1 < r["t"] < restored_at - 1]
    assert len(during) >= 20, f"only {len(during)} requests during the outage"
    assert any("/article/" in r["path"] for r in during) and any("/search" in r["path"] for r in during)
    assert "database write failed (attempt" in err and "retrying in" in err
    assert postgres_proxy.refused >= 1  # the crawl did try the database during the outage


# -- 7. SIGTERM mid-crawl, then the next run --------------------------------------------------


def test_sigterm_mid_crawl_then_a_new_run_stores_everything_exactly_once(database_url: str, tmp_path: Path) -> None:
    pages = 30
    command = replay_crawl_command(
        pages,
        tmp_path / "spool",
        "--replay-delay",
        "0.05",
        "-s",
        "CONCURRENT_REQUESTS=4",
        "-s",
        "FXCRAWL_STORE_BATCH_SIZE=20",
        "-s",
        "FXCRAWL_STORE_MAX_DELAY=0.5",
        db=database_url,
    )
    Database(database_url).prepare().dispose()
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_articles(database_url, 30, first)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 1, err[-2000:]  # it did not finish, and says so
    interrupted = stored(database_url)["articles"]
    expected = pages * ARTICLES_PER_PAGE
    assert 0 < interrupted < expected

    second = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]

    assert stored(database_url) == {"articles": expected, "distinct": expected, "revisions": 0}
    first_run, second_run = runs(database_url)
    assert (first_run.finish_reason, second_run.finish_reason) == ("shutdown", "finished")
    assert first_run.articles_new == interrupted  # everything parsed before SIGTERM was flushed
    assert first_run.articles_new + second_run.articles_new == expected
    assert first_run.spooled == second_run.spooled == 0


# -- 8. a password in DATABASE_URL appears nowhere --------------------------------------------


def test_the_database_password_appears_in_no_output(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    role, password = f"fxcrawl_pw_{uuid.uuid4().hex[:8]}", f"Zq7-{uuid.uuid4().hex[:12]}-Kestrel"
    admin = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    database = make_url(postgres_url).database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')
    secret_url = make_url(postgres_url).set(username=role, password=password).render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": secret_url}  # not on the command line, where ps would show it
    spool = tmp_path / "spool"
    outputs: dict[str, str] = {}

    def fxcrawl(name: str, *args: str, code: int = 0, environment: dict[str, str] = env) -> None:
        result = subprocess.run([*FXCRAWL, *args], capture_output=True, text=True, timeout=120, env=environment)
        outputs[name] = result.stdout + result.stderr
        assert result.returncode == code, (name, outputs[name][-3000:])

    try:
        fxcrawl("db upgrade", "db", "upgrade")
        with psycopg.connect(admin, autocommit=True) as conn:  # the articles table refuses the crawl's writes
            conn.execute(f"REVOKE INSERT, UPDATE ON articles FROM {role}")
        fxcrawl(
            "crawl",
            *replay_crawl_command(2, spool, "--log-level", "DEBUG", "-s", "FXCRAWL_STORE_RETRY_ATTEMPTS=2")[3:],
            code=1,
        )
        assert "Overridden settings" in outputs["crawl"] and "DEBUG" in outputs["crawl"]  # the log is verbose
        assert "spooled to" in outputs["crawl"] and "permission denied" in outputs["crawl"]
        fxcrawl("spool list", "spool", "list", "--spool-dir", str(spool))
        spooled = {path.name: path.read_text(encoding="utf-8") for path in spool.rglob("*") if path.is_file()}
        assert spooled, "the crawl spooled nothing"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"GRANT INSERT, UPDATE ON articles TO {role}")
        fxcrawl("spool replay", "spool", "replay", "--spool-dir", str(spool))
        fxcrawl("runs list", "runs", "list", "--json")
        fxcrawl("runs show", "runs", "show", "1")
        fxcrawl("runs show --json", "runs", "show", "1", "--json")
        fxcrawl("articles list", "articles", "list", "--json")
        fxcrawl("db current", "db", "current")
        unreachable = {**env, "DATABASE_URL": make_url(secret_url).set(port=1).render_as_string(hide_password=False)}
        fxcrawl("unreachable", "articles", "list", code=1, environment=unreachable)
        assert "database error" in outputs["unreachable"] and f"{role}:***@" in outputs["unreachable"]
        with psycopg.connect(admin, autocommit=True) as conn:
            stored_text = "\n".join(
                str(row)
                for table in ("crawl_runs", "rejects", "frontier")
                for row in conn.execute(f"SELECT * FROM {table}").fetchall()
            )
        assert json.loads(outputs["runs show --json"])["stats"]["fxcrawl/store/spooled_items"] > 0

        places = {**{f"output of fxcrawl {k}": v for k, v in outputs.items()}, **spooled, "tables": stored_text}
        for place, content in places.items():
            assert password not in content, f"the password appears in {place}"
    finally:
        with psycopg.connect(
            make_url(admin).set(database="postgres").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_log_records_are_redacted_whatever_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    password = "Wren@5f0c-Secret"  # an @ in a password is spelled %40 in its URL
    logsafety.protect_url(f"postgresql+psycopg://crawler:{quote(password, safe='')}@db.example:5432/fxcrawl")
    logger = logging.getLogger("fxcrawl.test.logsafety")
    with caplog.at_level(logging.DEBUG, logger="fxcrawl.test.logsafety"):
        logger.info("Overridden settings:\n%(settings)s", {"settings": {"URL": "redis://:hunter22@cache:6379/0"}})
        logger.debug("bare %s and quoted %s", password, quote(password, safe=""))
        try:
            raise RuntimeError(f"could not connect to postgresql://other:{password}@h/db")
        except RuntimeError:
            logger.exception("failed")
    text_ = caplog.text
    assert "hunter22" not in text_ and "5f0c" not in text_
    assert "redis://:***@cache:6379/0" in text_ and "postgresql://other:***@h/db" in text_
    assert "bare *** and quoted ***" in text_
    assert logsafety.redact_text(f"x postgresql://u:{password}@h y") == "x postgresql://u:***@h y"


def test_records_no_handler_takes_are_not_formatted_to_be_redacted() -> None:
    """Scrapy makes a DEBUG record per dropped item even at LOG_LEVEL=WARNING (it filters at its
    handler); formatting each to redact it cost more than the rest of logging."""
    logsafety.install()

    class Loud:
        formatted = 0

        def __str__(self) -> str:
            Loud.formatted += 1
            return "item"

    logger = logging.getLogger("fxcrawl.test.logsafety.quiet")
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: None  # type: ignore[method-assign]  # a handler that drops every record
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("dropped %s", Loud())
        assert Loud.formatted == 0
        logger.warning("kept %s", Loud())
        assert Loud.formatted == 1  # a record a handler takes is still redacted (formatted) at once
    finally:
        logger.removeHandler(handler)


# -- 9. a crawl opens no listening port -------------------------------------------------------


def _listening(process: psutil.Process) -> list[Any]:
    return [
        c
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and c.laddr and not c.raddr)
    ]


def test_a_crawl_opens_no_listening_port(tmp_path: Path) -> None:
    access_log = tmp_path / "access.jsonl"
    command = replay_crawl_command(
        10,
        tmp_path / "spool",
        "--replay-delay",
        "0.05",
        "--access-log",
        str(access_log),
        "-s",
        "CONCURRENT_REQUESTS=2",
        db=f"sqlite:///{tmp_path / 'fx.db'}",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    crawl = psutil.Process(process.pid)
    samples, found_listening, server_listens = 0, [], False
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            requests = len(access_log.read_text(encoding="utf-8").splitlines()) if access_log.exists() else 0
            with contextlib.suppress(psutil.NoSuchProcess):
                if requests >= 5:  # the crawl is downloading: its reactor and pipelines are all up
                    found_listening += _listening(crawl)
                    samples += 1
                    # The fixture server, a child process, does listen: the check can see a listener.
                    server_listens |= any(_listening(child) for child in crawl.children(recursive=True))
            time.sleep(0.1)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-2000:]
    assert samples >= 5, "the crawl was not sampled while it downloaded"
    assert server_listens
    assert found_listening == []
