"""Full-text search on a large store: ``python -m benchmarks.search_large --articles 1000000``.

Fills a fresh SQLite file and a fresh PostgreSQL database with N synthetic articles of
realistic Chinese lengths (lognormal around 900 characters, 150–6,000), builds the index the way
the store does (storage.fulltext, batch by batch), then times a fixed query set through
``fulltext.search`` (newest first, top 20, with snippets) beside a ``LIKE '%…%'`` scan of the
same store in the same run, relevance-ranked top 20, the web view's list and article reads, and
the index's size beside the articles table's. `make bench-large` runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from tabulate import tabulate

from benchmarks.common import (
    POSTGRES_ADMIN_URL,
    Row,
    article_records,
    items_for,
    postgres_database,
    run_real_pipelines,
    sqlite_url,
    verdict,
)
from storage import browse, fulltext
from storage.db import Database
from storage.models import Article, Source
from storage.progress import Progress, RateMeter, format_progress
from storage.queries import article_json

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "search-large.json"
SOURCES = ("金融界", "金色财经", "格上财富", "证券之星", "财联社", "证券时报", "每日经济新闻")
#: Query classes: words injected into this share of the articles (besides chance occurrences).
CLASSES: dict[str, tuple[tuple[str, float], ...]] = {
    "common 2-char": (("现代", 0.30), ("市场", 0.25), ("金融", 0.20)),
    "rare 2-char": (("熔断", 0.0002), ("爆仓", 0.0002), ("停牌", 0.0002)),
    "4-char word": (("数字货币", 0.01), ("人民币汇率", 0.01), ("货币政策", 0.01)),
    "AND of two words": (("央行 汇率", 0.0), ("降息 美联储", 0.0), ("基金 债券", 0.0)),
    "Latin word": (("GDP", 0.03), ("CPI", 0.03), ("ETF", 0.03)),
}
INJECTED = {"央行": 0.08, "汇率": 0.08, "降息": 0.05, "美联储": 0.05, "基金": 0.1, "债券": 0.1}
PUNCTUATION = "，。、：；"


class TextMaker:
    """Zipf-distributed words of 1–4 common Han characters, with punctuation and some numbers."""

    def __init__(self, seed: int = 17) -> None:
        self.rng = random.Random(seed)
        chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
        words = ["".join(self.rng.choices(chars, k=self.rng.choice((1, 2, 2, 2, 3, 4)))) for _ in range(30_000)]
        weights = [1 / (rank + 1) for rank in range(len(words))]
        self.words = words
        self.cum = list(_accumulate(weights))
        injected = [(w, share) for queries in CLASSES.values() for q, share in queries for w in q.split() if share]
        self.injected = injected + list(INJECTED.items())

    def body(self) -> str:
        rng = self.rng
        length = int(min(6000, max(150, rng.lognormvariate(math.log(900), 0.6))))
        words = rng.choices(self.words, cum_weights=self.cum, k=max(1, length // 2))
        for i in range(0, len(words), rng.randint(8, 20)):
            words[i] += rng.choice(PUNCTUATION)
        for word, share in self.injected:
            if rng.random() < share:
                words.insert(rng.randrange(len(words)), word)
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f" {rng.randint(1, 2030)} ")
        return "".join(words)

    def title(self) -> str:
        return "".join(self.rng.choices(self.words, cum_weights=self.cum, k=self.rng.randint(4, 9)))


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def article_rows(maker: TextMaker, start: int, stop: int, now: datetime) -> list[dict[str, Any]]:
    """Articles start..stop-1: newest at 2026-11-27, one every three minutes or so."""
    newest = datetime(2026, 11, 27, 12, tzinfo=UTC)
    rows = []
    for i in range(start, stop):
        body = maker.body()
        published = newest - timedelta(minutes=3 * i + maker.rng.randrange(0, 3))
        rows.append(
            {
                "id": i + 1,
                "url": f"https://www.fx168news.com/article/{10_000_000 + i}",
                "title": maker.title(),
                "source_id": 1 + i % len(SOURCES),
                "author": None,
                "published_at": published,
                "published_unknown": False,
                "published_text": published.strftime("%Y-%m-%d %H:%M"),
                "body": body,
                "tags": [],
                "content_hash": hashlib.sha256(body.encode()).hexdigest(),
                "first_seen_at": now,
                "updated_at": now,
                "revision": 1,
            }
        )
    return rows


def fill(database: Database, n: int, batch: int = 5000, progress: Callable[[str], None] = print) -> dict[str, float]:
    """N article rows, then the index built over them as the migration builds it for an
    existing store (fulltext.bulk_build); returns timings in seconds."""
    maker = TextMaker()
    now = datetime.now(UTC)
    started = time.perf_counter()
    meter = RateMeter()
    with database.engine.begin() as connection:
        connection.execute(
            insert(Source),
            [{"id": i + 1, "name": name, "first_seen_at": now, "last_seen_at": now} for i, name in enumerate(SOURCES)],
        )
    for start in range(0, n, batch):
        rows = article_rows(maker, start, min(n, start + batch), now)
        with database.engine.begin() as connection:
            connection.execute(insert(Article), rows)
        done = start + len(rows)
        rate = meter.update(time.perf_counter(), done)
        if (start // batch) % 20 == 0 or done == n:
            elapsed = time.perf_counter() - started
            line = Progress(done, n, new=done, elapsed=elapsed, rate=rate, unit="articles", label="generating")
            progress(f"  {format_progress(line)}")
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    with database.engine.begin() as connection:
        if database.dialect != "sqlite":
            connection.exec_driver_sql("SELECT setval('articles_id_seq', (SELECT max(id) FROM articles))")
        fulltext.bulk_build(connection)
    index_s = time.perf_counter() - started
    progress(f"  index built in {index_s:.0f} s")
    started = time.perf_counter()
    if database.dialect == "sqlite":
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    return {"rows": rows_s, "index": index_s, "analyze": time.perf_counter() - started}


def upkeep(database: Database, n: int, extra: int = 2000) -> tuple[float, float]:
    """µs per article of writing ``extra`` new articles' rows and of the store's index call for
    them (fulltext.index_articles), into the store already holding ``n``."""
    rows = article_rows(TextMaker(seed=99), n, n + extra, datetime.now(UTC))
    with database.session() as session, session.begin():
        started = time.perf_counter()
        session.execute(insert(Article), rows)
        rows_s = time.perf_counter() - started
        started = time.perf_counter()
        fulltext.index_articles(session, rows)
        index_s = time.perf_counter() - started
        if database.dialect != "sqlite":  # the rows came with their ids: the sequence must follow
            session.execute(text("SELECT setval('articles_id_seq', (SELECT max(id) FROM articles))"))
    return rows_s / extra * 1e6, index_s / extra * 1e6


#: Articles written through the real pipelines to price the store's work per article at a size.
STORE_SAMPLE = 2000
SMALL_STORE = 20_000


@contextmanager
def fresh_store(dialect: str, sqlite_path: Path, postgres: str) -> Iterator[tuple[Database, str]]:
    """A new empty store (a SQLite file, or a PostgreSQL database dropped afterwards) and its URL."""
    with ExitStack() as stack:
        if dialect == "sqlite":
            sqlite_path.unlink(missing_ok=True)
            url = sqlite_url(sqlite_path)
        else:
            url = stack.enter_context(postgres_database(postgres))
        database = Database(url).prepare()
        stack.callback(database.dispose)  # before the database is dropped
        yield database, url


def store_cost(url: str, workdir: Path) -> float:
    """µs per article of writing STORE_SAMPLE fresh generated articles (with their search hits and
    sources) through the crawl's own Validate → Dedupe → Store pipelines, index upkeep included,
    into this store as it stands."""
    records = article_records(STORE_SAMPLE)
    elapsed, stats = run_real_pipelines(url, items_for(records), spool_dir=workdir / "spool")
    stored = stats.get("fxcrawl/store/article/new", 0)
    if stored != STORE_SAMPLE or stats.get("fxcrawl/store/failed_items"):
        raise RuntimeError(f"store cost: {stored} of {STORE_SAMPLE} articles stored ({stats})")
    return elapsed / STORE_SAMPLE * 1e6


def latencies(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def scan(database: Database, query: str) -> Callable[[], Any]:
    """The baseline: every term as LIKE '%…%' on title or body, newest first, top 20."""
    terms = query.split()
    where = " AND ".join(f"(title LIKE :t{i} OR body LIKE :t{i})" for i in range(len(terms)))
    sql = text(f"SELECT id FROM articles WHERE {where} ORDER BY published_at DESC NULLS LAST, id DESC LIMIT 20")
    params = {f"t{i}": f"%{term}%" for i, term in enumerate(terms)}

    def run() -> Any:
        with database.engine.connect() as connection:
            return connection.execute(sql, params).all()

    return run


def measure(database: Database, label: str, n: int, args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    aim = args.aim_ms if database.dialect == "sqlite" else None
    for name, queries in CLASSES.items():
        found, ranked, scans = [], [], []
        hits = []
        for query, _share in queries:

            def search(query: str = query, rank: bool = False) -> Any:
                with database.session() as session:
                    return fulltext.search(session, query, limit=20, rank=rank)

            found += latencies(search, args.repeat)
            ranked += latencies(partial(search, query, rank=True), max(3, args.repeat // 3))
            hits.append(len(search().results))
        scanned = args.scans == "all" or name.startswith("rare")
        if not scanned:  # (--scans rare: a scan of a million articles takes a minute on PostgreSQL)
            rows.append(_newest_first_row(label, name, queries, found, None, None, aim, args))
            rows.append(_ranked_row(label, name, found, ranked))
            say(f"  {label} {name}: p95 {p95(found):.2f} ms, ranked p95 {p95(ranked):.1f} ms")
            continue
        scans += latencies(scan(database, queries[0][0]), args.scan_repeat)
        with database.engine.connect() as connection:
            first = queries[0][0].split()
            matching = connection.execute(
                text(
                    "SELECT count(*) FROM articles WHERE "
                    + " AND ".join(f"(title LIKE :t{i} OR body LIKE :t{i})" for i in range(len(first)))
                ),
                {f"t{i}": f"%{t}%" for i, t in enumerate(first)},
            ).scalar_one()
        scan_median = statistics.median(scans)
        rows.append(_newest_first_row(label, name, queries, found, scan_median, matching, aim, args, n))
        rows.append(_ranked_row(label, name, found, ranked))
        say(f"  {label} {name}: p95 {p95(found):.2f} ms, scan {scan_median:.1f} ms, ranked p95 {p95(ranked):.1f} ms")
    # the web view's reads
    with database.session() as session:
        cursor = None
        for _ in range(50):
            cursor = browse.articles(session, limit=20, cursor=cursor).next_cursor
    deep = latencies(
        lambda: _with_session(database, lambda s: browse.articles(s, limit=20, cursor=cursor)), args.repeat
    )
    by_offset = (
        select(Article, Source.name)
        .join(Source, Article.source_id == Source.id)
        .order_by(Article.published_at.desc(), Article.id.desc())
        .offset(1000)
        .limit(20)
    )
    offset = latencies(
        lambda: _with_session(database, lambda s: [article_json(a, n) for a, n in s.execute(by_offset)]), args.repeat
    )
    rng = random.Random(5)
    article = latencies(lambda: _with_session(database, lambda s: browse.article(s, rng.randint(1, n))), args.repeat)
    first_page = latencies(lambda: _with_session(database, lambda s: browse.articles(s, limit=20)), args.repeat)
    rows.append(
        Row(
            "search-large",
            f"{label}: web list page 51 (keyset cursor), p95",
            round(p95(deep), 2),
            "ms",
            round(p95(offset), 2),
            "the same page by OFFSET 1000 (same columns), p95",
            round(p95(offset) / p95(deep), 1),
            "",
            "",
            f"first page p95 {p95(first_page):.2f} ms",
        )
    )
    rows.append(
        Row(
            "search-large",
            f"{label}: web article page read (random id), p95",
            round(p95(article), 2),
            "ms",
            note=f"median {statistics.median(article):.2f} ms",
        )
    )
    with database.engine.connect() as connection:
        sizes = fulltext.index_size(connection)
    rows.append(
        Row(
            "search-large",
            f"{label}: index size",
            round(sizes["index"] / 2**20, 1),
            "MiB",
            round(sizes["articles"] / 2**20, 1),
            "articles table with its indexes (MiB)",
            round(sizes["index"] / sizes["articles"], 2),
        )
    )
    return rows


def _newest_first_row(
    label: str,
    name: str,
    queries: tuple[tuple[str, float], ...],
    found: list[float],
    scan_median: float | None,
    matching: int | None,
    aim: float | None,
    args: argparse.Namespace,
    n: int = 0,
) -> Row:
    rare = name.startswith("rare")
    faster = scan_median / p95(found) if scan_median is not None else None
    return Row(
        "search-large",
        f"{label}: newest-first top 20, {name} ({', '.join(q for q, _ in queries)}), p95",
        round(p95(found), 2),
        "ms",
        round(scan_median, 1) if scan_median is not None else None,
        f"LIKE scan of {queries[0][0]!r} (median of {args.scan_repeat})" if scan_median is not None else "",
        round(faster, 1) if faster is not None else None,
        (f"p95 ≤ {aim} ms" if aim else "same aim") + (", ≥ 50× the scan" if rare else ""),
        verdict((p95(found) <= (aim or 20)) and (not rare or (faster or 0) >= 50)),
        f"median {statistics.median(found):.2f} ms over {len(found)} queries"
        + (f"; {queries[0][0]!r} is in {matching:,} of {n:,} articles" if matching is not None else ""),
    )


def _ranked_row(label: str, name: str, found: list[float], ranked: list[float]) -> Row:
    return Row(
        "search-large",
        f"{label}: relevance top 20 of the newest {fulltext.RANK_CANDIDATES:,} matches, {name}, p95",
        round(p95(ranked), 2),
        "ms",
        round(p95(found), 2),
        "newest-first p95",
        round(p95(ranked) / p95(found), 1),
        "p95 ≤ 300 ms",
        verdict(p95(ranked) <= 300),
        f"median {statistics.median(ranked):.2f} ms",
    )


def _with_session(database: Database, fn: Callable[[Any], Any]) -> Any:
    with database.session() as session:
        return fn(session)


def build(database: Database, label: str, n: int, say: Callable[[str], None]) -> Row:
    say(f"{label}: filling {n:,} articles")
    started = time.perf_counter()
    timings = fill(database, n, progress=say)
    total = time.perf_counter() - started
    return Row(
        "search-large",
        f"{label}: index build over {n:,} stored articles (migration 0005's bulk_build)",
        round(timings["index"], 1),
        "s",
        round(timings["rows"], 1),
        "generating and inserting the article rows (s)",
        round(timings["index"] / timings["rows"], 2),
        note=f"{timings['index'] / n * 1e6:.0f} µs per article; ANALYZE "
        f"{timings['analyze']:.0f} s; whole build {total:.0f} s",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_large", description=__doc__)
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each query")
    parser.add_argument("--scan-repeat", type=int, default=3, help="timed runs of each LIKE scan")
    parser.add_argument("--aim-ms", type=float, default=20.0)
    parser.add_argument("--postgres", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temporary directory)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--scans", choices=("all", "rare"), default="all", help="which query classes get a LIKE scan beside them"
    )
    parser.add_argument(
        "--store",
        help="measure this existing large store (a database URL) instead of building one"
        " (4,000 generated articles are added to it)",
    )
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fxcrawl-search-large-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    dialects = args.dialects.split(",")
    if args.store:
        dialects = ["sqlite" if args.store.startswith("sqlite") else "postgresql"]
    for dialect in dialects:
        label = "SQLite" if dialect == "sqlite" else "PostgreSQL"
        with ExitStack() as stack:
            if args.store:
                database, url = Database(args.store), args.store
                stack.callback(database.dispose)
                with database.session() as session:
                    args.articles = session.scalar(select(func.count(Article.id))) or 0
                say(f"{label}: measuring the existing store of {args.articles:,} articles")
            else:
                database, url = stack.enter_context(
                    fresh_store(dialect, workdir / f"search-{args.articles}.db", args.postgres)
                )
                rows.append(build(database, label, args.articles, say))
            rows += measure(database, label, args.articles, args, say)
            row_us, index_us = upkeep(database, args.articles)
            rows.append(
                Row(
                    "search-large",
                    f"{label}: the store's index call per new article, {args.articles:,} stored",
                    round(index_us, 1),
                    "µs",
                    round(row_us, 1),
                    "inserting the same articles' rows (µs per article)",
                    round(index_us / row_us, 1),
                    note="2,000 new articles in one transaction",
                )
            )
            large_us = store_cost(url, workdir)
        say(f"{label}: the same articles into a store of {SMALL_STORE:,}")
        with fresh_store(dialect, workdir / f"search-{SMALL_STORE}.db", args.postgres) as (database, url):
            fill(database, SMALL_STORE, progress=lambda _: None)
            small_us = store_cost(url, workdir)
        rows.append(
            Row(
                "search-large",
                f"{label}: the store's cost per article (real pipelines, index upkeep included), "
                f"{args.articles:,} stored",
                round(large_us, 1),
                "µs",
                round(small_us, 1),
                f"the same {STORE_SAMPLE:,} articles into a store of {SMALL_STORE:,} (µs per article)",
                round(large_us / small_us, 2),
                note=f"{1e6 / large_us:,.0f} articles/s at {args.articles:,}, "
                f"{1e6 / small_us:,.0f}/s at {SMALL_STORE:,}",
            )
        )
        say(f"  {label} store cost: {large_us:.0f} µs/article at {args.articles:,}, {small_us:.0f} at {SMALL_STORE:,}")
    table = [
        [r.figure, r.value, r.unit, r.baseline, r.baseline_name, r.ratio, r.target, r.status, r.note] for r in rows
    ]
    print(
        tabulate(table, headers=["figure", "value", "unit", "baseline", "baseline is", "ratio", "target", "", "note"])
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"articles": args.articles, "rows": [r.as_dict() for r in rows]}, ensure_ascii=False, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
