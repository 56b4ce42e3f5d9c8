"""A page's data as JSON (Next.js ``__NEXT_DATA__``), and reading a page by both paths.

Each page parser reads the JSON first and the HTML second. Both are read whenever both are
there: the JSON gives the record, the HTML is the fallback (older pages, the legacy host, a
redesign that drops the JSON) and the check (a page whose two halves disagree is drift the
user should hear about, even though a record came out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from lxml import etree

from fx168 import site
from fx168.parsing.errors import PageParseError
from fx168.parsing.text import MarkupError, document

_NEXT_DATA_OPEN = re.compile(r"<script\b[^>]*\bid\s*=\s*[\"']?__NEXT_DATA__[\"']?[^>]*>", re.IGNORECASE)
_SCRIPT_CLOSE = re.compile(r"</script\s*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SplitPage:
    """A page taken apart: its ``__NEXT_DATA__`` (None when it has none that parses) and the
    rest of its markup, which the HTML path reads without parsing the JSON's text as HTML."""

    data: Any | None
    markup: str


def split_page(html: str) -> SplitPage:
    """Find the ``__NEXT_DATA__`` script by its id (a string search, not a scan of every tag)."""
    at = html.find("__NEXT_DATA__")
    while at != -1:
        start = html.rfind("<script", 0, at)
        opening = _NEXT_DATA_OPEN.match(html, start) if start != -1 else None
        if opening is not None and opening.end() > at:
            close = _SCRIPT_CLOSE.search(html, opening.end())
            if close is None:
                return SplitPage(None, html)
            try:
                data = json.loads(html[opening.end() : close.start()])
            except ValueError:
                data = None
            return SplitPage(data, html[:start] + html[close.end() :])
        at = html.find("__NEXT_DATA__", at + 1)
    return SplitPage(None, html)


def next_data(html: str) -> Any | None:
    """The page's ``__NEXT_DATA__`` as Python data; None when it has none, or none that parses."""
    return split_page(html).data


#: The reason prefixes parsers put in a page's ``drift`` list (and the stats count per page kind).
JSON_MISSING = "json_missing"
DISAGREE = "disagree"
#: The reason of a page from which neither path gave a record.
MARKUP_CHANGED = "markup changed"

T = TypeVar("T")


class ShapeError(ValueError):
    """The JSON is there but not in the shape the site description says (a key is gone)."""


