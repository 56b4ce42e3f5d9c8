"""Meaning-preserving rewrites of any HTML page, for robustness tests.

Each rewrite changes the markup the way real pages differ from one another (formatting,
wrappers, attribute order, comments, entities, ``<br><br>`` for ``<p>``, invisible characters)
while a browser shows the same text: a parser that reads a page as a reader sees it must give
the same records for the rewritten page. They work on an lxml tree (``parse``/``serialise``), take a
``random.Random`` for their choices (``share`` of the candidate places is changed; 1 = all) and never
touch what is not shown text: the head, ``script`` (a ``__NEXT_DATA__`` JSON blob), ``style``,
``pre``, ``textarea``.
"""

from __future__ import annotations

import html as html_module
import json
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from html import entities as html_entities

from lxml import etree

from fx168.parsing.text import select

#: Elements whose content is not reflowed text, or not text at all: left exactly as they are.
PROTECTED = frozenset({"script", "style", "noscript", "template", "pre", "textarea", "title", "head"})
#: Elements that cannot hold content.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
#: Elements a browser lays out as blocks: white space at their edges is never shown.
BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol", "p",
        "section", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
#: Characters between which a line break in the source shows as nothing (CSS Text 3: wide
#: East Asian characters). Deliberately narrower than the parser's own class: CJK ideographs and
#: the full-width and ideographic punctuation only, so every break inserted is one CSS removes.
_WIDE = re.compile("[\u4e00-\u9fff\u3001\u3002\uff01-\uff5e]")
#: Characters that show as nothing (zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen).
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_CSS_SPACE = " \t\n\r\f"
#: Placeholders ``entities`` leaves in the tree for ``serialise`` to write as character references.
_REF_OPEN, _REF_CLOSE = "\ue000", "\ue001"
_REF = re.compile(f"{_REF_OPEN}(.){_REF_CLOSE}", re.DOTALL)

#: Attributes holding URLs: lxml's serialiser percent-encodes what is not ASCII in them.
_URI_ATTRIBUTES = frozenset({"href", "src", "action", "srcset", "cite", "data", "formaction", "poster", "background"})

Rewrite = Callable[[etree._Element, random.Random], None]


def parse(page: str) -> etree._Element:
    """The page's root element, everything kept (comments, white space, scripts)."""
    parser = etree.HTMLParser(remove_comments=False, remove_blank_text=False, huge_tree=True, encoding="utf-8")
    return etree.fromstring(page.encode("utf-8"), parser=parser)


def serialise(root: etree._Element) -> str:
    """The tree as an HTML page again, with its doctype; ``entities`` placeholders become
    character references (named where HTML has a name, else decimal or hexadecimal)."""
    tree = root.getroottree()
    return _written(root, lambda: etree.tostring(tree, method="html", encoding="unicode", doctype=tree.docinfo.doctype))


#: What stands for a URL attribute's value while the tree is written (see ``_written``).
_URI_TOKEN = re.compile(r"fxcrawl-uri-(\d+)-")


def _written(root: etree._Element, write: Callable[[], str]) -> str:
    """``write()``'s text, with URL attributes as the page spelt them and the ``entities``
    placeholders as character references. lxml's HTML serialiser percent-encodes what is not
    ASCII in a URL attribute (``/article/黄金-1`` → ``/article/%E9%BB%84%E9%87%91-1``): another
    spelling of the link, not the same markup, so those values are held out and written back."""
    held: list[tuple[etree._Element, str, str]] = []
    for element in root.iter(etree.Element):
        for key in _URI_ATTRIBUTES.intersection(element.attrib):
            value = element.get(key) or ""
            if not value.isascii():
                element.set(key, f"fxcrawl-uri-{len(held)}-")
                held.append((element, key, value))
    try:
        text = write()
    finally:
        for element, key, value in held:
            element.set(key, value)
    if held:
        text = _URI_TOKEN.sub(lambda m: html_module.escape(held[int(m.group(1))][2], quote=True), text)
    return _REF.sub(_reference, text) if _REF_OPEN in text else text


