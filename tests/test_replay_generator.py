"""The generated load-test site: deterministic, addressable, and in the fixtures' (the real site's) shape."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from lxml import html as lxml_html

from fx168 import site
from replay.generator import GeneratedSite

_NEXT_DATA = re.compile(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', re.S)


def data_at(html: str | None, kind: site.PageKind) -> Any:
    assert html is not None, "no such page"
    found = _NEXT_DATA.search(html)
    assert found is not None, "a page without its __NEXT_DATA__"
    node: Any = json.loads(found.group(1))
    for key in site.JSON_PATHS[kind][0]:
        node = node[key]
    return node


def test_generation_is_deterministic_and_addressable() -> None:
    generated = GeneratedSite(pages=2000)
    assert generated.search_page(1234) == GeneratedSite(pages=2000).search_page(1234)
    article = generated.article(12_345)
    assert generated.index_of(article["id"]) == 12_345
    assert generated.index_of(article["id"] + 1) is None
    assert generated.search_page(2001) is None and generated.search_page(0) is None
    assert 900_000 < generated.article_id(19_999) < generated.article_id(0) <= 1_050_000


def test_search_pages_carry_keyword_id_links_and_their_json() -> None:
    generated = GeneratedSite(pages=50, keyword="现代")
    html = generated.search_page(50)
    assert html is not None
    data = data_at(html, site.PageKind.SEARCH)
    items = data[site.SEARCH_JSON.items]
    assert len(items) == 10 and data[site.SEARCH_JSON.page] == 50 and data[site.SEARCH_JSON.last_page] == 50
    tree = lxml_html.document_fromstring(html)
    links = tree.cssselect(site.SEARCH.result + " " + site.SEARCH.result_title)
    assert [a.text_content() for a in links] == [item[site.NEWS.title] for item in items]
    assert [a.get("href") for a in links] == ["/article/" + item[site.NEWS.url_code] for item in items]
    refs = [site.article_ref(site.CANONICAL_BASE + a.get("href")) for a in links]
    assert [ref.id for ref in refs if ref] == [item[site.NEWS.news_id] for item in items]
    assert all(
        "现代" in "".join(lxml_html.fragment_fromstring(f"<p>{i['highlightContent']}</p>").itertext()) for i in items
    )
    first_page = GeneratedSite(pages=50).search_page(1)
    assert first_page is not None
    hrefs = re.findall(r'class="item-title"><a href="([^"]+)"', first_page)
    assert any("%" in href for href in hrefs) and any(re.fullmatch(r"/article/\d+", href) for href in hrefs)


def test_article_pages_match_their_listing_and_hold_the_live_markup() -> None:
    generated = GeneratedSite(pages=50, keyword="现代")
    page = data_at(generated.search_page(3), site.PageKind.SEARCH)
    item = page[site.SEARCH_JSON.items][0]
    html = generated.article_page(item[site.NEWS.news_id])
    detail = data_at(html, site.PageKind.ARTICLE)
    assert detail[site.NEWS.title] == item[site.NEWS.title]
    assert detail[site.NEWS.content].startswith('<div class="centerarticle">')
    tree = lxml_html.document_fromstring(html)
    assert tree.cssselect(site.ARTICLE.body + " " + site.CONTENT.container)
    assert tree.cssselect(site.ARTICLE.title)[0].text_content() == item[site.NEWS.title]
    index = generated.index_of(item[site.NEWS.news_id])
    assert index is not None
    article = generated.article(index)
    snippet = "".join(lxml_html.fragment_fromstring(f"<p>{item['highlightContent']}</p>").itertext())
    assert snippet == article["snippet"] and snippet in " ".join(article["body"])
    assert "{{" not in " ".join(article["body"])  # the record's body is text; the markup is in its blocks
    topics = [generated.article_page(generated.article_id(i)) for i in range(6)]
    assert any("topic-entity" in (page or "") for page in topics)


def test_edited_articles_keep_their_snippet_in_their_body() -> None:
    edited = GeneratedSite(pages=5, added=3, edited=4)
    for index in range(10):
        article = edited.article(index)
        assert article["snippet"] in " ".join(article["body"])
    assert edited.article(3)["title"].endswith("(更新)")


def test_pages_render_in_constant_time_whatever_the_site_size() -> None:
    small, huge = GeneratedSite(pages=10), GeneratedSite(pages=10_000)
    for generated in (small, huge):
        generated.search_page(5)
    started = time.perf_counter()
    huge.search_page(9_999)
    huge.article_page(huge.article_id(99_990))
    assert time.perf_counter() - started < 1.0
