"""Retention: whole files of old runs are deleted, and the rows that pointed into them let go.

Whole files only (a WARC file is never rewritten), never a file of the runs kept: a run's files
go together, oldest run first, while it is older than ``keep_days`` or the archive is over
``keep_bytes``. Articles pointing into a deleted file lose their pointer (NULL: their page is
no longer archived) and its payloads leave the index, so no later revisit refers to them;
revisits already written that referred to them say so when read (their original is gone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from sqlalchemy import delete, select, update

from storage.archive.files import ArchiveFile, archive_files
from storage.db import Database
from storage.models import ArchivePayload, Article, CrawlRun


@dataclass
class PruneResult:
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    articles_unlinked: int = 0


def prune(
    directory: Path,
    database: Database | None,
    *,
    keep_days: float | None = None,
    keep_bytes: int | None = None,
    protect_run: int | None = None,
    now: float | None = None,
) -> PruneResult:
    """Delete the files of the oldest runs while they are older than ``keep_days`` (by the newest
    file of the run) or the archive exceeds ``keep_bytes``. Never the files of ``protect_run`` or
    of any run the ledger holds open (a crawl still writing them)."""
    result = PruneResult()
    if keep_days is None and keep_bytes is None:
        return result
    protected = {protect_run} | (_open_runs(database) if database is not None else set())
    now = time.time() if now is None else now
    runs = [(run, list(files)) for run, files in groupby(archive_files(directory), key=lambda f: f.run_id)]
    sizes = {f.path: f.path.stat().st_size for _, files in runs for f in files}
    total = sum(sizes.values())
    doomed: list[ArchiveFile] = []
    for run, files in runs:  # oldest run first
        if run in protected:
            continue
        age_days = (now - max(f.path.stat().st_mtime for f in files)) / 86400
        too_old = keep_days is not None and age_days > keep_days
        too_big = keep_bytes is not None and total > keep_bytes
        if not (too_old or too_big):
            continue
        doomed.extend(files)
        total -= sum(sizes[f.path] for f in files)
    if not doomed:
        return result
    names = [f.name for f in doomed]
    if database is not None:  # the rows let go first: a crash in between leaves files, not dangling rows
        with database.write_session() as session:
            unlinked = session.execute(
                update(Article)
                .where(Article.warc_file.in_(names))
                .values(warc_file=None, warc_offset=None, warc_length=None)
            )
            result.articles_unlinked = int(getattr(unlinked, "rowcount", 0) or 0)
            session.execute(delete(ArchivePayload).where(ArchivePayload.warc_file.in_(names)))
    for f in doomed:
        result.bytes += sizes[f.path]
        f.path.unlink(missing_ok=True)
        result.files.append(f.name)
    return result


def _open_runs(database: Database) -> set[int | None]:
    with database.session() as session:
        return set(session.scalars(select(CrawlRun.id).where(CrawlRun.finished_at.is_(None))))
