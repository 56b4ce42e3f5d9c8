"""Text normalisers and element helpers shared by the page parsers.

Parsers select with the CSS selectors of ``crawler.site``, compiled once to lxml XPath
objects: the same selectors as parsel's ``.css()``, without building a Selector per node.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urljoin, urlsplit

from cssselect import HTMLTranslator
from lxml import etree
from lxml.html import HtmlElement
from parsel import Selector

#: NUL and the other C0 controls besides whitespace: never text, and PostgreSQL refuses NUL outright.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_STRING = etree.XPath("string()")
_TRANSLATOR = HTMLTranslator()


def clean(text: str | None) -> str:
    """Drop control characters, collapse runs of whitespace to one space and trim; None becomes ''."""
    if not text:
        return ""
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    return " ".join(text.split())  # str.split() is the fast way to fold every kind of whitespace


def document(html: str) -> HtmlElement:
    """The page's root element, parsed by parsel (lxml's HTML parser, huge trees allowed)."""
    return Selector(text=html or "<html></html>").root


@cache
def _compiled(css: str) -> etree.XPath:
    return etree.XPath(_TRANSLATOR.css_to_xpath(css))


def select(node: HtmlElement, css: str) -> list[HtmlElement]:
    return _compiled(css)(node)


def select_one(node: HtmlElement, css: str) -> HtmlElement | None:
    found = _compiled(css)(node)
    return found[0] if found else None


def joined_text(node: HtmlElement) -> str:
    """All text under a node as one string.

    The portal wraps every highlighted character in its own element, so the text of a
    snippet is split across many nodes (…中国式 | 现 | 代 | 化…); joining them without
    separators gives back the sentence as written (…中国式现代化…).
    """
    return clean(_STRING(node))


def first_text(node: HtmlElement, css: str) -> str:
    found = select_one(node, css)
    return joined_text(found) if found is not None else ""


def highlighted_terms(node: HtmlElement, highlight_class: str) -> list[str]:
    """The highlighted terms of a snippet: adjacent highlighted elements form one term (现 + 代 = 现代)."""
    terms: list[str] = []
    previous_was_highlight = False
    for child in node:
        if not isinstance(child.tag, str):  # a comment or processing instruction
            previous_was_highlight = previous_was_highlight and not child.tail
            continue
        if highlight_class in (child.get("class") or "").split():
            char = _STRING(child)
            if previous_was_highlight:
                terms[-1] += char
            else:
                terms.append(char)
            previous_was_highlight = not child.tail  # text between two highlights splits them
        else:
            previous_was_highlight = False
    return terms


class LinkResolver:
    """urljoin for one page, with the common case (an absolute path like /article/1) done by
    concatenation: a listing page resolves dozens of links and urljoin dominated its parse time."""

    def __init__(self, page_url: str) -> None:
        parts = urlsplit(page_url)
        self.page_url = page_url
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def __call__(self, href: str | None) -> str:
        href = (href or "").strip()
        if href.startswith("/") and not href.startswith("//"):
            return self.origin + href
        if href.startswith(("http://", "https://")):
            return href
        return urljoin(self.page_url, href)
