"""Fetch a few pages as they are, for ``fxcrawl fixtures record``: politely (the project's live-site
manners: robots.txt, the delay, AutoThrottle, the User-Agent), and nothing else.

Each page becomes a plain dict (its URL, status, the text the parsers would read, when): written
out by a feed, never stored; no pipeline, run ledger, frontier or archive takes part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse

from fx168 import site

#: What a recording leaves out: everything that would touch a database.
RECORD_SETTINGS: dict[str, Any] = {
    "ITEM_PIPELINES": {},
    "FXCRAWL_ARCHIVE_ENABLED": False,
}
COMPONENTS_OFF = {
    "SPIDER_MIDDLEWARES": ("crawler.middlewares.IncrementalMiddleware", "crawler.archive.ArchiveStampMiddleware"),
    "EXTENSIONS": ("crawler.ledger.RunRecorder",),
}


class RecordSpider(scrapy.Spider):
    name = "record"

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = [url for url in urls.split() if url]

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        settings.setdict(RECORD_SETTINGS, priority="spider")
        for name, off in COMPONENTS_OFF.items():
            components: dict[str, Any] = {**settings.getdict(name), **dict.fromkeys(off)}
            settings.set(name, components, priority="spider")

    async def start(self) -> AsyncIterator[Any]:
        base = self.settings.get("FXCRAWL_BASE_URL")
        for url in self.urls:
            yield scrapy.Request(
                site.fetch_url(url, base),
                callback=self.page,
                cb_kwargs={"live": url},
                errback=self.failed,
                meta={"handle_httpstatus_all": True},
            )

    def page(self, response: Response, live: str) -> Iterator[dict[str, Any]]:
        text = response.text if isinstance(response, TextResponse) else response.body.decode("utf-8", "replace")
        yield {
            "url": live,
            "fetched_from": response.url,
            "status": response.status,
            "text": text,
            "fetched_at": datetime.now(UTC).isoformat(),
        }

    def failed(self, failure: Any) -> Iterator[dict[str, Any]]:
        request = failure.request
        yield {"url": request.cb_kwargs.get("live", request.url), "error": failure.getErrorMessage() or repr(failure)}