def _reference(match: re.Match[str]) -> str:
    char = match.group(1)
    name = html_entities.codepoint2name.get(ord(char))
    if name and char not in "<>&\"'":
        return f"&{name};"
    return f"&#x{ord(char):x};" if ord(char) % 2 else f"&#{ord(char)};"


def shown(root: etree._Element) -> Iterator[etree._Element]:
    """The elements of the body whose content is shown text (not inside a PROTECTED one)."""
    body = root.find("body")
    if body is None:
        return
    stack = [body]
    while stack:
        element = stack.pop()
        yield element
        stack.extend(child for child in reversed(element) if isinstance(child.tag, str) and child.tag not in PROTECTED)


def _chosen(rng: random.Random, share: float) -> bool:
    return share >= 1 or rng.random() < share


def _wide_end(text: str | None) -> bool:
    return text is not None and text != "" and _WIDE.match(text[-1]) is not None


def _wide_start(text: str | None) -> bool:
    return text is not None and text != "" and _WIDE.match(text[0]) is not None


def _before(element: etree._Element) -> str | None:
    """The text just before ``element`` (its previous sibling's tail, or its parent's text)."""
    previous = element.getprevious()
    return previous.tail if previous is not None else element.getparent().text


def _set_before(element: etree._Element, text: str) -> None:
    previous = element.getprevious()
    if previous is not None:
        previous.tail = text
    else:
        element.getparent().text = text


def reindent(root: etree._Element, rng: random.Random, share: float = 1.0) -> None:
    """Pretty-print: line breaks and indentation around blocks and, where both neighbouring
    characters are wide CJK ones, around and inside inline elements (each on its own line)."""
    for element in list(shown(root)):
        if element.tag == "body" or not _chosen(rng, share):
            continue
        indent = "\n" + "  " * rng.randrange(1, 6)
        if element.tag in BLOCKS:
            element.text = indent + (element.text or "").lstrip(_CSS_SPACE)
            if len(element):
                element[-1].tail = (element[-1].tail or "").rstrip(_CSS_SPACE) + indent
            else:
                element.text = element.text.rstrip(_CSS_SPACE) + indent
            element.tail = indent + (element.tail or "").lstrip(_CSS_SPACE)
            _set_before(element, (_before(element) or "").rstrip(_CSS_SPACE) + indent)
        elif element.tag not in VOID:
            if _wide_end(_before(element)) and _wide_start(element.text):
                element.text = indent + element.text
            if not len(element) and _wide_end(element.text) and _wide_start(element.tail):
                element.text += indent
            following = element.getnext()
            if (
                not element.tail
                and not len(element)
                and following is not None
                and isinstance(following.tag, str)
                and following.tag not in BLOCKS
                and _wide_end(element.text)
                and _wide_start(following.text)
            ):
                element.tail = indent


def wrap_blocks(
    root: etree._Element,
    rng: random.Random,
    containers: str,
    share: float = 1.0,
    wrappers: tuple[str, ...] = ("section", "div"),
) -> None:
    """One more wrapper (one of ``wrappers``) around a run of the block children of each element
    that ``containers`` (a CSS selector) selects: ``div.article-body > section > p``."""
    for container in select(root, containers) if containers else []:
        children = [child for child in container if isinstance(child.tag, str) and child.tag in BLOCKS]
        if not children or not _chosen(rng, share):
            continue
        first = rng.randrange(len(children))
        last = rng.randrange(first, len(children))
        run = list(container)[container.index(children[first]) : container.index(children[last]) + 1]
        wrapper = etree.Element(rng.choice(wrappers))
        if rng.random() < 0.5:
            wrapper.set("class", "wrap")
        children[first].addprevious(wrapper)
        for child in run:  # every node between the first and last block, in order
            wrapper.append(child)  # moves it, with its tail


def wrap_inline(root: etree._Element, rng: random.Random, share: float = 0.3) -> None:
    """The whole content of elements that hold only text wrapped in one more inline element."""
    for element in list(shown(root)):
        if len(element) or not element.text or element.tag in VOID or element.tag == "body":
            continue
        if _chosen(rng, share):
            inner = etree.SubElement(element, rng.choice(["span", "font", "span"]))
            inner.text, element.text = element.text, None


