"""Every page recorded from the live site (fixtures/recorded, `fxcrawl fixtures record`) parses to
its golden JSON. A page recorded because it broke a parser has a golden saying why: its test
fails until the parser reads it (then `fxcrawl fixtures golden` writes what it reads, for review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.golden import RECORDED, golden_path, parse_fixture, recorded_pages

PAGES = list(recorded_pages())


@pytest.mark.parametrize(("page", "url"), PAGES, ids=[str(p.relative_to(RECORDED)) for p, _ in PAGES])
def test_a_recorded_page_parses_to_its_golden_json(page: Path, url: str) -> None:
    expected = json.loads(golden_path(page).read_text(encoding="utf-8"))
    assert "parse_error" not in expected, f"{page}: the parsers could not read it: {expected.get('parse_error')}"
    assert parse_fixture(page, url) == expected
