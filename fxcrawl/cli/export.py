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
from fxcrawl.cli.database import open_database
from fxcrawl.cli.errors import UsageError

EXPORT_COLUMNS = ("id", "url", "title", "source", "published_at", "author", "tags", "body")


@click.command("export", cls=Command, help="export every article with its body")
@params.db
@click.option("--format", "fmt", type=params.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--out", type=params.PATH, help="file to write (default: standard output)")
def export(db: str, fmt: str, out: Path | None) -> int:
    from storage import queries

    if out is not None:
        check_out(out)
    database = open_database(db)  # before the file is opened: a missing database leaves no empty export
    with ExitStack() as stack:
        stream: TextIO = stack.enter_context(out.open("w", encoding="utf-8", newline="")) if out else sys.stdout
        session = stack.enter_context(database.session())
        count = write_export(queries.iter_articles(session), fmt, stream)
    if out:
        print(f"exported {count} articles to {out}", file=sys.stderr)
    return 0


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
