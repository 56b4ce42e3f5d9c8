"""Scrapy feed exporters whose records name their kind: `scrapy crawl search -O items.jsonl`
writes articles, hits, sources, topics, hot entries and listing visits into one file, and a
reader tells them apart by ``item_type`` (fx168.items.item_kind: 'article', 'hit', …). The
field is not called ``kind``: an article has a ``kind`` of its own (news, video)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scrapy.exporters import JsonItemExporter, JsonLinesItemExporter, XmlItemExporter

from fx168.items import item_kind

ITEM_TYPE = "item_type"


class ItemTypeMixin:
    """Puts ``item_type`` first in every exported record (BaseItemExporter's public hook)."""

    def get_serialized_fields(
        self, item: Any, default_value: Any = None, include_empty: bool | None = None
    ) -> Iterable[tuple[str, Any]]:
        kind = _kind(item)
        if kind is not None:  # not one of fxcrawl's items (a dict from a custom spider): left as it is
            yield ITEM_TYPE, kind
        yield from super().get_serialized_fields(item, default_value, include_empty)  # type: ignore[misc]  # a mixin: the exporter's method


def _kind(item: Any) -> str | None:
    try:
        return item_kind(item)
    except KeyError:
        return None


class JsonLinesExporter(ItemTypeMixin, JsonLinesItemExporter):
    pass


class JsonExporter(ItemTypeMixin, JsonItemExporter):
    pass


class XmlExporter(ItemTypeMixin, XmlItemExporter):
    pass
