"""Fault injection for the fixture server: the ways a real site and network misbehave, on demand.

Test equipment, not product: it lives beside the tests (``tests/support``, never installed) and
reaches the offline site through ``replay.server``'s one seam (``make_site(…, misbehaviour=…)``);
``python -m support.faultserver`` (with ``tests`` on PYTHONPATH; ``FaultServer`` in tests) is the
fixture server with ``--fault`` and ``--robots``.

A *fault rule* is ``PATH_REGEX=SPEC`` (``--fault``, repeatable). The regex is searched in the
request's path and query, as sent (``/search?keyword=%E7%8E%B0%E4%BB%A3…``) or percent-decoded
(``/search?keyword=现代…``); the first rule that matches decides. SPEC is a comma-separated
sequence of steps: each URL a rule matches walks the sequence on its own, one step per request,
and the last step repeats (``503,503,200``: two failures, then the page for good).

Steps:

``200``                 serve the page normally (ETag, 304, ``--delay`` as usual)
``NNN`` / ``NNN:SECS``  answer with status NNN (``503``, ``500``, ``404`` …), a small HTML body and,
                        given SECS, a ``Retry-After: SECS`` header (``429:5``)
``drop``                close the connection without sending anything
``short``               headers with the page's true Content-Length, half the body, then close
``hang``                headers with the true Content-Length, then nothing, ever
``big:BYTES``           a 200 of BYTES bytes (``big:52428800``), streamed with its Content-Length;
                        ``big:BYTES:chunked`` streams it chunked, without a length
``gzipbomb``            ~1 MB of ``Content-Encoding: gzip`` that inflates to 1.1 GB of zeros
``charset:NAME``        the page re-encoded as NAME, declared only in the Content-Type header
``nocharset[:NAME]``    the page re-encoded as NAME (default GBK), declared nowhere
``metacharset:NAME``    the page re-encoded as NAME, declared only by a ``<meta charset>`` atop <head>
``latemeta:NAME``       the same, but the ``<meta>`` comes after an inline script that puts it past
                        the first 4 KB of the document (where w3lib, and so Scrapy, stops looking)
``liecharset:NAME``     the page encoded as GBK, with a Content-Type header claiming NAME

Every encoding step takes an optional ``:BYTES`` after the name (``nocharset:gbk:32768``): an
inline ``<script>`` of that many ASCII bytes at the top of <head> (after the early ``<meta>`` of
``metacharset``, before the late one of ``latemeta``), as pages with a large inline state or
analytics blob have; a detector that samples the document sees mostly ASCII there.
Re-encoded pages lose their own charset declarations; characters the target encoding lacks
become character references, so a correct decoder still reads the fixture's exact text.

``--robots`` (repeatable) shapes /robots.txt: ``disallow:PATH`` adds ``Disallow: PATH`` for every
user agent; anything else is a SPEC for /robots.txt (``404``, ``503``, ``hang``, ``drop`` …).

*Drift knobs* (replay/drift.py, part of the offline site) change what the pages are rather than
how they arrive, as a redesign of the site would.

The pure parts (parsing, re-encoding, the bomb) are plain functions; ``respond`` does the
twisted.web side, and the server logs every request with the step it got.
"""

from __future__ import annotations

import codecs
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

#: Step kinds that answer with the page itself, re-encoded.
ENCODING_KINDS = ("charset", "nocharset", "metacharset", "latemeta", "liecharset")
#: Step kinds that may go without an argument, and those that may take one (nocharset: both).
_BARE = ("drop", "short", "hang", "gzipbomb", "nocharset")
_WITH_ARG = ("big", "charset", "nocharset", "metacharset", "latemeta", "liecharset")

#: The default encoding of re-encoded pages and of the body behind a lying header.
DEFAULT_BODY_ENCODING = "gbk"
#: ``latemeta`` places its <meta> after this many bytes: the window w3lib (and so Scrapy)
#: searches for a declaration.
SNIFF_WINDOW = 4096

_STATUS = re.compile(r"^(?P<status>[1-5]\d\d)(?::(?P<retry_after>\d+))?$")
_META_DECLARATION = re.compile(
    r"""<meta\b[^>]*?(?:charset\s*=|http-equiv\s*=\s*["']?content-type)[^>]*>[ \t]*\r?\n?""", re.I
)
_HEAD_OPEN = re.compile(r"<head\b[^>]*>\n?", re.I)
_ANY_AGENT = re.compile(rb"^user-agent:[ \t]*\*[ \t]*\r?\n", re.I | re.M)


