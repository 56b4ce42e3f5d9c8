"""Every fixture page parses to its golden JSON, field by field, by both paths: the page's JSON
(``__NEXT_DATA__``) and, with the JSON left out, its HTML."""

import json
from pathlib import Path
from typing import Any

import pytest

from fx168 import site
from fx168.parsing.nextdata import differences
from replay.golden import fixture_pages, golden_path, parse_fixture, parse_page

PAGES = list(fixture_pages())
IDS = [str(path.relative_to(path.parents[2])) for path, _ in PAGES]
#: Fields a record may leave empty on some pages (an article without topics, a video's body …).
OPTIONAL = {
    "prev_url",
    "next_url",
    "topics",
    "symbols",
    "video",
    "summary",
    "image",
    "body",
    "author",
    "news_id",
    "source_tag",
    "source_logo",
    "published_datetime",
}


def kind_of(url: str) -> site.PageKind | None:
    return site.page_kind(url)


def test_the_fixture_site_has_every_page_the_issues_name() -> None:
    listing = {path.stem for path, _ in PAGES if path.parent.name == "article" and "search" in path.parts}
    assert listing == {f"page-{n}" for n in (1, 951, 952, 953, 954, 955, 1000)}
    kinds = [kind_of(url) for _, url in PAGES]
    assert kinds.count(site.PageKind.ARTICLE) >= 70
    assert kinds.count(site.PageKind.LEGACY_ARTICLE) >= 2
    assert kinds.count(site.PageKind.CHANNEL) >= 2
    assert kinds.count(site.PageKind.EXPRESS) >= 1


def _walk(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert sorted(actual) == sorted(expected), f"{where}: fields differ"
        for key in expected:
            _walk(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: lengths differ"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _walk(want, got, f"{where}[{index}]")
    else:
        assert actual == expected, where


@pytest.mark.parametrize(("page", "url"), PAGES, ids=IDS)
def test_page_parses_to_its_golden_json_from_its_json(page: Path, url: str) -> None:
    expected = json.loads(golden_path(page).read_text(encoding="utf-8"))
    record = parse_page(page, url)
    assert record.drift == []
    assert record.via == ("html" if kind_of(url) == site.PageKind.LEGACY_ARTICLE else "json")
    _walk(expected, parse_fixture(page, url), page.name)


@pytest.mark.parametrize(("page", "url"), PAGES, ids=IDS)
def test_the_html_path_gives_the_same_records(page: Path, url: str) -> None:
    """The same records as the crawl compares them (a time may be shown otherwise than the JSON
    gives it; the instant must be the same)."""
    from_html = parse_page(page, url, use_json=False)
    assert from_html.via == "html"
    assert differences(parse_page(page, url), from_html) is None


@pytest.mark.parametrize(("page", "url"), PAGES, ids=IDS)
def test_golden_records_have_no_empty_field(page: Path, url: str) -> None:
    """Every field the fixtures have a value for comes out non-empty (the pages have no gaps)."""

    def check(record: Any, where: str) -> None:
        if isinstance(record, dict):
            for key, value in record.items():
                assert value not in ("", None, [], {}) or key in OPTIONAL, f"{where}.{key} is empty"
                check(value, f"{where}.{key}")
        elif isinstance(record, list):
            for index, value in enumerate(record):
                check(value, f"{where}[{index}]")

    check(json.loads(golden_path(page).read_text(encoding="utf-8")), page.name)
