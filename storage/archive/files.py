"""Where the archive lives and what its files are called.

One folder per database (beside the SQLite file by default, as the spool is), files named
``fxcrawl-<run id>-<seq>.warc.gz``: a file belongs to exactly one run, so retention can drop a
run's pages by deleting files and ``reparse --run`` finds a run's pages by name alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from storage.db import identity_key, sqlite_path

SUFFIX = ".warc.gz"
_NAME = re.compile(r"^fxcrawl-(?P<run>\d+)-(?P<seq>\d+)\.warc\.gz$")


def archive_dir_for(base: Path | str | None, database_url: str) -> Path:
    """The archive folder of a database: ``base`` (FXCRAWL_ARCHIVE_DIR) as given, else an
    ``archive`` folder beside the SQLite file, else one per database identity in the per-user
    data folder (a PostgreSQL store has no file to sit beside)."""
    if base:
        return Path(base).expanduser().resolve()
    if (path := sqlite_path(database_url)) is not None:
        return path.parent / "archive"
    import platformdirs

    return platformdirs.user_data_path("fxcrawl") / "archive" / identity_key(database_url)


def file_name(run_id: int, seq: int) -> str:
    return f"fxcrawl-{run_id}-{seq:05d}{SUFFIX}"


@dataclass(frozen=True, order=True)
class ArchiveFile:
    """One WARC file of the archive: the run that wrote it and its place in that run."""

    run_id: int
    seq: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def parse_file_name(name: str) -> tuple[int, int] | None:
    """(run id, seq) of an archive file's name; None for any other file."""
    match = _NAME.match(name)
    return (int(match.group("run")), int(match.group("seq"))) if match else None


def archive_files(directory: Path, run_id: int | None = None) -> list[ArchiveFile]:
    """The archive's files (of one run, if given), oldest run first, in the order they were written."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        parsed = parse_file_name(path.name)
        if parsed is not None and (run_id is None or parsed[0] == run_id):
            found.append(ArchiveFile(parsed[0], parsed[1], path))
    return sorted(found)
