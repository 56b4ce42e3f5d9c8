"""A crawl against a misbehaving site: retries, Retry-After, broken transfers, size limits,
encodings and robots.txt. Each behaviour is one end-to-end test (``crawl search`` in a child
process against the fault server over loopback, asserting on its access log and database),
after unit tests of the middlewares in crawler/downloadermiddlewares.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import make_crawler
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response, TextResponse
from sqlalchemy import select
from support.faults import parse_step, recode
from support.faultserver import FaultServer
from w3lib.url import safe_url_string

from crawler.downloadermiddlewares import (
    EncodingMiddleware,
    RetryAfterMiddleware,
    RobotsTxtStatusMiddleware,
    meta_charset,
    retry_after_seconds,
)
from fx168 import site
from replay.server import FIXTURE_SITE
from storage.db import Database
from storage.models import Article, CrawlRun, FrontierEntry, Reject, SearchHit, utcnow

MiB = 1024 * 1024
LISTING = json.loads((FIXTURE_SITE / "search" / "现代" / "article" / "page-953.expected.json").read_text())
ARTICLES = [int(site.article_id(hit["url"]) or 0) for hit in LISTING["hits"]]  # the ten on page 953
#: Each article's path as page 953 links it (/article/{keyword}-{newsId}) and Scrapy escapes it.
LINKED = {int(site.article_id(hit["url"]) or 0): safe_url_string(urlsplit(hit["url"]).path) for hit in LISTING["hits"]}


# -- unit: Retry-After -------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds(b"soon") is None


def _retry_middleware(**settings: object) -> RetryAfterMiddleware:
    crawler = make_crawler(**settings)
    crawler.spider = crawler._create_spider()
    return RetryAfterMiddleware.from_crawler(crawler)


def test_a_429_with_retry_after_pauses_its_host_capped_and_counted() -> None:
    middleware = _retry_middleware(FXCRAWL_RETRY_AFTER_MAX=5)
    request = Request("http://127.0.0.1:8168/article/1")
    answer = Response(request.url, status=429, headers={"Retry-After": "3600"}, request=request)
    before = time.monotonic()
    retry = middleware.process_response(request, answer)
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    assert before + 4.9 <= middleware.not_before["127.0.0.1:8168"] <= time.monotonic() + 5
    stats = middleware.stats.get_stats()
    assert stats["fxcrawl/retry_after/received"] == 1 and stats["fxcrawl/retry_after/capped"] == 1
    assert stats["fxcrawl/retry_after/wait_seconds"] == 5 and stats["retry/count"] == 1


def test_statuses_without_retry_after_or_outside_the_codes_do_not_pause() -> None:
    middleware = _retry_middleware()
    request = Request("http://127.0.0.1:8168/article/1")
    assert isinstance(middleware.process_response(request, Response(request.url, status=503)), Request)
    with_header = Response(request.url, status=500, headers={"Retry-After": "30"})
    assert isinstance(middleware.process_response(request, with_header), Request)
    assert middleware.not_before == {}


# -- unit: encodings ---------------------------------------------------------------------------

ARTICLE_HTML = (FIXTURE_SITE / "article" / "1049185.html").read_bytes()


def _served(spec: str, page: bytes = ARTICLE_HTML) -> HtmlResponse:
    content_type, body = recode(page, parse_step(spec))
    return HtmlResponse("http://127.0.0.1:8168/article/1049185", body=body, headers={"Content-Type": content_type})


def _encoding_middleware(**settings: object) -> EncodingMiddleware:
    return EncodingMiddleware.from_crawler(make_crawler(**settings))


@pytest.mark.parametrize(
    ("spec", "how"),
    [
        ("nocharset:gbk", "detected"),
        ("nocharset:gb18030:32768", "detected"),  # Scrapy 2.19 alone reads most such pages as cp1250
        ("metacharset:gbk", "meta"),
        ("latemeta:gbk", "meta"),
        ("latemeta:gb18030:32768", "meta"),
        ("liecharset:utf-8", "detected"),  # not UTF-8, whatever the header says: Scrapy gives U+FFFD
        ("charset:gbk", "header"),
    ],
)
def test_pages_are_decoded_as_what_they_are(spec: str, how: str) -> None:
    middleware = _encoding_middleware()
    served = _served(spec)
    decided = middleware.process_response(Request(served.url), served)
    expected = served.body.decode("gb18030")
    assert decided.text == expected and "\ufffd" not in decided.text
    assert middleware.stats.get_value(f"fxcrawl/encoding/{how}") == 1


def test_a_short_gbk_page_without_a_declaration_is_read_as_chinese_not_korean() -> None:
    page = "<html><head><title>央行</title></head><body><p>水平对外</p></body></html>"
    body = page.encode("gbk")  # Scrapy 2.19 alone: cp949; charset-normalizer among gb18030/big5: a tie
    response = HtmlResponse("http://x/a", body=body, headers={"Content-Type": "text/html"})
    assert _encoding_middleware().process_response(Request(response.url), response).text == page


def test_a_declaration_the_body_agrees_with_is_left_to_scrapy() -> None:
    middleware = _encoding_middleware()
    response = HtmlResponse("http://x/a", body=ARTICLE_HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    assert middleware.process_response(Request(response.url), response) is response
    with_bom = HtmlResponse("http://x/a", body=b"\xef\xbb\xbf" + ARTICLE_HTML, headers={"Content-Type": "text/html"})
    assert middleware.process_response(Request(with_bom.url), with_bom) is with_bom
    binary = Response("http://x/a.png", body=b"\x89PNG\r\n")
    assert middleware.process_response(Request(binary.url), binary) is binary


def test_a_latin1_header_on_gbk_is_not_second_guessed_here() -> None:
    """cp1252 decodes common GBK text without an error, so the header cannot be refuted from the
    bytes; the validate pipeline rejects the garbled text instead (reason 'encoding')."""
    served = _served("liecharset:ISO-8859-1")
    assert _encoding_middleware().process_response(Request(served.url), served).text == served.body.decode("cp1252")


def test_force_encoding_overrides_every_declaration() -> None:
    middleware = _encoding_middleware(FXCRAWL_FORCE_ENCODING="gbk")
    served = _served("liecharset:ISO-8859-1")
    decided = middleware.process_response(Request(served.url), served)
    assert isinstance(decided, TextResponse)
    assert decided.encoding == "gb18030" and decided.text == served.body.decode("gbk")
    assert middleware.stats.get_value("fxcrawl/encoding/forced") == 1
    with pytest.raises(ValueError, match="FXCRAWL_FORCE_ENCODING"):
        _encoding_middleware(FXCRAWL_FORCE_ENCODING="klingon")


def test_meta_charset_is_found_anywhere_in_the_head_and_only_there() -> None:
    assert meta_charset(b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=GB2312">') == (
        "gb18030"
    )
    late = b"<html><head><script>" + b"x" * 50_000 + b'</script><meta charset="big5"></head>'
    assert meta_charset(late) == "big5hkscs"
    assert meta_charset(b'<html><head></head><body><p><meta charset="gbk"></p>') is None
    assert meta_charset(b'<html><head><meta charset="no-such-thing"></head>') is None


# -- unit: robots.txt --------------------------------------------------------------------------


def _robots_request(host: str = "127.0.0.1:8168") -> Request:
    """What Scrapy's RobotsTxtMiddleware asks for (it goes through every downloader middleware)."""
    return Request(f"http://{host}/robots.txt", meta={"dont_obey_robotstxt": True})


