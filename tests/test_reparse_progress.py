"""The re-parse's progress line: pages, rate, share of the archive read and the time left; redrawn
in place on a terminal, logged otherwise."""

from __future__ import annotations

import io
import logging

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.reparse_progress import ReparseProgress as Progress


def progress(stream: io.StringIO, done: int, total: int, pages: int) -> Progress:
    stats = MemoryStatsCollector(get_crawler())
    stats.set_value("reparse/pages", pages)
    stats.set_value("reparse/bytes_done", done)
    stats.set_value("reparse/bytes_total", total)
    shown = Progress(stats, stream=stream, interval=1.0)
    shown.started -= 10.0  # ten seconds in
    return shown


def test_the_line_says_pages_rate_share_and_time_left() -> None:
    line = progress(io.StringIO(), done=2_500_000, total=10_000_000, pages=1_000).line()
    assert line.startswith("reparse: 1,000 pages, 100 pages/s, 25% of 10.0 MB, 0:00:30 left")


def test_a_terminal_gets_one_line_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(stream, "isatty", lambda: True)
    shown = progress(stream, done=5, total=10, pages=5)
    shown.show()
    shown.show(final=True)
    out = stream.getvalue()
    assert out.count("\r\033[K") == 2 and out.endswith(" left\n") and out.count("\n") == 1


def test_without_a_terminal_it_logs(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="crawler.reparse_progress"):
        progress(stream, done=10, total=10, pages=3).show()
    assert stream.getvalue() == "" and "reparse: 3 pages" in caplog.text
