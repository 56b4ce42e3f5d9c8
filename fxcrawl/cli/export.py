"""`fxcrawl export`: every article with its body, as JSON lines or CSV, to a file or standard output."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.errors import UsageError

EXPORT_COLUMNS = ("id", "url", "title", "source", "published_at", "author", "tags", "body")


@click.command("export", cls=Command, help="export articles with their bodies (all, or those the filters keep)")
@params.db
@click.option(
    "--format",
    "fmt",
    type=params.Choice(["jsonl", "csv", "parquet"]),
    default="jsonl",
    help="JSON Lines, CSV, or Parquet (needs pyarrow: pip install 'fxcrawl[parquet]')",
)
@click.option("--out", type=params.PATH, help="file to write (default: standard output; Parquet needs a file)")
@click.option("--bom", is_flag=True, help="CSV: start with a UTF-8 byte order mark, so Excel reads the Chinese")
@params.source
@params.since()
@params.until
@click.option("--search", help="text in the title or body")
def export(
    db: str,
    fmt: str,
    out: Path | None,
    bom: bool,
    source: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
) -> int:
    from storage import queries

    if out is not None:
        check_out(out)
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet writes a file: give --out FILE.parquet")
        parquet_module()
    if bom and fmt != "csv":
        raise UsageError("--bom is for --format csv")
    start, end = when(since), when(until, end_of_day=True)
    database = open_database(db)  # before the file is opened: a missing database leaves no empty export
    with ExitStack() as stack:
        session = stack.enter_context(database.session())
        articles = queries.iter_articles(session, source=source, since=start, until=end, search=search)
        if fmt == "parquet":
            assert out is not None
            count = write_parquet(articles, out)
        else:
            stream: TextIO = (
                stack.enter_context(out.open("w", encoding="utf-8-sig" if bom else "utf-8", newline=""))
                if out
                else sys.stdout
            )
            if bom and not out:
                stream.write("\ufeff")
            count = write_export(articles, fmt, stream)
    if out:
        print(f"exported {count} articles to {out}", file=sys.stderr)
    return 0


def parquet_module() -> Any:
    """pyarrow, or a one-line refusal naming how to install it (it is an optional extra)."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'fxcrawl[parquet]'") from None
    return pyarrow.parquet


#: Rows per Parquet row group (the export streams: it never holds the whole store).
PARQUET_BATCH = 5000


def write_parquet(articles: Iterable[dict[str, Any]], out: Path) -> int:
    """The export's columns as a typed Parquet table: tags a list of strings, times as text
    with their +08:00 offset (as the JSON has them)."""
    import pyarrow as pa

    parquet = parquet_module()
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("url", pa.string()),
            ("title", pa.string()),
            ("source", pa.string()),
            ("published_at", pa.string()),
            ("author", pa.string()),
            ("tags", pa.list_(pa.string())),
            ("body", pa.string()),
        ]
    )
    count = 0
    with parquet.ParquetWriter(str(out), schema) as writer:
        batch: list[dict[str, Any]] = []
        for article in articles:
            batch.append({column: article[column] for column in EXPORT_COLUMNS})
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count, batch = count + len(batch), []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def check_out(out: Path) -> None:
    """Refuse a file that cannot be written before anything is read: one line, not a traceback."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a file in it")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no folder {out.parent}")
    if out.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"--out {out} is read-only")
    if not out.exists() and not os.access(out.parent, os.W_OK):
        raise UsageError(f"--out {out}: the folder {out.parent} is read-only")


def write_export(articles: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for article in articles:
            writer.writerow({**article, "tags": ";".join(article["tags"])})
            count += 1
    else:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
            count += 1
    return count
