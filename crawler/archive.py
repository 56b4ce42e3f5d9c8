"""The crawl's side of the WARC archive: every response handed to the store's writer thread as it
arrives, and every article stamped with the record of the response it was read from.

``ArchiveMiddleware`` is a downloader middleware placed just after Scrapy's decompression
(``HttpCompressionMiddleware``, 590): it sees each downloaded response once, retried ones and
errors included, with the body as the spider will read it. (A redirect that Scrapy follows, at
600, never reaches it: the page it leads to is archived.) It only builds an ``Exchange`` and
queues it; the writer thread writes it before the batch that holds the page's items commits.
``ArchiveStampMiddleware`` (a spider middleware) copies the record id onto the page's articles.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from fx168.items import ArticleItem
from pipelines.store import StorePipeline, store_for
from storage.archive import Exchange

#: The request meta key that names the archive record of the request's response.
ARCHIVE_RECORD = "fxcrawl_warc_record"


class ArchiveMiddleware:
    def __init__(self, store: StorePipeline) -> None:
        self.store = store

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveMiddleware:
        if not crawler.settings.getbool("FXCRAWL_ARCHIVE_ENABLED", True):
            raise NotConfigured  # (without a message: Scrapy says nothing of a component turned off)
        store = store_for(crawler)
        if store.archive is None:
            raise NotConfigured
        return cls(store)

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        if not response.url.startswith(("http://", "https://")):  # data: and file: were never fetched
            return response
        # (made here rather than by storage.archive.records.new_record_id: the reactor thread runs
        # nothing of the store, which tests/test_reactor_stall.py checks by module)
        record_id = f"<urn:uuid:{uuid.uuid4()}>"
        request.meta[ARCHIVE_RECORD] = record_id
        self.store.archive_exchange(
            Exchange(
                record_id=record_id,
                url=response.url,
                status=response.status,
                response_headers=_pairs(response.headers),
                body=response.body,
                method=request.method,
                request_headers=_pairs(request.headers),
                fetched_at=datetime.now(UTC),
                reason=_reason(response.status),
            )
        )
        return response


class ArchiveStampMiddleware:
    """Gives each article the record id of the response it was parsed from."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveStampMiddleware:
        # no archive, no stamps: not one more async generator around every response's output
        if not crawler.settings.getbool("FXCRAWL_ARCHIVE_ENABLED", True):
            raise NotConfigured
        return cls()

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        record_id = response.meta.get(ARCHIVE_RECORD) if response.request is not None else None
        async for item in result:
            if record_id and type(item) is ArticleItem and item.warc_record_id is None:
                item.warc_record_id = record_id
            yield item


def _pairs(headers: Any) -> list[tuple[str, str]]:
    """Scrapy's bytes headers as (name, value) text pairs, every value of a repeated header kept."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, values in headers.items() for value in values]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
