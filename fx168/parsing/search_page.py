"""The search listing page: results, pagination, the 24小时热点 list and 最新话题.

A listing that arrived cut short, or that the HTML parser could not read to the end, raises
PageParseError: its missing results and pagination would otherwise end the walk silently.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from fx168 import site
from fx168.items import HotEntryItem, Pagination, SearchHitItem, SearchPage, TopicItem
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import ShapeError, dig_any, html_tree, read_both, required, split_page
from fx168.parsing.text import (
    TRUNCATED,
    LinkResolver,
    clean,
    first_text,
    fragments,
    joined_text,
    select,
    select_one,
    snippet_text,
    truncated,
    within,
)

S = site.SEARCH
J = site.SEARCH_JSON
K = site.NEWS
#: The pagination's parts are found inside its block (their selectors start with the block's),
#: so on a page with one block only the block is searched for them, not the whole page.
_PARTS_IN_BLOCK = all(within(css, S.pagination) for css in (S.page_current, S.page_links, S.page_prev, S.page_next))


def parse_search_page(html: str, url: str, *, use_json: bool = True, verify: bool = True) -> SearchPage:
    """Read a search listing page, its JSON first; raises PageParseError if it is not one, or
    not all of one. ``use_json=False`` reads the HTML alone (the fallback path, for tests)."""
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    split = split_page(html)
    query = site.parse_search_url(url)
    resolve = LinkResolver(url)
    page, via, drift = read_both(
        split,
        url,
        lambda data: _from_json(data, url, query, resolve),
        lambda: _from_html(html_tree(split.markup, url), url, query, resolve),
        use_json=use_json,
        verify=verify,
    )
    page.via, page.drift = via, drift
    return page


def _from_json(data: Any, url: str, query: site.SearchQuery | None, resolve: LinkResolver) -> SearchPage:
    found = dig_any(data, site.JSON_PATHS[site.PageKind.SEARCH])
    required(found, J.items, J.page, J.last_page)
    keyword = clean(str(found.get(J.keyword) or "")) or (query.keyword if query else "")
    if not keyword:
        raise ShapeError("search data without a keyword")
    tab = query.tab if query else site.ARTICLE_TAB
    current, last = int(found[J.page]), min(int(found[J.last_page]), site.MAX_SEARCH_PAGE)
    origin = resolve.origin
    pagination = Pagination(
        current=current,
        last=max(current, last),
        prev_url=site.search_url(keyword, current - 1, tab, origin) if current > 1 else None,
        next_url=site.search_url(keyword, current + 1, tab, origin) if current < last else None,
    )
    entries = found[J.items]
    for entry in entries:
        required(entry, K.title)
    snippets = fragments([str(entry.get(J.highlight) or "") for entry in entries])  # one parse for all
    hits = []
    for rank, (entry, snippet_node) in enumerate(zip(entries, snippets, strict=True), start=1):
        snippet, highlights = snippet_text(snippet_node, S.highlight_class)
        logo = str(entry.get(J.source_logo) or "")
        hits.append(
            SearchHitItem(
                keyword=keyword,
                tab=tab,
                page=current,
                rank=rank,
                url=_news_link(entry, resolve),
                title=clean(str(entry[K.title])),
                snippet=snippet,
                highlights=highlights,
                source=clean(str(entry.get(J.source) or "")),
                source_logo=resolve(logo) if logo else None,
                date=clean(str(entry.get(J.date) or "")),
            )
        )
    hot = [
        HotEntryItem(rank, clean(str(entry[K.title])), _news_link(entry, resolve))
        for rank, entry in enumerate(found.get(J.hot) or [], start=1)
    ]
    topics = [
        TopicItem(
            rank=rank,
            name=clean(str(entry[J.topic_name])),
            url=site.topic_url(entry[J.topic_id], origin),
            discussions=int(entry.get(J.topic_count, -1)),
        )
        for rank, entry in enumerate(found.get(J.topics) or [], start=1)
    ]
    return SearchPage(url=url, keyword=keyword, tab=tab, hits=hits, pagination=pagination, hot=hot, topics=topics)


def _news_link(entry: Any, resolve: LinkResolver) -> str:
    """An item's link: its ``newsUrl`` when it has one (a legacy page), else /article/{urlCode}."""
    if href := entry.get("newsUrl"):
        return resolve(str(href))
    code = entry.get(K.url_code) or entry.get(K.news_id)
    if code in (None, ""):
        raise ShapeError(f"an item without {K.url_code} or {K.news_id}")
    return resolve(f"/article/{code}")


