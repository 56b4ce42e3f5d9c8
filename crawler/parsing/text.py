"""Text normalisers and element helpers shared by the page parsers.

Parsers select with the CSS selectors of ``crawler.site``, compiled once to lxml XPath
objects: the same selectors as parsel's ``.css()``, without building a Selector per node.

Pages come from the open web, so ``document`` treats them as hostile: what a browser would
not show as text (scripts, styles, templates) is removed before any text is taken, and a page
that libxml2 could not read to the end (nesting past its depth limit) is reported rather than
silently cut short.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urljoin, urlsplit

from cssselect import HTMLTranslator
from lxml import etree
from lxml.html import HtmlElement, HTMLParser

#: NUL and the other C0 controls besides whitespace, and lone surrogates: never text;
#: PostgreSQL refuses NUL outright and no UTF-8 encoder takes a lone surrogate.
CONTROL_CHARACTERS = r"\x00-\x08\x0e-\x1b\x7f\ud800-\udfff"
_CONTROLS = re.compile(f"[{CONTROL_CHARACTERS}]")
_STRING = etree.XPath("string()")
_TRANSLATOR = HTMLTranslator()
#: Elements whose content is code or markup, not text a reader sees.
NOT_TEXT = ("script", "style", "noscript", "template")
#: What the end of a page that arrived whole looks like.
_PAGE_END = re.compile(r"</(?:html|body)\s*>", re.IGNORECASE)


class MarkupError(ValueError):
    """The HTML could not be read to the end; the message says why."""


def clean(text: str | None) -> str:
    """Drop control characters, collapse runs of whitespace to one space and trim; None becomes ''."""
    if not text:
        return ""
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    return " ".join(text.split())  # str.split() is the fast way to fold every kind of whitespace


def document(html: str) -> HtmlElement:
    """The page's root element, without script, style, noscript and template elements.

    lxml's HTML parser in recovery mode (huge trees allowed, as parsel does) closes unclosed
    tags the way browsers mostly do. Past libxml2's nesting limit (2048 levels) it stops
    reading and returns a tree without the rest of the page: that raises MarkupError, so a
    page built to defeat the parser is rejected, not stored with half its content.
    """
    text = _CONTROLS.sub("", html) if html and _CONTROLS.search(html) else (html or "")
    parser = HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    root = etree.fromstring(text.strip().encode("utf-8") or b"<html></html>", parser=parser)
    if root is None:  # nothing an HTML parser recognises (whitespace, a lone comment)
        root = etree.fromstring(b"<html></html>", parser=parser)
    for error in parser.error_log:
        if error.type_name == "ERR_RESOURCE_LIMIT" or "excessive depth" in error.message.lower():
            detail = error.message.split(",")[0].strip()  # 'Excessive depth in document: 2048'
            raise MarkupError(f"markup nested too deeply to read to the end ({detail})")
    etree.strip_elements(root, *NOT_TEXT, with_tail=False)
    return root


#: The reject reason of a page that stops before its end.
TRUNCATED = "truncated page: no closing </body> or </html>"


def truncated(html: str) -> bool:
    """Does the page stop before its closing </body> or </html> (a download cut short)?"""
    return not _PAGE_END.search(html or "")


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
