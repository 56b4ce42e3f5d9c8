"""`fxcrawl check-live`: does the site still match its description?

One page of each kind is fetched politely (robots.txt obeyed, one request a second, the
crawler's own User-Agent) and read by the same parsers a crawl uses; the report says per page
kind which path parsed, how many records came out, which fields came out empty and what
drifted. Anything but a clean read is drift: the command exits non-zero, naming the kind.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any
from urllib.parse import urlsplit

from protego import Protego
from w3lib.url import safe_url_string

from crawler import settings as project_settings
from fx168 import site
from fx168.parsing import (
    PageParseError,
    parse_article_page,
    parse_channel_api,
    parse_channel_page,
    parse_express_page,
    parse_search_page,
)

#: Fields a record of each kind must not leave empty.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "SearchHitItem": ("url", "title", "snippet", "source", "date"),
    "ArticleItem": ("title", "source", "published", "body"),
    "ChannelEntryItem": ("url", "title", "published"),
    "FastNewsItem": ("text", "published"),
}
#: A video article has no body by design.
_OPTIONAL_FOR_VIDEO = ("body",)


class BadBaseURL(ValueError):
    """The origin to check is not an http(s) origin."""


@dataclass
class CheckRow:
    kind: str
    url: str
    status: int | None = None
    via: str = ""
    records: int = 0
    empty: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.records > 0 and not self.empty and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "via": self.via,
            "records": self.records,
            "empty": self.empty,
            "problems": self.problems,
            "ok": self.ok,
        }


class PoliteFetcher:
    """GETs that obey the site's robots.txt and leave ``delay`` seconds between requests."""

    def __init__(self, base_url: str, timeout: float, delay: float = project_settings.DOWNLOAD_DELAY) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.delay = delay
        self.last = 0.0
        self.robots: dict[str, Protego | None] = {}
        self.headers = {"User-Agent": project_settings.USER_AGENT, **project_settings.DEFAULT_REQUEST_HEADERS}

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        if not self.allowed(url):
            raise PermissionError(f"robots.txt disallows {url}")
        return self._get(url, headers)

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            try:
                status, _, body = self._get(origin + "/robots.txt")
            except OSError:
                status, body = 0, ""
            # RFC 9309: a robots.txt that is missing (4xx) allows everything; one that fails does not
            self.robots[origin] = (
                Protego.parse(body)
                if status == 200
                else None
                if 400 <= status < 500
                else Protego.parse("User-agent: *\nDisallow: /")
            )
        rules = self.robots[origin]
        return rules is None or rules.can_fetch(url, project_settings.USER_AGENT)

    def _get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        wait = self.last + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        request = urllib.request.Request(safe_url_string(url), headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, answer_headers, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            status, answer_headers, body = exc.code, dict(exc.headers), exc.read()
        finally:
            self.last = time.monotonic()
        return status, answer_headers, body.decode("utf-8", errors="replace")


def check_site(
    base_url: str,
    *,
    keyword: str = "现代",
    channel: str = "001",
    timeout: float = 30.0,
    delay: float = project_settings.DOWNLOAD_DELAY,
) -> list[CheckRow]:
    """One row per page kind: the search page, a channel list, an article it links, 快讯, the API."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadBaseURL(f"--base-url must be an http(s) origin, not {base_url!r}")
    fetch = PoliteFetcher(base_url, timeout, delay)
    base = base_url.rstrip("/")
    live = base == site.CANONICAL_BASE
    api_base = site.API_BASE if live else base
    rows: list[CheckRow] = []

    search = _check(fetch, "search", site.search_url(keyword, 1, base=base), parse_search_page, lambda p: p.hits)
    rows.append(search.row)
    channel_check = _check(fetch, "channel", site.channel_url(channel, base), parse_channel_page, lambda p: p.entries)
    rows.append(channel_check.row)
    article_url = next(
        (entry.url for entry in channel_check.records if site.article_ref(entry.url)),
        next((hit.url for hit in search.records if site.article_ref(hit.url)), None),
    )
    if article_url is None:
        rows.append(CheckRow("article", "", problems=["no article link found to check"]))
    else:
        rows.append(
            _check(fetch, "article", site.fetch_url(article_url, base), parse_article_page, lambda p: [p.article]).row
        )
    rows.append(_check(fetch, "express", site.express_url(base), parse_express_page, lambda p: p.items).row)
    rows.append(_check_api(fetch, base, api_base, channel))
    return rows


@dataclass
class _Checked:
    row: CheckRow
    records: list[Any]


def _check(
    fetch: PoliteFetcher,
    kind: str,
    url: str,
    parse: Callable[[str, str], Any],
    records_of: Callable[[Any], Sequence[Any]],
) -> _Checked:
    row = CheckRow(kind, url)
    try:
        row.status, _, body = fetch.get(url)
    except (OSError, PermissionError) as exc:
        row.problems.append(f"fetch failed: {exc}")
        return _Checked(row, [])
    if row.status != 200:
        row.problems.append(f"HTTP {row.status}")
        return _Checked(row, [])
    try:
        page = parse(body, url)
    except PageParseError as exc:
        row.via = "none"
        row.problems.append(exc.reason)
        return _Checked(row, [])
    records = list(records_of(page))
    row.via, row.records = page.via, len(records)
    row.problems.extend(page.drift)
    row.empty = empty_fields(records)
    return _Checked(row, records)


def _check_api(fetch: PoliteFetcher, base: str, api_base: str, channel: str) -> CheckRow:
    url = site.api_channel_url(channel, 1, base=api_base)
    row = CheckRow("api", url)
    try:
        status, headers, _ = fetch.get(site.api_token_url(base))
        token = next((value for key, value in headers.items() if key.lower() == site.API_TOKEN_HEADER.lower()), "")
        if status != 200 or not token:
            row.status = status
            row.problems.append(f"no {site.API_TOKEN_HEADER} token from {site.API_TOKEN_PATH} (HTTP {status})")
            return row
        row.status, _, body = fetch.get(url, site.api_headers(token, site.CANONICAL_BASE))
    except (OSError, PermissionError) as exc:
        row.problems.append(f"fetch failed: {exc}")
        return row
    try:
        page = parse_channel_api(body, url, channel, 1, base)
    except PageParseError as exc:
        row.via = "none"
        row.problems.append(exc.reason)
        return row
    row.via, row.records = page.via, len(page.entries)
    row.empty = empty_fields(page.entries)
    return row


def empty_fields(records: Sequence[Any]) -> list[str]:
    """The required fields that came out empty in any of the records, each named once."""
    empty: dict[str, None] = {}
    for record in records:
        if not is_dataclass(record):
            continue
        names = REQUIRED_FIELDS.get(type(record).__name__, ())
        if getattr(record, "kind", "") == "video":
            names = tuple(name for name in names if name not in _OPTIONAL_FOR_VIDEO)
        for f in fields(record):
            if f.name in names and not getattr(record, f.name):
                empty[f.name] = None
    return list(empty)


def print_report(rows: Sequence[CheckRow]) -> None:
    print(f"{'page kind':<10} {'status':>6} {'path':<5} {'records':>7}  {'result'}")
    for row in rows:
        result = (
            "ok"
            if row.ok
            else "DRIFT: " + "; ".join([*(f"empty {name}" for name in row.empty), *row.problems] or ["no records"])
        )
        print(f"{row.kind:<10} {row.status or '-':>6} {row.via or '-':<5} {row.records:>7}  {result}")
