"""Golden files: each fixture page's parsed records as JSON, kept beside the page for review.

``fxcrawl fixtures golden`` rewrites them from the parsers; a diff then shows exactly what a
parser change changes. Tests compare the parsers' output with them field by field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fx168 import site
from fx168.items import to_jsonable
from fx168.parsing import (
    PageParseError,
    parse_article_page,
    parse_channel_page,
    parse_express_page,
    parse_search_page,
)
from replay.server import FIXTURE_SITE

GOLDEN_SUFFIX = ".expected.json"
#: Pages recorded from the live site (``fxcrawl fixtures record``), by name, laid out as the site is.
RECORDED = FIXTURE_SITE.parent / "recorded"


def fixture_pages(root: Path = FIXTURE_SITE) -> Iterator[tuple[Path, str]]:
    """Every page of the fixture site with the live URL it stands for."""
    for path in sorted(root.glob("search/*/*/page-*.html")):
        keyword, tab = path.parent.parent.name, path.parent.name
        page = int(path.stem.removeprefix("page-"))
        yield path, site.search_url(keyword, page, tab)
    for path in sorted(root.glob("article/*.html")):
        yield path, site.article_url(path.stem)
    for path in sorted(root.glob("legacy/*/*/*.html")):
        yield path, site.legacy_article_url(path.parent.parent.name, path.parent.name, path.stem)
    for path in sorted(root.glob("info/*.html")):
        yield path, site.channel_url(path.stem)
    if (express := root / "express" / "index.html").is_file():
        yield express, site.express_url()
    for path in sorted(root.glob("express/fastnews/*.html")):
        yield path, site.fast_news_url(path.stem)


#: The parser of each page kind (a fast news permalink reads as the 快讯 page does).
PARSERS: dict[site.PageKind, Callable[..., Any]] = {
    site.PageKind.SEARCH: parse_search_page,
    site.PageKind.ARTICLE: parse_article_page,
    site.PageKind.LEGACY_ARTICLE: parse_article_page,
    site.PageKind.CHANNEL: parse_channel_page,
    site.PageKind.EXPRESS: parse_express_page,
}


def parse_page(path: Path, url: str, *, use_json: bool = True) -> Any:
    """The page record its parser gives (``use_json=False``: from the HTML alone)."""
    kind = site.page_kind(url)
    if kind is None:
        raise ValueError(f"no parser for {url}")
    return PARSERS[kind](path.read_text(encoding="utf-8"), url, use_json=use_json)


def parse_fixture(path: Path, url: str, *, use_json: bool = True) -> dict[str, Any]:
    """The page's records as the golden file keeps them: what the page showed, not how it was read."""
    return to_jsonable(parse_page(path, url, use_json=use_json), derived=False, meta=False)


def golden_path(page: Path) -> Path:
    return page.with_name(page.stem + GOLDEN_SUFFIX)


def write_goldens(root: Path = FIXTURE_SITE) -> list[Path]:
    return _write(fixture_pages(root), parse_fixture)


def _write(pages: Iterable[tuple[Path, str]], golden: Callable[[Path, str], dict[str, Any]]) -> list[Path]:
    """Each page's golden JSON beside it; the files written."""
    written = []
    for page, url in pages:
        target = golden_path(page)
        target.write_text(json.dumps(golden(page, url), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    return written


def recorded_pages(root: Path = RECORDED) -> Iterator[tuple[Path, str]]:
    """Every recorded page with its live URL (from each recording's ``pages.json``)."""
    for manifest in sorted(root.glob("*/pages.json")):
        for relative, entry in sorted(json.loads(manifest.read_text(encoding="utf-8")).items()):
            yield manifest.parent / relative, entry["url"]


def recorded_golden(page: Path, url: str) -> dict[str, Any]:
    """A recorded page's golden: its records, or why the parsers could not read it (a page that
    breaks a parser is recorded all the same: that is what it is recorded for)."""
    try:
        return parse_fixture(page, url)
    except (PageParseError, ValueError) as exc:
        return {"parse_error": str(getattr(exc, "reason", exc))}


def write_recorded_goldens(root: Path = RECORDED) -> list[Path]:
    return _write(recorded_pages(root), recorded_golden)