def shuffle_attributes(root: etree._Element, rng: random.Random, share: float = 1.0) -> None:
    """Attributes in another order, and an extra class on elements that have one (or none)."""
    for element in root.iter(etree.Element):
        if not _chosen(rng, share):
            continue
        items = list(element.attrib.items())
        if element.tag in PROTECTED or element.tag in ("html", "meta", "link"):
            pass
        elif "class" in element.attrib:
            items = [(k, f"{v} x-{rng.randrange(100)}" if k == "class" else v) for k, v in items]
        elif rng.random() < 0.3:
            items.append(("class", f"x-{rng.randrange(100)}"))
        rng.shuffle(items)
        element.attrib.clear()
        for key, value in items:
            element.set(key, value)


def insert_comments(root: etree._Element, rng: random.Random, share: float = 0.3) -> None:
    """HTML comments between elements and inside text (splitting a text in two)."""
    for element in list(shown(root)):
        if element.tag in VOID or not _chosen(rng, share):
            continue
        comment = etree.Comment(f" c{rng.randrange(1000)} ")
        text = element.text or ""
        if text and rng.random() < 0.5:
            cut = rng.randrange(len(text) + 1)
            element.text, comment.tail = text[:cut] or None, text[cut:] or None
            element.insert(0, comment)
        else:
            element.insert(rng.randrange(len(element) + 1), comment)


def entities(root: etree._Element, rng: random.Random, share: float = 0.2) -> None:
    """Characters of shown text and attribute values written as character references
    (``&#29616;``, ``&#x73b0;``, ``&hellip;``). Apply it last: ``serialise`` writes them."""

    def encode(text: str | None) -> str | None:
        if not text:
            return text
        return "".join(
            f"{_REF_OPEN}{char}{_REF_CLOSE}" if not char.isspace() and rng.random() < share else char for char in text
        )

    for element in list(shown(root)):
        if element.tag == "body":
            continue
        element.text = encode(element.text)
        element.tail = encode(element.tail)
        for key, value in element.attrib.items():
            if key not in _URI_ATTRIBUTES:  # the serialiser %-escapes those instead
                element.set(key, encode(value) or "")
        for child in element:
            if not isinstance(child.tag, str):  # a comment's tail is shown text too
                child.tail = encode(child.tail)


def merge_paragraphs(root: etree._Element, rng: random.Random, containers: str, share: float = 1.0) -> None:
    """``<p>a</p><p>b</p>`` as ``a<br><br>b`` in one paragraph: runs of plain ``p`` children of each
    element ``containers`` selects merged, two or three ``<br>`` (white space between allowed) apart."""
    for container in select(root, containers) if containers else []:
        if not _chosen(rng, share):
            continue
        plain = [
            child
            for child in container
            if child.tag == "p" and not child.attrib and not any(c.tag in BLOCKS for c in child.iterdescendants())
        ]
        while len(plain) >= 2:
            first, second = plain[0], plain[1]
            if first.getnext() is not second:
                plain.pop(0)
                continue
            for count in range(rng.choice([2, 2, 3])):
                br = etree.SubElement(first, "br")
                br.tail = rng.choice(["", "\n", " \n  "]) if count else None
            br.tail = (br.tail or "") + (second.text or "")
            for child in list(second):
                first.append(child)
            first.tail = second.tail
            container.remove(second)
            plain.pop(1)


def break_spaces(root: etree._Element, rng: random.Random, share: float = 0.5) -> None:
    """Spaces inside shown text written as a line break and indentation (``FX168 财经`` over two
    lines), where a browser shows one space either way: not where both neighbours are wide
    characters (CSS removes a line break between those), nor where a neighbour is invisible
    (CSS removes a break next to U+200B too) or white space, and not in protected elements."""

    def rewrap(match: re.Match[str]) -> str:
        text = match.string
        before, after = text[match.start() - 1], text[match.end()]
        if before in _INVISIBLE_OR_SPACE or after in _INVISIBLE_OR_SPACE:
            return match.group()
        if (_wide_char(before) and _wide_char(after)) or not _chosen(rng, share):
            return match.group()
        return "\n" + "  " * rng.randrange(0, 6)

    for element in list(shown(root)):
        if element.tag == "body":
            continue
        if element.text:
            element.text = _INNER_SPACE.sub(rewrap, element.text)
        if element.tail:
            element.tail = _INNER_SPACE.sub(rewrap, element.tail)


