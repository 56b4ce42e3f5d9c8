"""Render pages in the portal's markup, for the bundled fixtures and the generated load-test site."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from crawler import site

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


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("crawler.replay", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


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
    """A search listing page. Each hit has id, title, snippet, source, source_logo, date, cover."""

    def url_for(number: int) -> str:
        return site.search_url(keyword, number, tab, base="")

    pagination = {
        "prev_url": url_for(page - 1) if page > 1 else None,
        "next_url": url_for(page + 1) if page < last_page else None,
        "cells": pagination_cells(page, last_page, url_for),
    }
    hit_views = [
        {
            **hit,
            "href": site.article_url(hit["id"], base=""),
            "segments": highlight_segments(hit["snippet"], keyword),
        }
        for hit in hits
    ]
    tab_urls = {key: site.search_url(keyword, 1, key, base="") for key, _ in SEARCH_TABS}
    return (
        _environment()
        .get_template("search.html")
        .render(
            page_kind="search",
            keyword=keyword,
            tab=tab,
            tabs=SEARCH_TABS,
            tab_urls=tab_urls,
            hits=hit_views,
            pagination=pagination,
            hot=[{**entry, "href": entry.get("href") or site.article_url(entry["id"], base="")} for entry in hot],
            topics=[{**topic, "href": site.topic_url(topic["id"], base="")} for topic in topics],
        )
    )


def render_article_page(article: Mapping[str, Any]) -> str:
    """An article detail page. The article has id, title, source, source_slug, author, published
    ('YYYY-MM-DD HH:MM'), body (paragraphs) and tags."""
    date, _, time = article["published"].partition(" ")
    view = {
        **article,
        "canonical": site.article_url(article["id"]),
        "source_href": f"/source/{article['source_slug']}",
        "datetime_attr": f"{date}T{time}:00+08:00" if time else date,
    }
    return _environment().get_template("article.html").render(page_kind="article", article=view)


ROBOTS_TXT = """User-agent: *
Disallow: /login
Disallow: /user/
Disallow: /api/

Sitemap: https://www.fx168news.com/sitemap.xml
"""
