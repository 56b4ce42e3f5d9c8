"""Shared helpers: result rows, generated items, a crawler without an engine, throwaway databases."""

from __future__ import annotations

import inspect
import os
import resource
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fx168 import site
from fx168.items import ArticleItem, SearchHitItem, SourceItem
from replay.generator import GeneratedSite, search_hit

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

KEYWORD = "现代"
POSTGRES_ADMIN_URL = os.environ.get(
    "FXCRAWL_BENCH_POSTGRES_URL",
    os.environ.get("FXCRAWL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
REDIS_URL = (
    os.environ.get("FXCRAWL_BENCH_REDIS_URL") or os.environ.get("FXCRAWL_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
)


@dataclass
class Row:
    """One line of the report: a figure, its baseline measured in the same run, and the ratio."""

    benchmark: str
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    status: str = ""  # PASS / MISS / "" (no target) / SKIP
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's getrusage(RUSAGE_SELF).ru_maxrss survives execve: a fresh subprocess starts with its
    parent's high-water mark (a 300 MB parent makes every child report ≥ 300 MB). The kernel's
    VmHWM in /proc/self/status belongs to the new address space, so it is used where it exists.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return getrusage_maxrss_mb()


def getrusage_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- items ---------------------------------------------------------------------------------


def article_records(count: int, start: int = 0, keyword: str = KEYWORD) -> list[dict[str, Any]]:
    """Generated articles start … start+count-1, as the generator (and so the fixture server) has them."""
    generated = GeneratedSite(keyword=keyword, pages=(start + count) // 10 + 1)
    return [generated.article(index) for index in range(start, start + count)]


def items_for(records: list[dict[str, Any]], start: int = 0, keyword: str = KEYWORD) -> list[Any]:
    """Fresh items, in the order a crawl yields them for each result: the outlet's source (the
    first time the run meets it, as the spider does), the search hit, the article.

    Pipelines normalise items in place, so every measurement needs its own copies.
    """
    items: list[Any] = []
    sources_seen: set[tuple[str, str]] = set()
    for offset, record in enumerate(records):
        index = start + offset
        url = site.article_url(record["id"])
        hit = search_hit(record)
        logo = site.CANONICAL_BASE + hit["source_logo"]
        if (record["source"], logo) not in sources_seen:
            sources_seen.add((record["source"], logo))
            items.append(SourceItem(record["source"], logo))
        items.append(
            SearchHitItem(
                keyword=keyword,
                tab=site.ARTICLE_TAB,
                page=index // 10 + 1,
                rank=index % 10 + 1,
                url=url,
                title=record["title"],
                snippet=record["snippet"],
                highlights=[keyword] * record["snippet"].count(keyword),
                source=record["source"],
                source_logo=logo,
                date=hit["date"],
            )
        )
        items.append(
            ArticleItem(
                url=url,
                title=record["title"],
                source=record["source"],
                author=record["author"],
                published=record["published"],
                body=list(record["body"]),
                tags=list(record["tags"]),
                canonical_url=url,
            )
        )
    return items


# -- Scrapy --------------------------------------------------------------------------------


def make_crawler(**settings: object) -> Crawler:
    """A Scrapy crawler with the project's settings plus overrides (no engine, no network);
    the same recipe as tests/conftest.make_crawler."""
    from scrapy.utils.test import get_crawler

    from crawler import settings as project
    from crawler.spiders.search import SearchSpider

    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    values.pop("TWISTED_REACTOR", None)
    return get_crawler(SearchSpider, settings_dict={**values, **settings})


def call_hook(method: Callable[..., Any], *args: Any, spider: Any = None) -> Any:
    """Call a pipeline hook the way Scrapy does, with or without the (deprecated) spider argument."""
    try:
        wanted = len(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        wanted = len(args)
    return method(*args, spider) if wanted > len(args) else method(*args)


def run_real_pipelines(
    database_url: str, items: list[Any], spool_dir: os.PathLike[str] | str | None = None, **settings: object
) -> tuple[float, dict[str, Any]]:
    """Validate → Dedupe → Store, built from ITEM_PIPELINES as the crawl builds them, with
    open_spider / process_item / close_spider called as Scrapy calls them; returns (seconds, stats).

    Building the crawler, the pipelines and the schema, and open_spider, are setup and not
    timed; the clock runs from the first process_item to the end of the last close_spider
    (the last flush).
    """
    from scrapy.exceptions import DropItem
    from scrapy.utils.misc import build_from_crawler, load_object

    from pipelines.database import database_for

    if spool_dir is not None:
        settings.setdefault("FXCRAWL_SPOOL_DIR", str(spool_dir))
    crawler = make_crawler(FXCRAWL_DATABASE_URL=database_url, LOG_LEVEL="WARNING", **settings)
    spider = crawler.spidercls.from_crawler(crawler)
    order = crawler.settings.getwithbase("ITEM_PIPELINES")
    pipelines = [
        build_from_crawler(load_object(path), crawler) for path, _ in sorted(order.items(), key=lambda kv: kv[1])
    ]
    for pipeline in pipelines:
        if hasattr(pipeline, "open_spider"):
            call_hook(pipeline.open_spider, spider=spider)
    steps = [pipeline.process_item for pipeline in pipelines]
    takes_spider = [len(inspect.signature(step).parameters) > 1 for step in steps]
    with startup_frozen():
        started = time.perf_counter()
        for item in items:
            try:
                for step, with_spider in zip(steps, takes_spider, strict=True):
                    item = step(item, spider) if with_spider else step(item)
            except DropItem:
                continue
        for pipeline in pipelines:
            if hasattr(pipeline, "close_spider"):
                call_hook(pipeline.close_spider, spider=spider)
        elapsed = time.perf_counter() - started
    database_for(crawler).dispose()
    assert crawler.stats is not None
    return elapsed, dict(crawler.stats.get_stats())


@contextmanager
def startup_frozen() -> Iterator[None]:
    """What a crawl does when its engine starts (crawler.memory.FreezeStartupObjects): what exists
    before the clock starts, the prepared input items among it, is frozen out of the garbage
    collector's walks while the clock runs. A crawl's items are made one response at a time and
    are never all alive at once; here they are, and every full collection would walk them all."""
    try:
        from crawler.memory import freeze_startup_objects
    except ImportError:  # older trees: no freeze
        yield
        return
    import gc

    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()


def prepared_database(database_url: str) -> Any:
    """A storage.db.Database with the project's schema, built the way the crawl builds it."""
    from storage.db import Database

    database = Database(database_url)
    if hasattr(database, "prepare"):
        database.prepare()
    else:  # older trees
        database.create_schema()  # type: ignore[attr-defined]  # an older commit's Database, benchmarked
    return database


# -- databases -----------------------------------------------------------------------------


def postgres_unavailable(admin_url: str = POSTGRES_ADMIN_URL) -> str | None:
    """None if PostgreSQL answers at admin_url, else why not."""
    try:
        import psycopg

        with psycopg.connect(_libpq(admin_url), connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means: not available here
        return f"PostgreSQL not reachable at {admin_url}: {exc}"


@contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL, prefix: str = "fxcrawl_bench") -> Iterator[str]:
    """A fresh PostgreSQL database for one measurement, dropped afterwards; yields its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlite_url(path: os.PathLike[str] | str) -> str:
    return f"sqlite:///{path}"


def table_count(database_url: str, model: Any) -> int:
    from sqlalchemy import func, select

    from storage.db import Database

    database = Database(database_url)
    try:
        with database.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        database.dispose()
