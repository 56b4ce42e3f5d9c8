"""An article body as the portal publishes it (``newsContent``): its paragraphs and subheads in
order, the topics and quote symbols it links, and the boilerplate that is not the article.

The same reader serves the JSON path (``newsContent`` as a string) and the HTML path (the
element the page renders it into), so the two paths cannot drift apart in what a body is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from fx168 import site
from fx168.parsing.text import block_texts, fragment, joined_text, select, select_one

C = site.CONTENT


@dataclass(slots=True)
class Content:
    body: list[str] = field(default_factory=list)
    topics: list[dict[str, Any]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    #: The original outlet a reprint notice names ('' when the notice names none).
    reprinted_from: str | None = None
    ai_generated: bool = False
    video: dict[str, str] | None = None


def video_ids(content: str) -> dict[str, str] | None:
    """A video item's ``newsContent`` is a JSON object with its player's ids, not HTML."""
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "fileId" in data:
        return {key: str(value) for key, value in data.items() if isinstance(value, str | int)}
    return None


def read_content_html(content: str) -> Content:
    """``newsContent`` as given in the page's JSON."""
    if (video := video_ids(content)) is not None:
        return Content(video=video)
    return read_content(fragment(content))


def read_content(node: etree._Element) -> Content:
    """The body under ``node``: its ``div.centerarticle`` when it has one, else all of it."""
    container = select_one(node, C.container)
    if container is None:
        container = node
    result = Content(topics=_topics(container), symbols=_symbols(container))
    for text in block_texts(container, exclude=_not_body):
        if site.REPRINT_NOTICE_RE.match(text):
            if outlet := site.REPRINT_OUTLET_RE.search(text):
                result.reprinted_from = outlet.group("outlet")
            elif result.reprinted_from is None:
                result.reprinted_from = ""
            continue
        if site.AI_NOTICE_RE.match(text):
            result.ai_generated = True
            continue
        if site.CREDIT_RE.match(text):
            continue
        result.body.append(text)
    return result


def _not_body(element: etree._Element) -> bool:
    """The reprint footer and image blocks hold no body text."""
    classes = (element.get("class") or "").split()
    if C.image_block.split(".", 1)[1] in classes:
        return True
    return element.tag == "div" and "border-top" in (element.get("style") or "")


def _topics(container: etree._Element) -> list[dict[str, Any]]:
    topics: dict[int, str] = {}
    for link in select(container, C.topic_link):
        value = (link.get(C.topic_id_attr) or "").strip()
        if value.isdigit():
            match = site.TOPIC_NAME_RE.match(joined_text(link))
            topics.setdefault(int(value), match.group("name").strip() if match else "")
    return [{"id": topic_id, "name": name} for topic_id, name in topics.items()]


def _symbols(container: etree._Element) -> list[str]:
    symbols = (site.quote_symbol(link.get("href") or "") for link in select(container, C.internal_link))
    return list(dict.fromkeys(symbol for symbol in symbols if symbol))
