"""Reading the archive back: every page of a file in order, or one record at an offset.

A file is read gzip member by gzip member (each holds one record) with zlib, and each member's
record is parsed with warcio. A member that does not inflate (a flipped byte fails its CRC), a
record warcio cannot parse, or a file cut short is a problem counted in the ``ReadReport`` with
the file's name; reading goes on at the next gzip header found after it. So a damaged file costs
the records it damaged, never the ones after them, and nothing half-read is ever returned.
"""

from __future__ import annotations

import io
import logging
import mmap
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from storage.archive.records import ORIG_PREFIX, Location

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
#: Read a file this much at a time while inflating a member.
CHUNK = 1 << 16
#: No record of ours inflates past this (a page is capped at 10 MB by the crawl): more is damage.
MAX_RECORD = 64 << 20


@dataclass(slots=True)
class ArchivedPage:
    """A response as archived (a revisit's payload resolved when asked): what a reparse reads."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    fetched_at: datetime
    record_id: str
    record_type: str
    location: Location
    #: A revisit's payload digest and original record id (the body is then empty until resolved).
    digest: str | None = None
    refers_to: str | None = None

    @property
    def original_headers(self) -> list[tuple[str, str]]:
        """The headers as received: the wire-level ones the archive renamed, named back."""
        out = []
        for name, value in self.headers:
            if name.lower() == "content-length":
                continue
            out.append((name[len(ORIG_PREFIX) :] if name.startswith(ORIG_PREFIX) else name, value))
        return out


@dataclass
class ReadReport:
    """What reading met: records read, and per damaged file the records skipped."""

    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip(self, file: str, why: str, offset: int) -> None:
        self.skipped[file] = self.skipped.get(file, 0) + 1
        logger.warning("archive file %s: unreadable record at offset %d (%s), skipped", file, offset, why)


@dataclass(frozen=True, slots=True)
class _Member:
    offset: int
    length: int
    data: bytes


def _members(path: Path, report: ReadReport) -> Iterator[_Member]:
    """The gzip members of a file, inflated; damaged stretches skipped to the next gzip header."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        position = 0
        while position < size:
            member, problem = _inflate(view, position, size)
            if member is not None:
                yield member
                position = member.offset + member.length
                continue
            report.skip(path.name, problem, position)
            following = view.find(GZIP_MAGIC, position + 1)
            if following < 0:
                return
            position = following


def _inflate(view: mmap.mmap, start: int, size: int) -> tuple[_Member | None, str]:
    inflater = zlib.decompressobj(zlib.MAX_WBITS + 16)
    parts: list[bytes] = []
    inflated = 0
    position = start
    try:
        while position < size:
            chunk = view[position : position + CHUNK]
            out = inflater.decompress(chunk, MAX_RECORD + 1 - inflated)
            parts.append(out)
            inflated += len(out)
            if inflated > MAX_RECORD:
                return None, "record larger than any the archive writes"
            if inflater.eof:
                position += len(chunk) - len(inflater.unused_data)
                return _Member(start, position - start, b"".join(parts)), ""
            if inflater.unconsumed_tail:
                return None, "record larger than any the archive writes"
            position += len(chunk)
    except zlib.error as exc:
        return None, f"corrupt gzip member: {exc}"
    return None, "file cut short in the middle of a record"


def _parse(member: _Member, file: str) -> ArchivedPage | None:
    """The member's record as a page (None: a record that is not a response or revisit). The
    archive's own records are read directly (a re-parse reads thousands a second, and warcio's
    general reader costs as much as parsing the page); anything else goes to warcio."""
    data = member.data
    head_end = data.find(b"\r\n\r\n")
    if data.startswith(b"WARC/1.") and head_end > 0:
        warc = _header_block(data[:head_end])
        kind = warc.get("warc-type")
        if kind not in ("response", "revisit"):
            return None
        fast = _own_record(data, head_end + 4, warc, kind, member, file)
        if fast is not None:
            return fast
    return _parse_with_warcio(member, file)


