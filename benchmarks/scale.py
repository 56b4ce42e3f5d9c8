"""Scale: does storing get slower, or hungrier, as the database grows?

The same batch of new articles (with their hits and sources) goes through the real pipelines
into a SQLite database already holding SMALL and then LARGE articles; each measurement runs
in a fresh subprocess (benchmarks.scale_worker) on its own copy of the preloaded database,
alternating small/large, and reports time per article and peak RSS (getrusage).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import Row, article_records, items_for, median, ratio, run_real_pipelines, sqlite_url, verdict

TOLERANCE = 0.20


def preload(path: Path, articles: int, spool_dir: Path) -> float:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    elapsed, _ = run_real_pipelines(sqlite_url(path), items_for(article_records(articles)), spool_dir=spool_dir)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    if stored != articles:
        raise RuntimeError(f"preloading {articles} articles stored {stored}")
    return elapsed


def measure_once(template: Path, copy: Path, first: int, batch: int, spool_dir: Path) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, copy)
    os.sync()  # the copy and the benchmarks before this one written out: no writeback during the batch
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_worker", str(copy), str(first), str(batch), str(spool_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"scale worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(small: int, large: int, batch: int, repeat: int, workdir: Path, log: Any = print) -> list[Row]:
    spool = workdir / "spool"
    templates = {}
    for size in (small, large):
        templates[size] = workdir / f"scale-{size}.db"
        seconds = preload(templates[size], size, spool)
        log(f"  scale: preloaded {size} articles in {seconds:.1f} s")
    runs: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    for attempt in range(repeat):
        order = (small, large) if attempt % 2 == 0 else (large, small)
        for size in order:
            # The batch is the same new articles for both sizes: indices after the larger preload.
            result = measure_once(templates[size], workdir / f"scale-{size}-run.db", large, batch, spool)
            runs[size].append(result)
            log(
                f"  scale {size} stored: {batch} new articles in {result['elapsed']:.2f} s "
                f"= {result['us_per_article']:.0f} µs/article, peak RSS {result['peak_rss_mb']:.1f} MB"
            )
    complete = all(r["new"] == batch and not r["failed"] for rs in runs.values() for r in rs)
    time_small = median([r["us_per_article"] for r in runs[small]])
    time_large = median([r["us_per_article"] for r in runs[large]])
    rss_small = median([r["peak_rss_mb"] for r in runs[small]])
    rss_large = median([r["peak_rss_mb"] for r in runs[large]])
    growth_small = median([r["peak_rss_mb"] - r["rss_before_mb"] for r in runs[small]])
    growth_large = median([r["peak_rss_mb"] - r["rss_before_mb"] for r in runs[large]])
    time_ratio, rss_ratio = ratio(time_large, time_small), ratio(rss_large, rss_small)
    base_note = f"batch of {batch:,} new articles (+hits, sources); median of {repeat} fresh processes each"
    if not complete:
        base_note += "; NOT ALL STORED (see JSON)"
    target = f"within {TOLERANCE:.0%} of {small:,} stored"
    return [
        Row(
            "scale",
            f"store µs/article, {large:,} stored",
            time_large,
            "µs",
            baseline=time_small,
            baseline_name=f"{small:,} stored",
            ratio=time_ratio,
            target=target,
            status=verdict(time_ratio is not None and abs(time_ratio - 1) <= TOLERANCE),
            note=base_note,
            extra={"runs": {str(k): v for k, v in runs.items()}},
        ),
        Row(
            "scale",
            f"peak RSS, {large:,} stored",
            rss_large,
            "MB",
            baseline=rss_small,
            baseline_name=f"{small:,} stored",
            ratio=rss_ratio,
            target=target,
            status=verdict(rss_ratio is not None and abs(rss_ratio - 1) <= TOLERANCE),
            note=f"whole process; growth during the batch {growth_large:.1f} MB vs {growth_small:.1f} MB",
        ),
    ]
