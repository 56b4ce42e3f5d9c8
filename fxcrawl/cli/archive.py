"""`fxcrawl archive list|prune` and `fxcrawl reparse`: the WARC archive of every page fetched, and
re-deriving the store from it through today's parsers without the network."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.errors import EXIT_FAILED, UsageError
from fxcrawl.cli.output import print_json, table


@click.group(cls=Group, help="the WARC archive of every page fetched")
def archive() -> None:
    pass


@archive.command("list", cls=Command, help="the archive's files: run, size, records")
@params.db
@params.archive_dir
@params.as_json
def list_archive(db: str, archive_dir: Path | None, as_json: bool) -> int:
    from storage.archive import archive_dir_for, archive_files

    directory = archive_dir_for(archive_dir, db)
    rows = [
        {"file": f.name, "run": f.run_id, "seq": f.seq, "bytes": f.path.stat().st_size}
        for f in archive_files(directory)
    ]
    if as_json:
        print_json(rows)
        return 0
    print(f"archive: {directory}")
    table(rows, [("file", "file", 28), ("run", "run", 6), ("bytes", "bytes", 12)], "no archive files")
    return 0


@archive.command("prune", cls=Command, help="delete whole files of old runs (articles pointing there let go)")
@params.db
@params.archive_dir
@click.option("--keep-days", type=params.FLOAT, help="delete the files of runs older than this many days")
@click.option("--max-bytes", type=params.POSITIVE, help="delete the oldest runs' files while the archive is larger")
def prune_archive(db: str, archive_dir: Path | None, keep_days: float | None, max_bytes: int | None) -> int:
    from storage.archive import archive_dir_for, prune

    if keep_days is None and max_bytes is None:
        raise UsageError("archive prune needs --keep-days or --max-bytes")
    database = open_database(db, writable=True)
    result = prune(archive_dir_for(archive_dir, db), database, keep_days=keep_days, keep_bytes=max_bytes)
    print(
        f"pruned {len(result.files)} files ({result.bytes:,} bytes); "
        f"{result.articles_unlinked} articles no longer point into the archive"
    )
    return 0


@click.command("reparse", cls=Command, help="re-read archived pages through today's parsers (no network)")
@params.db
@params.archive_dir
@click.option("--run", "run_id", type=params.POSITIVE, help="only the pages this run fetched")
@click.option("--since", help="only pages fetched at or after this day or time (Asia/Shanghai), e.g. 2026-12-01")
@click.option("--url", "pattern", metavar="PATTERN", help="only pages whose URL matches (shell-style: '*/article/*')")
@params.log_level
@params.settings_overrides("override a Scrapy or fxcrawl setting")
def reparse(
    db: str,
    archive_dir: Path | None,
    run_id: int | None,
    since: str | None,
    pattern: str | None,
    log_level: str,
    overrides: tuple[str, ...],
) -> int:
    from fxcrawl.cli.crawl import setting_value
    from fxcrawl.run import project_settings_with, run_crawl
    from storage.archive import archive_dir_for
    from storage.locks import JobLock, JobLockHeld

    start = when(since)
    directory = archive_dir_for(archive_dir, db)
    if not directory.is_dir():
        raise UsageError(f"no archive at {directory}: crawl first (archiving is on by default) or give --archive-dir")
    settings: dict[str, Any] = {"FXCRAWL_DATABASE_URL": db, "LOG_LEVEL": log_level}
    settings["FXCRAWL_ARCHIVE_DIR"] = str(directory)
    for assignment in overrides:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, not {assignment!r}")
        settings[name.strip()] = setting_value(name.strip(), value)
    database = open_database(db, writable=True)
    lock = JobLock(database, "reparse")
    try:
        lock.acquire()
    except JobLockHeld as exc:
        print(f"fxcrawl: skipped: {exc}", file=sys.stderr)
        return 3
    try:
        result = run_crawl(
            "reparse",
            project_settings_with(settings),
            run=run_id,
            since=start.isoformat() if start else None,
            url=pattern,
        )
    finally:
        lock.release()
    return report(result.stats, result.ok)


def report(stats: dict[str, Any], ok: bool) -> int:
    """One line of what the re-parse found, the damaged files named; exit 1 if any record was lost
    to damage or the run is unhealthy."""
    get = lambda key: int(stats.get(key, 0) or 0)  # noqa: E731 (a local shorthand)
    print(
        f"reparse run {stats.get('fxcrawl/run_id')}: {get('reparse/pages')} pages read, "
        f"{get('fxcrawl/store/article/new')} new, {get('fxcrawl/store/article/updated')} revisions, "
        f"{get('fxcrawl/store/article/unchanged')} unchanged, {get('fxcrawl/duplicate/article')} duplicate"
    )
    damaged = stats.get("reparse/damaged_files") or {}
    for name, skipped in sorted(damaged.items()):
        print(f"damaged: {name}: {skipped} unreadable records skipped, the rest read", file=sys.stderr)
    if missing := get("reparse/skipped/original_missing"):
        print(f"{missing} revisits skipped: their originals were pruned", file=sys.stderr)
    return EXIT_FAILED if damaged or not ok else 0