def test_a_robots_txt_that_cannot_be_fetched_disallows_its_host() -> None:
    middleware = RobotsTxtStatusMiddleware.from_crawler(make_crawler())
    assert middleware.process_exception(_robots_request(), TimeoutError("took too long")) is None  # type: ignore[func-returns-value]  # checked at run time: None passes the failure on
    with pytest.raises(IgnoreRequest, match=r"robots.txt unreachable \(TimeoutError: took too long\)") as refused:
        middleware.process_request(Request("http://127.0.0.1:8168/article/1"))
    assert "Forbidden by robots.txt" not in str(refused.value)  # failed (retried later), not settled as forbidden
    middleware.process_request(Request("http://127.0.0.2:8168/article/1"))  # another host: allowed
    middleware.process_request(_robots_request())  # the robots.txt request itself is never refused
    assert middleware.stats.get_value("fxcrawl/robotstxt/unreachable") == 1
    assert middleware.stats.get_value("fxcrawl/robotstxt/forbidden_unreachable") == 1


@pytest.mark.parametrize(("status", "unreachable"), [(503, True), (500, True), (429, True), (404, False), (403, False)])
def test_a_robots_txt_status_decides_before_its_body(status: int, unreachable: bool) -> None:
    """5xx and 429: unreachable, the host disallowed; 4xx: no robots.txt, its error page not parsed."""
    middleware = RobotsTxtStatusMiddleware.from_crawler(make_crawler())
    request = _robots_request()
    answer = Response(request.url, status=status, body=b"User-agent: *\nDisallow: /\n", request=request)
    seen = middleware.process_response(request, answer)
    assert seen.body == b""  # what Scrapy's parser reads: nothing, so it allows; this middleware decides
    page = Request("http://127.0.0.1:8168/article/1")
    if unreachable:
        with pytest.raises(IgnoreRequest, match=rf"robots.txt unreachable \(HTTP {status}\)"):
            middleware.process_request(page)
    else:
        assert middleware.process_request(page) is None  # type: ignore[func-returns-value]  # checked at run time: None lets it through
    ok = Response(request.url, status=200, body=b"User-agent: *\nDisallow: /x\n", request=request)
    assert middleware.process_response(request, ok) is ok  # a 2xx is read as it is
    other = Request("http://127.0.0.1:8168/robots.txt")  # a page that happens to be called so: not Scrapy's fetch
    assert middleware.process_response(other, answer) is answer


