"""The article detail page."""

from __future__ import annotations

from urllib.parse import urljoin

from parsel import Selector

from crawler import site
from crawler.items import ArticleItem
from crawler.parsing.errors import PageParseError
from crawler.parsing.text import clean, first_text, joined_text

A = site.ARTICLE


def parse_article_page(html: str, url: str) -> ArticleItem:
    """Read an article page; raises PageParseError if it is not one. Missing fields come back
    empty so that validation can reject the article with a precise reason."""
    doc = Selector(text=html)
    root = doc.css(A.root)
    if not root:
        raise PageParseError(url, "not an article page: no article element")
    node = root[0]
    canonical = doc.css(A.canonical).attrib.get("href")
    author = first_text(node, A.author)
    published = node.css(A.published)
    return ArticleItem(
        url=url,
        title=first_text(node, A.title),
        source=first_text(node, A.source_name),
        author=author or None,
        published=(joined_text(published[0]) or published.attrib.get("datetime", "")) if published else "",
        body=[text for p in node.css(A.body_paragraphs) if (text := joined_text(p))],
        tags=[clean(t) for t in node.css(A.tags).xpath("string()").getall() if clean(t)],
        canonical_url=urljoin(url, canonical) if canonical else None,
    )
