"""The 快讯 feed (/express) and the JSON API's pages of it (fastNews/getList): short items with
their own ids, pinned ones first as the site shows them. The page's JSON first, its HTML second."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fx168 import site
from fx168.items import ExpressPage, FastNewsItem
from fx168.parsing.api import api_items
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import ShapeError, dig_any, html_tree, machine_time, read_both, required, split_page
from fx168.parsing.text import (
    TRUNCATED,
    clean,
    fragment,
    joined_text,
    select,
    select_one,
    truncated,
)

E = site.EXPRESS
F = site.FAST_NEWS


def parse_express_page(html: str, url: str, *, use_json: bool = True, verify: bool = True) -> ExpressPage:
    """Read the 快讯 page (or a fast news permalink); raises PageParseError if it is not one."""
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    page = split_page(html)
    items, via, drift = read_both(
        page,
        url,
        lambda data: _items(dig_any(data, site.JSON_PATHS[site.PageKind.EXPRESS])),
        lambda: _from_html(html_tree(page.markup, url), url),
        use_json=use_json,
        verify=verify,
    )
    return ExpressPage(url=url, page=1, items=items, via=via, drift=drift)


def parse_express_api(body: str, url: str, page: int) -> ExpressPage:
    """A page of fastNews/getList; ApiRefused when the API turned the call away."""
    try:
        items = _items(api_items(body, url))
    except (ShapeError, TypeError, ValueError) as exc:
        raise PageParseError(url, f"unexpected API answer: {exc}") from None
    return ExpressPage(url=url, page=page, items=items, via="api")


def fast_news_item(fast_news_id: int, published: str, text: str, pinned: bool) -> FastNewsItem:
    text = clean(text)
    tag = site.FAST_NEWS_SOURCE_TAG_RE.search(text)
    return FastNewsItem(
        fast_news_id=fast_news_id,
        url=site.fast_news_url(fast_news_id),
        published=machine_time(published),
        text=text,
        pinned=pinned,
        source_tag=tag.group("tag") if tag else None,
    )


def _items(items: Any) -> list[FastNewsItem]:
    if not isinstance(items, list):
        raise ShapeError("the item list is not a list")
    out = []
    for item in items:
        required(item, F.fast_news_id, F.published)
        if item.get(F.plain_text):
            text = str(item[F.plain_text])
        elif F.text in item:
            text = joined_text(fragment(str(item[F.text] or "")))
        else:
            raise ShapeError(f"no {F.plain_text} or {F.text}")
        pinned = item.get(F.pinned) not in (None, 0, "0", False, "")
        out.append(fast_news_item(int(item[F.fast_news_id]), str(item[F.published] or ""), text, pinned))
    return out


def _from_html(doc: etree._Element, url: str) -> list[FastNewsItem]:
    nodes = select(doc, E.item)
    if not nodes:
        raise PageParseError(url, "not the 快讯 page: no items")
    out = []
    for node in nodes:
        value = (node.get(E.id_attr) or "").strip()
        if not value.isdigit():
            continue
        time = select_one(node, E.time)
        text = select_one(node, E.text)
        published = (time.get("datetime") or joined_text(time)) if time is not None else ""
        pinned = E.pinned_class in (node.get("class") or "").split()
        out.append(fast_news_item(int(value), published, joined_text(text) if text is not None else "", pinned))
    return out
