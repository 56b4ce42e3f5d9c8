"""Writing the archive: a run's exchanges into its WARC files, identical payloads as revisits.

Called from one thread only (the store's writer thread, ``pipelines.store``), which calls
``write`` for the exchanges that arrived and ``sync`` before every commit: each ``write`` leaves
its records in the operating system (a SIGKILL loses none of them), ``sync`` makes them durable
(fsync) and only then indexes the new payloads in the database. So no row the store commits,
an article's pointer or a payload's, ever names a record that is not on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Insert

from storage.archive.child import ChildGone, WarcFilesProcess
from storage.archive.records import Exchange, Location, OriginalRef, payload_digest
from storage.archive.warcfiles import WarcFiles, dedupes
from storage.db import Database, select_in, upsert, write_rows
from storage.models import ArchivePayload
from storage.settings import Settings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class ArchivePolicy:
    """How the archive is kept: a new file past ``max_bytes``; retention (None: keep all)
    drops whole files of runs older than ``keep_days`` or beyond ``keep_bytes`` in total."""

    max_bytes: int = 1_000_000_000
    keep_days: float | None = None
    keep_bytes: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchivePolicy:
        keep_days = settings.get("FXCRAWL_ARCHIVE_KEEP_DAYS")
        keep_bytes = settings.get("FXCRAWL_ARCHIVE_KEEP_BYTES")
        return cls(
            max_bytes=settings.getint("FXCRAWL_ARCHIVE_MAX_BYTES", cls.max_bytes),
            keep_days=float(keep_days) if keep_days not in (None, "") else None,
            keep_bytes=int(keep_bytes) if keep_bytes not in (None, "") else None,
        )


@dataclass
class WriteResult:
    """What one ``write`` did: where each record went (by record id) and what it counted."""

    locations: dict[str, Location]
    records: int = 0
    revisits: int = 0
    bytes: int = 0


class ArchiveWriter:
    """A run's WARC files (``WarcFiles``: ``fxcrawl-<run>-<seq>.warc.gz``, a new one past
    ``max_bytes``) and the payload index that turns a payload archived before into a revisit.

    ``separate_process``: the files are written by a child process (``storage.archive.child``),
    off this process's interpreter lock, once ``process_after`` responses are written here (a
    short crawl is over before a child would pay for its start; past that, the child is started
    without waiting for it and takes over with the next file once it answers). If it cannot
    start or dies, this process writes from then on (the group it was writing is reported lost
    by the ``write`` that raised)."""

    def __init__(
        self,
        directory: Path,
        database: Database | None,
        policy: ArchivePolicy | None = None,
        *,
        separate_process: bool = False,
        process_after: int = 0,
        info: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.database = database
        self.policy = policy or ArchivePolicy()
        self.info = {"software": "fxcrawl (warcio)", "format": "WARC File Format 1.0", **(info or {})}
        self.files: WarcFiles | WarcFilesProcess = WarcFiles(directory, self.policy.max_bytes, self.info)
        self.child = WarcFilesProcess(directory, self.policy.max_bytes, self.info) if separate_process else None
        self.process_after = process_after
        self.responses = 0
        self.run_id: int | None = None
        #: Payloads archived in full this run (digest -> where), and those not yet in the index.
        #: Kept as plain tuples, one per page archived until the run ends: a tuple of strings and
        #: numbers drops out of the cycle collector's walk, a dataclass never does (20,000 of them
        #: made every full collection 30-40 ms, the crawl's longest reactor stalls).
        self.originals: dict[str, _Original] = {}
        self.unindexed: list[OriginalRef] = []

    # -- writing -------------------------------------------------------------------------------

    def write(self, exchanges: Sequence[Exchange], run_id: int | None) -> WriteResult:
        """Archive the exchanges (a response or revisit record, then its request record each)
        and flush them to the operating system."""
        result = WriteResult({})
        if not exchanges:
            return result
        self.run_id = run_id or 0
        self._hand_over()
        digests = [payload_digest(exchange.body) for exchange in exchanges]
        known = self._originals([d for d, e in zip(digests, exchanges, strict=True) if dedupes(e)])
        appended = self._files_call(lambda files: files.append(exchanges, digests, known, self.run_id or 0))
        self.responses += len(exchanges)
        for ref in appended.originals:
            self.originals[ref.digest] = _kept(ref)
            self.unindexed.append(ref)
        result.locations = appended.locations
        result.records, result.revisits, result.bytes = appended.records, appended.revisits, appended.bytes
        return result

    def sync(self) -> None:
        """Make what was written durable (fsync), then index its new payloads: called before the
        store commits rows that point into the archive."""
        self._files_call(lambda files: files.sync())
        if self.unindexed and self.database is not None:
            rows = [
                {
                    "digest": ref.digest,
                    "uri": ref.uri,
                    "date": ref.date,
                    "record_id": ref.record_id,
                    "warc_file": ref.location.file,
                    "warc_offset": ref.location.offset,
                    "warc_length": ref.location.length,
                    "run_id": self.run_id or None,
                }
                for ref in self.unindexed
            ]
            try:
                with self.database.write_session() as session:
                    write_rows(session, _payload_insert(self.database.dialect), rows)
            except Exception as exc:  # the payloads are archived; only a later revisit of them is lost
                logger.warning("could not index %d archived payloads (%s): later copies are kept whole", len(rows), exc)
            self.unindexed = []

    def close(self) -> None:
        try:
            self.sync()
        finally:
            if self.child is not None and self.files is not self.child:
                self.child.abandon()  # started, never used
            self.files.close()

    @property
    def child_cpu_seconds(self) -> float:
        """CPU seconds the child process spent writing (known after ``close``; 0 without one)."""
        return self.child.cpu_seconds if self.child is not None else 0.0

    # -- internals ----------------------------------------------------------------------------

    def _hand_over(self) -> None:
        """Past ``process_after`` responses, the child starts, then takes over once it answers."""
        child = self.child
        if child is None or self.files is child or self.responses < self.process_after:
            return
        try:
            if self.process_after:  # else the child starts on first use, waited for
                if not child.started:
                    child.start()
                if not child.ready():
                    return
        except ChildGone as exc:
            logger.warning("%s: the archive is written by the crawl's own process", exc)
            self.child = None
            return
        self.files.close()  # this process's file, complete and durable; the child starts the next
        self.files = child

    def _files_call(self, call: Callable[[WarcFiles | WarcFilesProcess], _T]) -> _T:
        """``call`` on the files; a child process that is gone hands over to this process
        (what it was asked raises, so the caller counts that group lost)."""
        try:
            return call(self.files)
        except ChildGone as exc:
            logger.warning("%s: the archive is written by the crawl's own process from now on", exc)
            self.files, self.child = WarcFiles(self.directory, self.policy.max_bytes, self.info), None
            raise

    def _originals(self, digests: list[str]) -> dict[str, OriginalRef]:
        """The payloads among these already archived: this run's, and earlier runs' by the index."""
        known = {d: _original_ref(d, self.originals[d]) for d in digests if d in self.originals}
        missing = list({d for d in digests if d not in known})
        if missing and self.database is not None:
            try:
                with self.database.session() as session:
                    rows = select_in(session, _PAYLOAD_COLUMNS, ArchivePayload.digest, missing)
            except Exception as exc:  # an index that cannot be read: archive the payloads whole
                logger.warning("could not read the archive's payload index (%s): archiving payloads whole", exc)
                rows = []
            for digest, uri, date, record_id, warc_file, offset, length in rows:
                if (self.directory / warc_file).is_file():  # a pruned original is no original
                    known[digest] = OriginalRef(digest, uri, date, record_id, Location(warc_file, offset, length))
        return known


#: An original as the writer keeps it: uri, date, record id, file, offset, length.
_Original = tuple[str, str, str, str, int, int]


def _kept(ref: OriginalRef) -> _Original:
    return (ref.uri, ref.date, ref.record_id, ref.location.file, ref.location.offset, ref.location.length)


def _original_ref(digest: str, original: _Original) -> OriginalRef:
    uri, date, record_id, file, offset, length = original
    return OriginalRef(digest, uri, date, record_id, Location(file, offset, length))


_PAYLOAD_COLUMNS = (
    ArchivePayload.digest,
    ArchivePayload.uri,
    ArchivePayload.date,
    ArchivePayload.record_id,
    ArchivePayload.warc_file,
    ArchivePayload.warc_offset,
    ArchivePayload.warc_length,
)


def _payload_insert(dialect: str) -> Insert:
    """The first original of a payload stays its original (a concurrent crawl's twin is kept out)."""
    return upsert(dialect, ArchivePayload.__table__, ["digest"], ())
