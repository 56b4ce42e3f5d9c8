"""Scheduled crawls: jobs from a TOML file, fired by APScheduler, each crawl in its own process.

    [jobs.xiandai]
    interval = "30m"              # or: cron = "*/30 * * * *" (Asia/Shanghai)
    keyword = "现代"
    max_pages = 5                 # any `fxcrawl crawl search` option: pages, replay, …

    [jobs.latest]
    spider = "latest"             # the channel lists and 快讯
    interval = "10m"
    channels = "001"
    alert_webhook = "http://127.0.0.1:9000/hooks/fxcrawl"   # an unhealthy or crashed run posts its summary
    alert_command = ["notify-send", "fxcrawl"]              # … and/or runs this, the summary on stdin

The scheduler alerts once a job's crawl process has exited (fxcrawl/alerts.py), in a thread of
its own, so a slow receiver delays no crawl; a job without alert settings uses
``FXCRAWL_ALERT_WEBHOOK`` / ``FXCRAWL_ALERT_COMMAND`` from the scheduler's environment.

Overlap is impossible by construction: APScheduler keeps one instance per job in this
process, and the crawl itself takes the job's lock in the database, so a second scheduler
(here or on another machine) skips instead of running the job twice. Missed runs coalesce
into one. SIGTERM stops scheduling, passes the signal to running crawls (which flush what
they hold) and exits when they have.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from fx168.site import SITE_TZ
from fxcrawl.alerts import AlertTarget, alert_for_run, check_webhook, find_run_of_process, parse_command

logger = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COMMON_OPTIONS = {"max_pages", "replay", "replay_generate", "replay_delay", "base_url", "log_level"}
#: The options of `fxcrawl crawl SPIDER` a job of each spider may set.
_CRAWL_OPTIONS = {
    "search": _COMMON_OPTIONS | {"keyword", "pages"},
    "latest": _COMMON_OPTIONS | {"channels", "no_express"},
}


#: A job's keys that configure the scheduler, not its crawl.
_ALERT_KEYS = {"alert_webhook", "alert_command"}


class ScheduleError(ValueError):
    """The schedule file is wrong; the message says where."""


@dataclass(frozen=True)
class Job:
    name: str
    trigger: BaseTrigger
    spider: str = "search"
    options: dict[str, Any] = field(default_factory=dict)
    #: Where an unhealthy or crashed run of this job is reported (None: the scheduler's default).
    alert: AlertTarget | None = None

    @property
    def describe_trigger(self) -> str:
        return str(self.trigger)

    def next_run(self, now: datetime) -> datetime | None:
        return self.trigger.get_next_fire_time(None, now)

    def command(self) -> list[str]:
        """The crawl this job runs, as a child process command line (the database URL goes in the
        child's environment, never on a command line that `ps` shows everyone)."""
        command = [sys.executable, "-m", "fxcrawl.cli", "crawl", self.spider, "--job", self.name]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                command.append(flag)
            elif value not in (False, None):
                command += [flag, str(value)]
        return command


def parse_trigger(name: str, spec: dict[str, Any]) -> BaseTrigger:
    if ("cron" in spec) == ("interval" in spec):
        raise ScheduleError(f'job {name!r}: give exactly one of cron = "…" or interval = "30m"')
    if "cron" in spec:
        try:
            return CronTrigger.from_crontab(spec["cron"], timezone=SITE_TZ)
        except ValueError as exc:
            raise ScheduleError(f"job {name!r}: bad cron expression {spec['cron']!r}: {exc}") from None
    match = _INTERVAL.match(str(spec["interval"]))
    if not match or int(match.group(1)) < 1:
        raise ScheduleError(f"job {name!r}: bad interval {spec['interval']!r}; use e.g. 90s, 30m, 6h or 1d")
    return IntervalTrigger(**{_UNITS[match.group(2)]: int(match.group(1))}, timezone=SITE_TZ)


def parse_alert(name: str, spec: dict[str, Any]) -> AlertTarget | None:
    command = spec.get("alert_command")
    if command is not None and not (
        isinstance(command, str) or (isinstance(command, list) and all(isinstance(w, str) for w in command))
    ):
        raise ScheduleError(f"job {name!r}: alert_command is a list of strings (or one string), not {command!r}")
    try:
        target = AlertTarget(webhook=check_webhook(spec.get("alert_webhook")), command=parse_command(command))
    except ValueError as exc:
        raise ScheduleError(f"job {name!r}: {exc}") from None
    return target or None


def load_schedule(path: Path) -> list[Job]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScheduleError(f"no schedule file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{path}: {exc}") from None
    jobs = []
    for name, spec in (data.get("jobs") or {}).items():
        if not isinstance(spec, dict):
            raise ScheduleError(f"job {name!r}: expected a table [jobs.{name}]")
        spider = spec.get("spider", "search")
        if spider not in _CRAWL_OPTIONS:
            raise ScheduleError(f"job {name!r}: unknown spider {spider!r} (one of {', '.join(_CRAWL_OPTIONS)})")
        options = {k: v for k, v in spec.items() if k not in ("cron", "interval", "spider", *_ALERT_KEYS)}
        unknown = set(options) - _CRAWL_OPTIONS[spider]
        if unknown:
            raise ScheduleError(f"job {name!r}: unknown option(s) {', '.join(sorted(unknown))}")
        jobs.append(Job(name, parse_trigger(name, spec), spider, options, parse_alert(name, spec)))
    if not jobs:
        raise ScheduleError(f"{path} has no [jobs.NAME] tables")
    return jobs


#: `fxcrawl crawl` exits with this when the job's lock is held elsewhere (fxcrawl.cli.EXIT_SKIPPED).
SKIPPED_EXIT_CODE = 3


class Runner:
    """Runs job crawls as child processes and can stop them all; alerts after a bad run."""

    def __init__(self, database_url: str, default_alert: AlertTarget | None = None) -> None:
        self.database_url = database_url
        self.default_alert = default_alert
        self.children: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.alerts: list[threading.Thread] = []
        #: Crawls that ended, by (job, outcome: ok, failed, skipped): fxcrawl_scheduler_job_runs_total.
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def run(self, job: Job) -> int:
        if self.stopping.is_set():
            return 0
        logger.info("job %s: starting %s", job.name, " ".join(job.command()[3:]))
        # The child alerts nothing itself (the scheduler does, after it exits, killed or not), and
        # logs its progress rather than drawing a live line (jobs may run at once, on one terminal).
        env = {**os.environ, "DATABASE_URL": self.database_url}
        env.update(FXCRAWL_ALERT_WEBHOOK="", FXCRAWL_ALERT_COMMAND="")
        env.setdefault("FXCRAWL_PROGRESS", "log")
        child = subprocess.Popen(job.command(), env=env)
        with self.lock:
            self.children.add(child)
        try:
            code = child.wait()
        finally:
            with self.lock:
                self.children.discard(child)
        if code == SKIPPED_EXIT_CODE:
            logger.info("job %s: skipped, it is running elsewhere (exit code %d)", job.name, code)
            self._ended(job, "skipped")
            return code
        log = logger.info if code == 0 else logger.error
        log("job %s: crawl exited with code %d", job.name, code)
        self._ended(job, "ok" if code == 0 else "failed")
        target = job.alert or self.default_alert
        if target:
            thread = threading.Thread(
                target=self._alert, args=(job, target, child.pid, code), name=f"fxcrawl-alert-{job.name}"
            )
            thread.start()  # not a daemon: the scheduler exits once its alerts are out (bounded by their retries)
            with self.lock:
                self.alerts = [each for each in self.alerts if each.is_alive()] + [thread]
        return code

    def _ended(self, job: Job, outcome: str) -> None:
        with self.lock:
            self.outcomes[(job.name, outcome)] += 1

    def _alert(self, job: Job, target: AlertTarget, pid: int, code: int) -> None:
        """Alert when the crawl's run is unhealthy or did not finish (a killed crawl's row is
        marked crashed first)."""
        try:
            if code != 0:
                from storage.db import Database
                from storage.runs import close_crashed_runs

                database = Database(self.database_url, create=False)
                try:
                    close_crashed_runs(database)
                finally:
                    database.dispose()
            run_id = find_run_of_process(self.database_url, pid, job.name)
            alert_for_run(target, self.database_url, run_id, job=job.name, exit_code=code)
        except Exception:  # an alert never takes the scheduler down
            logger.exception("job %s: could not alert", job.name)

    def wait_for_alerts(self, timeout: float | None = None) -> None:
        with self.lock:
            threads = list(self.alerts)
        for thread in threads:
            thread.join(timeout)

    def terminate_all(self) -> None:
        self.stopping.set()
        with self.lock:
            children = list(self.children)
        for child in children:
            child.send_signal(signal.SIGTERM)


def serve_metrics(port: int, runner: Runner, scheduler: BlockingScheduler | None = None) -> Any:
    """Serve /metrics on 127.0.0.1:port: the database's series and this scheduler's own."""
    from crawler import settings as project
    from fxcrawl.metrics import SchedulerCollector, StoreCollector, registry_with, serve

    def outcomes() -> dict[tuple[str, str], int]:
        with runner.lock:
            return dict(runner.outcomes)

    def next_runs() -> dict[str, datetime | None]:
        return {job.id: getattr(job, "next_run_time", None) for job in scheduler.get_jobs()} if scheduler else {}

    registry = registry_with(
        StoreCollector(runner.database_url, project.FXCRAWL_SPOOL_DIR), SchedulerCollector(outcomes, next_runs)
    )
    return serve(port, registry)


def run_scheduler(jobs: list[Job], runner: Runner, metrics_port: int = 0) -> None:
    """Fire jobs until SIGTERM or SIGINT; then let running crawls flush, alerts go out, and exit."""
    scheduler = BlockingScheduler(
        timezone=SITE_TZ,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    for job in jobs:
        scheduler.add_job(runner.run, job.trigger, args=[job], id=job.name, name=job.name)
    metrics = serve_metrics(metrics_port, runner, scheduler) if metrics_port else None

    def stop(signum: int, _frame: Any) -> None:
        logger.info("signal %d: no new crawls; waiting for running ones to flush", signum)
        runner.terminate_all()
        scheduler.shutdown(wait=True)
        runner.wait_for_alerts()
        if metrics is not None:
            metrics.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for job in jobs:
        logger.info("job %s: %s, next run %s", job.name, job.trigger, job.next_run(datetime.now(SITE_TZ)))
    scheduler.start()