def test_robots_txt_goes_through_scrapys_middleware_and_public_hooks_only() -> None:
    """Scrapy's RobotsTxtMiddleware, unchanged and at its place, reads robots.txt with the
    configured parser; this project's middleware comes after it (its process_request must see
    the host's verdict) and overrides nothing of Scrapy's."""
    from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
    from scrapy.robotstxt import ProtegoRobotParser

    from crawler import settings

    crawler = make_crawler()
    assert crawler.settings["ROBOTSTXT_PARSER"] == "scrapy.robotstxt.ProtegoRobotParser"
    parser = ProtegoRobotParser.from_crawler(crawler, b"User-agent: *\nDisallow: /article/1\n")
    assert not parser.allowed("http://127.0.0.1:8168/article/1", "fxcrawl")
    middlewares = crawler.settings.getwithbase("DOWNLOADER_MIDDLEWARES")
    ours = middlewares["crawler.downloadermiddlewares.RobotsTxtStatusMiddleware"]
    assert middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] < ours
    assert ours == settings.DOWNLOADER_MIDDLEWARES["crawler.downloadermiddlewares.RobotsTxtStatusMiddleware"]
    assert not issubclass(RobotsTxtStatusMiddleware, RobotsTxtMiddleware)


# -- end to end --------------------------------------------------------------------------------


@contextmanager
def fault_server(log: Path, *args: str) -> Iterator[FaultServer]:
    server = FaultServer("--access-log", str(log), *args)
    with server:
        yield server


