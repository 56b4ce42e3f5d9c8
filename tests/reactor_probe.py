"""A Scrapy extension for tests: how late a 10 ms timer on the reactor ran, from the engine's
start to the spider's close, and where a watchdog thread found the reactor thread while it was
late (a stall spent in database code is the database's); written as JSON to FXCRAWL_TEST_STALL_OUT."""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from twisted.internet import task

TICK = 0.01
#: Code that talks to a database: the reactor thread must never be found in it. Every statement,
#: commit and database lock goes through SQLAlchemy and a driver, so a reactor that waits on the
#: database is found inside them; the storage package also holds pure helpers the pipelines call
#: on the reactor (``storage.writer.natural_key``, found once in a slow hour: no database there).
DATABASE_CODE = ("/sqlalchemy/", "/sqlite3/", "/psycopg/")
#: SQLAlchemy's event-registry bookkeeping, run by weakref callbacks on whatever thread the
#: garbage collector happens to run: no statement, no I/O (seen once: `_collection_gced`).
NOT_DATABASE = ("/sqlalchemy/event/registry.py",)


class ReactorStallProbe:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.last = 0.0
        self.gaps: list[float] = []
        #: Each gap less the garbage collector's pauses within it (a stall no database causes).
        self.gaps_without_gc: list[float] = []
        self.loop = task.LoopingCall(self.tick)
        self.late_at: Counter[str] = Counter()
        self.in_database: Counter[str] = Counter()
        #: Gaps during which the watchdog found the reactor thread in database code.
        self.database_gaps: list[float] = []
        self.gap_in_database = False
        self.stop = threading.Event()
        self.gc_started = 0.0
        self.gc_total = 0.0
        self.gc_total_at_last = 0.0
        self.gc_max = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReactorStallProbe:
        probe = cls(Path(crawler.settings["FXCRAWL_TEST_STALL_OUT"]))
        crawler.signals.connect(probe.engine_started, signal=signals.engine_started)
        crawler.signals.connect(probe.spider_closed, signal=signals.spider_closed)
        return probe

    def engine_started(self) -> None:
        gc.callbacks.append(self.collected)
        self.last = time.perf_counter()
        self.loop.start(TICK, now=False)
        threading.Thread(target=self.watch, args=(threading.get_ident(),), daemon=True).start()

    def tick(self) -> None:
        now = time.perf_counter()
        gap = now - self.last - TICK  # how late this tick ran
        self.gaps.append(gap)
        self.gaps_without_gc.append(gap - (self.gc_total - self.gc_total_at_last))
        if self.gap_in_database:
            self.database_gaps.append(gap)
            self.gap_in_database = False
        self.last, self.gc_total_at_last = now, self.gc_total

    def collected(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.gc_started = time.perf_counter()
        elif threading.current_thread() is threading.main_thread():
            pause = time.perf_counter() - self.gc_started
            self.gc_total += pause
            self.gc_max = max(self.gc_max, pause)

    def watch(self, reactor_thread: int) -> None:
        while not self.stop.wait(0.005):
            if time.perf_counter() - self.last < TICK + 0.01:
                continue
            frame = sys._current_frames().get(reactor_thread)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            where = " < ".join(f"{f.name}@{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(stack[-6:]))
            self.late_at[where] += 1
            if any(
                any(part in f.filename for part in DATABASE_CODE) and not f.filename.endswith(NOT_DATABASE)
                for f in stack
            ):
                self.in_database[where] += 1
                self.gap_in_database = True

    def spider_closed(self, **_: Any) -> None:
        self.stop.set()
        if self.collected in gc.callbacks:
            gc.callbacks.remove(self.collected)
        if self.loop.running:
            self.loop.stop()
        gaps, adjusted = sorted(self.gaps), sorted(self.gaps_without_gc)
        self.out.write_text(
            json.dumps(
                {
                    "ticks": len(gaps),
                    "max_ms": gaps[-1] * 1000 if gaps else None,
                    "p99_ms": gaps[int(len(gaps) * 0.99)] * 1000 if gaps else None,
                    "over_50ms": sum(1 for gap in gaps if gap > 0.05),
                    "max_without_gc_ms": adjusted[-1] * 1000 if adjusted else None,
                    "max_in_database_ms": max(self.database_gaps, default=0.0) * 1000,
                    "gc_max_ms": self.gc_max * 1000,
                    "in_database": self.in_database.most_common(5),
                    "late_at": self.late_at.most_common(5),
                }
            )
        )
