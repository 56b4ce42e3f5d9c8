"""One crawl of the generated site, in its own process (Twisted's reactor cannot restart).

    python -m benchmarks.e2e_worker KIND BASE_URL DB_FILE PAGES [--profile OUT.prof] [--set NAME=JSON]

KIND: bare, parsers, full, unarchived or threaded.

``bare``: a plain Scrapy spider that requests the same URLs as the real crawl (listing pages
1..PAGES following 下一页, and each result's article) and keeps nothing. ``parsers``: the real
search spider and its parsers, yielding every item into no pipeline, with no fxcrawl middleware
or extension and no database: what the full crawl would cost if storing were free. ``full``: the
real fxcrawl crawl (``fxcrawl.run.run_crawl``) into a fresh SQLite file; ``unarchived`` the
same with the WARC archive off, ``threaded`` with the archive written on the store's writer
thread instead of its child process. All run on the
project's Scrapy settings with REPLAY_OVERRIDES; bare and parsers without any fxcrawl component
(pipelines, extensions, middlewares), so they never open a database.
Prints one JSON line: elapsed seconds, responses, items stored, CPU time, peak RSS and a
digest of the URLs fetched (equal digests: the crawls fetched the same URLs).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings

from benchmarks.common import peak_rss_mb
from crawler import settings as project
from fx168 import site
from fxcrawl.run import project_settings_with, run_crawl

#: The result links and the 下一页 link of a listing page, found in the raw bytes.
RESULT_LINK = re.compile(rb'<h3 class="item-title"><a href="([^"]+)"')
NEXT_LINK = re.compile(rb'<a class="next" href="([^"]+)"')


class UrlRecorder:
    """An extension that remembers the path?query of every response, to compare the two crawls."""

    urls: ClassVar[list[str]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> UrlRecorder:
        recorder = cls()
        crawler.signals.connect(recorder.response_received, signal=signals.response_received)
        return recorder

    def response_received(self, response: Any, **_: Any) -> None:
        parts = urlsplit(response.url)
        UrlRecorder.urls.append(f"{parts.path}?{parts.query}")


class BareSpider(scrapy.Spider):
    """Fetch what the search spider fetches; find links with two regular expressions, keep nothing."""

    name = "bare"

    def __init__(self, base_url: str, pages: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url
        self.pages = int(pages)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(site.search_url("现代", 1, site.ARTICLE_TAB, self.base_url), callback=self.parse_listing)

    def parse_listing(self, response: scrapy.http.Response) -> Iterator[scrapy.Request]:
        body = response.body
        for href in RESULT_LINK.findall(body):
            yield response.follow(html.unescape(href.decode()), callback=self.parse_article)
        nxt = NEXT_LINK.search(body)
        query = site.parse_search_url(response.url)
        if nxt and query is not None and query.page < self.pages:
            yield response.follow(html.unescape(nxt.group(1).decode()), callback=self.parse_listing)

    def parse_article(self, response: scrapy.http.Response) -> None:
        return None


def with_recorder(extensions: dict[str, int]) -> dict[str, int]:
    return {**extensions, f"{__name__}.UrlRecorder": 900}


#: Project settings that plug fxcrawl's own code into Scrapy; the bare crawl leaves them out.
FXCRAWL_COMPONENTS = frozenset(
    {
        "ITEM_PIPELINES",
        "EXTENSIONS",
        "SPIDER_MIDDLEWARES",
        "DOWNLOADER_MIDDLEWARES",
        "SPIDER_MODULES",
        "NEWSPIDER_MODULE",
        "FEEDS",
        "LOG_LEVEL",
        "LOG_FORMATTER",
    }
)


def bare_settings() -> Settings:
    """Scrapy's defaults, the project's Scrapy settings (robots.txt, user agent, timeouts, size
    caps, retries …) and REPLAY_OVERRIDES, without any fxcrawl component or FXCRAWL_ setting."""
    from scrapy.settings import default_settings

    scrapy_names = {name for name in dir(default_settings) if name.isupper()}
    chosen = {
        name: getattr(project, name)
        for name in dir(project)
        if name.isupper() and name in scrapy_names and name not in FXCRAWL_COMPONENTS
    }
    settings = Settings()
    settings.setdict(chosen, priority="project")
    settings.setdict(project.REPLAY_OVERRIDES, priority="cmdline")
    settings.setdict({"LOG_LEVEL": "WARNING", "EXTENSIONS": with_recorder({})}, priority="cmdline")
    return settings


def crawl_bare(base_url: str, pages: int) -> dict[str, Any]:
    process = CrawlerProcess(bare_settings())
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, base_url=base_url, pages=pages)
    process.start()
    assert crawler.stats is not None
    return dict(crawler.stats.get_stats())


def crawl_parsers(base_url: str, pages: int) -> dict[str, Any]:
    from crawler.spiders.search import SearchSpider

    settings = bare_settings()
    settings.set("FXCRAWL_BASE_URL", base_url, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SearchSpider)
    process.crawl(crawler, keyword="现代", pages=f"1-{pages}")
    process.start()
    assert crawler.stats is not None
    return dict(crawler.stats.get_stats())


def crawl_full(base_url: str, db_file: str, pages: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = project_settings_with(
        {
            "FXCRAWL_BASE_URL": base_url,
            "FXCRAWL_DATABASE_URL": f"sqlite:///{db_file}",
            "FXCRAWL_SPOOL_DIR": str(Path(db_file).parent / "spool"),
            "LOG_LEVEL": "WARNING",
            "EXTENSIONS": with_recorder(project.EXTENSIONS),
            **(extra or {}),
        },
        replay=True,
    )
    return run_crawl("search", settings, keyword="现代", pages=f"1-{pages}").stats


def stored(db_file: str) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("articles", "search_hits")
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e_worker")
    parser.add_argument("kind", choices=["bare", "parsers", "full", "unarchived", "threaded"])
    parser.add_argument("base_url")
    parser.add_argument("db_file")
    parser.add_argument("pages", type=int)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the crawl here")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a crawl of fxcrawl's: an extra setting, e.g. 'SPIDER_MIDDLEWARES={}' (what-if runs; repeatable)",
    )
    args = parser.parse_args(argv)

    extra = {}
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        extra[name.strip()] = json.loads(value)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu_before = time.process_time()
    started = time.perf_counter()
    if args.kind == "bare":
        stats = crawl_bare(args.base_url, args.pages)
    elif args.kind == "parsers":
        stats = crawl_parsers(args.base_url, args.pages)
    else:  # full; without the WARC archive (what keeping the pages costs); the archive not in a child process
        Path(args.db_file).unlink(missing_ok=True)
        if args.kind == "unarchived":
            extra.setdefault("FXCRAWL_ARCHIVE_ENABLED", False)
        if args.kind == "threaded":
            extra.setdefault("FXCRAWL_ARCHIVE_PROCESS", False)
        stats = crawl_full(args.base_url, args.db_file, args.pages, extra)
    elapsed = time.perf_counter() - started
    # the archive's child process works for the crawl too (it is no child of ours to be counted in rusage)
    cpu = time.process_time() - cpu_before + float(stats.get("archive/child_cpu_seconds") or 0.0)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))

    urls = sorted(UrlRecorder.urls)
    result = {
        "kind": args.kind,
        "elapsed": elapsed,
        "cpu": cpu,
        "scrapy_elapsed": float(stats.get("elapsed_time_seconds") or 0.0),
        "responses": int(stats.get("response_received_count", 0)),
        "finish_reason": stats.get("finish_reason"),
        "errors": int(stats.get("log_count/ERROR", 0)),
        "url_digest": hashlib.sha256("\n".join(urls).encode()).hexdigest()[:16],
        "urls": len(urls),
        "peak_rss_mb": peak_rss_mb(),
        "stored": stored(args.db_file) if args.kind in ("full", "unarchived", "threaded") else {},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
