import random

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


def test_the_already_canonical_shortcut_agrees_with_full_canonicalisation() -> None:
    """canonical_url skips the w3lib pass for URLs it would leave unchanged; every URL the
    shortcut takes must be one the full pass returns as it is."""
    rng = random.Random(953)
    alphabet = ["a", "Z", "0", "9", "-", "_", "~", ".", "..", "/", "//", "%20", "?", "#", "=", "&", "文", " "]
    urls = [site.CANONICAL_BASE + "".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(20_000)]
    urls += [site.article_url(n) for n in range(300)] + [
        site.topic_url(7),
        site.CANONICAL_BASE,
        site.CANONICAL_BASE + "/",
    ]
    taken = 0
    for url in urls:
        if site._ALREADY_CANONICAL.fullmatch(url):
            taken += 1
            assert site._canonical_url(url, None) == url, url
        assert site.canonical_url(url) == site._canonical_url(url, None), url
    assert taken >= 300  # the shortcut is exercised, not vacuous
    # A replay server's URLs: the same paths on its origin, with and without a path in the base.
    bases = ("http://127.0.0.1:8931", "http://127.0.0.1:8931/", "http://127.0.0.1:8931/mirror", "http://127.0.0.1:893")
    for base in bases:
        for url in urls:
            if not url.startswith(site.CANONICAL_BASE + "/"):
                continue  # the random suffix would run into the port
            local = "http://127.0.0.1:8931" + url.removeprefix(site.CANONICAL_BASE)
            for candidate in (local, local.upper()):
                assert site.canonical_url(candidate, base) == site._canonical_url(candidate, base), (candidate, base)
