import pytest

from fx168 import site


def test_search_urls_round_trip() -> None:
    url = site.search_url("现代", 953)
    assert url == "https://www.fx168news.com/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=953"
    assert site.parse_search_url(url) == site.SearchQuery("现代", "article", 953)
    assert site.parse_search_url("https://www.fx168news.com/article/1") is None
    assert site.parse_search_url("https://www.fx168news.com/search?keyword=x&page=0") is None


@pytest.mark.parametrize(
    "url",
    [
        "https://www.fx168news.com/article/3039185",
        "http://www.fx168news.com/article/3039185",
        "https://fx168news.com/article/3039185#comments",
        "https://www.fx168news.com/article/3039185?from=timeline&utm_source=wx",
        "http://127.0.0.1:8168/article/3039185?spm=a.b",
    ],
)
def test_one_spelling_per_article(url: str) -> None:
    assert site.canonical_url(url, "http://127.0.0.1:8168") == "https://www.fx168news.com/article/3039185"


def test_canonical_url_keeps_meaningful_query_and_foreign_hosts() -> None:
    assert site.canonical_url("https://www.fx168news.com/search?page=2&keyword=x") == (
        "https://www.fx168news.com/search?keyword=x&page=2"
    )
    assert site.canonical_url("https://example.com/a?id=1#x") == "https://example.com/a?id=1"
