"""The bundled search page renders to the seed's text, line for line."""

from conftest import SEARCH_953, render_text, seed_lines

from crawler.replay.render import highlight_segments, pagination_cells


def test_search_page_953_renders_to_the_seed_line_for_line() -> None:
    rendered = render_text(SEARCH_953.read_text(encoding="utf-8"))
    seed = seed_lines()
    for number, (got, want) in enumerate(zip(rendered, seed, strict=False), start=1):
        assert got == want, f"line {number} differs"
    assert len(rendered) == len(seed) == 239


def test_every_keyword_character_is_its_own_highlighted_segment() -> None:
    segments = highlight_segments("推进中国式现代化,建设现代中央银行,出现问题", "现代")
    assert segments == [
        {"text": "推进中国式", "hl": False},
        {"text": "现", "hl": True},
        {"text": "代", "hl": True},
        {"text": "化,建设", "hl": False},
        {"text": "现", "hl": True},
        {"text": "代", "hl": True},
        {"text": "中央银行,出现问题", "hl": False},
    ]


def _numbers(current: int, last: int) -> list[str]:
    cells = pagination_cells(current, last, lambda n: f"/p{n}")
    return ["•••" if c.kind == "ellipsis" else f"[{c.number}]" if c.kind == "current" else str(c.number) for c in cells]


def test_pagination_widget_matches_the_seed_and_both_ends() -> None:
    assert _numbers(953, 1000) == ["1", "•••", "951", "952", "[953]", "954", "955", "•••", "1000"]
    assert _numbers(1, 1000) == ["[1]", "2", "3", "4", "5", "•••", "1000"]
    assert _numbers(1000, 1000) == ["1", "•••", "996", "997", "998", "999", "[1000]"]
    assert _numbers(3, 1000) == ["1", "2", "[3]", "4", "5", "•••", "1000"]
    assert _numbers(2, 3) == ["1", "[2]", "3"]


def test_the_bundled_seed_is_the_shared_seed() -> None:
    import pytest
    from conftest import ROOT, SEED

    shared = ROOT.parent / "shared" / "seed" / SEED.name
    if not shared.exists():
        pytest.skip(f"no shared seed beside this checkout ({shared})")
    assert SEED.read_bytes() == shared.read_bytes()
