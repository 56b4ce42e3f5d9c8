"""Every fixture page parses to its golden JSON, field by field."""

import json
from pathlib import Path
from typing import Any

import pytest

from crawler.replay.golden import fixture_pages, golden_path, parse_fixture

PAGES = list(fixture_pages())


def test_the_fixture_site_has_every_page_the_issue_names() -> None:
    listing = {path.stem for path, _ in PAGES if path.parent.name == "article" and "search" in path.parts}
    assert listing == {f"page-{n}" for n in (1, 951, 952, 953, 954, 955, 1000)}
    assert sum(1 for path, _ in PAGES if path.parent.name == "article" and "search" not in path.parts) == 68


def _empty(value: Any) -> bool:
    return value in ("", None, [], {})


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


@pytest.mark.parametrize(("page", "url"), PAGES, ids=[str(path.relative_to(path.parents[2])) for path, _ in PAGES])
def test_page_parses_to_its_golden_json(page: Path, url: str) -> None:
    expected = json.loads(golden_path(page).read_text(encoding="utf-8"))
    actual = parse_fixture(page, url)
    _walk(expected, actual, page.name)


@pytest.mark.parametrize(("page", "url"), PAGES, ids=[str(path.relative_to(path.parents[2])) for path, _ in PAGES])
def test_golden_records_have_no_empty_field(page: Path, url: str) -> None:
    """Every field the fixtures have a value for comes out non-empty (the pages have no gaps)."""

    def check(record: Any, where: str) -> None:
        if isinstance(record, dict):
            for key, value in record.items():
                assert not _empty(value) or key in ("prev_url", "next_url"), f"{where}.{key} is empty"
                check(value, f"{where}.{key}")
        elif isinstance(record, list):
            for index, value in enumerate(record):
                check(value, f"{where}[{index}]")

    check(json.loads(golden_path(page).read_text(encoding="utf-8")), page.name)
