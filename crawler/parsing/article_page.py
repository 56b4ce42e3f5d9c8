"""The article detail page.

A page that arrived cut short, or that the HTML parser could not read to the end, raises
PageParseError with the reason instead of yielding an article with part of its body.
"""

from __future__ import annotations

from urllib.parse import urljoin

from crawler import site
from crawler.items import ArticleItem
from crawler.parsing.errors import PageParseError
from crawler.parsing.text import (
    TRUNCATED,
    MarkupError,
    block_texts,
    document,
    first_text,
    joined_text,
    select,
    select_one,
    truncated,
)

A = site.ARTICLE


def parse_article_page(html: str, url: str) -> ArticleItem:
    """Read an article page; raises PageParseError if it is not one. Missing fields come back
    empty so that validation can reject the article with a precise reason."""
    try:
        doc = document(html)
    except MarkupError as exc:
        raise PageParseError(url, str(exc)) from None
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    node = select_one(doc, A.root)
    if node is None:
        raise PageParseError(url, "not an article page: no article element")
    canonical = select_one(doc, A.canonical)
    canonical_href = canonical.get("href") if canonical is not None else None
    published = select_one(node, A.published)
    body = select_one(node, A.body)
    return ArticleItem(
        url=url,
        title=first_text(node, A.title),
        source=first_text(node, A.source_name),
        author=first_text(node, A.author) or None,
        published=(joined_text(published) or published.get("datetime", "")) if published is not None else "",
        # the machine-readable time: validation prefers it to coarser visible text
        published_datetime=(published.get("datetime") or "").strip() or None if published is not None else None,
        body=block_texts(body) if body is not None else [],
        tags=[text for tag in select(node, A.tags) if (text := joined_text(tag))],
        canonical_url=urljoin(url, canonical_href) if canonical_href else None,
    )
