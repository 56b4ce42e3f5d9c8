"""A run's WARC files on disk: records appended, files rotated by size, made durable on ``sync``.

The part of archiving that is pure CPU and file writing (warcio's records, gzip, the files):
no database, so it can run in a process of its own (``storage.archive.child``). Which payloads
are already archived is decided by the caller (``ArchiveWriter``, which keeps the payload index)
and handed in as ``known``; what this appends in full comes back as new originals.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from storage.archive.files import archive_files, file_name
from storage.archive.records import Exchange, Location, OriginalRef, RecordBuilder, warc_date

#: Only a page's payload is worth a revisit: an empty body or an error page costs little anyway.
DEDUPE_STATUSES = frozenset({200, 203})


def dedupes(exchange: Exchange) -> bool:
    """A response whose payload may be written as a revisit of an identical one."""
    return exchange.status in DEDUPE_STATUSES and bool(exchange.body)


@dataclass
class Appended:
    """What one ``append`` wrote: where each record went (by record id), the payloads it
    archived in full (new originals, in order) and its counts."""

    locations: dict[str, Location] = field(default_factory=dict)
    originals: list[OriginalRef] = field(default_factory=list)
    records: int = 0
    revisits: int = 0
    bytes: int = 0


class WarcFiles:
    """``fxcrawl-<run>-<seq>.warc.gz`` in ``directory``: a new file per run and past ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int, info: Mapping[str, str]) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.info = dict(info)
        self.builder = RecordBuilder()
        self.run_id: int | None = None
        self.seq = 0
        self.file: IO[bytes] | None = None
        self.file_name = ""
        self.dirty = False

    def append(
        self, exchanges: Sequence[Exchange], digests: Sequence[str], known: Mapping[str, OriginalRef], run_id: int
    ) -> Appended:
        """Each exchange as a response record (a revisit if its payload is ``known`` or appeared
        earlier in this call), then its request record; flushed to the operating system."""
        out = Appended()
        known = dict(known)
        for exchange, digest in zip(exchanges, digests, strict=True):
            file = self._file_for(run_id)
            offset = file.tell()
            original = known.get(digest) if dedupes(exchange) else None
            if original is not None:
                member = self.builder.revisit(exchange, digest, original)
                out.revisits += 1
            else:
                member = self.builder.response(exchange, digest)
            file.write(member)
            location = Location(self.file_name, offset, len(member))
            out.locations[exchange.record_id] = location
            if original is None and dedupes(exchange):
                ref = OriginalRef(digest, exchange.url, warc_date(exchange.fetched_at), exchange.record_id, location)
                known[digest] = ref
                out.originals.append(ref)
            request = self.builder.request(exchange, exchange.record_id)
            file.write(request)
            out.records += 2
            out.bytes += len(member) + len(request)
        if self.file is not None:
            self.file.flush()
            self.dirty = True
        return out

    def sync(self) -> None:
        """What was appended made durable (fsync)."""
        if self.file is not None and self.dirty:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.dirty = False

    def close(self) -> None:
        self.sync()
        if self.file is not None:
            self.file.close()
            self.file = None

    def _file_for(self, run_id: int) -> IO[bytes]:
        """The file to write to: the run's current one, or a new one (a new run, or past max_bytes)."""
        if self.file is not None and self.run_id == run_id and self.file.tell() < self.max_bytes:
            return self.file
        self.close()
        if self.run_id != run_id:
            self.run_id = run_id
            self.seq = max((f.seq for f in archive_files(self.directory, run_id)), default=0)
        self.seq += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file_name = file_name(run_id, self.seq)
        self.file = open(self.directory / self.file_name, "ab")  # noqa: SIM115 (kept open across writes)
        self.file.write(self.builder.warcinfo(self.file_name, {**self.info, "fxcrawl-run-id": str(run_id)}))
        return self.file