_INVISIBLE_OR_SPACE = frozenset(INVISIBLE) | frozenset("\u00a0\u3000")
#: A run of CSS white space with other characters on both sides, inside one text.
_INNER_SPACE = re.compile(f"(?<=[^{_CSS_SPACE}])[{_CSS_SPACE}]+(?=[^{_CSS_SPACE}])")


def _wide_char(char: str) -> bool:
    """East Asian Width F, W or H: what CSS Text 3 removes a line break between."""
    return unicodedata.east_asian_width(char) in ("F", "W", "H")


def zero_width(root: etree._Element, rng: random.Random, share: float = 0.2) -> None:
    """Invisible characters (zero-width space and joiners, BOM, soft hyphen) inserted into shown text."""

    def sprinkle(text: str | None) -> str | None:
        if not text or not _chosen(rng, share):
            return text
        cut = rng.randrange(len(text) + 1)
        return text[:cut] + rng.choice(INVISIBLE) + text[cut:]

    for element in list(shown(root)):
        if element.tag == "body":
            continue
        element.text = sprinkle(element.text)
        element.tail = sprinkle(element.tail)


def perturbed(page: str, rewrites: list[Rewrite], seed: int) -> str:
    """``page`` with each rewrite applied in turn, choices drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    root = parse(page)
    for rewrite in rewrites:
        rewrite(root, rng)
    return serialise(root)


# -- the HTML inside a page's JSON -------------------------------------------------------------

#: A Next.js page's data script and the JSON in it.
_NEXT_DATA = re.compile(
    r"(<script\b[^>]*\bid\s*=\s*[\"']?__NEXT_DATA__[\"']?[^>]*>)(.*?)(</script\s*>)", re.IGNORECASE | re.DOTALL
)


def perturbed_fragment(fragment: str, rewrites: list[Rewrite], rng: random.Random) -> str:
    """An HTML fragment (the article body a page's JSON carries, a search snippet) with each
    rewrite applied in turn: parsed as the content of a ``body``, written back without it."""
    root = parse(f"<!DOCTYPE html><html><head></head><body>{fragment}</body></html>")
    for rewrite in rewrites:
        rewrite(root, rng)
    body = root.find("body")
    assert body is not None
    return _written(
        body,
        lambda: (
            html_module.escape(body.text or "", quote=False)
            + "".join(etree.tostring(child, method="html", encoding="unicode", with_tail=True) for child in body)
        ),
    )


def with_next_data(page: str, edit: Callable[[object], object]) -> str:
    """``page`` with its ``__NEXT_DATA__`` JSON replaced by ``edit(data)``, written as Next.js
    writes it (``<`` as ``\\u003c`` …); everything outside the script is left byte for byte."""
    from replay.render import script_json  # the fixtures' own writer of the script

    match = _NEXT_DATA.search(page)
    if match is None:
        return page
    data = edit(json.loads(match.group(2)))
    return page[: match.start(2)] + script_json(data) + page[match.end(2) :]


def html_strings(data: object, keys: frozenset[str]) -> Iterator[tuple[dict, str]]:
    """(object, key) of each string in ``data`` under one of ``keys`` that holds markup (a tag):
    a video's ``newsContent`` (its player ids as JSON) and plain texts are not HTML."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and isinstance(value, str) and _TAG.search(value):
                    yield node, key
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))


_TAG = re.compile(r"<[A-Za-z][^>]*>")


def perturbed_next_data(page: str, rewrites: list[Rewrite], seed: int, keys: frozenset[str]) -> str:
    """``page`` with each rewrite applied to every HTML string of its ``__NEXT_DATA__`` under
    one of ``keys`` (``newsContent``, ``highlightContent`` …), choices from ``random.Random(seed)``."""
    rng = random.Random(seed)

    def edit(data: object) -> object:
        for node, key in list(html_strings(data, keys)):
            node[key] = perturbed_fragment(node[key], rewrites, rng)
        return data

    return with_next_data(page, edit)
