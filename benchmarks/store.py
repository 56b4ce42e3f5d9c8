"""Store: generated articles (with their search hits and sources) through the real pipelines
(Validate → Dedupe → batched Store) against the tutorial pipeline (one ORM add + commit per
item), each into a fresh database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.engine import make_url

from benchmarks.common import (
    POSTGRES_ADMIN_URL,
    Row,
    article_records,
    items_for,
    median,
    postgres_database,
    postgres_unavailable,
    prepared_database,
    ratio,
    run_real_pipelines,
    sqlite_url,
    startup_frozen,
    table_count,
    verdict,
)
from fx168.items import ArticleItem, SearchHitItem, SourceItem
from fx168.site import SITE_TZ
from storage.models import Article, SearchHit, Source

TARGETS = {"sqlite": 20_000.0, "postgresql": 10_000.0}
TARGET_FACTOR = 10.0


class NaivePipeline:
    """The usual tutorial pipeline: one session, and per item a lookup, an ORM add and a commit."""

    def __init__(self, database_url: str) -> None:
        self.database = prepared_database(database_url)
        self.session = self.database.session()

    def source(self, name: str, logo_url: str | None = None) -> Source:
        source = self.session.scalars(select(Source).where(Source.name == name)).first()
        if source is None:
            source = Source(name=name, logo_url=logo_url)
            self.session.add(source)
            self.session.commit()
        return source

    def process_item(self, item: Any) -> Any:
        if isinstance(item, SourceItem):
            self.source(item.name, item.logo_url)
        elif isinstance(item, SearchHitItem):
            self.session.add(
                SearchHit(
                    keyword=item.keyword,
                    tab=item.tab,
                    page=item.page,
                    rank=item.rank,
                    article_url=item.url,
                    title=item.title,
                    snippet=item.snippet,
                    highlights=item.highlights,
                    source_name=item.source,
                    listed_on=date.fromisoformat(item.date),
                )
            )
            self.session.commit()
        elif isinstance(item, ArticleItem):
            payload = json.dumps([item.title, item.author, item.body, item.tags], ensure_ascii=False)
            self.session.add(
                Article(
                    url=item.url,
                    title=item.title,
                    source=self.source(item.source),
                    author=item.author,
                    published_at=datetime.strptime(item.published, "%Y-%m-%d %H:%M").replace(tzinfo=SITE_TZ),
                    published_text=item.published,
                    body="\n\n".join(item.body),
                    tags=item.tags,
                    content_hash=hashlib.sha256(payload.encode()).hexdigest(),
                )
            )
            self.session.commit()
        return item

    def close_spider(self) -> None:
        self.session.close()
        self.database.dispose()


def run_naive(database_url: str, items: list[Any]) -> float:
    pipeline = NaivePipeline(database_url)
    with startup_frozen():  # as for the real pipelines
        started = time.perf_counter()
        for item in items:
            pipeline.process_item(item)
        pipeline.close_spider()
        return time.perf_counter() - started


class WriteRecorder:
    """The statements and driver-ready parameters every engine sends, in order, with each
    commit marked: what the real pipelines ask of the database, to replay without them."""

    WRITES = ("INSERT", "SELECT articles.", "SELECT sources.", "SELECT frontier.", "BEGIN IMMEDIATE")

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, Any, bool]]] = [[]]

    def __enter__(self) -> WriteRecorder:
        event.listen(Engine, "before_cursor_execute", self.statement)
        event.listen(Engine, "commit", self.commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(Engine, "before_cursor_execute", self.statement)
        event.remove(Engine, "commit", self.commit)
        self.batches = [batch for batch in self.batches if any(not sql.startswith("BEGIN") for sql, _, _ in batch)]

    def statement(self, conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        if sql.startswith(self.WRITES) and "alembic" not in sql:  # not the migrations that build the schema
            self.batches[-1].append((sql, parameters, executemany))

    def commit(self, conn: Any) -> None:
        self.batches.append([])


def replay(database_url: str, batches: list[list[tuple[str, Any, bool]]]) -> float:
    """Seconds to send the recorded statements straight through the driver, one transaction
    per recorded batch, into a fresh database of the project's schema."""
    prepared_database(database_url).dispose()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        assert url.database is not None, "the benchmark's SQLite databases are files"
        connection = sqlite3.connect(url.database, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as storage.db sets
            connection.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for batch in batches:
            for sql, parameters, many in batch:
                (connection.executemany if many else connection.execute)(sql, parameters)
            if connection.in_transaction:  # a batch that only read began none
                connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed
    import psycopg

    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as pg:
        started = time.perf_counter()
        for batch in batches:
            with pg.transaction(), pg.cursor() as cursor:
                for sql, parameters, many in batch:
                    (cursor.executemany if many else cursor.execute)(sql, parameters)
        return time.perf_counter() - started


def measure_floor(dialect: str, records: list[dict[str, Any]], fresh_url: Any, workdir: Path, log: Any) -> Row:
    """The database alone: what the real pipelines sent, replayed with no Python work around it."""
    articles = len(records)
    items = items_for(records)
    with fresh_url("record") as url, WriteRecorder() as recorder:
        run_real_pipelines(url, items, spool_dir=workdir / "spool")
    del items
    with fresh_url("replay") as url:
        elapsed = replay(url, recorder.batches)
        stored_ok = table_count(url, Article) == articles
    rate = articles / elapsed
    log(f"  store {dialect} database alone: {articles} articles in {elapsed:.2f} s = {rate:,.0f}/s")
    return Row(
        "store",
        f"{dialect} database alone",
        rate,
        "articles/s",
        target=f"(ceiling for the {TARGETS[dialect]:,.0f}/s target)",
        note=(
            f"the statements and values the real pipelines sent for {articles:,} articles, replayed through the "
            "driver in the same transactions with no Python work around them: the most any pipeline could do "
            "with this schema here" + ("" if stored_ok else "; NOT ALL STORED")
        ),
        extra={"stored_ok": stored_ok, "statements": sum(len(batch) for batch in recorder.batches)},
    )


def measure_without_fast_path(
    dialect: str, records: list[dict[str, Any]], fresh_url: Any, workdir: Path, log: Any, real: Row
) -> Row:
    """The real pipelines with ``storage.db.FAST_WRITES`` off (every write through session.execute):
    what the one fast path buys."""
    from storage import db

    articles = len(records)
    items = items_for(records)
    db.FAST_WRITES = False
    try:
        with fresh_url("slow") as url:
            os.sync()
            elapsed, _ = run_real_pipelines(url, items, spool_dir=workdir / "spool")
            stored_ok = table_count(url, Article) == articles
    finally:
        db.FAST_WRITES = True
    del items
    rate = articles / elapsed
    log(f"  store {dialect} without the fast path: {articles} articles in {elapsed:.2f} s = {rate:,.0f}/s")
    return Row(
        "store",
        f"{dialect} with the write fast path",
        real.value,
        "articles/s",
        baseline=rate,
        baseline_name="session.execute only",
        ratio=ratio(real.value, rate) if real.value else None,
        target="(what storage.db's one fast path buys)",
        note="the articles/s row above beside the same pipelines with storage.db.FAST_WRITES off: every "
        "executemany through session.execute" + ("" if stored_ok else "; NOT ALL STORED"),
        extra={"stored_ok": stored_ok, "slow_rate": rate},
    )


def measure(
    dialect: str,
    records: list[dict[str, Any]],
    naive_count: int,
    repeat: int,
    fresh_url: Any,
    workdir: Path,
    log: Any,
) -> Row:
    """fresh_url(label) is a context manager yielding a new empty database URL of this dialect."""
    articles = len(records)
    real_rates, naive_rates = [], []
    stored_ok = True
    for attempt in range(repeat):
        items = items_for(records)
        with fresh_url(f"real{attempt}") as url:
            os.sync()  # no writeback of earlier benchmarks' files during the timed run
            elapsed, stats = run_real_pipelines(url, items, spool_dir=workdir / "spool")
            stored = table_count(url, Article)
            stored_ok &= stored == articles and not stats.get("fxcrawl/store/failed_items")
        del items
        real_rates.append(articles / elapsed)
        log(f"  store {dialect} real: {articles} articles in {elapsed:.2f} s = {articles / elapsed:,.0f}/s")
        items = items_for(records[:naive_count])
        with fresh_url(f"naive{attempt}") as url:
            os.sync()
            elapsed = run_naive(url, items)
            stored_ok &= table_count(url, Article) == naive_count
        naive_rates.append(naive_count / elapsed)
        log(f"  store {dialect} naive: {naive_count} articles in {elapsed:.2f} s = {naive_count / elapsed:,.0f}/s")
    real, naive = median(real_rates), median(naive_rates)
    r = ratio(real, naive)
    ok = real >= TARGETS[dialect] and r is not None and r >= TARGET_FACTOR
    note = f"{articles:,} articles (+hits, sources) real; naive timed on the first {naive_count:,}"
    if not stored_ok:
        note += "; NOT ALL STORED (see JSON)"
    return Row(
        "store",
        f"{dialect} articles/s",
        real,
        "articles/s",
        baseline=naive,
        baseline_name="naive add+commit",
        ratio=r,
        target=f"≥ {TARGETS[dialect]:,.0f}/s and ≥ {TARGET_FACTOR:.0f}× naive",
        status=verdict(ok),
        note=note,
        extra={"real_rates": real_rates, "naive_rates": naive_rates, "stored_ok": stored_ok},
    )


def run(
    articles: int,
    naive_count: int,
    repeat: int,
    workdir: Path,
    postgres_url: str = POSTGRES_ADMIN_URL,
    log: Any = print,
) -> list[Row]:
    from contextlib import contextmanager

    records = article_records(articles)
    naive_count = min(naive_count, articles)

    @contextmanager
    def fresh_sqlite(label: str) -> Iterator[str]:
        path = workdir / f"store-{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield sqlite_url(path)

    @contextmanager
    def fresh_postgres(label: str) -> Iterator[str]:
        with postgres_database(postgres_url, prefix=f"fxcrawl_bench_{label}") as url:
            yield url

    sqlite_real = measure("sqlite", records, naive_count, repeat, fresh_sqlite, workdir, log)
    rows = [
        sqlite_real,
        measure_floor("sqlite", records, fresh_sqlite, workdir, log),
        measure_without_fast_path("sqlite", records, fresh_sqlite, workdir, log, sqlite_real),
    ]
    why = postgres_unavailable(postgres_url)
    if why:
        rows.append(Row("store", "postgresql articles/s", None, "articles/s", status="SKIP", note=why))
    else:
        postgres_real = measure("postgresql", records, naive_count, repeat, fresh_postgres, workdir, log)
        rows.append(postgres_real)
        rows.append(measure_floor("postgresql", records, fresh_postgres, workdir, log))
        # no fast-path row: storage.db takes it on SQLite only (on PostgreSQL it measured 0.98-1.0x)
    return rows
