"""The search page parser against the seed itself (an oracle independent of the golden files)."""

import pytest
from conftest import SEARCH_953, SEARCH_953_URL, seed_lines

from fx168.parsing import PageParseError, parse_search_page
from replay.server import FIXTURE_SITE


def seed_results() -> list[dict]:
    """The seed's ten results, read from its text: title, go, lg, ..., snippet lines, lg, ..., source, date."""
    lines = seed_lines()
    start, end = lines.index("文章") + 1, lines.index("上一页")
    results, i = [], start
    while i < end:
        title = lines[i]
        assert lines[i + 1 : i + 4] == ["go", "lg", "..."]
        j = i + 4
        while lines[j] != "lg":
            j += 1
        fragments = lines[i + 4 : j]
        results.append(
            {
                "title": title,
                "snippet": "".join(fragments),
                "highlights": sum(1 for f in fragments if f == "现"),
                "source": lines[j + 2],
                "date": lines[j + 3],
            }
        )
        i = j + 4
    return results


@pytest.fixture(scope="module")
def page():
    return parse_search_page(SEARCH_953.read_text(encoding="utf-8"), SEARCH_953_URL)


def test_results_are_the_seed_results_exactly(page) -> None:
    expected = seed_results()
    assert len(page.hits) == len(expected) == 10
    for rank, (hit, want) in enumerate(zip(page.hits, expected, strict=True), start=1):
        assert hit.rank == rank
        assert hit.title == want["title"]
        assert hit.snippet == want["snippet"]
        assert hit.highlights == ["现代"] * want["highlights"]
        assert hit.source == want["source"]
        assert hit.date == want["date"] == "2023-02-24"
        assert (hit.keyword, hit.tab, hit.page) == ("现代", "article", 953)
        assert hit.url.startswith("https://www.fx168news.com/article/")
        assert hit.source_logo and hit.source_logo.endswith(".png")
    assert {hit.source for hit in page.hits} == {"金融界", "金色财经", "格上财富", "证券之星"}


def test_highlighted_characters_join_into_words(page) -> None:
    first = page.hits[0]
    assert "扎实推进中国式现代化。从战略全局出发" in first.snippet
    assert "现\n代" not in first.snippet and "现 代" not in first.snippet
    chatgpt = page.hits[5]
    assert "如今 ChatGPT 的出现代表了人工智能" in chatgpt.snippet  # 出现 + 代表: the site highlights it too


def test_pagination_is_the_seed_widget(page) -> None:
    lines = seed_lines()
    widget = lines[lines.index("上一页") + 1 : lines.index("下一页")]
    numbers = [int(n) for n in widget if n.isdigit()]
    assert 953 in numbers and max(numbers) == page.pagination.last
    assert page.pagination.current == 953 and page.pagination.last == 1000
    assert page.pagination.prev_url.endswith("page=952")
    assert page.pagination.next_url.endswith("page=954")


def test_hot_list_and_topics_are_the_seed_sidebars(page) -> None:
    lines = seed_lines()
    hot_titles = lines[lines.index("24小时热点") + 1 : lines.index("最新话题") : 3]
    assert [entry.title for entry in page.hot] == hot_titles
    assert [entry.rank for entry in page.hot] == [1, 2, 3, 4, 5]
    topic_lines = lines[lines.index("更多") + 1 :]
    expected = [(topic_lines[k], int(topic_lines[k + 3].removesuffix("讨论"))) for k in range(0, len(topic_lines), 4)]
    assert [(t.name, t.discussions) for t in page.topics] == expected
    assert expected[0] == ("#SFFE2030--FX168“可持续发展金融企业”评选#", 14)


def test_first_and_last_pages_have_no_prev_or_next() -> None:
    base = FIXTURE_SITE / "search" / "现代" / "article"
    first = parse_search_page((base / "page-1.html").read_text(encoding="utf-8"), SEARCH_953_URL.replace("953", "1"))
    last = parse_search_page(
        (base / "page-1000.html").read_text(encoding="utf-8"), SEARCH_953_URL.replace("953", "1000")
    )
    assert first.pagination.prev_url is None and (first.pagination.next_url or "").endswith("page=2")
    assert last.pagination.next_url is None and (last.pagination.prev_url or "").endswith("page=999")
    assert (first.pagination.current, last.pagination.current) == (1, 1000)


def test_links_resolve_against_the_page_url() -> None:
    page = parse_search_page(SEARCH_953.read_text(encoding="utf-8"), "http://127.0.0.1:8168/search?keyword=x&page=953")
    assert page.hits[0].url.startswith("http://127.0.0.1:8168/article/")


@pytest.mark.parametrize(
    "html",
    ["", "<html><body><p>502 Bad Gateway</p></body></html>", "<html><body><ul class='search-list'></ul></body></html>"],
)
def test_a_page_that_is_not_a_listing_raises(html: str) -> None:
    with pytest.raises(PageParseError):
        parse_search_page(html, SEARCH_953_URL)


def test_an_empty_result_list_is_not_an_error() -> None:
    html = (
        "<html><body><ul class='search-list'></ul><div class='pagination'><span class='page current'>1</span>"
        "</div></body></html>"
    )
    page = parse_search_page(html, SEARCH_953_URL)
    assert page.hits == [] and page.pagination.next_url is None


def test_a_second_pagination_block_is_read_with_the_first() -> None:
    """The pagination's parts are looked for in the whole page when it has more than one
    block: the first current page in the page wins, and the links of both blocks count."""
    html = SEARCH_953.read_text(encoding="utf-8")
    extra = (
        '<div class="pagination"><span class="page current">7</span>'
        '<a class="page" href="/search?keyword=x&amp;page=8">8</a>'
        '<a class="next" href="/search?keyword=x&amp;page=8">下一页</a></div>'
    )
    at = html.index('<section class="search-results">')
    pagination = parse_search_page(html[:at] + extra + html[at:], SEARCH_953_URL, use_json=False).pagination
    assert (pagination.current, pagination.last) == (7, 1000)
    assert (pagination.prev_url or "").endswith("page=952")
    assert pagination.next_url == "https://www.fx168news.com/search?keyword=x&page=8"
