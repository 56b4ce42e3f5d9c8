"""One scale measurement in a fresh process: a fixed batch of new articles through the real
pipelines into an existing SQLite database; prints JSON with the time and the peak RSS
(VmHWM; getrusage's ru_maxrss is reported too, see common.peak_rss_mb).

    python -m benchmarks.scale_worker DB_FILE FIRST_INDEX COUNT SPOOL_DIR
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_worker")
    parser.add_argument("db_file")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("spool_dir")
    args = parser.parse_args(argv)

    from benchmarks.common import (
        article_records,
        getrusage_maxrss_mb,
        items_for,
        peak_rss_mb,
        run_real_pipelines,
        sqlite_url,
    )

    for module in ("scrapy.utils.test", "pipelines.validate", "pipelines.dedupe", "pipelines.store"):
        importlib.import_module(module)  # loaded before the RSS baseline is taken

    records = article_records(args.count, start=args.first)
    items = items_for(records, start=args.first)
    del records
    before = peak_rss_mb()
    elapsed, stats = run_real_pipelines(sqlite_url(args.db_file), items, spool_dir=args.spool_dir)
    result = {
        "elapsed": elapsed,
        "articles": args.count,
        "us_per_article": elapsed / args.count * 1e6,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "ru_maxrss_mb": getrusage_maxrss_mb(),
        "new": int(stats.get("fxcrawl/store/article/new", 0)),
        "failed": int(stats.get("fxcrawl/store/failed_items", 0) or stats.get("fxcrawl/store/spooled_items", 0)),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
