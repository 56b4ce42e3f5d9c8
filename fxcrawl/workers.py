"""`fxcrawl workers start N`: watch N worker processes until they exit, with one combined line.

The combined total is read from the run ledger — the rows the workers' heartbeats keep current
(``FXCRAWL_RUN_HEARTBEAT``) — and from the job's Redis queue (what is still to fetch), so it
needs nothing from the workers but what they already write. On a terminal it is a live line
(rich; the workers then draw none of their own), else a line on stderr every
``FXCRAWL_PROGRESS_INTERVAL`` seconds (the workers log their own lines too).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from storage.progress import Progress, RateMeter, format_progress


class CombinedProgress:
    def __init__(self, database_url: str, job: str, redis_server: Any, pids: list[int], since: datetime) -> None:
        from storage.db import Database

        self.database = Database(database_url, create=False)
        self.job = job
        self.redis = redis_server
        self.pids = pids
        self.since = since
        self.host = socket.gethostname()
        self.meter = RateMeter()
        self.started = time.monotonic()

    def queued(self) -> int | None:
        """Requests and start entries waiting in Redis (None: Redis did not answer)."""
        from crawler.distributed import keys

        try:
            job_keys = keys(self.job)
            return int(self.redis.zcard(job_keys["requests"])) + int(self.redis.llen(job_keys["start_urls"]))
        except Exception:  # the line says less; the workers handle Redis outages themselves
            return None

    def snapshot(self, running: int) -> Progress:
        from storage.runs import counts_of_processes

        try:
            counts = counts_of_processes(self.database, self.host, self.pids, self.since)
        except Exception:  # the database is busy or away for a moment: the next tick reads again
            counts = {"pages": 0, "articles_new": 0, "articles_updated": 0, "rejected": 0, "errors": 0}
        done = counts["pages"]
        queued = self.queued()
        now = time.monotonic()
        return Progress.from_counts(
            counts,
            done=done,
            discovered=None if queued is None else done + queued,
            elapsed=now - self.started,
            rate=self.meter.update(now, done),
            label=f"{self.job} ({running}/{len(self.pids)} workers)",
        )

    def close(self) -> None:
        self.database.dispose()


def watch(
    processes: list[subprocess.Popen[bytes]], progress: CombinedProgress, interval: float, live: bool
) -> list[int]:
    """Wait for every worker, showing the combined line; returns their exit codes."""
    display: Any = None
    if live:
        from rich.console import Console
        from rich.live import Live

        display = Live(console=Console(file=sys.stderr), transient=True, auto_refresh=False, redirect_stderr=False)
        display.start()
    period = 1.0 if live else interval
    next_line = time.monotonic() + period
    try:
        while any(process.poll() is None for process in processes):
            time.sleep(0.2)
            if time.monotonic() < next_line:
                continue
            next_line = time.monotonic() + period
            running = sum(process.poll() is None for process in processes)
            line = format_progress(progress.snapshot(running))
            if display is not None:
                from rich.text import Text

                display.update(Text(line, style="bold", no_wrap=True, overflow="ellipsis"), refresh=True)
            else:
                print(f"fxcrawl: progress: {line}", file=sys.stderr, flush=True)
    finally:
        if display is not None:
            display.stop()
    print(f"fxcrawl: progress (done): {format_progress(progress.snapshot(0))}", file=sys.stderr, flush=True)
    return [process.wait() for process in processes]
