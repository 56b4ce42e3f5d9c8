"""Scheduled crawls: jobs from a TOML file, fired by APScheduler, each crawl in its own process.

    [jobs.xiandai]
    interval = "30m"              # or: cron = "*/30 * * * *" (Asia/Shanghai)
    keyword = "现代"
    max_pages = 5                 # any `fxcrawl crawl search` option: pages, replay, …

    [jobs.latest]
    spider = "latest"             # the channel lists and 快讯
    interval = "10m"
    channels = "001"

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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from fx168.site import SITE_TZ

logger = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_COMMON_OPTIONS = {"max_pages", "replay", "replay_generate", "replay_delay", "base_url", "log_level"}
#: The options of `fxcrawl crawl SPIDER` a job of each spider may set.
_CRAWL_OPTIONS = {
    "search": _COMMON_OPTIONS | {"keyword", "pages"},
    "latest": _COMMON_OPTIONS | {"channels", "no_express"},
}


class ScheduleError(ValueError):
    """The schedule file is wrong; the message says where."""


@dataclass(frozen=True)
class Job:
    name: str
    trigger: BaseTrigger
    spider: str = "search"
    options: dict[str, Any] = field(default_factory=dict)

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
        options = {k: v for k, v in spec.items() if k not in ("cron", "interval", "spider")}
        unknown = set(options) - _CRAWL_OPTIONS[spider]
        if unknown:
            raise ScheduleError(f"job {name!r}: unknown option(s) {', '.join(sorted(unknown))}")
        jobs.append(Job(name, parse_trigger(name, spec), spider, options))
    if not jobs:
        raise ScheduleError(f"{path} has no [jobs.NAME] tables")
    return jobs


#: `fxcrawl crawl` exits with this when the job's lock is held elsewhere (fxcrawl.cli.EXIT_SKIPPED).
SKIPPED_EXIT_CODE = 3


class Runner:
    """Runs job crawls as child processes and can stop them all."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.children: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, job: Job) -> int:
        if self.stopping.is_set():
            return 0
        logger.info("job %s: starting %s", job.name, " ".join(job.command()[3:]))
        child = subprocess.Popen(job.command(), env={**os.environ, "DATABASE_URL": self.database_url})
        with self.lock:
            self.children.add(child)
        try:
            code = child.wait()
        finally:
            with self.lock:
                self.children.discard(child)
        if code == SKIPPED_EXIT_CODE:
            logger.info("job %s: skipped, it is running elsewhere (exit code %d)", job.name, code)
            return code
        log = logger.info if code == 0 else logger.error
        log("job %s: crawl exited with code %d", job.name, code)
        return code

    def terminate_all(self) -> None:
        self.stopping.set()
        with self.lock:
            children = list(self.children)
        for child in children:
            child.send_signal(signal.SIGTERM)


def run_scheduler(jobs: list[Job], runner: Runner) -> None:
    """Fire jobs until SIGTERM or SIGINT; then let running crawls flush and exit."""
    scheduler = BlockingScheduler(
        timezone=SITE_TZ,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    for job in jobs:
        scheduler.add_job(runner.run, job.trigger, args=[job], id=job.name, name=job.name)

    def stop(signum: int, _frame: Any) -> None:
        logger.info("signal %d: no new crawls; waiting for running ones to flush", signum)
        runner.terminate_all()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for job in jobs:
        logger.info("job %s: %s, next run %s", job.name, job.trigger, job.next_run(datetime.now(SITE_TZ)))
    scheduler.start()
