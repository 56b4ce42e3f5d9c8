"""End to end: the full fxcrawl crawl against a bare Scrapy spider fetching the same URLs.

One generated-site server serves every crawl; each runs in its own subprocess
(benchmarks.e2e_worker), in rounds of bare, parsers, full, full without the archive and full with
the archive on the writer thread (the order turned around each round)
after one untimed warm-up crawl that fills the server's caches. Figures are medians over the
rounds. The "parsers" crawl, the real spider and parsers storing nothing, is the ceiling the full
crawl's ratio is measured against: what it would reach if validating and storing were free.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import Row, median, ratio, verdict
from replay.server import ReplayServer

TARGET = 0.8


def server_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), to tell whether the fixture server is the bottleneck."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_worker(kind: str, base_url: str, db_file: Path, pages: int, server_pid: int | None) -> dict[str, Any]:
    before = server_cpu_seconds(server_pid) if server_pid else None
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e_worker", kind, base_url, str(db_file), str(pages)],
        capture_output=True,
        text=True,
        check=False,
    )
    after = server_cpu_seconds(server_pid) if server_pid else None
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{kind} crawl failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["responses"]:
        raise RuntimeError(
            f"{kind} crawl fetched nothing (finish reason {result['finish_reason']}):\n{done.stderr[-3000:]}"
        )
    result["pages_per_s"] = result["responses"] / result["elapsed"]
    scrapy_elapsed = result.get("scrapy_elapsed") or 0.0
    result["engine_pages_per_s"] = result["responses"] / scrapy_elapsed if scrapy_elapsed else None
    result["server_cpu"] = after - before if before is not None and after is not None else None
    return result


def run(pages: int, rounds: int, workdir: Path, log: Any = print) -> list[Row]:
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "parsers": [], "full": [], "unarchived": [], "threaded": []}
    with ReplayServer("--generate", str(pages)) as server:
        pid = server.process.pid if server.process else None
        log(f"  e2e: server {server.base_url}, {pages} listing pages × 10 articles")
        warm = run_worker("bare", server.base_url, workdir / "e2e-warmup.db", pages, pid)
        log(f"  e2e: warm-up bare crawl {warm['pages_per_s']:.0f} pages/s (not counted)")
        for round_ in range(rounds):
            order = ("bare", "parsers", "full", "unarchived", "threaded")
            order = order if round_ % 2 == 0 else order[::-1]
            for kind in order:
                db_file = workdir / f"e2e-{kind}-{round_}.db"
                result = run_worker(kind, server.base_url, db_file, pages, pid)
                runs[kind].append(result)
                log(
                    f"  e2e round {round_ + 1}/{rounds} {kind}: {result['responses']} responses in "
                    f"{result['elapsed']:.2f} s = {result['pages_per_s']:.0f} pages/s "
                    f"(crawler CPU {result['cpu']:.1f} s, server CPU {result['server_cpu'] or 0:.1f} s)"
                )

    bare = median([r["pages_per_s"] for r in runs["bare"]])
    full = median([r["pages_per_s"] for r in runs["full"]])
    parsers = median([r["pages_per_s"] for r in runs["parsers"]])
    unarchived = median([r["pages_per_s"] for r in runs["unarchived"]])
    threaded = median([r["pages_per_s"] for r in runs["threaded"]])
    engine_bare = _median_or_none([r["engine_pages_per_s"] for r in runs["bare"]])
    engine_full = _median_or_none([r["engine_pages_per_s"] for r in runs["full"]])
    expected_responses = pages * 11 + 1  # listings + articles + robots.txt
    everything = [result for kind in runs.values() for result in kind]
    same_urls = len({r["url_digest"] for r in everything}) == 1
    stored = runs["full"][-1]["stored"]
    complete = all(r["responses"] == expected_responses for r in everything) and stored.get("articles") == pages * 10
    r = ratio(full, bare)
    note = (
        f"{expected_responses} responses each; same URLs: {'yes' if same_urls else 'NO'}; "
        f"stored {stored.get('articles', 0)} articles; median of {rounds}"
    )
    if not complete:
        note += "; INCOMPLETE crawl (see JSON)"
    rows = [
        Row(
            "e2e",
            "full crawl pages/s",
            full,
            "pages/s",
            baseline=bare,
            baseline_name="bare Scrapy",
            ratio=r,
            target=f"full/bare ≥ {TARGET}",
            status=verdict(r is not None and r >= TARGET),
            note=note,
            extra={"runs": runs, "pages": pages, "same_urls": same_urls, "complete": complete, "warmup": warm},
        ),
        Row(
            "e2e",
            "spider and parsers alone pages/s",
            parsers,
            "pages/s",
            baseline=bare,
            baseline_name="bare Scrapy",
            ratio=ratio(parsers, bare),
            target=f"(ceiling for the full/bare ≥ {TARGET} target)",
            note=(
                "the real spider and parsers, every item yielded into no pipeline; no fxcrawl middleware, "
                "extension or database: the most the full crawl could reach if validating and storing were free"
            ),
        ),
        _share_of_parsers(
            "full crawl", full, parsers, "what validating, deduping, storing and archiving cost, of the ceiling"
        ),
        _share_of_parsers(
            "full crawl without the WARC archive",
            unarchived,
            parsers,
            f"FXCRAWL_ARCHIVE_ENABLED=False; the archive's own cost: full/unarchived {_times(ratio(full, unarchived))}",
        ),
        _share_of_parsers(
            "full crawl, archive written on the writer thread",
            threaded,
            parsers,
            "FXCRAWL_ARCHIVE_PROCESS=False (warcio and gzip under the crawl's interpreter lock); "
            f"what the archive's child process buys: full/threaded {_times(ratio(full, threaded))}",
        ),
        Row(
            "e2e",
            "pages/s, engine time only",
            engine_full,
            "pages/s",
            baseline=engine_bare,
            baseline_name="bare Scrapy",
            ratio=ratio(engine_full, engine_bare),
            note="Scrapy's elapsed_time_seconds: without process start-up, schema set-up and shutdown",
        ),
        Row(
            "e2e",
            "crawler CPU ms/response",
            1000 * median([r["cpu"] / r["responses"] for r in runs["full"]]),
            "ms",
            baseline=1000 * median([r["cpu"] / r["responses"] for r in runs["bare"]]),
            baseline_name="bare Scrapy",
            ratio=ratio(
                median([r["cpu"] / r["responses"] for r in runs["full"]]),
                median([r["cpu"] / r["responses"] for r in runs["bare"]]),
            ),
            note="CPU of the crawling process (incl. start-up) and of the archive's child, per response",
        ),
        Row(
            "e2e",
            "crawler peak RSS",
            median([r["peak_rss_mb"] for r in runs["full"]]),
            "MB",
            baseline=median([r["peak_rss_mb"] for r in runs["bare"]]),
            baseline_name="bare Scrapy",
            ratio=ratio(
                median([r["peak_rss_mb"] for r in runs["full"]]), median([r["peak_rss_mb"] for r in runs["bare"]])
            ),
        ),
    ]
    return rows


def _share_of_parsers(crawl: str, rate: float, parsers: float, note: str) -> Row:
    return Row(
        "e2e",
        f"{crawl} pages/s against spider and parsers alone",
        rate,
        "pages/s",
        baseline=parsers,
        baseline_name="spider and parsers alone",
        ratio=ratio(rate, parsers),
        note=note,
    )


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "n/a"


def _median_or_none(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return median(present) if present else None
