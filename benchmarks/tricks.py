"""Speed tricks beside the plain code they replace, in one run: a trick stays only with a row that
shows its gain (issue 15).

- **validate**: ValidatePipeline over generated items (sources, search hits, articles) with its
  plain-text path (``_plain``: one search says an item holds nothing ``clean`` would strip and
  nothing that may be garbled) against every item through ``clean`` and the garbled-text check.
- **canonical_url**: ``site.canonical_url`` over the URLs a real crawl canonicalises (recorded
  from a full crawl of the generated site), with its already-canonical regex against the plain
  memoised function alone; the memo is emptied before each pass, as a crawl starts with it empty.
- **gc.freeze**: the full crawl of the generated site (``benchmarks.e2e_worker full``) with
  ``FXCRAWL_GC_FREEZE`` on against off, alternating, in fresh processes, in responses per CPU
  second of the crawling process.

Every figure is per CPU second of the process doing the work, so that other work on the machine
moves it less; each row's note says what the trick saves of the whole crawl.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Row, article_records, items_for, make_crawler, median, ratio
from replay.server import ReplayServer


def validate_rate(items: list[Any], plain_path: bool) -> float:
    """Items per CPU second through ValidatePipeline.process_item (``plain_path``: as shipped)."""
    from pipelines import validate

    pipeline = validate.ValidatePipeline.from_crawler(make_crawler())
    shipped = validate._plain
    if not plain_path:
        validate._plain = lambda *texts: False  # type: ignore[assignment]  # every item down the general path
    try:
        started = time.process_time()
        for item in items:
            pipeline.process_item(item)
        elapsed = time.process_time() - started
    finally:
        validate._plain = shipped
    rejected = pipeline.stats.get_value("fxcrawl/rejected", 0)
    if rejected:
        raise RuntimeError(f"{rejected} generated items rejected: the two paths must accept the same items")
    return len(items) / elapsed


def record_urls(base_url: str, pages: int, out: Path) -> None:
    """Child process: a full crawl with every canonical_url call's arguments written to ``out``."""
    from benchmarks import e2e_worker
    from fx168 import site

    calls: list[tuple[str, str | None]] = []
    shipped = site.canonical_url

    def recording(url: str, fetch_base: str | None = None) -> str:
        calls.append((url, fetch_base))
        return shipped(url, fetch_base)

    site.canonical_url = recording  # type: ignore[assignment]  # every caller looks it up on the module
    e2e_worker.crawl_full(base_url, str(out.with_suffix(".db")), pages)
    out.write_text(json.dumps(calls), encoding="utf-8")


def canonical_rate(calls: list[tuple[str, str | None]], fast_path: bool) -> float:
    from fx168 import site

    canonical = site.canonical_url if fast_path else site._canonical_url
    site._canonical_url.cache_clear()
    started = time.process_time()
    for url, base in calls:
        canonical(url, base)
    return len(calls) / (time.process_time() - started)


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
    return float(result["responses"] / result["cpu"])  # per CPU second: the machine may be busy


def _share(saved: float, crawl: float) -> str:
    return f"saves {saved * 1000:.0f} ms of a crawl's {crawl:.1f} CPU s ({saved / crawl:.1%})"


def run(pages: int, rounds: int, workdir: Path, log: Any = print) -> list[Row]:
    """The rows; each note says what the trick saves of the full crawl of ``pages`` listing pages."""
    rows: list[Row] = []
    responses = pages * 11 + 1
    with ReplayServer("--generate", str(pages)) as server:
        frozen, unfrozen = [], []
        for round_ in range(rounds):
            for freeze in (True, False) if round_ % 2 == 0 else (False, True):
                rate = full_crawl(server.base_url, workdir / f"tricks-gc-{freeze}-{round_}.db", pages, freeze)
                (frozen if freeze else unfrozen).append(rate)
                log(f"  tricks gc.freeze {'on' if freeze else 'off'} round {round_ + 1}: {rate:.0f} pages/CPU s")
        crawl = responses / median(frozen)  # CPU seconds, as shipped
        rows.append(
            Row(
                "tricks",
                "gc.freeze at engine start: full crawl, pages/CPU s",
                median(frozen),
                "pages/s",
                median(unfrozen),
                "FXCRAWL_GC_FREEZE off",
                ratio(median(frozen), median(unfrozen)),
                note=f"{responses} responses, median of {rounds}; "
                + _share(responses / median(unfrozen) - crawl, responses / median(unfrozen)),
            )
        )

        urls_file = workdir / "tricks-urls.json"
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.tricks", "record", server.base_url, str(pages), str(urls_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"recording crawl failed:\n{done.stderr[-3000:]}")
    calls = [(url, base) for url, base in json.loads(urls_file.read_text(encoding="utf-8"))]
    with_regex, without = [], []
    for round_ in range(max(rounds, 7)):
        for fast_path in (True, False) if round_ % 2 == 0 else (False, True):
            (with_regex if fast_path else without).append(canonical_rate(calls, fast_path))
    rows.append(
        Row(
            "tricks",
            "canonical_url: already-canonical regex, calls/CPU s",
            median(with_regex),
            "calls/s",
            median(without),
            "memoised function alone",
            ratio(median(with_regex), median(without)),
            note=f"the {len(calls)} calls of the crawl ({len(set(calls))} distinct); "
            + _share(len(calls) / median(without) - len(calls) / median(with_regex), crawl),
        )
    )
    log(f"  tricks canonical_url: {median(with_regex):,.0f} vs {median(without):,.0f} calls/s")

    records = article_records(pages * 10)
    count = len(items_for(records))
    fast, slow = [], []
    for round_ in range(max(rounds, 7)):
        for plain_path in (True, False) if round_ % 2 == 0 else (False, True):
            (fast if plain_path else slow).append(validate_rate(items_for(records), plain_path))
    rows.append(
        Row(
            "tricks",
            "validate: plain-text path, items/CPU s",
            median(fast),
            "items/s",
            median(slow),
            "every item cleaned and checked",
            ratio(median(fast), median(slow)),
            note=f"the crawl's {count} items (generated), median of {len(fast)}; "
            + _share(count / median(slow) - count / median(fast), crawl),
        )
    )
    log(f"  tricks validate: {median(fast):,.0f} vs {median(slow):,.0f} items/s")
    return rows


if __name__ == "__main__":  # the recording crawl's child process
    record_urls(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
