"""Alerts: an unhealthy or crashed run posts its summary to a webhook (retried) and runs a command."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import FXCRAWL
from sqlalchemy import select

from fxcrawl import alerts
from fxcrawl.alerts import AlertTarget, needs_alert, run_payload, send
from fxcrawl.schedule import Runner, ScheduleError, load_schedule
from replay.server import ReplayServer
from storage.db import Database
from storage.models import CrawlRun


class Receiver:
    """A local HTTP receiver: answers ``fail_first`` POSTs with ``fail_status``, then 200; keeps every body."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                    failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(receiver.fail_status if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/fxcrawl?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _, _, body in self.requests]

    def wait_for(self, count: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.bodies()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.bodies()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def make(**options: Any) -> Receiver:
        each = Receiver(**options)
        each.thread.start()
        made.append(each)
        return each

    yield make  # type: ignore[misc]  # the fixture is a factory: tests call it with the receiver's behaviour
    for each in made:
        each.server.shutdown()
        each.server.server_close()


PAYLOAD = run_payload(
    {
        "id": 7,
        "job": "xiandai",
        "spider": "search",
        "started_at": "2026-12-02T10:00:00+08:00",
        "finished_at": "2026-12-02T10:01:00+08:00",
        "finish_reason": "finished",
        "health": "unhealthy",
        "health_reasons": ["3 errors and 0 rejects for 0 pages: over the 20% threshold"],
        "pages": 0,
        "new": 0,
        "errors": 3,
        "host": "here",
        "pid": 42,
    },
    job="xiandai",
    exit_code=1,
)


def test_the_payload_carries_the_runs_summary_and_reasons() -> None:
    assert PAYLOAD["event"] == "fxcrawl.run.unhealthy"
    assert PAYLOAD["run_id"] == 7 and PAYLOAD["job"] == "xiandai" and PAYLOAD["exit_code"] == 1
    assert PAYLOAD["counts"]["errors"] == 3 and PAYLOAD["reasons"] == [
        "3 errors and 0 rejects for 0 pages: over the 20% threshold"
    ]
    assert needs_alert(PAYLOAD)
    healthy = run_payload(
        {"id": 1, "health": "healthy", "finished_at": "x", "finish_reason": "finished"}, job="j", exit_code=0
    )
    assert not needs_alert(healthy)
    crashed = run_payload(None, job="j", exit_code=-9)
    assert crashed["event"] == "fxcrawl.run.crashed" and needs_alert(crashed)
    assert "exited with code -9" in crashed["reasons"][0]
    assert not needs_alert(run_payload(None, job="j", exit_code=3))  # skipped: it runs elsewhere


def test_a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt(receiver, caplog) -> None:
    hook = receiver(fail_first=2)
    caplog.set_level(logging.WARNING, logger="fxcrawl.alerts")
    result = send(AlertTarget(webhook=hook.url, first_wait=0.05), PAYLOAD)
    assert result.sent == ["webhook"] and result.failed == []
    assert hook.bodies() == [PAYLOAD] * 3
    path, headers, _ = hook.requests[0]
    assert path == "/hooks/fxcrawl?token=s3cret" and headers["Content-Type"].startswith("application/json")
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and "attempt 1 of 5" in retries[0]
    assert "s3cret" not in caplog.text  # the URL's path and query (a token) stay out of the log


def test_a_failed_alert_is_logged_and_counted_never_raised(receiver, caplog) -> None:
    refusing = receiver(fail_first=100, fail_status=400)
    before = alerts.alert_counts().get(("xiandai", "webhook", "failed"), 0)
    result = send(AlertTarget(webhook=refusing.url, first_wait=0.05), PAYLOAD)
    assert result.failed == ["webhook"]
    assert len(refusing.bodies()) == 1  # a 4xx is final: not retried
    assert alerts.alert_counts()[("xiandai", "webhook", "failed")] == before + 1
    assert any(r.levelno == logging.ERROR and "webhook" in r.getMessage() for r in caplog.records)
    # nobody listening: every attempt, then given up, bounded
    started = time.monotonic()
    result = send(AlertTarget(webhook="http://127.0.0.1:9/x", attempts=3, first_wait=0.05), PAYLOAD)
    assert result.failed == ["webhook"] and time.monotonic() - started < 5


def test_the_alert_command_gets_the_json_on_stdin_and_the_gist_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = (
        f"import os, sys; open({str(out)!r}, 'w').write(sys.stdin.read() + '\\n' + os.environ['FXCRAWL_ALERT_JOB'])"
    )
    result = send(AlertTarget(command=(sys.executable, "-c", script)), PAYLOAD)
    assert result.sent == ["command"]
    body, job = out.read_text(encoding="utf-8").rsplit("\n", 1)
    assert json.loads(body) == PAYLOAD and job == "xiandai"
    failing = send(AlertTarget(command=(sys.executable, "-c", "import sys; sys.exit('no mail today')")), PAYLOAD)
    assert failing.failed == ["command"]


def test_schedule_files_take_alert_settings_per_job(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(
        '[jobs.a]\ninterval = "5m"\nalert_webhook = "http://127.0.0.1:9000/h"\nalert_command = ["mail", "-s", "x"]\n'
        '[jobs.b]\ninterval = "5m"\nalert_command = "notify-send \'fxcrawl b\'"\n[jobs.c]\ninterval = "5m"\n',
        encoding="utf-8",
    )
    a, b, c = load_schedule(path)
    assert a.alert == AlertTarget(webhook="http://127.0.0.1:9000/h", command=("mail", "-s", "x"))
    assert b.alert is not None and b.alert.command == ("notify-send", "fxcrawl b") and b.alert.webhook is None
    assert c.alert is None
    assert "--alert-webhook" not in a.command() and "alert" not in " ".join(a.command())
    path.write_text('[jobs.a]\ninterval = "5m"\nalert_webhook = "ftp://x"\n', encoding="utf-8")
    with pytest.raises(ScheduleError, match="job 'a': alert webhook 'ftp://x' is not an http"):
        load_schedule(path)
    path.write_text('[jobs.a]\ninterval = "5m"\nalert_command = 3\n', encoding="utf-8")
    with pytest.raises(ScheduleError, match="alert_command is a list of strings"):
        load_schedule(path)


def test_an_unhealthy_crawl_posts_its_summary_and_keeps_its_exit_code(tmp_path: Path, receiver) -> None:
    """A one-shot crawl whose pages lost their JSON (drift: unhealthy) alerts through both channels."""
    hook = receiver(fail_first=1)
    out = tmp_path / "stdin.json"
    script = tmp_path / "alert.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'w').write(sys.stdin.read())\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    command = [
        *FXCRAWL,
        "crawl",
        "search",
        "--keyword",
        "现代",
        "--pages",
        "953",
        "--replay",
        "--replay-arg=--drop-next-data",
        "--db",
        db,
        "--log-level",
        "WARNING",
        "--alert-webhook",
        hook.url,
        "--alert-command",
        f"{sys.executable} {script}",
        "-s",
        "FXCRAWL_ALERT_RETRY_WAIT=0.05",
        "-s",
        f"FXCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]  # unhealthy, as without alerts
    bodies = hook.bodies()
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the first refused (503), retried
    payload = bodies[1]
    assert payload["event"] == "fxcrawl.run.unhealthy" and payload["health"] == "unhealthy"
    assert payload["run_id"] == 1 and payload["job"] == "search:现代" and payload["spider"] == "search"
    assert payload["counts"]["pages"] > 0 and payload["exit_code"] == 1
    assert any("__NEXT_DATA__" in reason for reason in payload["reasons"])
    assert payload["started_at"] and payload["finished_at"]
    assert json.loads(out.read_text(encoding="utf-8")) == payload
    assert "could not be sent" not in done.stderr


def test_a_bad_alert_webhook_is_refused_before_any_work(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FXCRAWL, "crawl", "search", "--db", f"sqlite:///{tmp_path / 'fx.db'}", "--alert-webhook", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "alert webhook 'nope' is not an http(s):// URL" in done.stderr
    assert not (tmp_path / "fx.db").exists()


def test_the_scheduler_alerts_for_an_unhealthy_job(tmp_path: Path, receiver) -> None:
    """`schedule once` of a job whose site does not answer: the crawl is unhealthy, the scheduler posts."""
    hook = receiver()
    path = tmp_path / "schedule.toml"
    path.write_text(
        f'[jobs.down]\ninterval = "1h"\nkeyword = "现代"\npages = "1"\nbase_url = "http://127.0.0.1:9"\n'
        f'log_level = "WARNING"\nalert_webhook = "{hook.url}"\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    done = subprocess.run(
        [*FXCRAWL, "schedule", "once", "down", "--file", str(path), "--db", db],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "FXCRAWL_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert done.returncode == 1, done.stderr[-2000:]
    (payload,) = hook.wait_for(1, 10)
    assert payload["job"] == "down" and payload["health"] == "unhealthy" and payload["exit_code"] == 1
    assert payload["run_id"] == 1 and payload["counts"]["errors"] > 0
    assert any("over the 20% threshold" in reason for reason in payload["reasons"])


def test_a_killed_scheduled_crawl_alerts_as_crashed(tmp_path: Path, receiver) -> None:
    hook = receiver()
    # the fixture server is the test's, so killing the crawl leaves nothing behind
    site = ReplayServer("--generate", "30", "--delay", "0.2")
    site.__enter__()
    path = tmp_path / "schedule.toml"
    path.write_text(
        f'[jobs.slow]\ninterval = "1h"\nkeyword = "现代"\npages = "1-30"\nbase_url = "{site.base_url}"\n'
        f'log_level = "WARNING"\nalert_webhook = "{hook.url}"\n',
        encoding="utf-8",
    )
    (job,) = load_schedule(path)
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    Database(db).prepare().dispose()
    runner = Runner(db)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(runner.run(job)))
    thread.start()
    database = Database(db)
    deadline = time.monotonic() + 60
    opened = False
    while not opened and time.monotonic() < deadline:
        time.sleep(0.3)
        with database.session() as session:
            opened = session.scalar(select(CrawlRun.id)) is not None
    database.dispose()
    assert opened, "the crawl did not start"
    with runner.lock:
        (child,) = runner.children
    child.send_signal(signal.SIGKILL)
    thread.join(60)
    runner.wait_for_alerts(30)
    site.close()
    assert codes == [-signal.SIGKILL]
    (payload,) = hook.bodies()
    assert payload["event"] == "fxcrawl.run.crashed" and payload["finish_reason"] == "crashed"
    assert payload["run_id"] == 1 and payload["job"] == "slow" and payload["pid"] == child.pid
    assert "did not finish (crashed" in payload["reasons"][0]
    assert runner.outcomes[("slow", "failed")] == 1
