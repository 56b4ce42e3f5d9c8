"""The search listing page: results, pagination, the 24小时热点 list and 最新话题.

A listing that arrived cut short, or that the HTML parser could not read to the end, raises
PageParseError: its missing results and pagination would otherwise end the walk silently.
"""

from __future__ import annotations

from lxml import etree

from crawler import site
from crawler.items import HotEntryItem, PageLink, Pagination, SearchHitItem, SearchPage, TopicItem
from crawler.parsing.errors import PageParseError
from crawler.parsing.text import (
    TRUNCATED,
    LinkResolver,
    MarkupError,
    clean,
    document,
    first_text,
    joined_text,
    select,
    select_one,
    snippet_text,
    truncated,
    within,
)

S = site.SEARCH
#: The pagination's parts are found inside its block (their selectors start with the block's),
#: so on a page with one block only the block is searched for them, not the whole page.
_PARTS_IN_BLOCK = all(within(css, S.pagination) for css in (S.page_current, S.page_links, S.page_prev, S.page_next))


def parse_search_page(html: str, url: str) -> SearchPage:
    """Read a search listing page; raises PageParseError if it is not one, or not all of one."""
    try:
        doc = document(html)
    except MarkupError as exc:
        raise PageParseError(url, str(exc)) from None
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    blocks = select(doc, S.pagination)
    if select_one(doc, S.result_list) is None or not blocks:
        raise PageParseError(url, "not a search listing page: no result list or pagination")
    query = site.parse_search_url(url)
    keyword_input = select_one(doc, S.keyword_input)
    keyword = clean(keyword_input.get("value", "") if keyword_input is not None else "")
    keyword = keyword or (query.keyword if query else "")
    if not keyword:
        raise PageParseError(url, "search page without a keyword")
    tab = query.tab if query else site.ARTICLE_TAB
    resolve = LinkResolver(url)
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
    links = [
        PageLink(int(text), resolve(a.get("href")))
        for a in select(scope, S.page_links)
        if (text := joined_text(a)).isdigit() and a.get("href")
    ]
    prev, nxt = select_one(scope, S.page_prev), select_one(scope, S.page_next)
    return Pagination(
        current=current,
        last=max([current, *(link.number for link in links)]),
        prev_url=resolve(prev.get("href")) if prev is not None and prev.get("href") else None,
        next_url=resolve(nxt.get("href")) if nxt is not None and nxt.get("href") else None,
        links=links,
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
