"""Downloader middlewares that keep a crawl correct when the site or the network misbehaves.

- ``RetryAfterMiddleware`` is Scrapy's RetryMiddleware that honours ``Retry-After`` on 429 and
  503: no request goes to that host until the delay (at most FXCRAWL_RETRY_AFTER_MAX seconds)
  has passed, the retry included.
- ``EncodingMiddleware`` decides a page's encoding when the site does not declare one the body
  agrees with: a ``<meta>`` charset anywhere in <head> (w3lib looks at the first 4 KB only),
  else strict UTF-8, else charset-normalizer choosing among the plausible Chinese encodings
  (FXCRAWL_DETECT_ENCODINGS). FXCRAWL_FORCE_ENCODING, when set, overrides every declaration.
- ``RobotsTxtStatusMiddleware`` reads the status of the robots.txt Scrapy's RobotsTxtMiddleware
  fetched, as RFC 9309 says: a 4xx allows everything, but a 5xx (or 429), a timeout or a
  dropped connection disallows everything on that host for the crawl, where Scrapy alone would
  allow everything.

Each counts what it does under ``fxcrawl/…`` in the crawl's stats.
"""

from __future__ import annotations

import codecs
import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from charset_normalizer import from_bytes
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response, TextResponse
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import sleep
from scrapy.utils.httpobj import urlparse_cached
from w3lib.encoding import http_content_type_encoding, read_bom, resolve_encoding

logger = logging.getLogger(__name__)


