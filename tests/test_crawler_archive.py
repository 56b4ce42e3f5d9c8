"""The crawl's side of the archive, without an engine: a response handed to the store's writer
thread is written before the batch holding the article read from it, and the article points to
it; archiving off leaves no middleware and no pointer; retention runs as the store opens."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import article_item, make_crawler
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from sqlalchemy import select

from crawler.archive import ARCHIVE_RECORD, ArchiveMiddleware, ArchiveStampMiddleware
from pipelines.database import database_for
from pipelines.store import store_for
from pipelines.validate import ValidatePipeline
from storage.archive import ArchiveWriter, Exchange, Location, archive_files, read_page
from storage.models import Article

URL = "http://127.0.0.1:8931/article/%E7%8E%B0%E4%BB%A3-1049849"
BODY = "<html><body>央行发布报告</body></html>".encode()


def stamped(response: HtmlResponse, items: list[Any]) -> list[Any]:
    async def output() -> AsyncIterator[Any]:
        for item in items:
            yield item

    async def collect() -> list[Any]:
        return [item async for item in ArchiveStampMiddleware().process_spider_output(response, output())]

    return asyncio.run(collect())


def test_an_article_points_to_the_record_of_its_response(sqlite_url: str, tmp_path: Path) -> None:
    crawler = make_crawler(FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_ARCHIVE_DIR=str(tmp_path / "warc"))
    middleware = ArchiveMiddleware.from_crawler(crawler)
    store, validate = store_for(crawler), ValidatePipeline.from_crawler(crawler)
    store.open_spider()
    request = Request(URL)
    response = HtmlResponse(URL, body=BODY, headers={"Content-Type": "text/html; charset=utf-8"}, request=request)
    assert middleware.process_response(request, response) is response
    record_id = request.meta[ARCHIVE_RECORD]
    (article,) = stamped(response, [article_item("https://www.fx168news.com/article/1049849")])
    assert article.warc_record_id == record_id
    store.process_item(validate.process_item(article))
    store.close_spider()
    database = database_for(crawler)
    with database.session() as session:
        row = session.execute(select(Article.warc_file, Article.warc_offset, Article.warc_length)).one()
    database.dispose()
    warc_file, offset, length = row
    assert warc_file is not None and offset is not None and length is not None
    page = read_page(tmp_path / "warc", Location(warc_file, offset, length))
    assert page is not None and page.url == URL and page.body == BODY and page.record_id == record_id
    assert crawler.stats.get_value("archive/records") == 2  # the response and its request


def test_responses_reach_the_archive_in_groups_and_none_waits_past_max_delay(sqlite_url: str, tmp_path: Path) -> None:
    crawler = make_crawler(
        FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_ARCHIVE_DIR=str(tmp_path / "warc"), FXCRAWL_STORE_MAX_DELAY=2.0
    )
    store = store_for(crawler)
    archive = store.archive
    assert archive is not None
    groups: list[int] = []
    write = archive.write

    def counted(exchanges: Any, run_id: Any) -> Any:
        groups.append(len(exchanges))
        return write(exchanges, run_id)

    archive.write = counted  # type: ignore[method-assign]  # counting the writer's calls
    store.open_spider()
    for n in range(250):  # as a crawl hands them over: one every few milliseconds
        store.archive_exchange(Exchange(f"<urn:uuid:{n}>", f"{URL}?n={n}", 200, [], BODY + str(n).encode()))
        time.sleep(0.002)
    deadline = time.monotonic() + 10
    while len(store.archived) < 250 and time.monotonic() < deadline:  # written, and their places known
        time.sleep(0.02)
    written = list(groups)
    gc.collect()  # what waits for an article to claim it (none will here) is out of the collector's walk
    assert len(store.archived) == 250 and not any(gc.is_tracked(where) for where in store.archived.values())
    store.close_spider()
    # no item, batch or close needed: the last ones waited max_delay; and not a write per response
    assert sum(written) == 250, written
    assert len(written) <= 5, written


def test_archiving_off_means_no_middleware_and_no_pointer(sqlite_url: str) -> None:
    crawler = make_crawler(FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_ARCHIVE_ENABLED=False)
    with pytest.raises(NotConfigured):
        ArchiveMiddleware.from_crawler(crawler)
    assert store_for(crawler).archive is None


def test_retention_runs_as_the_store_opens(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "warc"
    old = ArchiveWriter(folder, None)
    old.write([Exchange("<urn:uuid:1>", URL, 200, [], BODY)], run_id=1)
    old.close()
    long_ago = time.time() - 30 * 86400
    for f in archive_files(folder):
        os.utime(f.path, (long_ago, long_ago))
    crawler = make_crawler(
        FXCRAWL_DATABASE_URL=sqlite_url, FXCRAWL_ARCHIVE_DIR=str(folder), FXCRAWL_ARCHIVE_KEEP_DAYS="7"
    )
    store = store_for(crawler)
    store.open_spider()
    store.close_spider()
    database_for(crawler).dispose()
    assert archive_files(folder) == [] and crawler.stats.get_value("archive/pruned_files") == 1
