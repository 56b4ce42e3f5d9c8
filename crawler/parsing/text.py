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
from collections.abc import Callable
from functools import cache
from urllib.parse import urljoin, urlsplit

from cssselect import HTMLTranslator, parse
from cssselect.parser import CombinedSelector
from lxml import etree

#: NUL and the other C0 controls besides whitespace, and lone surrogates: never text;
#: PostgreSQL refuses NUL outright and no UTF-8 encoder takes a lone surrogate.
CONTROL_CHARACTERS = r"\x00-\x08\x0e-\x1b\x7f\ud800-\udfff"
_CONTROLS = re.compile(f"[{CONTROL_CHARACTERS}]")
#: The same controls in UTF-8 (surrogates aside): one byte each, a byte no other character's
#: encoding contains, so looking for them in the encoded page finds exactly the controls.
_CONTROL_BYTES = bytes(byte for byte in range(0x80) if _CONTROLS.match(chr(byte)))
#: Plain str results: a "smart" string would keep the whole tree alive through its item.
_STRING = etree.XPath("string()", regexp=False, smart_strings=False)
_TRANSLATOR = HTMLTranslator()
#: Elements whose content is code or markup, not text a reader sees.
NOT_TEXT = ("script", "style", "noscript", "template")
#: What the end of a page that arrived whole looks like.
_PAGE_END = re.compile(r"</(?:html|body)\s*>", re.IGNORECASE)
#: How far from the end a whole page's closing tag is looked for before the whole page is.
_PAGE_END_WINDOW = 1024
#: Text at least this long is checked for control characters in its UTF-8 encoding.
_LONG_TEXT = 1000


class MarkupError(ValueError):
    """The HTML could not be read to the end; the message says why."""


def clean(text: str | None) -> str:
    """Drop control characters, collapse runs of whitespace to one space and trim; None becomes ''."""
    if not text:
        return ""
    if _has_controls(text):
        text = _CONTROLS.sub("", text)
    return " ".join(text.split())  # str.split() is the fast way to fold every kind of whitespace


