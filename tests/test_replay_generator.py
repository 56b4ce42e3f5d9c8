from crawler import site
from crawler.parsing import parse_article_page, parse_search_page
from crawler.replay.generator import GeneratedSite


def test_generation_is_deterministic_and_addressable() -> None:
    generated = GeneratedSite(pages=2000)
    assert generated.search_page(1234) == GeneratedSite(pages=2000).search_page(1234)
    article = generated.article(12_345)
    assert generated.index_of(article["id"]) == 12_345
    assert generated.index_of(article["id"] + 1) is None
    assert generated.search_page(2001) is None and generated.search_page(0) is None


def test_generated_pages_parse_like_the_real_ones() -> None:
    generated = GeneratedSite(pages=50, keyword="现代")
    url = site.search_url("现代", 50)
    page = parse_search_page(generated.search_page(50), url)
    assert len(page.hits) == 10 and page.pagination.current == 50 and page.pagination.next_url is None
    assert all("现代" in hit.snippet and hit.highlights for hit in page.hits)
    assert len({hit.source for hit in page.hits}) >= 2
    article_id = int(page.hits[0].url.rsplit("/", 1)[1])
    article = parse_article_page(generated.article_page(article_id), page.hits[0].url)
    assert article.title == page.hits[0].title
    assert page.hits[0].snippet in " ".join(article.body)


def test_any_keyword_appears_highlighted() -> None:
    page = parse_search_page(GeneratedSite(pages=3, keyword="黄金").search_page(2), site.search_url("黄金", 2))
    assert all(hit.highlights and set(hit.highlights) == {"黄金"} for hit in page.hits)
