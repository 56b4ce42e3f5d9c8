"""Text normalisers and element helpers shared by the page parsers.

Parsers select with the CSS selectors of ``fx168.site``, compiled once to lxml XPath
objects: the same selectors as parsel's ``.css()``, without building a Selector per node.

Pages come from the open web, so ``document`` treats them as hostile: what a browser would
not show as text (scripts, styles, templates) is removed before any text is taken, and a page
that libxml2 could not read to the end (nesting past its depth limit) is reported rather than
silently cut short.

Text is taken as a browser shows it (``clean``): inline elements add nothing, white space
collapses as CSS collapses it, invisible characters are gone. A body's paragraphs are its
blocks at any depth (``block_texts``, ``fragment_blocks`` for a body given as an HTML string).
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
#: Characters that render as nothing: zero-width space, non-joiner, joiner, word joiner, BOM
#: (zero-width no-break space) and the soft hyphen. Pasted-in text carries them invisibly, and
#: kept they make one outlet name two, and a search for a title miss it.
INVISIBLE_CHARACTERS = "\u00ad\u200b-\u200d\u2060\ufeff"
_INVISIBLE_LIST = ("\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
#: What ``clean`` removes outright: controls and invisible characters.
_STRIP = re.compile(f"[{CONTROL_CHARACTERS}{INVISIBLE_CHARACTERS}]")
#: Characters whose East Asian Width is F, W or H, Hangul aside (CSS Text 3 §4.1.3): a line
#: break in the source between two of them is removed, as a browser does, not turned into a
#: space ('中国式\n现代化' reads 中国式现代化). U+3000 is left out: it is white space itself.
CJK_CHARACTERS = (
    "\u2e80-\u2fff\u3001-\u303f\u3041-\u312f\u3190-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uf900-\ufaff\ufe30-\ufe4f\uff01-\uff9f\uffe0-\uffee\U00020000-\U0003fffd"
)
#: A segment break (with the collapsible white space around it) between two such characters.
_SEGMENT_BREAK = re.compile(f"(?<=[{CJK_CHARACTERS}])[ \t\r\f]*\n[ \t\r\n\f]*(?=[{CJK_CHARACTERS}])")
#: White space and invisible characters: a text made only of them shows nothing.
_BLANK = " \t\n\r\f\v\u00a0\u3000" + "".join(_INVISIBLE_LIST)
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
    """Text as a browser shows it, on one line: control and invisible characters dropped, a
    line break between two CJK characters removed, every other run of white space (NBSP and
    U+3000 too) one space, trimmed; None becomes ''.

    Nearly every text has none of these, and ``str.isprintable`` (one C loop, a fraction of a
    regex search) says so: it is False for every control, invisible character, line break and
    white space but the ASCII space. Only other text is searched, and the segment-break rule
    (a regex) runs only on text with a line break in it.
    """
    if not text:
        return ""
    if text.isprintable():
        if text[0] == " " or text[-1] == " " or "  " in text:
            return " ".join(text.split())
        return text
    if _has_strippable(text):
        text = _STRIP.sub("", text)
    if "\n" in text:
        text = _SEGMENT_BREAK.sub("", text)
    return " ".join(text.split())  # str.split() is the fast way to fold every kind of whitespace


def clean_lines(text: str | None) -> str:
    """``clean`` for text whose line breaks are meant (a paragraph with ``<br>`` in it, as
    ``block_texts`` gives it): each line cleaned, empty lines dropped, joined by '\n'."""
    if not text:
        return ""
    if "\n" not in text:
        return clean(text)
    return "\n".join(line for line in map(clean, text.split("\n")) if line)


def strip_invisible(text: str) -> str:
    """``text`` without zero-width characters and soft hyphens (for what is not cleaned, a URL)."""
    return _STRIP.sub("", text) if _has_invisible(text) else text


def _has_invisible(text: str) -> bool:
    return any(char in text for char in _INVISIBLE_LIST)  # a C-level search each


def _blank(text: str) -> bool:
    """Does ``text`` show nothing but white space (or nothing at all)?"""
    return not text.strip(_BLANK)


def _has_strippable(text: str) -> bool:
    """Does ``text`` hold a control or invisible character? In long text (a snippet, an
    article body), encoding it and looking for the control bytes is faster than the regex,
    which tests every character in turn."""
    if len(text) < _LONG_TEXT:
        return _STRIP.search(text) is not None
    try:
        return _has_control_bytes(text.encode("utf-8")) or _has_invisible(text)
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
    found: list[etree._Element] = _compiled(css)(node)
    return found


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
        text: str = _STRING(node)  # a plain str: smart_strings=False
        return text
    return node.text or ""


def first_text(node: etree._Element, css: str) -> str:
    found = select_one(node, css)
    return joined_text(found) if found is not None else ""


def snippet_text(node: etree._Element, highlight_class: str) -> tuple[str, list[str]]:
    """``joined_text(node)`` and the snippet's highlighted terms, in one pass; adjacent
    highlighted elements form one term (现 + 代 = 现代).

    A snippet's text is its own text, then each child's text and tail (comments and
    processing instructions have no text, only a tail); lxml makes a new str for every
    tail it is asked for, and a long snippet is mostly tails, so each is read once here.
    Highlights with nothing visible between them (no text, or only white space and
    invisible characters, as in pretty-printed markup) form one term; each term is cleaned
    like the snippet, so '\n 现\n' is 现.
    """
    pieces = [node.text or ""]
    terms: list[str] = []
    term: list[str] = []  # the raw pieces of the term being read, if any
    for child in node:
        tail = child.tail
        if not isinstance(child.tag, str):  # a comment or processing instruction: no text
            pass
        elif highlight_class in (child.get("class") or "").split():
            char = _string(child)
            pieces.append(char)
            term.append(char)
        else:
            pieces.append(_string(child))
            if term:
                _end_term(term, terms)
        if tail:
            pieces.append(tail)
            if term:
                if not tail.strip(_BLANK):  # _blank, inlined: white space or invisible only
                    term.append(tail)
                else:  # text between two highlights splits them
                    _end_term(term, terms)
    if term:
        _end_term(term, terms)
    return clean("".join(pieces)), terms


def _end_term(term: list[str], terms: list[str]) -> None:
    raw = term[0] if len(term) == 1 else "".join(term)
    if text := raw if raw.isalnum() else clean(raw):  # letters and digits only: already clean
        terms.append(text)
    term.clear()


#: Elements that start a new paragraph: what browsers lay out as blocks by default.
BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
        "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p", "pre",
        "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip

#: Which sub-elements of a container to leave out: a CSS selector, or a test on each element.
Exclude = str | Callable[[etree._Element], bool] | None


def block_texts(container: etree._Element, exclude: Exclude = None) -> list[str]:
    """The paragraphs of a body container, as a reader sees them.

    Paragraphs are the runs of text between block boundaries (the start or end of a p,
    div, li, h1-h6, section … at any depth), so extra wrappers change nothing, a div with
    text of its own is a paragraph, and an unclosed inline tag (``<p>a<span>b<p>c``, which
    libxml2 nests) does not merge two paragraphs. ``<br>`` is a line break ('\n' in the
    paragraph); two or more with only white space between them are a paragraph break.
    Each line is cleaned (``clean``); empty paragraphs are dropped. ``exclude`` names
    sub-elements to skip with their content (their tail, the text after them, is kept).
    Script, style, noscript and template content is never text.
    """
    skip = _exclusion(container, exclude)
    if skip is None and (texts := _simple_texts(container)) is not None:
        return [text for text in map(clean, texts) if text]
    paragraphs: list[str] = []
    lines: list[str] = []  # the finished lines of the paragraph being read
    line: list[str] = []  # the pieces of its current line
    after_break = False  # a <br> and nothing visible since: another <br> ends the paragraph

    def end_paragraph() -> None:
        nonlocal after_break
        lines.append("".join(line))
        line.clear()
        if text := "\n".join(cleaned for cleaned in map(clean, lines) if cleaned):
            paragraphs.append(text)
        lines.clear()
        after_break = False

    def add(text: str | None) -> None:
        nonlocal after_break
        if text:
            line.append(text)
            if after_break and not _blank(text):
                after_break = False

    add(container.text)
    stack = [iter(container)]
    parents = [container]
    while stack:
        child = next(stack[-1], None)
        if child is None:  # the end of an element
            stack.pop()
            element = parents.pop()
            if element.tag in BLOCK_TAGS:
                end_paragraph()
            if stack:
                add(element.tail)
            continue
        tag = child.tag
        if not isinstance(tag, str):  # a comment or processing instruction: only its tail is text
            add(child.tail)
            continue
        if tag == "br":
            if after_break:
                end_paragraph()
            else:
                lines.append("".join(line))
                line.clear()
                after_break = True
            add(child.tail)
            continue
        if tag in NOT_TEXT or (skip is not None and skip(child)):
            if tag in BLOCK_TAGS:
                end_paragraph()
            add(child.tail)
            continue
        if tag in BLOCK_TAGS:
            end_paragraph()
        add(child.text)
        stack.append(iter(child))
        parents.append(child)
    return paragraphs


def _simple_texts(container: etree._Element) -> list[str | None] | None:
    """The texts of the container's blocks if it is a plain list of blocks holding text only
    (``<p>…</p><p>…</p>``), each a paragraph: the common body, read without the walk; else None."""
    text = container.text
    if text and not text.isspace():
        return None
    texts = []
    for child in container:
        if len(child) or child.tag not in BLOCK_TAGS:
            return None
        tail = child.tail
        if tail and not tail.isspace():  # text between blocks (or an invisible character): walk
            return None
        texts.append(child.text)
    return texts


def _exclusion(container: etree._Element, exclude: Exclude) -> Callable[[etree._Element], bool] | None:
    if exclude is None or callable(exclude):
        return exclude
    excluded = set(select(container, exclude))
    return excluded.__contains__ if excluded else None


def fragment(html: str) -> etree._Element:
    """An HTML fragment (an article body given as a string inside JSON) as an element holding
    it, read like a page (``document``: no scripts, control characters dropped)."""
    return document(f"<html><body>{html or ''}</body></html>").find("body")


def fragment_blocks(html: str, exclude: Exclude = None) -> list[str]:
    """``block_texts`` of an HTML fragment (see ``fragment``)."""
    return block_texts(fragment(html), exclude)


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
    found: list[etree._Element] = root.findall(f"body/div/{_FRAGMENT_TAG}")
    if len(found) == len(htmls):
        return found
    return [fragment(piece) for piece in htmls]