def _from_html(doc: etree._Element, url: str, query: site.SearchQuery | None, resolve: LinkResolver) -> SearchPage:
    blocks = select(doc, S.pagination)
    if select_one(doc, S.result_list) is None or not blocks:
        raise PageParseError(url, "not a search listing page: no result list or pagination")
    keyword_input = select_one(doc, S.keyword_input)
    keyword = clean(keyword_input.get("value", "") if keyword_input is not None else "")
    keyword = keyword or (query.keyword if query else "")
    if not keyword:
        raise PageParseError(url, "search page without a keyword")
    tab = query.tab if query else site.ARTICLE_TAB
    pagination = _pagination(blocks[0] if len(blocks) == 1 and _PARTS_IN_BLOCK else doc, url, resolve)
    hits = [
        _hit(node, rank, resolve, keyword, tab, pagination.current)
        for rank, node in enumerate(select(doc, S.result), start=1)
    ]
    return SearchPage(
        url=url,
        keyword=keyword,
        tab=tab,
        hits=hits,
        pagination=pagination,
        hot=_hot(doc, resolve),
        topics=_topics(doc, resolve),
    )


def _hit(node: etree._Element, rank: int, resolve: LinkResolver, keyword: str, tab: str, page: int) -> SearchHitItem:
    link = select_one(node, S.result_title)
    snippet = select_one(node, S.result_snippet)
    logo = select_one(node, S.result_source_logo)
    logo_src = logo.get("src") if logo is not None else None
    text, highlights = snippet_text(snippet, S.highlight_class) if snippet is not None else ("", [])
    return SearchHitItem(
        keyword=keyword,
        tab=tab,
        page=page,
        rank=rank,
        url=resolve(link.get("href")) if link is not None else "",
        title=joined_text(link) if link is not None else "",
        snippet=text,
        highlights=highlights,
        source=first_text(node, S.result_source_name),
        source_logo=resolve(logo_src) if logo_src else None,
        date=first_text(node, S.result_date),
    )


def _pagination(scope: etree._Element, url: str, resolve: LinkResolver) -> Pagination:
    """The pagination widget, read from ``scope``: the page, or its only pagination block."""
    current_text = first_text(scope, S.page_current)
    if not current_text.isdigit():
        raise PageParseError(url, f"pagination without a current page number: {current_text!r}")
    current = int(current_text)
    numbers = [int(text) for a in select(scope, S.page_links) if (text := joined_text(a)).isdigit() and a.get("href")]
    prev, nxt = select_one(scope, S.page_prev), select_one(scope, S.page_next)
    return Pagination(
        current=current,
        last=max([current, *numbers]),
        prev_url=resolve(prev.get("href")) if prev is not None and prev.get("href") else None,
        next_url=resolve(nxt.get("href")) if nxt is not None and nxt.get("href") else None,
    )


def _hot(doc: etree._Element, resolve: LinkResolver) -> list[HotEntryItem]:
    entries = []
    for rank, node in enumerate(select(doc, S.hot_entry), start=1):
        link = select_one(node, S.hot_link)
        if link is not None:
            entries.append(HotEntryItem(rank, joined_text(link), resolve(link.get("href"))))
    return entries


def _topics(doc: etree._Element, resolve: LinkResolver) -> list[TopicItem]:
    topics = []
    for rank, node in enumerate(select(doc, S.topic_entry), start=1):
        link = select_one(node, S.topic_link)
        count = site.TOPIC_COUNT_RE.match(first_text(node, S.topic_count))
        if link is not None:
            topics.append(
                TopicItem(
                    rank=rank,
                    name=joined_text(link),
                    url=resolve(link.get("href")),
                    discussions=int(count.group("n")) if count else -1,
                )
            )
    return topics