@dataclass(frozen=True)
class Step:
    """One answer: ``kind`` is 'serve', 'status' or one of the fault names above."""

    kind: str
    text: str
    status: int = 200
    retry_after: int | None = None
    size: int = 0
    chunked: bool = False
    encoding: str | None = None

    @property
    def is_fault(self) -> bool:
        return self.kind != "serve"

    def respond(self, request: Any, page: bytes | None, record: Recorder) -> Any:
        """The server's seam (replay.server.Fault): answer ``request`` as this step says."""
        return respond(self, request, page, record)


SERVE = Step("serve", "200")


def parse_step(text: str) -> Step:
    """One step of a SPEC, or ValueError saying what is wrong with it."""
    text = text.strip()
    if match := _STATUS.match(text):
        status = int(match["status"])
        retry_after = int(match["retry_after"]) if match["retry_after"] else None
        if status == 200 and retry_after is None:
            return SERVE
        return Step("status", text, status=status, retry_after=retry_after)
    kind, _, arg = text.partition(":")
    if kind not in (*_BARE, *_WITH_ARG):
        raise ValueError(f"unknown fault step {text!r}")
    if arg and kind not in _WITH_ARG:
        raise ValueError(f"fault step {kind!r} takes no argument: {text!r}")
    if not arg and kind not in _BARE:
        raise ValueError(f"fault step {kind!r} needs an argument: {text!r}")
    if kind == "big":
        size, _, mode = arg.partition(":")
        if not size.isdigit() or mode not in ("", "chunked"):
            raise ValueError(f"use big:BYTES or big:BYTES:chunked, not {text!r}")
        return Step(kind, text, size=int(size), chunked=mode == "chunked")
    if kind in ENCODING_KINDS:
        name, _, script = arg.partition(":")
        encoding = name or DEFAULT_BODY_ENCODING
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r} in {text!r}") from None
        if script and not script.isdigit():
            raise ValueError(f"use {kind}:NAME or {kind}:NAME:SCRIPT_BYTES, not {text!r}")
        return Step(kind, text, size=int(script or 0), encoding=encoding)
    return Step(kind, text)


def parse_spec(spec: str) -> tuple[Step, ...]:
    steps = tuple(parse_step(part) for part in spec.split(","))
    if not steps:
        raise ValueError("empty fault spec")
    return steps


@dataclass
class FaultRule:
    """A path pattern and its sequence; each matching URL keeps its own place in the sequence."""

    pattern: re.Pattern[str]
    steps: tuple[Step, ...]
    served: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """``PATH_REGEX=SPEC`` (the last '=' splits: a regex may contain one, a spec never does)."""
        pattern, sep, spec = text.rpartition("=")
        if not sep or not pattern:
            raise ValueError(f"use PATH_REGEX=SPEC, not {text!r}")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad path regex {pattern!r}: {exc}") from None
        return cls(compiled, parse_spec(spec))

    def matches(self, uri: str) -> bool:
        return bool(self.pattern.search(uri) or self.pattern.search(unquote(uri)))

    def next_step(self, uri: str) -> Step:
        index = self.served.get(uri, 0)
        self.served[uri] = index + 1
        return self.steps[min(index, len(self.steps) - 1)]


@dataclass
class FaultPlan:
    """Every rule of a server, and what /robots.txt says."""

    rules: list[FaultRule] = field(default_factory=list)
    robots_disallow: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, faults: Sequence[str] = (), robots: Sequence[str] = ()) -> FaultPlan:
        plan = cls()
        for value in robots:
            kind, _, path = value.partition(":")
            if kind == "disallow":
                if not path.startswith("/"):
                    raise ValueError(f"use --robots disallow:/PATH, not {value!r}")
                plan.robots_disallow.append(path)
            else:
                plan.rules.append(FaultRule(re.compile(r"^/robots\.txt$"), parse_spec(value)))
        plan.rules.extend(FaultRule.parse(text) for text in faults)
        return plan

    def prepare(self) -> None:
        """Build what takes a moment (the gzip bomb) before the first request asks for it."""
        if any(step.kind == "gzipbomb" for rule in self.rules for step in rule.steps):
            gzip_bomb()

    def fault_for(self, uri: str) -> Step | None:
        """The server's seam (replay.server.Misbehaviour): this request's fault, None to serve it."""
        step = self.step_for(uri)
        return step if step.is_fault else None

    def step_for(self, uri: str) -> Step:
        for rule in self.rules:
            if rule.matches(uri):
                return rule.next_step(uri)
        return SERVE

    def robots(self, body: bytes) -> bytes:
        """robots.txt with the extra Disallow lines for every user agent."""
        if not self.robots_disallow:
            return body
        lines = "".join(f"Disallow: {path}\n" for path in self.robots_disallow).encode()
        group = _ANY_AGENT.search(body)
        if group is None:
            return b"User-agent: *\n" + lines + b"\n" + body
        return body[: group.end()] + lines + body[group.end() :]


