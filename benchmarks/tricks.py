"""Speed tricks beside the plain code they replace, in one run: a trick stays only with a row that
shows its gain (issue 15).

- **gc.freeze** (crawler/memory.py): the full crawl of the generated site (``benchmarks.e2e_worker
  full``) with ``FXCRAWL_GC_FREEZE`` on against off, alternating, in fresh processes, in responses
  per CPU second of the crawling process (so that other work on the machine moves it less).

Measured here and removed (commit "Speed tricks that did not earn their place"): the canonical-URL
regex shortcut (1.19x of canonical_url, 14 ms of a crawl's 4.8 CPU s: 0.3 %) and validation's
plain-text twin (1.16x of validation, 15 ms: 0.3 %).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import Row, median, ratio
from replay.server import ReplayServer


def full_crawl(base_url: str, db_file: Path, pages: int, freeze: bool) -> float:
    """Responses per CPU second of the crawling process (its own work, whatever else the machine runs)."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.e2e_worker", "full", base_url, str(db_file), str(pages)),
            *("--set", f"FXCRAWL_GC_FREEZE={json.dumps(freeze)}"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"full crawl failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["responses"] / result["cpu"])


def run(pages: int, rounds: int, workdir: Path, log: Any = print) -> list[Row]:
    """The rows; each note says what the trick saves of the full crawl of ``pages`` listing pages."""
    responses = pages * 11 + 1
    frozen: list[float] = []
    unfrozen: list[float] = []
    with ReplayServer("--generate", str(pages)) as server:
        for round_ in range(rounds):
            for freeze in (True, False) if round_ % 2 == 0 else (False, True):
                rate = full_crawl(server.base_url, workdir / f"tricks-gc-{freeze}-{round_}.db", pages, freeze)
                (frozen if freeze else unfrozen).append(rate)
                log(f"  tricks gc.freeze {'on' if freeze else 'off'} round {round_ + 1}: {rate:.0f} pages/CPU s")
    shipped, plain = responses / median(frozen), responses / median(unfrozen)  # CPU seconds per crawl
    return [
        Row(
            "tricks",
            "gc.freeze at engine start: full crawl, pages/CPU s",
            median(frozen),
            "pages/s",
            median(unfrozen),
            "FXCRAWL_GC_FREEZE off",
            ratio(median(frozen), median(unfrozen)),
            note=f"{responses} responses, median of {rounds}; saves {(plain - shipped) * 1000:.0f} ms "
            f"of the crawl's {plain:.1f} CPU s ({(plain - shipped) / plain:.1%})",
        )
    ]