def crawl(server: FaultServer, db: str, tmp: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fxcrawl.cli", "crawl", "search", "--keyword", "现代", "--pages", "953"]
    command += ["--base-url", server.base_url, "--db", db, "--log-level", "INFO"]
    for setting in (
        f"FXCRAWL_SPOOL_DIR={tmp / 'spool'}",
        "AUTOTHROTTLE_ENABLED=False",
        "DOWNLOAD_DELAY=0",
        "FXCRAWL_STORE_MAX_DELAY=0.2",
        *settings,
    ):
        command += ["-s", setting]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def access(log: Path, path: str | None = None) -> list[dict]:
    """The requests the server saw (for an article path: under any spelling of its URL)."""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    if path is not None and (wanted := site.article_id(path)) is not None:
        return [e for e in entries if site.article_id(e["path"]) == wanted]
    return [e for e in entries if path is None or e["path"] == path]


def golden(article_id: int) -> tuple[str, str]:
    data = json.loads((FIXTURE_SITE / "article" / f"{article_id}.expected.json").read_text())["article"]
    return data["title"], "\n\n".join(data["body"])


def stored(db: str) -> dict[int, tuple[str, str]]:
    database = Database(db)
    with database.session() as session:
        rows = session.execute(select(Article.url, Article.title, Article.body)).all()
    database.dispose()
    return {int(url.rsplit("/", 1)[1]): (title, body) for url, title, body in rows}


def frontier(db: str) -> dict[int, tuple[str, int, str | None]]:
    database = Database(db)
    with database.session() as session:
        rows = session.execute(
            select(FrontierEntry.url, FrontierEntry.state, FrontierEntry.attempts, FrontierEntry.last_error).where(
                FrontierEntry.kind == "article"
            )
        ).all()
    database.dispose()
    return {int(url.rsplit("/", 1)[1]): (state, attempts, error) for url, state, attempts, error in rows}


def last_run(db: str) -> CrawlRun:
    database = Database(db)
    with database.session() as session:
        run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc())).first()
    database.dispose()
    assert run is not None
    return run


