"""Alerts: an unhealthy or crashed run runs the job's alert command and/or posts its summary as
JSON to a webhook.

Where they fire: the scheduler, once a job's crawl process has exited (it reads the run's row,
so a crawl that was killed is reported too), and `fxcrawl crawl` after its reactor stopped
(``--alert-webhook`` / ``--alert-command``, settings ``FXCRAWL_ALERT_WEBHOOK`` /
``FXCRAWL_ALERT_COMMAND``). Never from inside the crawl: a slow receiver delays nothing that
fetches or stores. The webhook is retried with tenacity (bounded exponential backoff, a timeout
per attempt); a failed alert is logged at ERROR and counted (``fxcrawl_alerts_total``), never
raised and never part of the crawl's exit code.

The payload (the webhook's JSON body, the command's stdin)::

    {"event": "fxcrawl.run.unhealthy" | "fxcrawl.run.crashed", "run_id": 12, "job": "xiandai",
     "spider": "search", "started_at": "…+08:00", "finished_at": "…+08:00" | null,
     "finish_reason": "finished", "exit_code": 1, "health": "unhealthy",
     "reasons": ["…"], "counts": {"pages": 20, "new": 3, …}, "host": "…", "pid": 4242}
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

logger = logging.getLogger(__name__)

#: Exit code of a crawl skipped because its job runs elsewhere (fxcrawl.cli.errors.EXIT_SKIPPED): no alert.
_SKIPPED = 3

#: Alerts sent and failed in this process, by (job, channel, outcome): read by fxcrawl/metrics.py.
ALERT_COUNTS: Counter[tuple[str, str, str]] = Counter()
_COUNTS_LOCK = threading.Lock()


def _count(job: str, channel: str, outcome: str) -> None:
    with _COUNTS_LOCK:
        ALERT_COUNTS[(job, channel, outcome)] += 1


def alert_counts() -> dict[tuple[str, str, str], int]:
    with _COUNTS_LOCK:
        return dict(ALERT_COUNTS)


def parse_command(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """An alert command as a list (TOML array) or one shell-quoted string; None or empty: none."""
    if not value:
        return None
    words = shlex.split(value) if isinstance(value, str) else [str(word) for word in value]
    return tuple(words) or None


def check_webhook(url: str | None) -> str | None:
    """The webhook URL, refused (ValueError) unless http(s)://host…; None or empty: none."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"alert webhook {url!r} is not an http(s):// URL")
    return url


@dataclass(frozen=True)
class AlertTarget:
    """Where a job's alerts go, and how hard a webhook is tried."""

    webhook: str | None = None
    command: tuple[str, ...] | None = None
    #: Webhook attempts in all (the first included), the first pause (doubling, at most max_wait), the timeout of each.
    attempts: int = 5
    first_wait: float = 1.0
    max_wait: float = 30.0
    timeout: float = 10.0
    #: The alert command's time limit (s).
    command_timeout: float = 60.0

    def __bool__(self) -> bool:
        return bool(self.webhook or self.command)

    @classmethod
    def from_settings(cls, settings: Any) -> AlertTarget:
        """From a Scrapy Settings (FXCRAWL_ALERT_*)."""
        return cls(
            webhook=check_webhook(settings.get("FXCRAWL_ALERT_WEBHOOK") or None),
            command=parse_command(settings.get("FXCRAWL_ALERT_COMMAND") or None),
            attempts=max(1, settings.getint("FXCRAWL_ALERT_ATTEMPTS", cls.attempts)),
            first_wait=settings.getfloat("FXCRAWL_ALERT_RETRY_WAIT", cls.first_wait),
            timeout=settings.getfloat("FXCRAWL_ALERT_TIMEOUT", cls.timeout),
        )


@dataclass
class AlertResult:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def needs_alert(payload: dict[str, Any]) -> bool:
    """An unhealthy run, one that did not finish, or a crawl process that failed (not skipped)."""
    code = payload.get("exit_code")
    if code == _SKIPPED and payload.get("run_id") is None:
        return False
    return payload.get("health") != "healthy" or payload.get("finished_at") is None or code not in (0, None)


def run_payload(run: dict[str, Any] | None, *, job: str | None, exit_code: int | None, **extra: Any) -> dict[str, Any]:
    """The alert's JSON from a run as ``storage.queries.run_json`` gives it (None: the crawl left no row)."""
    if run is None:
        payload: dict[str, Any] = {
            "run_id": None,
            "job": job,
            "spider": None,
            "started_at": None,
            "finished_at": None,
            "finish_reason": None,
            "health": "unhealthy",
            "reasons": [f"the crawl process exited with code {exit_code} and recorded no run"],
            "counts": {},
            "host": socket.gethostname(),
            "pid": None,
        }
    else:
        from storage.runs import RUN_COUNTS

        reasons = list(run.get("health_reasons") or [])
        if run.get("finished_at") is None:
            reasons.append("the crawl did not finish: its run row is still open")
        payload = {
            "run_id": run["id"],
            "job": run.get("job") or job,
            "spider": run.get("spider"),
            "started_at": run.get("started_at"),
            "finished_at": run.get("finished_at"),
            "finish_reason": run.get("finish_reason"),
            "health": run.get("health") or "unhealthy",
            "reasons": reasons,
            "counts": {count.shown: run.get(count.shown) for count in RUN_COUNTS if count.shown},
            "host": run.get("host"),
            "pid": run.get("pid"),
        }
    if exit_code not in (None, 0, _SKIPPED) and not payload["reasons"]:
        payload["reasons"] = [f"the crawl process exited with code {exit_code}"]
    crashed = payload["finish_reason"] in (None, "crashed") or exit_code not in (None, 0, 1, _SKIPPED)
    payload = {"event": "fxcrawl.run.crashed" if crashed else "fxcrawl.run.unhealthy", **payload}
    payload["exit_code"] = exit_code
    payload.update(extra)
    return payload


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: no answer, a timeout, a 5xx, 408 or 429 (a 4xx otherwise is final)."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    return isinstance(exc, urllib.error.URLError | OSError | TimeoutError)


