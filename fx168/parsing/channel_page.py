"""A channel list (/info/001 …) and the JSON API's pages of it (getNewsByChannel): entries
newest first, each a link to an article. The page's JSON first, its HTML second."""

from __future__ import annotations

from typing import Any

from lxml import etree

from fx168 import site
from fx168.items import ChannelEntryItem, ChannelPage
from fx168.parsing.api import api_items
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import ShapeError, dig_any, html_tree, machine_time, read_both, required, split_page
from fx168.parsing.text import (
    TRUNCATED,
    LinkResolver,
    clean,
    joined_text,
    select,
    select_one,
    truncated,
)

C = site.CHANNEL
K = site.NEWS


def parse_channel_page(html: str, url: str, *, use_json: bool = True, verify: bool = True) -> ChannelPage:
    """Read a channel list page; raises PageParseError if it is not one."""
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    page = split_page(html)
    channel = site.channel_code(url) or ""
    resolve = LinkResolver(url)
    entries, via, drift = read_both(
        page,
        url,
        lambda data: _entries(dig_any(data, site.JSON_PATHS[site.PageKind.CHANNEL]), channel, 1, resolve),
        lambda: _from_html(html_tree(page.markup, url), url, channel, resolve),
        use_json=use_json,
        verify=verify,
    )
    return ChannelPage(url=url, channel=channel, page=1, entries=entries, via=via, drift=drift)


def parse_channel_api(body: str, url: str, channel: str, page: int, site_base: str) -> ChannelPage:
    """A page of getNewsByChannel; raises ApiRefused when the API turned the call away and
    PageParseError when the answer is not in the shape the site description says."""
    items = api_items(body, url)
    try:
        entries = _entries(items, channel, page, LinkResolver(site_base.rstrip("/") + "/"))
    except (ShapeError, TypeError, ValueError) as exc:
        raise PageParseError(url, f"unexpected API answer: {exc}") from None
    return ChannelPage(url=url, channel=channel, page=page, entries=entries, via="api")


def _entries(items: Any, channel: str, page: int, resolve: LinkResolver) -> list[ChannelEntryItem]:
    if not isinstance(items, list):
        raise ShapeError("the item list is not a list")
    entries = []
    for rank, item in enumerate(items, start=1):
        required(item, K.news_id, K.title, K.published)
        news_id = int(item[K.news_id])
        code = item.get(K.url_code) or news_id
        entries.append(
            ChannelEntryItem(
                channel=channel,
                page=page,
                rank=rank,
                url=resolve(f"/article/{code}"),
                title=clean(str(item[K.title])),
                published=machine_time(str(item[K.published] or "")),
                news_id=news_id,
                image=str(item.get(K.image) or "") or None,
            )
        )
    return entries


def _from_html(doc: etree._Element, url: str, channel: str, resolve: LinkResolver) -> list[ChannelEntryItem]:
    nodes = select(doc, C.item)
    if not nodes:
        raise PageParseError(url, "not a channel list: no entries")
    entries = []
    for rank, node in enumerate(nodes, start=1):
        link = select_one(node, C.link)
        if link is None:
            continue
        href = resolve(link.get("href"))
        ref = site.article_ref(href)
        time = select_one(node, C.time)
        image = select_one(node, C.image)
        entries.append(
            ChannelEntryItem(
                channel=channel,
                page=1,
                rank=rank,
                url=href,
                title=joined_text(link),
                published=machine_time(time.get("datetime") or joined_text(time)) if time is not None else "",
                news_id=ref.id if ref is not None and ref.kind == "news" else None,
                image=(image.get("src") or None) if image is not None else None,
            )
        )
    return entries
