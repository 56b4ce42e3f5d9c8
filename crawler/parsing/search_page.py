"""The search listing page: results, pagination, the 24小时热点 list and 最新话题."""

from __future__ import annotations

from urllib.parse import urljoin

from parsel import Selector

from crawler import site
from crawler.items import HotEntryItem, PageLink, Pagination, SearchHitItem, SearchPage, TopicItem
from crawler.parsing.errors import PageParseError
from crawler.parsing.text import first_text, highlighted_terms, joined_text

S = site.SEARCH


def parse_search_page(html: str, url: str) -> SearchPage:
    """Read a search listing page; raises PageParseError if it is not one."""
    doc = Selector(text=html)
    if not doc.css("ul.search-list") or not doc.css(S.pagination):
        raise PageParseError(url, "not a search listing page: no result list or pagination")
    query = site.parse_search_url(url)
    keyword = (doc.css(S.keyword_input).attrib.get("value") or "").strip() or (query.keyword if query else "")
    if not keyword:
        raise PageParseError(url, "search page without a keyword")
    tab = query.tab if query else site.ARTICLE_TAB
    pagination = _pagination(doc, url)
    hits = [
        _hit(node, rank, url, keyword, tab, pagination.current) for rank, node in enumerate(doc.css(S.result), start=1)
    ]
    return SearchPage(
        url=url,
        keyword=keyword,
        tab=tab,
        hits=hits,
        pagination=pagination,
        hot=_hot(doc, url),
        topics=_topics(doc, url),
    )


def _hit(node: Selector, rank: int, url: str, keyword: str, tab: str, page: int) -> SearchHitItem:
    link = node.css(S.result_title)
    snippet = node.css(S.result_snippet)
    logo = node.css(S.result_source_logo).attrib.get("src")
    return SearchHitItem(
        keyword=keyword,
        tab=tab,
        page=page,
        rank=rank,
        url=urljoin(url, link.attrib.get("href", "")) if link else "",
        title=joined_text(link[0]) if link else "",
        snippet=joined_text(snippet[0]) if snippet else "",
        highlights=highlighted_terms(snippet[0], S.highlight_class) if snippet else [],
        source=first_text(node, S.result_source_name),
        source_logo=urljoin(url, logo) if logo else None,
        date=first_text(node, S.result_date),
    )


def _pagination(doc: Selector, url: str) -> Pagination:
    current_text = first_text(doc, S.page_current)
    if not current_text.isdigit():
        raise PageParseError(url, f"pagination without a current page number: {current_text!r}")
    current = int(current_text)
    links = [
        PageLink(int(text), urljoin(url, a.attrib["href"]))
        for a in doc.css(S.page_links)
        if (text := joined_text(a)).isdigit() and a.attrib.get("href")
    ]
    prev = doc.css(S.page_prev).attrib.get("href")
    nxt = doc.css(S.page_next).attrib.get("href")
    return Pagination(
        current=current,
        last=max([current, *(link.number for link in links)]),
        prev_url=urljoin(url, prev) if prev else None,
        next_url=urljoin(url, nxt) if nxt else None,
        links=links,
    )


def _hot(doc: Selector, url: str) -> list[HotEntryItem]:
    entries = []
    for rank, node in enumerate(doc.css(S.hot_entry), start=1):
        link = node.css(S.hot_link)
        if link:
            entries.append(HotEntryItem(rank, joined_text(link[0]), urljoin(url, link.attrib.get("href", ""))))
    return entries


def _topics(doc: Selector, url: str) -> list[TopicItem]:
    topics = []
    for rank, node in enumerate(doc.css(S.topic_entry), start=1):
        link = node.css(S.topic_link)
        count = site.TOPIC_COUNT_RE.match(first_text(node, S.topic_count))
        if link:
            topics.append(
                TopicItem(
                    rank=rank,
                    name=joined_text(link[0]),
                    url=urljoin(url, link.attrib.get("href", "")),
                    discussions=int(count.group("n")) if count else -1,
                )
            )
    return topics
