"""Which archived pages a re-parse reads, and in what order.

Newest run first (within a run, in the order fetched): when one page was archived by several
runs, the pipelines' in-run dedupe keeps the first it meets, so the newest archived version is
the one re-derived, as the newest crawl's version is the one stored. A revisit's payload is read
from its original through the payload index; a page whose original was pruned is skipped, counted.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.archive.files import ArchiveFile, archive_files
from storage.archive.reader import ArchivedPage, ReadReport, iter_pages, read_payload
from storage.archive.records import Location
from storage.db import Database
from storage.models import ArchivePayload


@dataclass(frozen=True)
class Selection:
    """``run``: that run's files only; ``since``: pages fetched at or after it (aware);
    ``url``: a shell-style pattern the page's URL (as fetched, or as ``canonical`` gives it) matches."""

    run: int | None = None
    since: datetime | None = None
    url: str | None = None

    def wants(self, page: ArchivedPage, canonical: Callable[[str], str]) -> bool:
        if self.since is not None and page.fetched_at < self.since:
            return False
        if self.url is not None:
            return fnmatch.fnmatchcase(page.url, self.url) or fnmatch.fnmatchcase(canonical(page.url), self.url)
        return True


def reparse_order(directory: Path, selection: Selection) -> list[ArchiveFile]:
    """The files to read: newest run first, each run's files in the order written; a file last
    changed before ``since`` holds nothing fetched after it and is left unread."""
    files = archive_files(directory, selection.run)
    if selection.since is not None:
        since = selection.since.timestamp()
        files = [f for f in files if f.path.stat().st_mtime >= since]
    return sorted(files, key=lambda f: (-f.run_id, f.seq))


@dataclass
class SelectionCounts:
    pages: int = 0
    not_selected: int = 0
    original_missing: int = 0


def selected_pages(
    directory: Path,
    database: Database | None,
    selection: Selection,
    report: ReadReport,
    counts: SelectionCounts,
    canonical: Callable[[str], str] = lambda url: url,
) -> Iterator[tuple[ArchiveFile, ArchivedPage]]:
    """The selected pages with their payloads, file by file; what is left out is counted."""
    originals = PayloadIndex(database)
    for file in reparse_order(directory, selection):
        for page in iter_pages(file.path, report):
            if not selection.wants(page, canonical):
                counts.not_selected += 1
                continue
            resolved = read_payload(directory, page, originals.location)
            if resolved is None:
                counts.original_missing += 1
                continue
            counts.pages += 1
            yield file, resolved


class PayloadIndex:
    """Where a payload's original record is, by digest (cached: a revisit's original is often
    the original of many)."""

    def __init__(self, database: Database | None) -> None:
        self.database = database
        self.cache: dict[str, Location | None] = {}

    def location(self, digest: str) -> Location | None:
        if digest not in self.cache:
            row = None
            if self.database is not None:
                with self.database.session() as session:
                    row = session.get(ArchivePayload, digest)
            self.cache[digest] = Location(row.warc_file, row.warc_offset, row.warc_length) if row else None
        return self.cache[digest]