def dig(data: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested mappings; ShapeError naming the first key that is missing."""
    node = data
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise ShapeError(f"no {'.'.join(path[: depth + 1])}")
        node = node[key]
    return node


def dig_any(data: Any, paths: Sequence[Sequence[str]]) -> Any:
    """The value at the first of ``paths`` that the data has (a site build may move its data)."""
    errors = []
    for path in paths:
        try:
            return dig(data, path)
        except ShapeError as exc:
            errors.append(str(exc))
    raise ShapeError("; ".join(errors))


def required(item: Mapping[str, Any], *keys: str) -> None:
    """ShapeError unless every key is in ``item``."""
    if not isinstance(item, Mapping):
        raise ShapeError(f"expected an object, found {type(item).__name__}")
    if missing := [key for key in keys if key not in item]:
        raise ShapeError(f"no {', '.join(missing)}")


def read_both(
    page: SplitPage | str,
    url: str,
    from_json: Callable[[Any], T] | None,
    from_html: Callable[[], T],
    *,
    use_json: bool = True,
    verify: bool = True,
) -> tuple[T, str, list[str]]:
    """(record, via, drift): the record from the JSON when it reads, else from the HTML.

    ``drift`` says what differed from the site description: the JSON missing or misshapen
    while the HTML parsed, or (``verify``) the two paths giving different records, or the HTML
    none. Without ``verify`` a page whose JSON reads is not parsed as HTML at all: the crawl
    verifies a sample of pages, the tests every page. A page from which neither path gives a
    record raises PageParseError (MARKUP_CHANGED).
    """
    drift: list[str] = []
    from_data: T | None = None
    json_error = ""
    if use_json and from_json is not None:
        data = (page if isinstance(page, SplitPage) else split_page(page)).data
        if data is None:
            json_error = "no __NEXT_DATA__"
        else:
            try:
                from_data = from_json(data)
            except ShapeError as exc:
                json_error = str(exc)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:  # a shape never seen
                json_error = f"unexpected JSON ({exc.__class__.__name__}: {exc})"
    if from_data is not None and not verify:
        return from_data, "json", drift
    try:
        from_markup: T | None = from_html()
        html_error = ""
    except UnreadablePage as exc:
        if from_data is None:
            raise
        from_markup, html_error = None, exc.reason
    except PageParseError as exc:
        from_markup, html_error = None, exc.reason
    if from_data is not None:
        if from_markup is None:
            drift.append(f"{DISAGREE}: the HTML gives no record ({html_error})")
        elif (differ := differences(from_data, from_markup)) is not None:
            drift.append(f"{DISAGREE}: {differ}")
        return from_data, "json", drift
    if from_markup is not None:
        if json_error:
            drift.append(f"{JSON_MISSING}: {json_error}")
        return from_markup, "html", drift
    reasons = "; ".join(r for r in (f"JSON: {json_error}" if json_error else "", f"HTML: {html_error}") if r)
    raise PageParseError(url, f"{MARKUP_CHANGED}: {reasons}")


class UnreadablePage(PageParseError):
    """The HTML cannot be read to its end (a page built to defeat the parser): without the
    JSON it is rejected for that reason, not reported as a redesign of the site."""


def html_tree(markup: str, url: str) -> etree._Element:
    """The page's HTML as a tree, for the HTML path; UnreadablePage when it cannot be read whole."""
    try:
        return document(markup)
    except MarkupError as exc:
        raise UnreadablePage(url, str(exc)) from None


def differences(a: Any, b: Any, where: str = "") -> str | None:
    """Where two records first differ ('hits[3].title'), or None when they are equal
    (page-level fields such as ``via`` aside). Two links to one page are equal however each
    is spelt (a keyword-id link and a bare-id link to one article)."""
    if a == b:  # the common case, answered without a walk
        return None
    if is_dataclass(a) and is_dataclass(b) and type(a) is type(b):
        for f in fields(a):
            if f.metadata.get("parse_meta"):
                continue
            twin = f.metadata.get("shown")  # shown differently, the same instant: the same
            if twin and getattr(a, twin) and getattr(a, twin) == getattr(b, twin):
                continue
            if (found := differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")) is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where.lstrip('.')} ({len(a)} vs {len(b)} entries)"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if (found := differences(x, y, f"{where}[{index}]")) is not None:
                return found
        return None
    if a == b or (isinstance(a, str) and isinstance(b, str) and _same_link(a, b)):
        return None
    return where.lstrip(".") or "value"


def _same_link(a: str, b: str) -> bool:
    if not (a.startswith(("http://", "https://")) and b.startswith(("http://", "https://"))):
        return False
    parts = urlsplit(a)
    if parts.netloc != urlsplit(b).netloc:
        return False
    base = f"{parts.scheme}://{parts.netloc}"
    return site.canonical_url(a, base) == site.canonical_url(b, base)


_SITE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII)


def machine_time(text: str | None) -> str:
    """A machine-readable time as ISO 8601 with its offset (see ``iso_time``); any other text
    (a visible '3小时前') comes back as it is, for the date reader to resolve."""
    return iso_time(text) or (text or "").strip()


def iso_time(text: str | None) -> str | None:
    """'YYYY-MM-DD HH:MM[:SS]' or ISO 8601 as ISO 8601 with its offset: the JSON's times are
    Beijing time (+08:00), as is a <time datetime> without an offset. None for any other text."""
    match = _SITE_TIME.fullmatch((text or "").strip())
    if match is None:
        return None
    day, clock, seconds, offset = match.groups()
    offset = "+00:00" if offset == "Z" else offset or site.SITE_UTC_OFFSET
    if len(offset) == 5:
        offset = f"{offset[:3]}:{offset[3:]}"
    return f"{day}T{clock}:{seconds or '00'}{offset}"
