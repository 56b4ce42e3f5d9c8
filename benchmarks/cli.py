"""The command line's start-up: `fxcrawl --help` and a subcommand's help, each in a fresh
process, against the interpreter starting and exiting (the floor no command can beat) and
against the same command importing what it defers to the commands that need it (the store,
Scrapy): what deferring buys."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import Row, ratio, verdict

TARGET_SECONDS = 0.5
#: What a command with everything imported up front would pay on top of the help.
EAGER = "import sqlalchemy, scrapy.crawler, storage.db, storage.migrations, crawler.settings"


def _seconds(argv: list[str], repeat: int) -> float:
    """Median wall time of ``repeat`` fresh processes (one untimed first: the files' cache)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(repeat: int, log: Any = print) -> list[Row]:
    floor = _seconds([sys.executable, "-c", "pass"], repeat)
    rows = []
    for args in (["--help"], ["articles", "list", "--help"]):
        help_s = _seconds([sys.executable, "-m", "fxcrawl.cli", *args], repeat)
        eager_s = _seconds(
            [sys.executable, "-c", f"{EAGER}; import sys; from fxcrawl.cli import main; sys.exit(main({args!r}))"],
            repeat,
        )
        shown = " ".join(["fxcrawl", *args])
        log(f"  cli {shown}: {help_s * 1000:.0f} ms (python alone {floor * 1000:.0f}, eager {eager_s * 1000:.0f})")
        rows.append(
            Row(
                "cli",
                f"`{shown}` ms",
                help_s * 1000,
                "ms",
                baseline=floor * 1000,
                baseline_name="python -c pass",
                ratio=ratio(help_s, floor),
                target=f"< {TARGET_SECONDS} s (median of {repeat})",
                status=verdict(help_s < TARGET_SECONDS),
                note=f"with the store and Scrapy imported up front: {eager_s * 1000:.0f} ms",
                extra={"eager_s": eager_s},
            )
        )
    return rows
