"""The archive: re-parse against parse alone, and what archiving costs on disk.

One full crawl of a generated site (listing pages × 10 articles) fills a store and its archive.
Then, side by side on the same pages:

- **re-parse**: `fxcrawl reparse` over that archive, in a child process: reading the WARC file,
  rebuilding responses, the spiders' callbacks, validate → dedupe → store (every article
  unchanged); pages/s as the run's engine time counts it (Scrapy's elapsed_time_seconds, so not
  the interpreter's start-up);
- **parse alone**: the same pages' bodies already in memory, each given to its page parser
  (JSON path, the HTML read too on the pages a crawl verifies), nothing else;
- **read and parse**: the archive read by the re-parse's own reader and selection, each page
  decoded and given to its parser as in parse alone; no Scrapy, no pipelines. Any re-parse that
  reads its pages from the archive does at least this, so its share of parse alone is the
  ceiling of the re-parse's share (one core).

And the archive's bytes per page beside the bytes Scrapy downloaded per page for the crawl
(``downloader/response_bytes``: headers and bodies as received).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import Row, median, ratio, verdict

TARGET = 0.7


def crawl(pages: int, db: str, workdir: Path) -> None:
    command = [
        sys.executable, "-m", "fxcrawl.cli", "crawl", "search", "--keyword", "现代", "--pages", f"1-{pages}",
        "--replay", "--replay-generate", str(pages), "--log-level", "WARNING", "--db", db,
        "-s", f"FXCRAWL_SPOOL_DIR={workdir / 'spool'}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the crawl failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def reparse(db: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "fxcrawl.cli", "reparse", "--db", db, "--log-level", "WARNING"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reparse failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return last_run_stats(db)


def last_run_stats(db: str) -> dict[str, Any]:
    from sqlalchemy import select

    from storage.db import Database
    from storage.models import CrawlRun

    database = Database(db)
    try:
        with database.session() as session:
            run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc())).first()
            assert run is not None
            return dict(run.stats)
    finally:
        database.dispose()


def archive_pages(db: str) -> Iterator[Any]:
    """Every archived page as a re-parse reads it: its reader, its selection (all), its order."""
    from crawler.spiders.reparse import live_url
    from storage.archive import ReadReport, archive_dir_for
    from storage.archive.selection import Selection, SelectionCounts, selected_pages
    from storage.db import Database

    database = Database(db)
    try:
        found = selected_pages(
            archive_dir_for(None, db), database, Selection(), ReadReport(), SelectionCounts(), live_url
        )
        yield from (page for _, page in found)
    finally:
        database.dispose()


def page_texts(db: str) -> Iterator[tuple[str, str]]:
    """(live URL, text) of every archived page with a body to parse, as it is read."""
    from crawler.spiders.reparse import live_url

    return ((live_url(page.url), page.body.decode("utf-8")) for page in archive_pages(db) if page.status == 200)


def archived_pages(db: str) -> list[tuple[str, str]]:
    """(live URL, text) of every archived page a re-parse reads, in its order."""
    return list(page_texts(db))


def parse_alone(pages: list[tuple[str, str]]) -> tuple[int, float]:
    """The page parsers over bodies in memory: (pages parsed, seconds)."""
    started = time.perf_counter()
    parsed = parse_each(pages)
    return parsed, time.perf_counter() - started


def read_and_parse(db: str) -> tuple[int, float]:
    """The archive read as a re-parse reads it, each page decoded and parsed: (pages parsed, seconds)."""
    started = time.perf_counter()
    parsed = parse_each(page_texts(db))
    return parsed, time.perf_counter() - started


def parse_each(pages: Iterable[tuple[str, str]]) -> int:
    """Each page given to its parser, verifying as a crawl does (first 5 of a kind, then 1 in 10)."""
    from fx168 import site
    from fx168.parsing import PageParseError, parse_article_page, parse_search_page

    parsers = {
        site.PageKind.SEARCH: parse_search_page,
        site.PageKind.ARTICLE: parse_article_page,
        site.PageKind.LEGACY_ARTICLE: parse_article_page,
    }
    read: Counter[Any] = Counter()
    parsed = 0
    for url, text in pages:
        kind = site.page_kind(url)
        parse = parsers.get(kind) if kind else None
        if parse is None:
            continue
        read[kind] += 1
        with contextlib.suppress(PageParseError):
            parse(text, url, verify=read[kind] <= 5 or read[kind] % 10 == 0)
        parsed += 1
    return parsed


def writer_cost(db: str, workdir: Path, groups: tuple[int, ...], rounds: int) -> dict[int, float]:
    """CPU µs per response of the archive writer (records, gzip, payload index lookups, the index
    rows, fsync every 100 responses) over the crawl's archived pages, handed over ``group`` at a
    time, into a fresh archive and payload index each time."""
    from datetime import UTC, datetime

    from storage.archive import ArchiveWriter, Exchange
    from storage.db import Database

    exchanges = [
        Exchange(f"<urn:uuid:{n:08d}-0000-4000-8000-000000000000>", page.url, page.status,
                 list(page.original_headers), page.body, "GET", [("Accept", "text/html")],
                 datetime.now(UTC), "OK")
        for n, page in enumerate(archive_pages(db))
    ]  # fmt: skip
    out: dict[int, float] = {}
    for group in groups:
        times = []
        for round_ in range(rounds):
            folder = workdir / f"writer-{group}-{round_}"
            folder.mkdir(parents=True, exist_ok=True)
            database = Database(f"sqlite:///{folder / 'index.db'}").prepare()
            writer = ArchiveWriter(folder / "archive", database)
            started = time.process_time()
            for start in range(0, len(exchanges), group):
                writer.write(exchanges[start : start + group], run_id=1)
                if (start + group) // 100 != start // 100:
                    writer.sync()
            writer.close()
            times.append((time.process_time() - started) / len(exchanges) * 1e6)
            database.dispose()
        out[group] = median(times) or 0.0
    return out


def compression(bodies: list[bytes], rounds: int) -> dict[str, tuple[float, int]]:
    """CPU µs per page and total bytes of the archive's gzip member for each body, with the
    archive's compressor (zlib-ng) and with the standard library's zlib at the same level."""
    import zlib

    from storage.archive.records import GZIP_LEVEL, gzip_compressor

    def stdlib() -> Any:
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)

    out: dict[str, tuple[float, int]] = {}
    for name, make in (("zlib-ng", gzip_compressor), ("zlib", stdlib)):
        times, size = [], 0
        for _ in range(rounds):
            started, size = time.process_time(), 0
            for body in bodies:
                compressor = make()
                size += len(compressor.compress(body)) + len(compressor.flush())
            times.append((time.process_time() - started) / len(bodies) * 1e6)
        out[name] = (median(times) or 0.0, size)
    return out


def run(pages: int, rounds: int, workdir: Path, log: Any = print) -> list[Row]:
    # a folder of its own: the other benchmarks' crawls archive beside their databases in workdir too
    workdir = workdir / "archive-bench"
    workdir.mkdir(exist_ok=True)
    db = f"sqlite:///{workdir / 'archive-bench.db'}"
    crawl(pages, db, workdir)
    crawled = last_run_stats(db)
    archive_bytes = sum(path.stat().st_size for path in (workdir / "archive").glob("*.warc.gz"))
    responses = int(crawled.get("downloader/response_count", 0) or 0)
    fetched_bytes = int(crawled.get("downloader/response_bytes", 0) or 0)
    log(f"  archive: crawl of {pages} listing pages: {responses} responses, {fetched_bytes:,} bytes, "
        f"archive {archive_bytes:,} bytes")  # fmt: skip

    texts = archived_pages(db)
    alone_rates, reparse_rates, read_rates = [], [], []
    for round_ in range(rounds):
        stats = reparse(db)
        assert int(stats.get("fxcrawl/store/article/new", 0) or 0) == 0, "re-parse stored something new"
        reparse_rates.append(int(stats["reparse/pages"]) / float(stats["elapsed_time_seconds"]))
        count, seconds = parse_alone(texts)
        alone_rates.append(count / seconds)
        count, seconds = read_and_parse(db)
        read_rates.append(count / seconds)
        log(f"  archive round {round_ + 1}/{rounds}: reparse {reparse_rates[-1]:.0f} pages/s, "
            f"parse alone {alone_rates[-1]:.0f} pages/s, read and parse {read_rates[-1]:.0f} pages/s")  # fmt: skip
    reparse_rate, alone_rate, read_rate = median(reparse_rates), median(alone_rates), median(read_rates)
    writer = writer_cost(db, workdir, (1, 100), max(rounds, 3))
    packed = compression([text.encode("utf-8") for _, text in texts], max(rounds, 3))
    (ng_us, ng_bytes), (std_us, std_bytes) = packed["zlib-ng"], packed["zlib"]
    share = ratio(reparse_rate, alone_rate)
    per_page = archive_bytes / responses if responses else None
    raw_per_page = fetched_bytes / responses if responses else None
    return [
        Row(
            "archive",
            "re-parse of the archive (read, parse, validate, dedupe, store), pages/s",
            reparse_rate,
            "pages/s",
            baseline=alone_rate,
            baseline_name="parse alone, same pages",
            ratio=share,
            target=f"≥ {TARGET}",
            status=verdict(share is not None and share >= TARGET),
            note=f"{len(texts)} pages, median of {rounds}",
        ),
        Row(
            "archive",
            "archive read and parse, nothing else (the re-parse's ceiling), pages/s",
            read_rate,
            "pages/s",
            baseline=alone_rate,
            baseline_name="parse alone, same pages",
            ratio=ratio(read_rate, alone_rate),
            note=f"the WARC file read and inflated, bodies decoded; median of {rounds}",
        ),
        Row(
            "archive",
            "archive bytes per page (WARC, gzip per record, request records included)",
            per_page,
            "B",
            baseline=raw_per_page,
            baseline_name="bytes downloaded per page",
            ratio=ratio(per_page, raw_per_page),
            note=f"{responses} responses; revisits {crawled.get('archive/revisits', 0)}",
        ),
        Row(
            "archive",
            "archive writer, responses handed over 100 at a time (the store's groups), CPU µs per response",
            writer[100],
            "µs",
            baseline=writer[1],
            baseline_name="one at a time",
            ratio=ratio(writer[100], writer[1]),
            note=f"records, gzip, payload index; {len(texts)} pages, median of {max(rounds, 3)}",
        ),
        Row(
            "archive",
            "gzip member of a page (the archive's zlib-ng), CPU µs per page",
            ng_us,
            "µs",
            baseline=std_us,
            baseline_name="the standard library's zlib, same level",
            ratio=ratio(ng_us, std_us),
            note=f"bytes {ng_bytes / std_bytes:.3f}× zlib's; {len(texts)} page bodies, median of {max(rounds, 3)}",
        ),
    ]
