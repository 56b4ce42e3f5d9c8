"""`fxcrawl spool replay|list`: the batches a crawl could not store, stored later exactly once."""

from __future__ import annotations

from pathlib import Path

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database
from fxcrawl.cli.errors import UsageError

spool_dir = click.option(
    "--spool-dir",
    type=params.PATH,
    default=params.setting("FXCRAWL_SPOOL_DIR"),
    show_default="$FXCRAWL_SPOOL_DIR, else beside the SQLite file or the per-user data folder",
    help="spool root",
)


@click.group(cls=Group, help="batches waiting to be stored")
def spool() -> None:
    pass


@spool.command("replay", cls=Command, help="store every spooled batch, exactly once")
@params.db
@spool_dir
def replay(db: str, spool_dir: Path | None) -> int:
    from pipelines.store import BatchWriter
    from storage.runs import finish_run
    from storage.spool import Spool, spool_dir_for

    waiting = Spool(spool_dir_for(spool_dir, db))
    database = open_database(db)
    writer = BatchWriter(database)
    result = waiting.replay(
        lambda items: writer.write(items, None), lambda run_id, values: finish_run(database, run_id, values)
    )
    left = len(waiting.files()) + len(waiting.run_files())
    print(
        f"replayed {result.items} items from {result.files} spool files and {result.runs} run rows; {left} files left"
    )
    return 1 if result.failed_files else 0


@spool.command("list", cls=Command, help="count the spooled batches")
@params.db
@spool_dir
def list_spool(db: str, spool_dir: Path | None) -> int:
    from storage.db import DatabaseURLError
    from storage.spool import Spool, spool_dir_for

    try:
        waiting = Spool(spool_dir_for(spool_dir, db))
    except DatabaseURLError as exc:
        raise UsageError(str(exc)) from None
    files = waiting.files()
    runs = f", {len(waiting.run_files())} run rows" if waiting.run_files() else ""
    print(f"{len(files)} spool files, {waiting.pending_items()} items waiting{runs} in {waiting.directory}")
    return 0
