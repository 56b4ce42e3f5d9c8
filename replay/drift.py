"""Drift knobs: the offline site changing shape as a redesign of the portal would (for the drift
alarm, the run-health checks and ``fxcrawl check-live``).

``--drop-next-data [KINDS]`` serves pages without their ``__NEXT_DATA__``, ``--rename-json-key
OLD=NEW[:KINDS]`` renames a JSON key at every depth (pages and API answers), ``--article-markup-v2``
renames the article page's body and title classes. They change what the pages are, not how they
arrive: the network's and the server's misbehaviour (status sequences, dropped connections, size
and decompression bombs, lying charsets) is test equipment, in tests/support/faults.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Page kinds a drift knob can be limited to: fx168.site.PageKind values and the JSON API.
KNOB_KINDS = ("search", "article", "legacy_article", "channel", "express", "api")
_NEXT_DATA_SCRIPT = re.compile(r'\n?<script id="__NEXT_DATA__" type="application/json">(?P<json>.*?)</script>', re.S)
#: --article-markup-v2: the classes a redesign renamed (body container and title).
ARTICLE_MARKUP_V2 = (('class="article-body"', 'class="post-body"'), ('class="article-title"', 'class="post-title"'))


def parse_kinds(text: str | None) -> frozenset[str]:
    """'article,channel' -> those kinds; None, '' or 'all' -> every kind."""
    if not text or text == "all":
        return frozenset(KNOB_KINDS)
    kinds = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = kinds - set(KNOB_KINDS)
    if unknown:
        raise ValueError(f"unknown page kind {sorted(unknown)[0]!r}: use one of {', '.join(KNOB_KINDS)} or all")
    return kinds


@dataclass(frozen=True)
class KeyRename:
    """``OLD=NEW[:KINDS]``: the JSON key OLD renamed NEW, at any depth, on pages of KINDS (default all)."""

    old: str
    new: str
    kinds: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> KeyRename:
        spec, _, kinds = text.partition(":")
        old, sep, new = spec.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"use OLD=NEW or OLD=NEW:KIND, not {text!r}")
        return cls(old, new, parse_kinds(kinds))


@dataclass(frozen=True)
class DriftKnobs:
    """What the server changes on the pages it serves, as after a site redesign.

    ``drop_next_data``: page kinds served without their ``__NEXT_DATA__`` script; ``renames``:
    JSON keys renamed (in ``__NEXT_DATA__`` and in the API's answers); ``article_markup_v2``:
    article pages with their body container and title classes renamed (ARTICLE_MARKUP_V2).
    """

    drop_next_data: frozenset[str] = frozenset()
    renames: tuple[KeyRename, ...] = ()
    article_markup_v2: bool = False

    @classmethod
    def from_args(
        cls, drop_next_data: str | None = None, renames: Sequence[str] = (), article_markup_v2: bool = False
    ) -> DriftKnobs:
        """From the server's options (``drop_next_data``: None for off, 'all' or kinds)."""
        return cls(
            frozenset() if drop_next_data is None else parse_kinds(drop_next_data),
            tuple(KeyRename.parse(text) for text in renames),
            article_markup_v2,
        )

    @property
    def active(self) -> bool:
        return bool(self.drop_next_data or self.renames or self.article_markup_v2)

    def rename(self, value: Any, kind: str) -> Any:
        """``value`` (parsed JSON) with this kind's renames applied at every depth."""
        mapping = {r.old: r.new for r in self.renames if kind in r.kinds}
        if not mapping:
            return value

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                return {mapping.get(key, key): walk(item) for key, item in node.items()}
            if isinstance(node, list):
                return [walk(item) for item in node]
            return node

        return walk(value)

    def page(self, body: bytes, kind: str | None) -> bytes:
        """A served HTML page of ``kind`` as the knobs change it."""
        if kind is None or not self.active:
            return body
        text = body.decode("utf-8")
        if kind in self.drop_next_data:
            text = _NEXT_DATA_SCRIPT.sub("", text)
        elif any(kind in r.kinds for r in self.renames):
            text = _NEXT_DATA_SCRIPT.sub(lambda m: self._renamed_script(m, kind), text)
        if self.article_markup_v2 and kind == "article":
            for old, new in ARTICLE_MARKUP_V2:
                text = text.replace(old, new)
        return text.encode("utf-8")

    def _renamed_script(self, match: re.Match[str], kind: str) -> str:
        from replay.render import script_json

        data = self.rename(json.loads(match.group("json")), kind)
        return match.group().replace(match.group("json"), script_json(data))