def test_an_article_answered_503_twice_then_200_is_stored_after_two_retries(tmp_path: Path) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    with fault_server(log, "--fault", "^/article/[^/]*1049185$=503,503,200") as server:
        done = crawl(server, db, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [e["status"] for e in access(log, "/article/1049185")] == [503, 503, 200]
    assert stored(db) == {article: golden(article) for article in ARTICLES}
    run = last_run(db)
    assert run.stats["retry/count"] == 2 and run.stats["retry/reason_count/503 Service Unavailable"] == 2
    assert run.retries == 2 and run.finish_reason == "finished"


def test_what_the_server_keeps_refusing_is_failed_in_the_frontier_and_a_later_run_stores_it(tmp_path: Path) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "first.log"
    refuse = ["--fault", "^/article/[^/]*1049185$=503", "--fault", "^/article/[^/]*1049176$=429:2"]
    settings = ["RETRY_TIMES=1", "FXCRAWL_FRONTIER_RETRY_DELAY=0"]
    with fault_server(log, *refuse) as server:
        first = crawl(server, db, tmp_path, *settings)
    assert f"could not fetch {server.base_url}{LINKED[1049185]}: HTTP 503" in first.stderr
    assert f"could not fetch {server.base_url}{LINKED[1049176]}: HTTP 429" in first.stderr
    # Retry-After honoured: the one retry of the 429 came no sooner than 2 s after it
    first_429, retry = access(log, "/article/1049176")
    assert first_429["status"] == retry["status"] == 429 and retry["t"] - first_429["t"] >= 2.0
    assert [e["status"] for e in access(log, "/article/1049185")] == [503, 503]
    assert last_run(db).stats["fxcrawl/retry_after/received"] == 2
    rows = frontier(db)
    assert rows[1049185] == ("failed", 1, "page: HTTP 503") and rows[1049176] == ("failed", 1, "page: HTTP 429")
    assert set(stored(db)) == set(ARTICLES) - {1049185, 1049176}

    log = tmp_path / "second.log"
    with fault_server(log) as server:  # the site is back
        second = crawl(server, db, tmp_path, *settings)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {site.article_id(e["path"]) for e in access(log)} >= {"1049185", "1049176"}
    assert stored(db) == {article: golden(article) for article in ARTICLES}
    assert {state for state, _, _ in frontier(db).values()} == {"fetched"}


def test_dropped_short_and_hung_responses_are_retried_and_stored_whole(tmp_path: Path) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    faults = {1049185: "drop,drop,200", 1049176: "short,200", 1048612: "hang,200"}
    args = [arg for article, spec in faults.items() for arg in ("--fault", f"^/article/[^/]*{article}$={spec}")]
    with fault_server(log, *args) as server:
        done = crawl(server, db, tmp_path, "DOWNLOAD_TIMEOUT=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [e["status"] for e in access(log, "/article/1049185")] == ["drop", "drop", 200]
    assert [e.get("fault") for e in access(log, "/article/1049176")] == ["short", None]
    assert [e.get("fault") for e in access(log, "/article/1048612")] == ["hang", None]
    assert stored(db) == {article: golden(article) for article in ARTICLES}  # nothing truncated
    run = last_run(db)
    assert run.finish_reason == "finished"
    assert run.stats["retry/reason_count/scrapy.exceptions.ResponseDataLossError"] == 1
    assert run.stats["retry/reason_count/scrapy.exceptions.DownloadTimeoutError"] == 1


def test_oversized_bodies_and_gzip_bombs_are_cut_at_the_size_limit_with_flat_memory(tmp_path: Path) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    faults = {1049185: "big:52428800:chunked", 1049176: "big:52428800", 1048612: "gzipbomb"}
    args = [arg for article, spec in faults.items() for arg in ("--fault", f"^/article/[^/]*{article}$={spec}")]
    with fault_server(log, *args) as server:
        done = crawl(server, db, tmp_path, f"DOWNLOAD_MAXSIZE={10 * MiB}", "MEMUSAGE_CHECK_INTERVAL_SECONDS=0.05")
    for article in faults:  # each was sent, in full as far as the server is concerned
        assert [e["status"] for e in access(log, f"/article/{article}")] == [200]
    assert "Expected to receive 52428800 bytes which is larger than download max size (10485760)" in done.stderr
    assert re.search(r"Received \d+ bytes which is larger than download max size \(10485760\)", done.stderr)
    assert "exceeded DOWNLOAD_MAXSIZE (10485760 B) during decompression" in done.stderr
    rows = frontier(db)
    assert rows[1049185] == ("failed", 1, "page: DownloadCancelledError: body larger than DOWNLOAD_MAXSIZE")
    for article, error in ((1049176, "larger than download max size"), (1048612, "exceeded DOWNLOAD_MAXSIZE")):
        state, attempts, last_error = rows[article]
        assert (state, attempts) == ("failed", 1) and last_error is not None and error in last_error, article
    assert set(stored(db)) == set(ARTICLES) - set(faults)
    run = last_run(db)
    assert run.finish_reason == "finished"
    growth = run.stats["memusage/max"] - run.stats["memusage/startup"]
    assert growth < 25 * MiB, f"peak RSS grew {growth / MiB:.0f} MiB for a 50 MB body and a 1.1 GB bomb"


def test_gbk_pages_without_a_trustworthy_declaration_are_stored_exactly(tmp_path: Path) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    faults = {
        1049185: "nocharset:gbk",
        1049176: "nocharset:gb18030:32768",  # a 32 KB inline script first: most of what a detector samples
        1048612: "metacharset:gbk",
        1048655: "latemeta:gbk",  # the <meta> just past the 4 KB w3lib reads
        1048703: "latemeta:gb18030:32768",
        1048771: "charset:gbk",
        1048852: "metacharset:gb18030:32768",
    }
    args = [arg for article, spec in faults.items() for arg in ("--fault", f"^/article/[^/]*{article}$={spec}")]
    args += ["--fault", "^/search=nocharset:gb18030:16384"]  # the listing, too
    with fault_server(log, *args) as server:
        done = crawl(server, db, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [e.get("fault") for e in access(log, "/article/1048703")] == ["latemeta:gb18030:32768"]
    articles = stored(db)
    assert articles == {article: golden(article) for article in ARTICLES}
    assert not any("\ufffd" in title + body for title, body in articles.values())
    database = Database(db)
    with database.session() as session:
        hits = set(session.scalars(select(SearchHit.title)))
    database.dispose()
    assert hits == {hit["title"] for hit in LISTING["hits"]}
    stats = last_run(db).stats
    assert stats["fxcrawl/encoding/detected"] == 3 and stats["fxcrawl/encoding/meta"] == 4


@pytest.mark.parametrize(
    "claimed",
    [
        "ISO-8859-1",  # cannot be refuted from the bytes: the validate pipeline rejects the mojibake
        "utf-8",  # refuted by the bytes: the encoding middleware detects GBK
    ],
)
def test_a_lying_charset_header_never_stores_garbled_text(tmp_path: Path, claimed: str) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    with fault_server(log, "--fault", f"^/article/[^/]*1049185$=liecharset:{claimed}") as server:
        crawl(server, db, tmp_path)
    articles = stored(db)
    assert all(articles[article] == golden(article) for article in articles)  # nothing garbled
    if 1049185 not in articles:
        database = Database(db)
        with database.session() as session:
            reasons = session.scalars(select(Reject.reason).where(Reject.url == site.article_url(1049185))).all()
        database.dispose()
        assert [reason.split(":")[0] for reason in reasons] == ["encoding"], reasons
    assert len(articles) >= 9

    # a site whose every page lies: FXCRAWL_FORCE_ENCODING stores it right
    db, log = f"sqlite:///{tmp_path / 'forced.db'}", tmp_path / "forced.log"
    with fault_server(log, "--fault", f"^/(article|search)=liecharset:{claimed}") as server:
        done = crawl(server, db, tmp_path, "FXCRAWL_FORCE_ENCODING=gb18030")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {e.get("fault") for e in access(log) if e["path"] != "/robots.txt"} == {f"liecharset:{claimed}"}
    assert stored(db) == {article: golden(article) for article in ARTICLES}


@pytest.mark.parametrize(
    ("robots", "outcome"),
    [
        (f"disallow:{LINKED[1049185]}", "all but the disallowed"),
        ("404", "everything"),
        ("503", "nothing"),
        ("hang", "nothing"),
    ],
)
def test_robots_txt_is_obeyed_and_an_unreachable_one_disallows_the_site(
    tmp_path: Path, robots: str, outcome: str
) -> None:
    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    with fault_server(log, "--robots", robots) as server:
        done = crawl(server, db, tmp_path, "DOWNLOAD_TIMEOUT=2", "RETRY_TIMES=1")
    requested = [e["path"] for e in access(log)]
    articles = stored(db)
    stats = last_run(db).stats
    if outcome == "nothing":  # RFC 9309: unreachable robots.txt means complete disallow
        assert set(requested) == {"/robots.txt"} and len(requested) == 2  # asked, and retried once
        assert articles == {}
        assert "robots.txt of 127.0.0.1:" in done.stderr and "disallowing every URL on it" in done.stderr
        assert stats["fxcrawl/robotstxt/unreachable"] == 1
        database = Database(db)
        with database.session() as session:
            listing = session.scalars(select(FrontierEntry).where(FrontierEntry.kind == "listing")).one()
        database.dispose()
        assert listing.state == "failed" and "robots.txt unreachable" in (listing.last_error or "")
    elif outcome == "everything":
        assert [e["status"] for e in access(log, "/robots.txt")] == [404]
        assert articles == {article: golden(article) for article in ARTICLES}
    else:
        requested_ids = {site.article_id(path) for path in requested}
        assert "1049185" not in requested_ids and "1049176" in requested_ids
        assert set(articles) == set(ARTICLES) - {1049185}
        assert stats["robotstxt/forbidden"] == 1


def test_a_robots_forbidden_url_is_dropped_at_once_counted_once_and_never_owed_again(tmp_path: Path) -> None:
    from storage.frontier import FORBIDDEN, Frontier, RecrawlPolicy

    db, log = f"sqlite:///{tmp_path / 'fx.db'}", tmp_path / "access.log"
    forbidden = site.article_url(1049185)
    with fault_server(log, "--robots", f"disallow:{LINKED[1049185]}") as server:
        done = crawl(server, db, tmp_path, "FXCRAWL_FRONTIER_RETRY_DELAY=0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not access(log, "/article/1049185")
    stats = last_run(db).stats
    assert stats["robotstxt/forbidden"] == 1 and stats["fxcrawl/store/frontier/forbidden"] == 1
    database = Database(db)
    with database.session() as session:
        entry = session.scalars(select(FrontierEntry).where(FrontierEntry.url == forbidden)).one()
        rejects = session.scalars(select(Reject).where(Reject.url == forbidden)).all()
    # settled: no later run (nor `reconcile`) asks for it again, however long it waits
    owed = Frontier(database, RecrawlPolicy(retry_delay=timedelta(0))).pending(now=utcnow() + timedelta(days=365))
    database.dispose()
    assert entry.state == FORBIDDEN and "robots.txt" in (entry.last_error or "")
    assert len(rejects) == 1
    assert forbidden not in {known.url for known in owed}