# -- pure transformations --------------------------------------------------------------------


def recode(page: bytes, step: Step) -> tuple[str, bytes]:
    """A UTF-8 page as ``step`` serves it: (Content-Type header, body)."""
    encoding = step.encoding or DEFAULT_BODY_ENCODING
    text = _META_DECLARATION.sub("", page.decode("utf-8"))
    content_type = "text/html"
    if step.kind == "charset":
        content_type = f"text/html; charset={encoding}"
    elif step.kind == "liecharset":
        content_type, encoding = f"text/html; charset={encoding}", DEFAULT_BODY_ENCODING
    # the early <meta>, then an inline script, then the late <meta>: each where the step wants it
    script_bytes = max(step.size, SNIFF_WINDOW) if step.kind == "latemeta" else step.size
    head = "".join(
        (
            f'<meta charset="{encoding}">\n' if step.kind == "metacharset" else "",
            f'<script>window.__FX_STATE__ = "{"x" * script_bytes}";</script>\n' if script_bytes else "",
            f'<meta charset="{encoding}">\n' if step.kind == "latemeta" else "",
        )
    )
    at = match.end() if (match := _HEAD_OPEN.search(text)) else 0
    return content_type, (text[:at] + head + text[at:]).encode(encoding, "xmlcharrefreplace")


@cache
def gzip_bomb(inflated_mib: int = 1100) -> bytes:
    """A valid gzip stream of ``inflated_mib`` MiB of zeros in about 1 KB per MiB, built in well
    under a second: one 1 MiB block compressed after a full flush is the same bytes every time."""
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush(zlib.Z_FINISH)[:-8]  # the final block, without the (wrong) trailer
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(chunk, crc)
    trailer = struct.pack("<II", crc, (inflated_mib << 20) & 0xFFFFFFFF)
    return first + block * (inflated_mib - 1) + end + trailer


# -- the twisted.web side --------------------------------------------------------------------

#: ``record(status)`` writes the request's access-log line; status is an int or "drop".
Recorder = Callable[[int | str], None]


def respond(step: Step, request: Any, page: bytes | None, record: Recorder) -> Any:
    """Answer ``request`` as ``step`` says; ``page`` is what the site would have served (None:
    nothing there). Returns the body, or NOT_DONE_YET when the step writes (or never does)."""
    from twisted.web import server

    if step.kind == "status":
        request.setResponseCode(step.status)
        if step.retry_after is not None:
            request.setHeader(b"retry-after", str(step.retry_after).encode())
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        record(step.status)
        return f"<html><body><h1>{step.status}</h1></body></html>".encode()
    if step.kind == "drop":
        record("drop")
        request.channel.transport.loseConnection()
        return server.NOT_DONE_YET
    if step.kind == "big":
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if not step.chunked:
            request.setHeader(b"content-length", str(step.size).encode())
        record(200)
        request.registerProducer(_Filler(request, step.size), False)
        return server.NOT_DONE_YET
    if step.kind == "gzipbomb":
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-encoding", b"gzip")
        record(200)
        return gzip_bomb()
    if page is None:  # the remaining steps corrupt a page; there is none here
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        record(404)
        return b"<html><body><h1>404</h1></body></html>"
    if step.kind in ENCODING_KINDS:
        content_type, body = recode(page, step)
        request.setHeader(b"content-type", content_type.encode("latin-1"))
        record(200)
        return body
    # short and hang: the true length is promised, and not delivered
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"content-length", str(len(page)).encode())
    record(200)
    if step.kind == "short":
        request.write(page[: len(page) // 2])
        request.channel.transport.loseConnection()
    else:  # hang
        request.write(b"")  # sends the headers
    return server.NOT_DONE_YET


class _Filler:
    """A pull producer writing ``size`` bytes of filler in 64 KB chunks, so a 50 MB answer
    costs the server 64 KB of memory, and stops when the client goes away."""

    CHUNK = (b"<p>" + b"x" * 1017 + b"</p>\n") * 64  # 64 KiB

    def __init__(self, request: Any, size: int) -> None:
        self.request: Any = request
        self.left = size

    def resumeProducing(self) -> None:
        request = self.request
        if request is None:
            return
        if self.left <= 0:
            self.request = None
            request.unregisterProducer()
            request.finish()
            return
        data = self.CHUNK[: min(len(self.CHUNK), self.left)]
        self.left -= len(data)
        request.write(data)

    def stopProducing(self) -> None:
        self.request = None

    def pauseProducing(self) -> None:  # a pull producer is never paused, only not resumed
        pass
