"""The bundled search page renders to the seed's text, line for line."""

from conftest import SEARCH_953, render_text, seed_lines

from replay.render import highlight_segments, pagination_cells


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


def test_json_in_a_script_element_is_escaped_as_nextjs_does() -> None:
    import json

    from replay.render import script_json

    value = {"html": "<p>a & b</p>\u2028", "n": 1}
    text = script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert "\\u003cp\\u003e" in text and json.loads(text) == value


def test_inline_markup_becomes_the_live_links_and_keeps_its_text() -> None:
    from replay.render import block_html, inline_html, plain_text

    text = "{{home|FX168财经}}讯 {{quote:BINBTC|比特币}}涨至**6万美元**<附近>{{topic:86|比特日报}}"
    assert inline_html(text) == (
        '<a class="_internal_link_" href="https://www.fx168news.com/">FX168财经</a>讯 '
        '<a class="_internal_link_" href="https://www.fx168news.com/quote/BINBTC">比特币</a>涨至'
        "<strong>6万美元</strong>&lt;附近&gt;"
        '<a data-key="topic" data-value="86" class="topic-entity">#比特日报#</a>'
    )
    assert plain_text(text) == "FX168财经讯 比特币涨至6万美元<附近>#比特日报#"
    assert block_html({"h3": "小标题", "id": "6eobk"}) == '<h3 id="6eobk">小标题</h3>'
    assert block_html({"credit": "coindesk"}) == "<p>（来源：coindesk）</p>"
