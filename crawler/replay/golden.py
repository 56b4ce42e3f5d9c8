"""Golden files: each fixture page's parsed records as JSON, kept beside the page for review.

``fxcrawl fixtures golden`` rewrites them from the parsers; a diff then shows exactly what a
parser change changes. Tests compare the parsers' output with them field by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crawler import site
from crawler.items import to_jsonable
from crawler.parsing import parse_article_page, parse_search_page
from crawler.replay.server import FIXTURE_SITE

GOLDEN_SUFFIX = ".expected.json"


def fixture_pages(root: Path = FIXTURE_SITE) -> Iterator[tuple[Path, str]]:
    """Every HTML page of the fixture site with the live URL it stands for."""
    for path in sorted(root.glob("search/*/*/page-*.html")):
        keyword, tab = path.parent.parent.name, path.parent.name
        page = int(path.stem.removeprefix("page-"))
        yield path, site.search_url(keyword, page, tab)
    for path in sorted(root.glob("article/*.html")):
        yield path, site.article_url(path.stem)


def parse_fixture(path: Path, url: str) -> dict[str, Any]:
    html = path.read_text(encoding="utf-8")
    parser = parse_search_page if site.parse_search_url(url) else parse_article_page
    return to_jsonable(parser(html, url), derived=False)


def golden_path(page: Path) -> Path:
    return page.with_name(page.stem + GOLDEN_SUFFIX)


def write_goldens(root: Path = FIXTURE_SITE) -> list[Path]:
    written = []
    for page, url in fixture_pages(root):
        target = golden_path(page)
        target.write_text(json.dumps(parse_fixture(page, url), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    return written
