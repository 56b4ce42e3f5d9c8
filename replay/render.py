"""Render pages in the portal's shape, for the bundled fixtures and the generated load-test site.

The real site (shared/live-site.md) is a Next.js application: every page is server-rendered
HTML with the same data as JSON in ``<script id="__NEXT_DATA__">``. Each ``render_*`` function
here writes both from one record, so the page's text and its JSON never disagree; the JSON
paths and keys, the selectors and the URL shapes all come from ``fx168.site``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from fx168 import site

#: The search page's result tabs, in the order the portal shows them.
SEARCH_TABS: tuple[tuple[str, str], ...] = (
    ("all", "综合"),
    ("quote", "行情"),
    ("express", "速递"),
    ("calendar", "日历"),
    ("topic", "话题"),
    ("kol", "168人气号"),
    (site.ARTICLE_TAB, "文章"),
)
#: The channel lists the portal shows (live-site.md), by code.
CHANNEL_NAMES: dict[str, str] = {"001": "资讯", "001001": "要闻", "001003": "美股", "001008": "加密货币"}
#: The Next.js build the fixtures claim to come from (any stable string does).
BUILD_ID = "fxcrawl-fixtures-2026-12"
#: Where the site keeps images (live-site.md: displayImage is absolute on this host).
STATIC_BASE = "https://static.fx168api.com"
JQUERY_SRC = f"{STATIC_BASE}/js/jquery-1.12.3.min.js"
#: The reprint footer every article body ends with (after the centerarticle div), in the live markup.
REPRINT_FOOTER = (
    '<div style="border-top: 1px solid #ddd; margin-top: 20px; padding-top: 10px; color: #999; font-size: 12px;">'
    "<div>1. 欢迎转载，转载时请标明来源为FX168财经。商业性转载需事先获得授权，请联系本站。</div>"
    "<div>2. 所有内容仅供参考，不代表FX168财经立场。本站不对其准确性、完整性作任何保证，据此操作，风险自担。</div>"
    "</div>"
)

#: Inline markup of the data file's paragraphs: {{quote:SYMBOL|text}}, {{home|text}},
#: {{topic:ID|name}} and **bold**; everything else is text.
_INLINE = re.compile(
    r"\{\{(?P<kind>quote|home|topic)(?::(?P<arg>[^|}]+))?\|(?P<text>[^}]*)\}\}|\*\*(?P<bold>[^*]+)\*\*"
)
_JS_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("replay", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


# -- the JSON ---------------------------------------------------------------------------------


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element, escaped as Next.js does (``<`` as ``\\u003c`` …)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: _JS_ESCAPES[match.group()], text)


def next_data(page: str, data: Mapping[str, Any], query: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``__NEXT_DATA__`` object of a page: its data at ``props.pageProps.data``."""
    return {
        "props": {"pageProps": {"data": dict(data)}, "__N_SSP": True},
        "page": page,
        "query": dict(query or {}),
        "buildId": BUILD_ID,
        "isFallback": False,
        "gssp": True,
        "scriptLoader": [],
    }


