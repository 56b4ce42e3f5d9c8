import json

import pytest
from conftest import SEARCH_953

from fx168 import site
from fx168.parsing import PageParseError, parse_article_page
from replay.server import FIXTURE_SITE


def test_detail_pages_contain_their_search_snippets() -> None:
    golden = json.loads(SEARCH_953.with_name("page-953.expected.json").read_text(encoding="utf-8"))
    for hit in golden["hits"]:
        news_id = site.article_id(hit["url"])
        page = parse_article_page(
            (FIXTURE_SITE / "article" / f"{news_id}.html").read_text(encoding="utf-8"), hit["url"]
        )
        article = page.article
        assert page.via == "json" and page.drift == []
        assert article.title == hit["title"]
        assert article.source == hit["source"]
        assert article.published.startswith(hit["date"])
        assert hit["snippet"] in " ".join(article.body)
        assert article.canonical_url == site.canonical_url(hit["url"]) == f"https://www.fx168news.com/article/{news_id}"
        assert article.news_id == int(news_id or 0)
        assert article.author and article.tags


def test_missing_fields_come_back_empty_for_validation_to_judge() -> None:
    html = (
        "<html><body><article class='article-detail'>"
        "<div class='article-body'><p>正文</p></div></article></body></html>"
    )
    page = parse_article_page(html, "https://www.fx168news.com/article/1")
    article = page.article
    assert page.via == "html" and page.drift == ["json_missing: no __NEXT_DATA__"]
    assert (article.title, article.source, article.author, article.published) == ("", "", None, "")
    assert article.body == ["正文"] and article.tags == [] and article.canonical_url is None


def test_a_page_without_an_article_raises() -> None:
    with pytest.raises(PageParseError, match="not an article page"):
        parse_article_page("<html><body><h1>404</h1></body></html>", "https://www.fx168news.com/article/1")
