"""The fixture site is built from its one data file, in the real site's shape (issue 12)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import pytest
from lxml import html as lxml_html

from fx168 import site
from replay import build, render
from replay.server import FIXTURE_SITE, FixtureDirectory

DATA = build.load_data()
INDEX = build.SiteData(DATA)
FILES = FixtureDirectory()
#: The article reached by all three URL shapes (README: fixtures/README.md).
TRIPLE = 1049958
_NEXT_DATA = re.compile(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', re.S)


def page(path: str, query: str = "") -> str:
    body = FILES.get(path, query)
    assert body is not None, path
    return body.decode("utf-8")


def next_data(html: str) -> dict[str, Any]:
    found = _NEXT_DATA.findall(html)
    assert len(found) == 1
    assert "<" not in found[0] and ">" not in found[0]  # escaped as Next.js does
    return json.loads(found[0])


def at(data: dict[str, Any], kind: site.PageKind) -> Any:
    node: Any = data
    for key in site.JSON_PATHS[kind][0]:
        node = node[key]
    return node


def doc(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html)


def test_the_committed_fixtures_are_a_fresh_build_of_the_data_file() -> None:
    rendered = build.render_site(DATA)
    assert build.differences(rendered, FIXTURE_SITE) == []
    assert build.main(["--check"]) == 0


def test_a_changed_data_file_shows_as_differences(tmp_path) -> None:
    rendered = build.render_site(DATA)
    build.write_site(rendered, tmp_path)
    assert build.differences(rendered, tmp_path) == []
    (tmp_path / "article" / "1049185.html").write_text("x", encoding="utf-8")
    (tmp_path / "article" / "1.html").write_text("x", encoding="utf-8")
    (tmp_path / "article" / "1.expected.json").write_text("{}", encoding="utf-8")
    assert build.differences(rendered, tmp_path) == ["changed: article/1049185.html", "stale: article/1.html"]
    assert build.write_site(rendered, tmp_path) == (1, 1)
    assert not (tmp_path / "article" / "1.expected.json").exists()  # a removed page's golden goes too


def test_news_ids_are_in_the_live_range_and_keep_the_old_order() -> None:
    news = INDEX.news_articles()
    assert all(1_040_000 <= a["id"] <= 1_050_100 for a in news)
    old = sorted((a["old_id"], a["id"]) for a in news if "old_id" in a)
    assert [new for _, new in old] == sorted(new for _, new in old)
    assert all(str(a["keyword"]) and "-" not in a["keyword"] for a in news)


def test_article_pages_hold_the_same_record_as_html_and_json() -> None:
    for article in INDEX.news_articles():
        html = page(f"/article/{article['id']}")
        data = at(next_data(html), site.PageKind.ARTICLE)
        news = site.NEWS
        assert data[news.news_id] == article["id"]
        assert data[news.url_code] == f"{article['keyword']}-{article['id']}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", data[news.published])
        tree = doc(html)
        assert tree.cssselect(site.ARTICLE.root)
        assert tree.cssselect(site.ARTICLE.title)[0].text_content() == data[news.title]
        assert tree.cssselect(site.ARTICLE.author)[0].text_content() == data[news.author]
        assert tree.cssselect(site.ARTICLE.source_name)[0].text_content() == data[news.source]
        time = tree.cssselect(site.ARTICLE.published)[0]
        assert time.text_content() == data[news.published][:16] and time.get("datetime")
        assert [a.text_content() for a in tree.cssselect(site.ARTICLE.tags)] == data[news.tags]
        assert tree.cssselect(site.ARTICLE.summary)[0].text_content() == "摘要：" + data[news.summary]
        canonical = tree.cssselect(site.ARTICLE.canonical)[0].get("href")
        assert canonical == site.article_url(article["id"], article["keyword"])
        assert "提供者" in tree.cssselect(site.ARTICLE.root)[0].text_content()
        assert tree.cssselect(site.ARTICLE.image)[0].get("content") == data[news.image]
        if article.get("video"):
            assert json.loads(data[news.content]) == article["video"]
            assert tree.cssselect(site.ARTICLE.video) and not tree.cssselect(site.ARTICLE.body)
        else:
            body = tree.cssselect(site.ARTICLE.body)[0]
            inner = "".join(lxml_html.tostring(child, encoding="unicode") for child in body)
            assert doc(inner).text_content() == doc(data[news.content]).text_content()
            assert data[news.content].startswith('<div class="centerarticle">')
            assert body.cssselect(site.CONTENT.container) and body.cssselect(site.CONTENT.footer)
            assert body.cssselect("script[src*=jquery]")


def test_bodies_spread_the_live_features() -> None:
    contents = [doc(page(f"/article/{a['id']}")) for a in INDEX.news_articles() if not a.get("video")]
    with_feature = {
        name: sum(bool(tree.cssselect(selector)) for tree in contents)
        for name, selector in {
            "topic": site.CONTENT.topic_link,
            "quote": "a._internal_link_[href*='/quote/']",
            "home": "a._internal_link_[href='https://www.fx168news.com/']",
            "image": site.CONTENT.image_block,
            "subhead": "div.centerarticle h3[id]",
        }.items()
    }
    assert with_feature["topic"] >= len(contents) // 2 and with_feature["subhead"] >= 10
    assert with_feature["quote"] >= 10 and with_feature["image"] >= 10 and with_feature["home"] >= 5
    topic = contents[0].cssselect(site.CONTENT.topic_link) or [
        link for tree in contents for link in tree.cssselect(site.CONTENT.topic_link)
    ]
    assert re.fullmatch(r"#[^#]+#", topic[0].text_content()) and topic[0].get("data-value").isdigit()
    credits = [p.text_content() for tree in contents for p in tree.cssselect("div.centerarticle > p")]
    assert any(site.CREDIT_RE.match(text) for text in credits)


def test_the_special_pieces_are_on_channel_pages() -> None:
    pieces = {
        "video": [a for a in INDEX.news_articles() if a.get("video")],
        "reprint": [a for a in INDEX.news_articles() if any(site.REPRINT_NOTICE_RE.match(str(b)) for b in a["body"])],
        "ai": [a for a in INDEX.news_articles() if any(site.AI_NOTICE_RE.match(str(b)) for b in a["body"])],
    }
    assert all(len(found) == 1 for found in pieces.values()), pieces
    reprint = pieces["reprint"][0]
    outlets = {m["outlet"] for b in reprint["body"] if (m := site.REPRINT_OUTLET_RE.search(str(b)))}
    assert outlets == {"金色财经"} and reprint["source"] == "金色财经"
    listed = {item["article"] for channel in DATA["channels"].values() for item in channel["items"][:20]}
    assert all(found[0]["id"] in listed for found in pieces.values())


def test_search_pages_link_every_url_shape_and_hold_their_json() -> None:
    shapes: dict[str, int] = {}
    for entry in DATA["search"]:
        html = page(site.SEARCH_PATH, site.search_url(entry["keyword"], entry["page"]).partition("?")[2])
        data = at(next_data(html), site.PageKind.SEARCH)
        keys = site.SEARCH_JSON
        assert (data[keys.page], data[keys.last_page], data[keys.keyword]) == (entry["page"], 1000, "现代")
        assert len(data[keys.hot]) == 5 and len(data[keys.topics]) == 5
        hrefs = [a.get("href") for a in doc(html).cssselect(site.SEARCH.result + " " + site.SEARCH.result_title)]
        assert len(hrefs) == len(data[keys.items]) == 10
        for href, item, hit in zip(hrefs, data[keys.items], entry["hits"], strict=True):
            article = INDEX.article(hit["article"])
            assert item[site.NEWS.title] == article["title"]
            assert "".join(doc(f"<p>{item[keys.highlight]}</p>").itertext()) == hit["snippet"]
            if href.startswith(site.LEGACY_BASE):
                shape = "legacy"
                assert item["newsUrl"] == href and site.NEWS.url_code not in item
                assert FILES.get(unquote(href.removeprefix(site.LEGACY_BASE)), "") is not None
            else:
                ref = site.article_ref(site.CANONICAL_BASE + href)
                assert ref is not None and ref.id == article["id"] == item[site.NEWS.news_id]
                assert href == "/article/" + item[site.NEWS.url_code]
                shape = "bare" if href == f"/article/{ref.id}" else "encoded" if "%" in href else "raw"
                assert FILES.get(unquote(href), "") is not None
            shapes[shape] = shapes.get(shape, 0) + 1
    assert shapes["raw"] > shapes["encoded"] > 3 and shapes["bare"] >= 3 and 2 <= shapes["legacy"] <= 3


def test_legacy_pages_are_old_cms_html_without_json() -> None:
    for article in INDEX.legacy_articles():
        legacy = article["legacy"]
        path = f"/{legacy['section']}/{legacy['yymm']}/{legacy['id']}.shtml"
        assert site.page_kind(site.LEGACY_BASE + path) == site.PageKind.LEGACY_ARTICLE
        html = page(path)
        assert "__NEXT_DATA__" not in html
        tree = doc(html)
        assert tree.findtext(".//title") == article["title"] + "-FX168财经网"
        assert tree.cssselect(site.LEGACY_ARTICLE.title)[0].text_content() == article["title"]
        assert tree.cssselect(site.LEGACY_ARTICLE.author)[0].text_content() == article["author"]
        assert len(tree.cssselect(site.LEGACY_ARTICLE.body + " p")) == len(article["body"])
        assert tree.cssselect(site.LEGACY_ARTICLE.canonical)[0].get("href") == site.LEGACY_BASE + path


def test_search_snippets_are_in_their_articles_text() -> None:
    """As a reader sees the body: paragraphs and subheads in order (with or without topic links)."""
    for entry in DATA["search"]:
        for hit in entry["hits"]:
            article = INDEX.article(hit["article"])
            blocks = [b for b in article["body"] if isinstance(b, str) or "h3" in b]  # not images, credits
            texts = [render.plain_text(b) if isinstance(b, str) else b["h3"] for b in blocks]
            bare = [re.sub(r"#[^#]+#$", "", t) for t in texts]
            assert hit["snippet"] in " ".join(texts) and hit["snippet"] in " ".join(bare), article["id"]


def test_one_article_is_reached_by_all_three_url_shapes() -> None:
    article = INDEX.article(TRIPLE)
    raw = f"/article/{article['keyword']}-{TRIPLE}"
    encoded = site.article_url(TRIPLE, article["keyword"], base="", encode=True)
    bare = f"/article/{TRIPLE}"
    channel = [a.get("href") for a in doc(page("/info/001")).cssselect(site.CHANNEL.item + " " + site.CHANNEL.link)]
    search = doc(page(site.SEARCH_PATH, site.search_url("现代", 1).partition("?")[2]))
    hits = [a.get("href") for a in search.cssselect(site.SEARCH.result + " " + site.SEARCH.result_title)]
    hot = [a.get("href") for a in search.cssselect(site.SEARCH.hot_entry + " " + site.SEARCH.hot_link)]
    assert raw in channel and encoded in hits and bare in hot
    assert len({FILES.get(unquote(path), "") for path in (raw, encoded, bare)}) == 1


def test_channel_pages_and_their_api_feeds() -> None:
    assert {"001", "001001", "001003", "001008"} <= set(DATA["channels"])
    for code in DATA["channels"]:
        html = page(f"/info/{code}")
        items = at(next_data(html), site.PageKind.CHANNEL)
        feed = FILES.api_items(f"channel/{code}")
        assert feed is not None and items[0][site.NEWS.news_id] == feed[0][site.NEWS.news_id]
        assert len(items) == min(20, len(feed))
        times = [item[site.NEWS.published] for item in feed]
        assert times == sorted(times, reverse=True)
        rows = doc(html).cssselect(site.CHANNEL.item)
        assert len(rows) == len(items)
        for row, item in zip(rows, items, strict=True):
            assert row.cssselect(site.CHANNEL.link)[0].text_content() == item[site.NEWS.title]
            assert row.cssselect(site.CHANNEL.link)[0].get("href") == "/article/" + item[site.NEWS.url_code]
            assert row.cssselect(site.CHANNEL.time)[0].text_content() == item[site.NEWS.published][:16]
            assert row.cssselect(site.CHANNEL.image)[0].get("src") == item[site.NEWS.image]
            assert FILES.get(f"/article/{item[site.NEWS.news_id]}", "") is not None
    assert len(FILES.api_items("channel/001") or []) >= 60
    assert 3 <= len(FILES.api_items("channel/001008") or []) < 20


def test_the_express_page_and_its_feed() -> None:
    html = page("/express")
    items = at(next_data(html), site.PageKind.EXPRESS)
    feed = FILES.api_items("fastnews") or []
    assert len(items) == 20 and len(feed) >= 60 and items == feed[:20]
    keys = site.FAST_NEWS
    assert 1 <= sum(item[keys.pinned] for item in items) <= 2
    assert all(1_370_000 < item[keys.fast_news_id] < 1_390_000 for item in feed)
    tagged = [item for item in feed if site.FAST_NEWS_SOURCE_TAG_RE.search(item[keys.plain_text])]
    assert len(tagged) >= len(feed) // 3
    rows = doc(html).cssselect(site.EXPRESS.item)
    for row, item in zip(rows, items, strict=True):
        assert int(row.get(site.EXPRESS.id_attr)) == item[keys.fast_news_id]
        assert (site.EXPRESS.pinned_class in row.get("class").split()) == bool(item[keys.pinned])
        assert row.cssselect(site.EXPRESS.text)[0].text_content() == item[keys.plain_text]
        assert row.cssselect(site.EXPRESS.time)[0].text_content() == item[keys.published][11:16]
    one = page(f"/express/fastnews/{feed[30][keys.fast_news_id]}")
    assert at(next_data(one), site.PageKind.EXPRESS) == [feed[30]]


@pytest.mark.parametrize("path", ["/robots.txt"])
def test_robots_txt_disallows_none_of_the_crawled_paths(path: str) -> None:
    rules = [line.split(":", 1)[1].strip() for line in page(path).splitlines() if line.startswith("Disallow")]
    crawled = ["/search", "/article/", "/info/", "/express", site.API_TOKEN_PATH, site.API_CHANNEL_PATH, "/stock/"]
    assert not [(rule, p) for rule in rules for p in crawled if p.startswith(rule)]