def _set_path(path: Sequence[str], value: Any) -> dict[str, Any]:
    """{'data': {...}} for a JSON path of site.JSON_PATHS below props.pageProps.data."""
    assert tuple(path[:3]) == ("props", "pageProps", "data"), path
    data: dict[str, Any] = {}
    node = data
    for key in path[3:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def _page_data(kind: site.PageKind, value: Any) -> dict[str, Any]:
    return _set_path(site.JSON_PATHS[kind][0], value)


def api_envelope(items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """The JSON API's answer (live-site.md: ``data.items[]``)."""
    return {"code": site.API_OK, "msg": "ok", "data": {"items": items, "total": total}}


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


# -- shared pieces ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    kind: str  # "page", "current" or "ellipsis"
    number: int = 0
    url: str = ""


def pagination_cells(current: int, last: int, url_for: Any, width: int = 5) -> list[Cell]:
    """The portal's widget: first page, a window of ``width`` pages around the current one, last page."""
    start = max(1, min(current - width // 2, last - width + 1))
    end = min(last, start + width - 1)
    numbers: list[int | None] = []
    if start > 1:
        numbers.append(1)
        if start > 2:
            numbers.append(None)
    numbers.extend(range(start, end + 1))
    if end < last:
        if end < last - 1:
            numbers.append(None)
        numbers.append(last)
    cells = []
    for number in numbers:
        if number is None:
            cells.append(Cell("ellipsis"))
        elif number == current:
            cells.append(Cell("current", number))
        else:
            cells.append(Cell("page", number, url_for(number)))
    return cells


def highlight_segments(text: str, keyword: str) -> list[dict[str, Any]]:
    """Split text so that every character of every keyword occurrence is its own highlighted segment."""
    segments: list[dict[str, Any]] = []
    plain_start = 0
    position = text.find(keyword) if keyword else -1
    while position != -1:
        if position > plain_start:
            segments.append({"text": text[plain_start:position], "hl": False})
        segments.extend({"text": char, "hl": True} for char in keyword)
        plain_start = position + len(keyword)
        position = text.find(keyword, plain_start)
    if plain_start < len(text):
        segments.append({"text": text[plain_start:], "hl": False})
    return segments


def highlight_html(text: str, keyword: str) -> str:
    """The snippet as the search JSON's HTML: each keyword character in its own span.hl."""
    cls = site.SEARCH.highlight_class
    return "".join(
        f'<span class="{cls}">{escape(seg["text"])}</span>' if seg["hl"] else str(escape(seg["text"]))
        for seg in highlight_segments(text, keyword)
    )


def url_code(news_id: int, keyword: str | None, link: str = "raw") -> str:
    """The urlCode of a link: '{keyword}-{newsId}' raw or percent-encoded, or the bare newsId."""
    if link == "bare" or not keyword:
        return str(news_id)
    return site.article_url(news_id, keyword, base="", encode=link == "encoded").removeprefix("/article/")


def link_href(news_id: int, keyword: str | None, link: str = "raw") -> str:
    return site.article_url(news_id, None if link == "bare" else keyword, base="", encode=link == "encoded")


def image_url(news_id: int) -> str:
    return f"{STATIC_BASE}/img/news/{news_id}.jpg"


def datetime_attr(published: str) -> str:
    """'2023-02-24 19:12[:SS]' -> '2023-02-24T19:12:00+08:00' (Beijing time)."""
    date, _, time = published.partition(" ")
    if not time:
        return date
    return f"{date}T{time if time.count(':') == 2 else time + ':00'}{site.SITE_UTC_OFFSET}"


def seconds(published: str) -> str:
    """'YYYY-MM-DD HH:MM' -> 'YYYY-MM-DD HH:MM:SS' (the JSON's form)."""
    return published if published.count(":") == 2 else f"{published}:00"


def minutes(published: str) -> str:
    return published[:16]


# -- newsContent ------------------------------------------------------------------------------


def inline_html(text: str) -> str:
    """A data-file paragraph as HTML: its inline markup as the live site's links, the rest escaped."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(str(escape(text[position : match.start()])))
        position = match.end()
        if match.group("bold") is not None:
            out.append(f"<strong>{escape(match.group('bold'))}</strong>")
            continue
        kind, arg, inner = match.group("kind"), match.group("arg"), match.group("text")
        if kind == "home":
            out.append(f'<a class="_internal_link_" href="{site.CANONICAL_BASE}/">{escape(inner)}</a>')
        elif kind == "quote":
            href = f"{site.CANONICAL_BASE}/quote/{quote(arg or '')}"
            out.append(f'<a class="_internal_link_" href="{href}">{escape(inner)}</a>')
        else:
            out.append(f'<a data-key="topic" data-value="{escape(arg)}" class="topic-entity">#{escape(inner)}#</a>')
    out.append(str(escape(text[position:])))
    return "".join(out)


def plain_text(text: str) -> str:
    """A data-file paragraph as its text (what a reader sees)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("bold") is not None:
            return match.group("bold")
        return f"#{match.group('text')}#" if match.group("kind") == "topic" else match.group("text")

    return _INLINE.sub(replace, text)


def block_html(block: str | Mapping[str, Any]) -> str:
    """One body block of the data file: a paragraph string, {"h3", "id"}, {"img"} or {"credit"}."""
    if isinstance(block, str):
        return f"<p>{inline_html(block)}</p>"
    if "h3" in block:
        return f'<h3 id="{escape(block["id"])}">{escape(block["h3"])}</h3>'
    if "img" in block:
        src = escape(block["img"])
        return f'<div class="braft-img-container" data-src="{src}"><img src="{src}" alt=""></div>'
    if "credit" in block:
        return f"<p>（来源：{escape(block['credit'])}）</p>"
    raise ValueError(f"unknown body block {block!r}")


def news_content(article: Mapping[str, Any]) -> str:
    """``newsContent`` in the live markup, or for a video the JSON string of its ids."""
    if video := article.get("video"):
        return json.dumps({"appId": video["appId"], "fileId": video["fileId"]}, separators=(",", ":"))
    inner = "\n".join(block_html(block) for block in article.get("blocks") or article["body"])
    return f'<div class="centerarticle">\n{inner}\n</div>\n<script src="{JQUERY_SRC}"></script>\n{REPRINT_FOOTER}'


# -- pages ------------------------------------------------------------------------------------


def render_search_page(
    *,
    keyword: str,
    page: int,
    last_page: int,
    hits: Sequence[Mapping[str, Any]],
    hot: Iterable[Mapping[str, Any]],
    topics: Iterable[Mapping[str, Any]],
    tab: str = site.ARTICLE_TAB,
) -> str:
    """A search listing page. Each hit has id, url_keyword (the article's urlCode keyword), link
    ('raw', 'encoded', 'bare', or an absolute legacy URL), title, snippet, source, source_logo,
    date, cover. Hot entries have id, url_keyword, link, title, image; topics id, name, image,
    discussions."""

    def url_for(number: int) -> str:
        return site.search_url(keyword, number, tab, base="")

    pagination = {
        "prev_url": url_for(page - 1) if page > 1 else None,
        "next_url": url_for(page + 1) if page < last_page else None,
        "cells": pagination_cells(page, last_page, url_for),
    }
    keys = site.SEARCH_JSON
    news = site.NEWS
    hit_views: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for hit in hits:
        link = hit.get("link", "raw")
        legacy = link.startswith("http")
        href = link if legacy else link_href(hit["id"], hit.get("url_keyword"), link)
        hit_views.append({**hit, "href": href, "segments": highlight_segments(hit["snippet"], keyword)})
        item: dict[str, Any] = {}
        if legacy:
            item["newsUrl"] = link
        else:
            item[news.news_id] = hit["id"]
            item[news.url_code] = url_code(hit["id"], hit.get("url_keyword"), link)
        item.update(
            {
                news.title: hit["title"],
                keys.highlight: highlight_html(hit["snippet"], keyword),
                keys.source: hit["source"],
                keys.source_logo: hit["source_logo"],
                keys.date: hit["date"],
                news.image: hit["cover"],
            }
        )
        items.append(item)
    hot_views, hot_items = [], []
    for entry in hot:
        link = entry.get("link", "raw")
        hot_views.append({**entry, "href": link_href(entry["id"], entry.get("url_keyword"), link)})
        hot_items.append(
            {
                news.news_id: entry["id"],
                news.url_code: url_code(entry["id"], entry.get("url_keyword"), link),
                news.title: entry["title"],
            }
        )
    topic_views, topic_items = [], []
    for topic in topics:
        topic_views.append({**topic, "href": site.topic_url(topic["id"], base="")})
        topic_items.append(
            {keys.topic_id: topic["id"], keys.topic_name: topic["name"], keys.topic_count: topic["discussions"]}
        )
    data = {
        keys.items: items,
        keys.page: page,
        keys.last_page: last_page,
        keys.keyword: keyword,
        keys.hot: hot_items,
        keys.topics: topic_items,
    }
    tab_urls = {key: site.search_url(keyword, 1, key, base="") for key, _ in SEARCH_TABS}
    return _render(
        "search.html",
        page_kind="search",
        keyword=keyword,
        tab=tab,
        tabs=SEARCH_TABS,
        tab_urls=tab_urls,
        hits=hit_views,
        pagination=pagination,
        hot=hot_views,
        topics=topic_views,
        next_data=script_json(
            next_data(
                "/search", _page_data(site.PageKind.SEARCH, data), {"keyword": keyword, "type": tab, "page": str(page)}
            )
        ),
    )


def article_json(article: Mapping[str, Any]) -> dict[str, Any]:
    """``getNewsDetailData`` of an article."""
    news = site.NEWS
    return {
        news.news_id: article["id"],
        news.url_code: url_code(article["id"], article.get("keyword")),
        news.title: article["title"],
        news.published: seconds(article["published"]),
        news.image: article.get("image") or image_url(article["id"]),
        news.content: news_content(article),
        news.author: article["author"],
        news.source: article["source"],
        news.tags: list(article["tags"]),
        news.summary: article.get("summary") or "",
    }


def render_article_page(article: Mapping[str, Any]) -> str:
    """An article detail page. The article has id, keyword, title, source, source_slug, author,
    published ('YYYY-MM-DD HH:MM[:SS]'), body (blocks: see block_html; ``blocks``, if given, is
    rendered instead), tags, and optionally summary, image and video ({appId, fileId}: a video
    item, no body)."""
    data = article_json(article)
    code = data[site.NEWS.url_code]
    view = {
        **article,
        "canonical": site.article_url(article["id"], article.get("keyword")),
        "source_href": f"/source/{article['source_slug']}",
        "datetime_attr": datetime_attr(article["published"]),
        "time_text": minutes(article["published"]),
        "summary": article.get("summary") or "",
        "video": article.get("video"),
        "image": data[site.NEWS.image],
        "content": Markup(data[site.NEWS.content]) if not article.get("video") else None,
    }
    return _render(
        "article.html",
        page_kind="article",
        article=view,
        next_data=script_json(
            next_data("/article/[urlCode]", _page_data(site.PageKind.ARTICLE, data), {"urlCode": code})
        ),
    )


def legacy_body_html(article: Mapping[str, Any]) -> Markup:
    """The old CMS's body: plain paragraphs (links and topics did not exist there)."""
    return Markup(
        "\n".join(f"<p>{escape(plain_text(block))}</p>" for block in article["body"] if isinstance(block, str))
    )


def render_legacy_page(article: Mapping[str, Any]) -> str:
    """news.fx168news.com/{section}/{YYMM}/{id}.shtml: the old CMS's markup, HTML only (no JSON).
    The article has legacy {section, yymm, id}, title, source, author, published, body, tags."""
    legacy = article["legacy"]
    view = {
        **article,
        "canonical": site.legacy_article_url(legacy["section"], legacy["yymm"], legacy["id"]),
        "time_text": minutes(article["published"]),
        "body_html": legacy_body_html(article),
    }
    return _render("legacy_article.html", article=view)


def channel_item(article: Mapping[str, Any]) -> dict[str, Any]:
    """A news item as the channel list and the channel API give it."""
    news = site.NEWS
    return {
        news.news_id: article["id"],
        news.url_code: url_code(article["id"], article.get("keyword")),
        news.title: article["title"],
        news.published: seconds(article["published"]),
        news.image: article.get("image") or image_url(article["id"]),
    }


def render_channel_page(code: str, articles: Sequence[Mapping[str, Any]], links: Sequence[str] | None = None) -> str:
    """/info/{code}: the channel's newest items (newest first). ``links`` gives each item's href
    shape ('raw', 'encoded' or 'bare'); the JSON's urlCode follows it."""
    links = list(links or ["raw"] * len(articles))
    items, views = [], []
    for article, link in zip(articles, links, strict=True):
        item = channel_item(article)
        item[site.NEWS.url_code] = url_code(article["id"], article.get("keyword"), link)
        items.append(item)
        views.append(
            {
                "id": article["id"],
                "href": link_href(article["id"], article.get("keyword"), link),
                "title": article["title"],
                "time_attr": datetime_attr(article["published"]),
                "time_text": minutes(article["published"]),
                "image": item[site.NEWS.image],
            }
        )
    return _render(
        "channel.html",
        page_kind="channel",
        code=code,
        name=CHANNEL_NAMES.get(code, code),
        channels=CHANNEL_NAMES,
        items=views,
        next_data=script_json(next_data("/info/[code]", _page_data(site.PageKind.CHANNEL, items), {"code": code})),
    )


def fast_news_item(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A 快讯 item as the page and the feed API give it. The entry has id, published, text (HTML), pinned."""
    keys = site.FAST_NEWS
    return {
        keys.fast_news_id: entry["id"],
        keys.published: seconds(entry["published"]),
        keys.text: entry["text"],
        keys.plain_text: fast_news_plain(entry["text"]),
        keys.pinned: 1 if entry.get("pinned") else 0,
    }


def fast_news_plain(text_html: str) -> str:
    """pureTextContent: the item's HTML without its tags."""
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", "", text_html)).strip()


def render_express_page(entries: Sequence[Mapping[str, Any]], permalink: bool = False) -> str:
    """/express (the feed's first page) or /express/fastnews/{id} (one item, ``permalink``)."""
    items = [fast_news_item(entry) for entry in entries]
    views = [
        {
            "id": entry["id"],
            "pinned": bool(entry.get("pinned")),
            "time_attr": datetime_attr(entry["published"]),
            "time_text": entry["published"][11:16],
            "text": Markup(entry["text"]),
        }
        for entry in entries
    ]
    page = "/express/fastnews/[id]" if permalink else "/express"
    query = {"id": str(entries[0]["id"])} if permalink and entries else {}
    return _render(
        "express.html",
        page_kind="express",
        items=views,
        permalink=permalink,
        next_data=script_json(next_data(page, _page_data(site.PageKind.EXPRESS, items), query)),
    )


def v_js(token: str) -> str:
    """/app/common/v.js: the site's script; the server sends the current API token as its header."""
    note = f"/* fxcrawl fixture: the API token is the response header {site.API_TOKEN_HEADER} */"
    return f'{note}\nwindow.__pcc="{token}";\n'


ROBOTS_TXT = """User-agent: *
Disallow: /login
Disallow: /user/
Disallow: /api/

Sitemap: https://www.fx168news.com/sitemap.xml
"""