# -- Retry-After ------------------------------------------------------------------------------


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) in seconds from now; None if absent or unreadable."""
    if not value:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """Retries as RetryMiddleware does; a 429 or 503 that says ``Retry-After`` also holds every
    request to its host (the retry among them) until then, waiting at most FXCRAWL_RETRY_AFTER_MAX."""

    stats: StatsCollector

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.max_wait = settings.getfloat("FXCRAWL_RETRY_AFTER_MAX")
        self.codes = {int(code) for code in settings.getlist("FXCRAWL_RETRY_AFTER_CODES")}
        self.not_before: dict[str, float] = {}  # host -> monotonic time its next request may go

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        middleware = super().from_crawler(crawler)
        assert crawler.stats is not None
        middleware.stats = crawler.stats
        return middleware

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        host = urlparse_cached(request).netloc
        until = self.not_before.get(host)
        if until is None:
            return
        wait = until - time.monotonic()
        if wait <= 0:
            del self.not_before[host]
            return
        self.stats.inc_value("fxcrawl/retry_after/delayed_requests")
        logger.debug("holding %s for %.1f s: its host asked for a pause (Retry-After)", request.url, wait)
        deadline = time.monotonic() + wait
        while self.crawler.crawling and (left := deadline - time.monotonic()) > 0:
            await sleep(min(left, 0.5))  # in steps, so a crawl told to stop is not held up

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if (
            response.status in self.codes
            and response.status in self.retry_http_codes
            and not request.meta.get("dont_retry", False)
        ):
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                self._pause(request, response.status, asked)
        return super().process_response(request, response)

    def _pause(self, request: Request, status: int, asked: float) -> None:
        wait = min(asked, self.max_wait)
        host = urlparse_cached(request).netloc
        self.stats.inc_value("fxcrawl/retry_after/received")
        self.stats.inc_value("fxcrawl/retry_after/wait_seconds", round(wait, 3))  # type: ignore[arg-type]  # stats hold any number; Scrapy annotates int
        if asked > self.max_wait:
            self.stats.inc_value("fxcrawl/retry_after/capped")
            logger.warning(
                "%s answered %d with Retry-After %.0f s; waiting only FXCRAWL_RETRY_AFTER_MAX = %.0f s",
                request.url,
                status,
                asked,
                self.max_wait,
            )
        else:
            logger.info("%s answered %d with Retry-After %.0f s: pausing %s", request.url, status, asked, host)
        self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + wait)


# -- encodings --------------------------------------------------------------------------------

_HEAD_END = re.compile(rb"</head\s*>|<body[\s>]", re.I)
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
#: How far into a document without </head> or <body> a <meta> charset is looked for.
HEAD_LIMIT = 256 * 1024


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _codec(name: str) -> str | None:
    """The Python codec a label means, as browsers read labels (w3lib: gbk is gb18030 …)."""
    resolved = resolve_encoding(name)
    return codecs.lookup(resolved).name if resolved else None


def meta_charset(body: bytes) -> str | None:
    """The codec named by the first <meta> charset declaration anywhere in <head>."""
    end = _HEAD_END.search(body, 0, HEAD_LIMIT)
    for match in _META_CHARSET.finditer(body, 0, end.start() if end else HEAD_LIMIT):
        if codec := _codec(match.group(1).decode("ascii")):
            return codec
    return None


class EncodingMiddleware:
    """Gives TextResponses an explicit encoding when the declared one is missing or wrong."""

    def __init__(self, stats: StatsCollector, force: str | None, candidates: list[str]) -> None:
        self.stats = stats
        self.force = force
        self.candidates = candidates

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EncodingMiddleware:
        settings = crawler.settings
        force = settings.get("FXCRAWL_FORCE_ENCODING") or None
        if force is not None and _codec(force) is None:
            raise ValueError(f"FXCRAWL_FORCE_ENCODING: unknown encoding {force!r}")
        candidates = []
        for name in settings.getlist("FXCRAWL_DETECT_ENCODINGS"):
            if (codec := _codec(name)) is None:
                raise ValueError(f"FXCRAWL_DETECT_ENCODINGS: unknown encoding {name!r}")
            candidates.append(codec)
        assert crawler.stats is not None
        return cls(crawler.stats, _codec(force) if force else None, candidates)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if not isinstance(response, TextResponse) or not response.body:
            return response
        encoding, how = self.decide(response)
        self.stats.inc_value(f"fxcrawl/encoding/{how}")
        if encoding is None:
            return response
        logger.debug("%s decoded as %s (%s)", response.url, encoding, how)
        return response.replace(encoding=encoding)

    def decide(self, response: TextResponse) -> tuple[str | None, str]:
        """(encoding to impose or None to leave Scrapy's choice, how it was decided)."""
        body = response.body
        if self.force:
            return self.force, "forced"
        if read_bom(body)[0]:
            return None, "bom"
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        if declared := http_content_type_encoding(content_type):
            if _decodes(body, declared):
                return None, "header"
            self.stats.inc_value("fxcrawl/encoding/header_mismatch")
            logger.warning("%s is not %s as its Content-Type says: detecting its encoding", response.url, declared)
        if (meta := meta_charset(body)) and _decodes(body, meta):
            return meta, "meta"
        if _decodes(body, "utf-8"):
            return "utf-8", "utf8"
        if detected := self.detect(body):
            return detected, "detected"
        logger.warning("%s: no encoding among %s fits; decoding with replacements", response.url, self.candidates)
        return None, "undetected"

    def detect(self, body: bytes) -> str | None:
        """charset-normalizer's pick among the candidates; ties (short texts read as well in GB18030
        as in Big5) go to the candidate listed first."""
        matches = [m for m in from_bytes(body, cp_isolation=self.candidates) if _decodes(body, m.encoding)]
        if not matches:
            return None

        def rank(match: Any) -> tuple[float, float, int]:
            codec = _codec(match.encoding)
            order = self.candidates.index(codec) if codec in self.candidates else len(self.candidates)
            return round(match.chaos, 3), -round(match.coherence, 3), order

        return _codec(min(matches, key=rank).encoding)


# -- robots.txt -------------------------------------------------------------------------------


class RobotsTxtStatusMiddleware:
    """RFC 9309 section 2.3.1 on top of Scrapy's RobotsTxtMiddleware, through public hooks only.

    Scrapy fetches each host's robots.txt itself (``ROBOTSTXT_PARSER``, Protego, reads the body)
    and allows everything when it cannot. This middleware sees that fetch go by and reads its
    status: a 2xx is obeyed as Scrapy parses it; a 4xx (or a redirect left unfollowed) means no
    robots.txt, so no restriction, whatever the error page says (its body is not parsed); a 5xx,
    a 429 or no answer at all (timeout, dropped connection, once retries are spent) means
    "unreachable", and then every URL on that host is dropped for the crawl.

    Its ``process_request`` must run after Scrapy's (priority above 100), when the host's
    robots.txt has been read. The refusal is not worded "Forbidden by robots.txt": a host whose
    robots.txt was unreachable is failed and retried by a later run, not settled as forbidden.
    """

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured("ROBOTSTXT_OBEY is off")
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.unreachable: dict[str, str] = {}  # host -> why its robots.txt could not be read

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtStatusMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get("dont_obey_robotstxt"):
            return
        host = urlparse_cached(request).netloc
        if host in self.unreachable:
            self.stats.inc_value("robotstxt/forbidden")
            self.stats.inc_value("fxcrawl/robotstxt/forbidden_unreachable")
            raise IgnoreRequest(f"robots.txt unreachable ({self.unreachable[host]}): every URL on {host} disallowed")

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if not is_robots_request(request):
            return response
        status = response.status
        if status >= 500 or status == 429:
            self._unreachable(urlparse_cached(request).netloc, f"HTTP {status}")
            return response.replace(body=b"")  # Scrapy parses nothing; process_request refuses the host
        if status >= 300:  # 4xx, or a redirect left unfollowed: no robots.txt, no restriction
            logger.info(
                "robots.txt of %s answered %d: every URL on it is allowed", urlparse_cached(request).netloc, status
            )
            return response.replace(body=b"")
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Spider | None = None) -> None:
        if is_robots_request(request) and not isinstance(exception, IgnoreRequest):
            why = f"{type(exception).__name__}: {exception}" if str(exception) else type(exception).__name__
            self._unreachable(urlparse_cached(request).netloc, why)

    def _unreachable(self, netloc: str, why: str) -> None:
        self.unreachable[netloc] = why
        self.stats.inc_value("fxcrawl/robotstxt/unreachable")
        logger.error(
            "robots.txt of %s could not be read (%s): disallowing every URL on it for this crawl (RFC 9309)",
            netloc,
            why,
        )


def is_robots_request(request: Request) -> bool:
    """The request Scrapy's RobotsTxtMiddleware makes for a host's robots.txt (or its retry)."""
    return bool(request.meta.get("dont_obey_robotstxt")) and urlparse_cached(request).path == "/robots.txt"
