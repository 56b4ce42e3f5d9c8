import json

import pytest
from conftest import SEARCH_953

from crawler.parsing import PageParseError, parse_article_page
from crawler.replay.server import FIXTURE_SITE


def test_detail_pages_contain_their_search_snippets() -> None:
    golden = json.loads(SEARCH_953.with_name("page-953.expected.json").read_text(encoding="utf-8"))
    for hit in golden["hits"]:
        article_id = hit["url"].rsplit("/", 1)[1]
        article = parse_article_page(
            (FIXTURE_SITE / "article" / f"{article_id}.html").read_text(encoding="utf-8"), hit["url"]
        )
        assert article.title == hit["title"]
        assert article.source == hit["source"]
        assert article.published.startswith(hit["date"])
        assert hit["snippet"] in " ".join(article.body)
        assert article.canonical_url == hit["url"]
        assert article.author and article.tags


def test_missing_fields_come_back_empty_for_validation_to_judge() -> None:
    html = (
        "<html><body><article class='article-detail'>"
        "<div class='article-body'><p>正文</p></div></article></body></html>"
    )
    article = parse_article_page(html, "https://www.fx168news.com/article/1")
    assert (article.title, article.source, article.author, article.published) == ("", "", None, "")
    assert article.body == ["正文"] and article.tags == [] and article.canonical_url is None


def test_a_page_without_an_article_raises() -> None:
    with pytest.raises(PageParseError, match="not an article page"):
        parse_article_page("<html><body><h1>404</h1></body></html>", "https://www.fx168news.com/article/1")
