"""Crawl the newest news: channel lists (/info/001 …) with their articles, and the 快讯 feed.

Page 1 of each list is the site's own page (JSON first, HTML second); deeper pages come from
the JSON API, which wants a current ``_pcc`` token: fetched from the ``v.js`` response header
when first needed, and fetched again once when the API refuses it (it rotates). The
incremental middleware stops a list at what is already stored, so a run soon after another
reads the first page of each list and nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.spiders.portal import LISTING, NEXT_PAGE, PortalSpider, fetched_at
from fx168 import site
from fx168.items import ChannelPage, ExpressPage, RejectItem
from fx168.parsing import (
    ApiRefused,
    PageParseError,
    parse_channel_api,
    parse_channel_page,
    parse_express_api,
    parse_express_page,
)

#: The feed's name in request arguments (a channel list is named by its code).
EXPRESS = "express"


def parse_channels(spec: str | None) -> list[str]:
    """'001,001003' as channel codes; ValueError for anything that is not one."""
    codes = [code.strip() for code in (spec or ",".join(site.DEFAULT_CHANNELS)).split(",") if code.strip()]
    for code in codes:
        if not site.CHANNEL_PATH_RE.match(f"/info/{code}"):
            raise ValueError(f"bad channel code {code!r}: digits, such as 001 or 001003")
    if not codes:
        raise ValueError("no channel codes given")
    return list(dict.fromkeys(codes))


class LatestSpider(PortalSpider):
    name = "latest"

    def __init__(
        self,
        channels: str | None = None,
        max_pages: str | int | None = 5,
        express: str | bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = parse_channels(channels)
        self.max_pages = int(max_pages) if max_pages not in (None, "") else 5
        if self.max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self.express = str(express).lower() not in ("0", "false", "no", "off")
        self.token: str | None = None
        self.run_args = {"channels": ",".join(self.channels), "max_pages": self.max_pages, "express": self.express}

    async def start(self) -> AsyncIterator[Any]:
        for code in self.channels:
            yield self._listing(site.channel_url(code, self.base_url), self.parse_channel, code)
        if self.express:
            yield self._listing(site.express_url(self.base_url), self.parse_express, EXPRESS)

    def _listing(self, url: str, callback: Any, name: str) -> scrapy.Request:
        return scrapy.Request(
            url, callback=callback, errback=self.failed, cb_kwargs={"name": name}, meta={LISTING: True}
        )

    # -- the site's pages ----------------------------------------------------------------------

    def parse_channel(self, response: Response, name: str) -> Iterator[Any]:
        page = self.read(response, parse_channel_page, site.PageKind.CHANNEL)
        if isinstance(page, RejectItem):
            yield page
            return
        self.count("fxcrawl/pages/listing")
        page.channel = page.channel or name
        yield from self._channel_entries(page, fetched_at(response))
        yield from self._next(name, 2)

    def parse_express(self, response: Response, name: str) -> Iterator[Any]:
        page = self.read(response, parse_express_page, site.PageKind.EXPRESS)
        if isinstance(page, RejectItem):
            yield page
            return
        self.count("fxcrawl/pages/listing")
        yield from self._fast_news(page, fetched_at(response))
        yield from self._next(name, 2)

    def _channel_entries(self, page: ChannelPage, fetched: datetime) -> Iterator[Any]:
        for entry in page.entries:
            entry.fetched_at = fetched
            if (why := self.refusal(entry.url)) is not None:
                self.count("fxcrawl/hits/not_followed")
                yield RejectItem(kind="channel_entry", reason=why, url=None, payload={"url": entry.url})
                continue
            yield entry
            yield self.article_request(entry.url)

    def _fast_news(self, page: ExpressPage, fetched: datetime) -> Iterator[Any]:
        for item in page.items:
            item.fetched_at = fetched
            yield item

    # -- the JSON API ------------------------------------------------------------------------

    def _next(self, name: str, page: int, *, refreshed: bool = False) -> Iterator[scrapy.Request]:
        """The list's next page from the API, or first the token the API wants."""
        if page > self.max_pages:
            return
        if self.token is None:
            yield scrapy.Request(
                site.api_token_url(self.base_url),
                callback=self.got_token,
                errback=self.failed,
                cb_kwargs={"name": name, "page": page, "refreshed": refreshed},
                meta={NEXT_PAGE: True},
                dont_filter=True,
            )
            return
        url = (
            site.api_fast_news_url(page, base=self.api_base)
            if name == EXPRESS
            else site.api_channel_url(name, page, base=self.api_base)
        )
        yield scrapy.Request(
            url,
            headers=site.api_headers(self.token, site.CANONICAL_BASE),
            callback=self.parse_api,
            errback=self.failed,
            cb_kwargs={"name": name, "page": page, "refreshed": refreshed},
            meta={LISTING: True, NEXT_PAGE: True, "handle_httpstatus_list": sorted(site.API_REFUSED_STATUSES)},
            dont_filter=True,
        )

    def got_token(self, response: Response, name: str, page: int, refreshed: bool) -> Iterator[Any]:
        token = (response.headers.get(site.API_TOKEN_HEADER) or b"").decode("latin-1").strip()
        if not token:
            self.count("fxcrawl/api/no_token")
            self.logger.error(
                "%s gave no %s header: the API's deeper pages are out of reach", response.url, site.API_TOKEN_HEADER
            )
            yield RejectItem(kind="page", reason=f"no {site.API_TOKEN_HEADER} token in the answer", url=response.url)
            return
        self.count("fxcrawl/api/tokens")
        self.token = token
        yield from self._next(name, page, refreshed=refreshed)

    def parse_api(self, response: Response, name: str, page: int, refreshed: bool) -> Iterator[Any]:
        try:
            if response.status in site.API_REFUSED_STATUSES:
                raise ApiRefused(response.url, f"API refused the call: HTTP {response.status}")
            if name == EXPRESS:
                express = parse_express_api(response.text, response.url, page)
            else:
                channel = parse_channel_api(response.text, response.url, name, page, self.base_url)
        except ApiRefused as exc:
            self.token = None
            if refreshed:  # a fresh token refused too: say so, do not loop
                self.count("fxcrawl/api/refused")
                yield self.unparsable(exc, "api")
                return
            self.count("fxcrawl/api/token_refreshed")
            self.logger.info("the API refused its token (%s): fetching a new one", exc.reason)
            yield from self._next(name, page, refreshed=True)
            return
        except PageParseError as exc:
            yield self.unparsable(exc, "api")
            return
        self.count("fxcrawl/pages/api")
        if name == EXPRESS:
            yield from self._fast_news(express, fetched_at(response))
            more = bool(express.items)
        else:
            yield from self._channel_entries(channel, fetched_at(response))
            more = bool(channel.entries)
        if more:
            yield from self._next(name, page + 1)