def _where(url: str) -> str:
    """A webhook URL as logs show it: scheme, host and port only (its path may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def post_webhook(target: AlertTarget, payload: dict[str, Any]) -> None:
    """POST the payload as JSON, retried on transient failures; raises the last error."""
    assert target.webhook is not None
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    where = _where(target.webhook)

    def attempt() -> None:
        request = urllib.request.Request(
            target.webhook or "",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "fxcrawl-alerts/0.1"},
        )
        with urllib.request.urlopen(request, timeout=target.timeout) as response:
            response.read()

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "alert webhook %s failed (attempt %d of %d: %s); retrying in %.1f s",
            where,
            state.attempt_number,
            target.attempts,
            exc,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = Retrying(
        stop=stop_after_attempt(target.attempts),
        wait=wait_exponential(multiplier=target.first_wait, max=target.max_wait),
        retry=retry_if_exception(_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    retrying(attempt)


def run_command(target: AlertTarget, payload: dict[str, Any]) -> None:
    """Run the alert command with the payload on stdin (and the gist in FXCRAWL_ALERT_* variables)."""
    assert target.command is not None
    env = {
        **os.environ,
        "FXCRAWL_ALERT_EVENT": str(payload.get("event")),
        "FXCRAWL_ALERT_RUN_ID": "" if payload.get("run_id") is None else str(payload["run_id"]),
        "FXCRAWL_ALERT_JOB": str(payload.get("job") or ""),
        "FXCRAWL_ALERT_HEALTH": str(payload.get("health") or ""),
        "FXCRAWL_ALERT_REASONS": "; ".join(payload.get("reasons") or []),
    }
    done = subprocess.run(
        list(target.command),
        input=json.dumps(payload, ensure_ascii=False),
        text=True,
        env=env,
        timeout=target.command_timeout,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"exited with code {done.returncode}" + (f": {detail[-1]}" if detail else ""))


def send(target: AlertTarget, payload: dict[str, Any]) -> AlertResult:
    """Send one alert through every channel the target names; never raises."""
    result = AlertResult()
    job = str(payload.get("job") or "")
    what = f"run {payload.get('run_id')} of job {job or '?'} ({payload.get('event')})"
    channels: list[tuple[str, Any]] = []
    if target.command:
        channels.append(("command", run_command))
    if target.webhook:
        channels.append(("webhook", post_webhook))
    for channel, deliver in channels:
        try:
            deliver(target, payload)
        except Exception as exc:  # an alert that fails is said and counted, never raised into the crawl
            _count(job, channel, "failed")
            result.failed.append(channel)
            where = shlex.join(target.command or ()) if channel == "command" else _where(target.webhook or "")
            logger.error("alert for %s: the %s %s failed: %s", what, channel, where, exc)
        else:
            _count(job, channel, "sent")
            result.sent.append(channel)
            logger.info("alert for %s: sent by %s", what, channel)
    return result


def alert_for_run(
    target: AlertTarget, database_url: str, run_id: int | None, *, job: str | None, exit_code: int | None
) -> AlertResult | None:
    """Read the run's row and alert when it needs one (None: no alert was due)."""
    run = read_run(database_url, run_id) if run_id is not None else None
    payload = run_payload(run, job=job, exit_code=exit_code)
    if not needs_alert(payload):
        return None
    return send(target, payload)


def read_run(database_url: str, run_id: int) -> dict[str, Any] | None:
    """One run as ``runs show --json`` gives it; None when the database cannot be read."""
    from storage import queries
    from storage.db import Database

    database = Database(database_url, create=False)
    try:
        with database.session() as session:
            return queries.get_run(session, run_id)
    except Exception as exc:  # the alert still goes out, saying less
        logger.warning("alert: could not read run %s (%s)", run_id, exc)
        return None
    finally:
        database.dispose()


def find_run_of_process(database_url: str, pid: int, job: str | None = None) -> int | None:
    """The newest run recorded by process ``pid`` on this host (a scheduled crawl's child)."""
    from sqlalchemy import select

    from storage.db import Database
    from storage.models import CrawlRun

    database = Database(database_url, create=False)
    try:
        with database.session() as session:
            query = select(CrawlRun.id).where(CrawlRun.pid == pid, CrawlRun.host == socket.gethostname())
            if job:
                query = query.where(CrawlRun.job == job)
            return session.scalar(query.order_by(CrawlRun.id.desc()).limit(1))
    except Exception as exc:
        logger.warning("alert: could not look up the run of process %d (%s)", pid, exc)
        return None
    finally:
        database.dispose()
