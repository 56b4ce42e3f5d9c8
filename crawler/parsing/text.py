"""Text normalisers shared by the page parsers."""

from __future__ import annotations

import re

from parsel import Selector

_WHITESPACE = re.compile(r"\s+")
#: NUL and the other C0 controls besides whitespace: never text, and PostgreSQL refuses NUL outright.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def clean(text: str | None) -> str:
    """Drop control characters, collapse runs of whitespace to one space and trim; None becomes ''."""
    if not text:
        return ""
    return _WHITESPACE.sub(" ", _CONTROLS.sub("", text)).strip()


def joined_text(node: Selector) -> str:
    """All text under a node as one string.

    The portal wraps every highlighted character in its own element, so the text of a
    snippet is split across many nodes (…中国式 | 现 | 代 | 化…); joining them without
    separators gives back the sentence as written (…中国式现代化…).
    """
    return clean("".join(node.xpath(".//text()").getall()))


def first_text(node: Selector, css: str) -> str:
    found = node.css(css)
    return joined_text(found[0]) if found else ""


def highlighted_terms(node: Selector, highlight_class: str) -> list[str]:
    """The highlighted terms of a snippet: adjacent highlighted elements form one term (现 + 代 = 现代)."""
    terms: list[str] = []
    previous_was_highlight = False
    for child in node.xpath("./node()"):
        root = child.root
        if not isinstance(root, str) and highlight_class in (root.get("class") or "").split():
            char = "".join(child.xpath(".//text()").getall())
            if previous_was_highlight:
                terms[-1] += char
            else:
                terms.append(char)
            previous_was_highlight = True
        else:
            previous_was_highlight = False
    return terms
