"""One fetch as WARC records: what the crawler hands over, and how it becomes bytes on disk.

warcio builds the records (headers, digests, lengths); each is then compressed here as a gzip
member of its own, at level 6 rather than warcio's 9 (a third of the CPU for a few per cent more
bytes on HTML), so its offset and length in the file are known exactly and a reader can seek to it.
The compressor is zlib-ng's (the same gzip format, any reader reads it): at the same level it
takes well under half of the standard library's CPU for about 2 % more bytes, and compressing is
most of what archiving a page costs (`make bench`, the archive rows).
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter
from zlib_ng import zlib_ng

#: Response headers that describe the bytes on the wire, not the payload archived: the crawler
#: hands over the body as Scrapy delivered it (de-chunked, decompressed), so these are kept under
#: the ``X-Archive-Orig-`` prefix (the convention of web archives) and Content-Length is set anew.
WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
ORIG_PREFIX = "X-Archive-Orig-"
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record is: the file's name (within the archive folder), its offset and its length
    there (one gzip member)."""

    file: str
    offset: int
    length: int


@dataclass(slots=True)
class Exchange:
    """A response the crawl received and the request that asked for it, as plain values.

    ``record_id`` is chosen when the response arrives (the items parsed from it carry it) and is
    the response (or revisit) record's WARC-Record-ID once written."""

    record_id: str
    url: str
    status: int
    response_headers: list[tuple[str, str]]
    body: bytes
    method: str = "GET"
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason: str = ""


def new_record_id() -> str:
    import uuid

    return f"<urn:uuid:{uuid.uuid4()}>"


def payload_digest(body: bytes) -> str:
    """The WARC-Payload-Digest of a body: SHA-1 in base 32, as web archives write it."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def warc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def archived_headers(headers: list[tuple[str, str]], body_length: int) -> list[tuple[str, str]]:
    """The response headers as archived: wire-level ones renamed, Content-Length the payload's."""
    out = [(ORIG_PREFIX + name if name.lower() in WIRE_HEADERS else name, value) for name, value in headers]
    out.append(("Content-Length", str(body_length)))
    return out


def gzip_compressor() -> Any:
    """A compressor writing one gzip member."""
    return zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, zlib_ng.MAX_WBITS + 16)


class RecordBuilder:
    """Builds gzip members of WARC records with warcio (one writer, reused: it holds no file)."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._writer = WARCWriter(self._buffer, gzip=False)

    def _member(self, record: Any) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.write_record(record)
        compressor = gzip_compressor()
        member: bytes = compressor.compress(self._buffer.getvalue()) + compressor.flush()
        return member

    def warcinfo(self, filename: str, info: dict[str, str]) -> bytes:
        return self._member(self._writer.create_warcinfo_record(filename, info))

    def response(self, exchange: Exchange, digest: str) -> bytes:
        record = self._writer.create_warc_record(
            exchange.url,
            "response",
            payload=io.BytesIO(exchange.body),
            length=len(exchange.body),
            http_headers=self._http_headers(exchange),
            warc_headers_dict={**self._warc_headers(exchange), "WARC-Payload-Digest": digest},
        )
        return self._member(record)

    def revisit(self, exchange: Exchange, digest: str, original: OriginalRef) -> bytes:
        """An identical payload archived before: its headers, and where the payload is (WARC 1.1
        'identical payload digest' profile, with WARC-Refers-To naming the original record)."""
        record = self._writer.create_revisit_record(
            exchange.url,
            digest,
            original.uri,
            original.date,
            http_headers=self._http_headers(exchange),
            warc_headers_dict={**self._warc_headers(exchange), "WARC-Refers-To": original.record_id},
        )
        return self._member(record)

    def request(self, exchange: Exchange, concurrent_to: str) -> bytes:
        parts = urlsplit(exchange.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = list(exchange.request_headers)
        if not any(name.lower() == "host" for name, _ in headers):
            headers.insert(0, ("Host", parts.netloc))
        record = self._writer.create_warc_record(
            exchange.url,
            "request",
            payload=io.BytesIO(b""),
            length=0,
            http_headers=StatusAndHeaders(f"{exchange.method} {target} HTTP/1.1", headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": warc_date(exchange.fetched_at), "WARC-Concurrent-To": concurrent_to},
        )
        return self._member(record)

    @staticmethod
    def _http_headers(exchange: Exchange) -> StatusAndHeaders:
        status = f"{exchange.status} {exchange.reason}".strip()
        return StatusAndHeaders(
            status, archived_headers(exchange.response_headers, len(exchange.body)), protocol="HTTP/1.1"
        )

    @staticmethod
    def _warc_headers(exchange: Exchange) -> dict[str, str]:
        return {"WARC-Record-ID": exchange.record_id, "WARC-Date": warc_date(exchange.fetched_at)}


@dataclass(frozen=True, slots=True)
class OriginalRef:
    """The record that holds a payload first archived: what a revisit refers to."""

    digest: str
    uri: str
    date: str
    record_id: str
    location: Location
