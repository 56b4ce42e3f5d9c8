"""The article detail page: ``getNewsDetailData`` in its JSON first, its HTML second; and the
legacy host's ``.shtml`` pages, which are HTML only.

A page that arrived cut short, or that the HTML parser could not read to the end, raises
PageParseError with the reason instead of yielding an article with part of its body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from fx168 import site
from fx168.items import ArticleItem, ArticlePage
from fx168.parsing.content import Content, read_content, read_content_html
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import ShapeError, dig_any, html_tree, iso_time, read_both, required, split_page
from fx168.parsing.text import (
    TRUNCATED,
    clean,
    first_text,
    joined_text,
    select,
    select_one,
    truncated,
)

A = site.ARTICLE
L = site.LEGACY_ARTICLE
K = site.NEWS
_SUMMARY_LABEL = ("摘要：", "摘要:")


def parse_article_page(html: str, url: str, *, use_json: bool = True, verify: bool = True) -> ArticlePage:
    """Read an article page (portal or legacy host); raises PageParseError if it is not one.
    Missing fields come back empty so that validation can reject the article with a precise
    reason. ``use_json=False`` reads the HTML alone (the fallback path, for tests)."""
    if truncated(html):
        raise PageParseError(url, TRUNCATED)
    page = split_page(html)
    legacy = site.page_kind(url) == site.PageKind.LEGACY_ARTICLE
    article, via, drift = read_both(
        page,
        url,
        None if legacy else (lambda data: _from_json(data, url)),
        (lambda: _from_legacy_html(html_tree(page.markup, url), url))
        if legacy
        else (lambda: _from_html(html_tree(page.markup, url), url)),
        use_json=use_json,
        verify=verify,
    )
    return ArticlePage(url=url, article=article, via=via, drift=drift)


def _from_json(data: Any, url: str) -> ArticleItem:
    detail = dig_any(data, site.JSON_PATHS[site.PageKind.ARTICLE])
    required(detail, K.news_id, K.title, K.content, K.published)
    try:
        news_id = int(detail[K.news_id])
    except (TypeError, ValueError):
        raise ShapeError(f"{K.news_id} is not a number: {detail[K.news_id]!r}") from None
    content = detail[K.content]
    if not isinstance(content, str):
        raise ShapeError(f"{K.content} is not a string")
    tags = detail.get(K.tags) or []
    if isinstance(tags, str):
        tags = tags.split(",")
    return _article(
        url=url,
        news_id=news_id,
        title=clean(str(detail[K.title] or "")),
        source=clean(str(detail.get(K.source) or "")),
        author=clean(str(detail.get(K.author) or "")) or None,
        published=str(detail[K.published] or "").strip(),
        published_datetime=iso_time(str(detail[K.published] or "")),
        summary=_summary(str(detail.get(K.summary) or "")),
        tags=[text for tag in tags if (text := clean(str(tag)))],
        image=str(detail.get(K.image) or "") or None,
        canonical=site.ArticleRef("news", news_id).url,
        content=read_content_html(content),
    )


def _from_html(doc: etree._Element, url: str) -> ArticleItem:
    node = select_one(doc, A.root)
    if node is None:
        raise PageParseError(url, "not an article page: no article element")
    body = select_one(node, A.body)
    video = select_one(node, A.video)
    if body is None and video is None:
        raise PageParseError(url, "not an article page: no body element")
    if video is not None:
        ids = (("appId", video.get("data-app-id")), ("fileId", video.get("data-file-id")))
        content = Content(video={key: value for key, value in ids if value})
    else:
        assert body is not None
        content = read_content(body)
    canonical = _canonical(doc, url)
    ref = site.article_ref(canonical or url)
    time = select_one(node, A.published)
    return _article(
        url=url,
        news_id=ref.id if ref is not None and ref.kind == "news" else None,
        title=first_text(node, A.title),
        source=first_text(node, A.source_name),
        author=first_text(node, A.author) or None,
        published=(joined_text(time) or time.get("datetime", "")) if time is not None else "",
        # the machine-readable time: validation prefers it to coarser visible text
        published_datetime=iso_time(time.get("datetime")) if time is not None else None,
        summary=_summary(first_text(node, A.summary)),
        tags=[text for tag in select(node, A.tags) if (text := joined_text(tag))],
        image=_image(doc),
        canonical=canonical,
        content=content,
    )


def _from_legacy_html(doc: etree._Element, url: str) -> ArticleItem:
    node = select_one(doc, L.root)
    body = select_one(doc, L.body)
    if node is None or body is None:
        raise PageParseError(url, "not a legacy article page: no article or body element")
    time = select_one(doc, L.published)
    return _article(
        url=url,
        news_id=None,
        title=first_text(doc, L.title),
        source=first_text(doc, L.source_name).removeprefix("来源：").removeprefix("来源:").strip(),
        author=first_text(doc, L.author).removeprefix("作者：").removeprefix("作者:").strip() or None,
        published=(joined_text(time) or time.get("datetime", "")) if time is not None else "",
        published_datetime=iso_time(time.get("datetime")) if time is not None else None,
        summary=None,
        tags=[text for tag in select(doc, L.tags) if (text := joined_text(tag))],
        image=None,
        canonical=_canonical(doc, url),
        content=read_content(body),
    )


def _article(
    *,
    url: str,
    news_id: int | None,
    title: str,
    source: str,
    author: str | None,
    published: str,
    published_datetime: str | None,
    summary: str | None,
    tags: list[str],
    image: str | None,
    canonical: str | None,
    content: Content,
) -> ArticleItem:
    return ArticleItem(
        url=url,
        title=title,
        source=content.reprinted_from or source,
        author=author,
        published=published,
        published_datetime=published_datetime,
        body=content.body,
        tags=tags,
        canonical_url=canonical,
        news_id=news_id,
        kind="video" if content.video is not None else "article",
        summary=summary,
        topics=content.topics,
        symbols=content.symbols,
        video=content.video,
        reprinted=content.reprinted_from is not None,
        ai_generated=content.ai_generated,
        image=image,
    )


def _canonical(doc: etree._Element, url: str) -> str | None:
    """The page's rel=canonical, as the one URL of the article it names when it names one."""
    link = select_one(doc, A.canonical)
    href: str = (link.get("href") or "").strip() if link is not None else ""
    if not href:
        return None
    absolute = urljoin(url, href)
    host = urlsplit(absolute).netloc.lower()
    if host not in site.SITE_HOSTS and host not in site.LEGACY_HOSTS and host != urlsplit(url).netloc.lower():
        return absolute  # a link off the site is no spelling of one of its articles
    ref = site.article_ref(absolute)
    return ref.url if ref is not None else absolute


def _image(doc: etree._Element) -> str | None:
    meta = select_one(doc, A.image)
    return ((meta.get("content") or "").strip() or None) if meta is not None else None


def _summary(text: str) -> str | None:
    text = clean(text)
    for label in _SUMMARY_LABEL:
        text = text.removeprefix(label)
    return text.strip() or None
