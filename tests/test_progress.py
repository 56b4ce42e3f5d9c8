"""Progress of long work: the pure line, the rate, and a crawl's live line (terminal) or log lines."""

from __future__ import annotations

import io
import os
import pty
import subprocess
from pathlib import Path

from conftest import FXCRAWL, replay_crawl_command

from crawler.progress import live_wanted
from storage.progress import Progress, RateMeter, duration, format_progress


def test_a_progress_line_says_done_of_discovered_outcomes_rate_and_time_left() -> None:
    line = format_progress(
        Progress(done=120, discovered=340, new=80, updated=3, rejected=1, elapsed=28.4, rate=4.2, label="search:现代")
    )
    assert line == (
        "search:现代 120/340 pages (35%) · new 80 · updated 3 · rejected 1 · 4.2 pages/s · ETA 0:52 · elapsed 0:28"
    )
    unknown = format_progress(Progress(done=5, errors=2, unit="articles", elapsed=3725))
    assert unknown == "5 articles · new 0 · updated 0 · rejected 0 · errors 2 · … articles/s · elapsed 1:02:05"
    assert Progress(done=10, discovered=10, rate=0.0).eta is None
    assert Progress(done=12, discovered=10, rate=1.0).remaining == 0  # done never shows more than all
    assert "12/12 pages (100%)" in format_progress(Progress(done=12, discovered=10))
    assert duration(59.6) == "1:00" and duration(0) == "0:00"


def test_the_rate_is_measured_over_a_recent_window() -> None:
    meter = RateMeter(window=10)
    assert meter.update(0.0, 0) is None
    assert meter.update(1.0, 10) == 10.0
    for second in range(2, 30):
        rate = meter.update(float(second), 10 + (second - 1) * 2)  # slower: 2 a second from here
    assert rate is not None and abs(rate - 2.0) < 0.3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_line_is_for_a_terminal_at_a_log_level_that_is_not_asking_for_quiet() -> None:
    assert live_wanted("auto", "INFO", Terminal()) and live_wanted("auto", "WARNING", Terminal())
    assert not live_wanted("auto", "ERROR", Terminal())
    assert not live_wanted("auto", "INFO", io.StringIO())  # a log file or a pipe gets log lines
    assert live_wanted("live", "ERROR", io.StringIO()) and not live_wanted("log", "INFO", Terminal())


def test_a_crawl_logs_a_progress_line_every_interval_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    command = replay_crawl_command(
        20,
        tmp_path / "spool",
        "--replay-delay",
        "0.05",
        "-s",
        "FXCRAWL_PROGRESS_INTERVAL=0.5",
        db=f"sqlite:///{tmp_path / 'fx.db'}",
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "[crawler.progress] INFO: progress" in line]
    assert len(lines) >= 3, done.stderr[-2000:]
    assert "pages/s" in lines[1] and "/" in lines[1].split(" pages")[0]
    assert lines[-1].split("INFO: ", 1)[1].startswith("progress (finished): search:现代 220/220 pages (100%) · new 200")
    assert "\x1b[" not in done.stderr  # no terminal control codes in a log


def test_a_crawl_on_a_terminal_draws_a_live_line_and_leaves_the_log_readable(tmp_path: Path) -> None:
    command = replay_crawl_command(
        20, tmp_path / "spool", "--replay-delay", "0.05", db=f"sqlite:///{tmp_path / 'fx.db'}"
    )
    controller, terminal = pty.openpty()
    crawl = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the crawl is done
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert crawl.wait(timeout=60) == 0
    text = output.decode("utf-8", "replace")
    assert "pages/s" in text and "\x1b[2K" in text  # drawn, then erased and redrawn in place
    assert "[scrapy.core.engine] INFO: Closing spider (finished)" in text  # log records still print whole
    assert "progress (finished): search:现代 220/220 pages" in text


def test_progress_off_draws_and_logs_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *replay_crawl_command(1, tmp_path / "spool", db=f"sqlite:///{tmp_path / 'fx.db'}"),
            "-s",
            "FXCRAWL_PROGRESS=off",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "[crawler.progress]" not in done.stderr
    bad = subprocess.run(
        [*FXCRAWL, "crawl", "search", "-s", "FXCRAWL_PROGRESS_INTERVAL=soon"], capture_output=True, text=True
    )
    assert bad.returncode == 2