def _has_controls(text: str) -> bool:
    """Does ``text`` hold a control character? In long text (a snippet, an article body),
    encoding it and looking for the control bytes is faster than the regex, which tests every
    character in turn."""
    if len(text) < _LONG_TEXT:
        return _CONTROLS.search(text) is not None
    try:
        return _has_control_bytes(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return True


def _has_control_bytes(data: bytes) -> bool:
    return any(byte in data for byte in _CONTROL_BYTES)  # a memchr per byte value


def document(html: str) -> etree._Element:
    """The page's root element, without script, style, noscript and template elements.

    lxml's HTML parser in recovery mode (huge trees allowed, as parsel does) closes unclosed
    tags the way browsers mostly do. Past libxml2's nesting limit (2048 levels) it stops
    reading and returns a tree without the rest of the page: that raises MarkupError, so a
    page built to defeat the parser is rejected, not stored with half its content.

    The tree is made of plain lxml elements: lxml.html's element classes cost a Python
    class lookup for every element the parsers touch, and the parsers use none of their methods.
    """
    parser = etree.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    root = etree.fromstring(_page_bytes(html) or b"<html></html>", parser=parser)
    if root is None:  # nothing an HTML parser recognises (whitespace, a lone comment)
        root = etree.fromstring(b"<html></html>", parser=parser)
    for error in parser.error_log:
        if error.type_name == "ERR_RESOURCE_LIMIT" or "excessive depth" in error.message.lower():
            detail = error.message.split(",")[0].strip()  # 'Excessive depth in document: 2048'
            raise MarkupError(f"markup nested too deeply to read to the end ({detail})")
    etree.strip_elements(root, *NOT_TEXT, with_tail=False)
    return root


def _page_bytes(html: str | None) -> bytes:
    """The page as UTF-8, trimmed, without control characters.

    Pages nearly never hold a control character, and looking for one in the encoded page
    (which the parser needs anyway) is several times faster than a regex over the str; only a
    page that does hold one (or a lone surrogate, which UTF-8 cannot encode) takes the regex.
    Trimming first is safe: whitespace is never a control, so the controls are all inside.
    """
    text = (html or "").strip()
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return _without_controls(text)
    return _without_controls(text) if _has_control_bytes(data) else data


def _without_controls(text: str) -> bytes:
    return _CONTROLS.sub("", text).strip().encode("utf-8")


#: The reject reason of a page that stops before its end.
TRUNCATED = "truncated page: no closing </body> or </html>"


def truncated(html: str) -> bool:
    """Does the page stop before its closing </body> or </html> (a download cut short)?

    A whole page ends with them, so the last kilobyte is read first; only a page without
    them there is searched from the start.
    """
    html = html or ""
    if _PAGE_END.search(html, max(0, len(html) - _PAGE_END_WINDOW)):
        return False
    return not _PAGE_END.search(html)


@cache
def _compiled(css: str) -> etree.XPath:
    return etree.XPath(_TRANSLATOR.css_to_xpath(css), regexp=False)


def select(node: etree._Element, css: str) -> list[etree._Element]:
    return _compiled(css)(node)


def select_one(node: etree._Element, css: str) -> etree._Element | None:
    found = _compiled(css)(node)
    return found[0] if found else None


def within(css: str, container: str) -> bool:
    """Is ``css`` the simple selector ``container`` followed by descendant and child steps only
    (``div.pagination a.page``, ``div.pagination > a``)?

    Everything ``css`` selects then lies inside an element ``container`` selects, so on a page
    where ``container`` selects one element, selecting from that element finds exactly what
    selecting from the whole page does, without walking the rest of the page.
    """
    outer, inner = parse(container), parse(css)
    if len(outer) != 1 or len(inner) != 1 or outer[0].pseudo_element or inner[0].pseudo_element:
        return False
    if isinstance(outer[0].parsed_tree, CombinedSelector):
        return False
    tree = inner[0].parsed_tree
    while isinstance(tree, CombinedSelector) and tree.combinator in (" ", ">"):
        tree = tree.selector
    return tree is not inner[0].parsed_tree and repr(tree) == repr(outer[0].parsed_tree)


def joined_text(node: etree._Element) -> str:
    """All text under a node as one string.

    The portal wraps every highlighted character in its own element, so the text of a
    snippet is split across many nodes (…中国式 | 现 | 代 | 化…); joining them without
    separators gives back the sentence as written (…中国式现代化…).
    """
    return clean(_string(node))


def _string(node: etree._Element) -> str:
    """XPath's string(): the text under a node, without its tail.

    Most nodes a parser reads (a title, a date, one highlighted character) hold nothing but
    their text, and reading ``.text`` is a fraction of the cost of an XPath call.
    """
    if len(node):
        return _STRING(node)
    return node.text or ""


def first_text(node: etree._Element, css: str) -> str:
    found = select_one(node, css)
    return joined_text(found) if found is not None else ""


def highlighted_terms(node: etree._Element, highlight_class: str) -> list[str]:
    """The highlighted terms of a snippet: adjacent highlighted elements form one term (现 + 代 = 现代)."""
    return snippet_text(node, highlight_class)[1]


def snippet_text(node: etree._Element, highlight_class: str) -> tuple[str, list[str]]:
    """``joined_text(node)`` and ``highlighted_terms(node, highlight_class)`` in one pass.

    A snippet's text is its own text, then each child's text and tail (comments and
    processing instructions have no text, only a tail); lxml makes a new str for every
    tail it is asked for, and a long snippet is mostly tails, so each is read once here.
    """
    pieces = [node.text or ""]
    terms: list[str] = []
    previous_was_highlight = False
    for child in node:
        tail = child.tail
        if not isinstance(child.tag, str):  # a comment or processing instruction
            previous_was_highlight = previous_was_highlight and not tail
        elif highlight_class in (child.get("class") or "").split():
            char = _string(child)
            pieces.append(char)
            if previous_was_highlight:
                terms[-1] += char
            else:
                terms.append(char)
            previous_was_highlight = not tail  # text between two highlights splits them
        else:
            pieces.append(_string(child))
            previous_was_highlight = False
        if tail:
            pieces.append(tail)
    return clean("".join(pieces)), terms


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


#: Elements that start a paragraph of their own.
BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption"})


def block_texts(container: etree._Element, exclude: Callable[[etree._Element], bool] | None = None) -> list[str]:
    """The paragraphs under ``container``, in order: each block element (at any depth) whose
    text is not inside a nested block; elements ``exclude`` says are not body are skipped."""
    out: list[str] = []

    def walk(node: etree._Element) -> None:
        for child in node:
            if not isinstance(child.tag, str) or (exclude is not None and exclude(child)):
                continue
            if child.tag in BLOCKS and not any(
                isinstance(d.tag, str) and d.tag in BLOCKS for d in child.iterdescendants()
            ):
                if text := joined_text(child):
                    out.append(text)
            else:
                walk(child)

    walk(container)
    return out


def fragment(html: str) -> etree._Element:
    """A piece of HTML given as a string (a JSON field's markup), as one ``div`` holding it:
    the same cleaning as ``document``, without the page-level checks."""
    root = document(f"<div>{html}</div>")
    body = root.find("body")
    node = body[0] if body is not None and len(body) else None
    return node if node is not None and node.tag == "div" else root


#: Wraps each of a batch of fragments: an element no page uses, which no markup inside closes.
_FRAGMENT_TAG = "fxcrawl-fragment"


def fragments(htmls: list[str]) -> list[etree._Element]:
    """Many small pieces of HTML (a listing's snippets) parsed as one document, one element each:
    a tenth of the cost of a parse per piece. A piece whose markup does not close (and so would
    swallow the next) sends the batch back to one parse per piece."""
    if not htmls:
        return []
    wrapped = "".join(f"<{_FRAGMENT_TAG}>{piece}</{_FRAGMENT_TAG}>" for piece in htmls)
    root = document(f"<div>{wrapped}</div>")
    found = root.findall(f"body/div/{_FRAGMENT_TAG}")
    if len(found) == len(htmls):
        return found
    return [fragment(piece) for piece in htmls]