def _header_block(block: bytes) -> dict[str, str]:
    """'Name: value' lines after the first line, names lower-cased (the first of a repeated name)."""
    fields: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _own_record(
    data: bytes, start: int, warc: dict[str, str], kind: str, member: _Member, file: str
) -> ArchivedPage | None:
    """A response or revisit as the archive writes it: WARC headers, the HTTP head, the payload
    (Content-Length of the block says where it ends). None: not that shape, let warcio read it."""
    try:
        length = int(warc["content-length"])
    except (KeyError, ValueError):
        return None
    block = data[start : start + length]
    http_end = block.find(b"\r\n\r\n")
    if len(block) != length or http_end < 0 or not block.startswith(b"HTTP/"):
        return None
    lines = block[:http_end].decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[1].isdigit():
        return None
    headers = [(n.strip(), v.strip()) for n, sep, v in (line.partition(":") for line in lines[1:]) if sep]
    return ArchivedPage(
        url=warc.get("warc-target-uri", ""),
        status=int(status[1]),
        headers=headers,
        body=block[http_end + 4 :] if kind == "response" else b"",
        fetched_at=_warc_datetime(warc.get("warc-date", "")),
        record_id=warc.get("warc-record-id", ""),
        record_type=kind,
        location=Location(file, member.offset, member.length),
        digest=warc.get("warc-payload-digest"),
        refers_to=warc.get("warc-refers-to"),
    )


def _parse_with_warcio(member: _Member, file: str) -> ArchivedPage | None:
    record = next(iter(ArchiveIterator(io.BytesIO(member.data))))
    kind = record.rec_type
    if kind not in ("response", "revisit"):
        return None
    headers = record.rec_headers
    http = record.http_headers
    body = record.raw_stream.read() if kind == "response" else b""
    status_line = http.get_statuscode() if http is not None else "0"
    return ArchivedPage(
        url=headers.get_header("WARC-Target-URI") or "",
        status=int(status_line or 0),
        headers=list(http.headers) if http is not None else [],
        body=body,
        fetched_at=_warc_datetime(headers.get_header("WARC-Date") or ""),
        record_id=headers.get_header("WARC-Record-ID") or "",
        record_type=kind,
        location=Location(file, member.offset, member.length),
        digest=headers.get_header("WARC-Payload-Digest"),
        refers_to=headers.get_header("WARC-Refers-To"),
    )


def iter_pages(path: Path, report: ReadReport | None = None) -> Iterator[ArchivedPage]:
    """Every response and revisit record of a file, in order; damage is counted in ``report``."""
    report = report if report is not None else ReadReport()
    for member in _members(path, report):
        try:
            page = _parse(member, path.name)
        except Exception as exc:  # warcio's parse errors have no common base: any is a bad record
            report.skip(path.name, f"not a WARC record: {exc.__class__.__name__}: {exc}", member.offset)
            continue
        if page is not None:
            report.records += 1
            yield page


def read_page(directory: Path, location: Location) -> ArchivedPage | None:
    """The page at a location (None: the file is gone or the record there is unreadable)."""
    path = directory / location.file
    if not path.is_file() or location.offset + location.length > path.stat().st_size:
        return None
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        member, _ = _inflate(view, location.offset, location.offset + location.length)
    if member is None:
        return None
    try:
        return _parse(member, location.file)
    except Exception:  # unreadable is unreadable, whatever warcio raised
        return None


def read_payload(directory: Path, page: ArchivedPage, originals: Any) -> ArchivedPage | None:
    """A revisit's page with its payload from the original record (``originals``: digest ->
    Location, e.g. the payload index); a response as it is. None: the original is gone."""
    if page.record_type != "revisit":
        return page
    where = originals(page.digest) if page.digest else None
    original = read_page(directory, where) if where is not None else None
    if original is None or original.record_type != "response":
        return None
    page.body = original.body
    return page


def _warc_datetime(text: str) -> datetime:
    text = text.strip().rstrip("Z")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)
