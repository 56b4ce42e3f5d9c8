"""The fixture server over real loopback HTTP: every route, every article URL spelling, the JSON
API's token gate and the drift knobs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fx168 import site
from replay.drift import DriftKnobs, KeyRename, parse_kinds
from replay.server import FIXTURE_SITE, ReplayServer, TokenGate

ARTICLE = 1049185  # 央行发布2022年第四季度中国货币政策执行报告 (page 953, rank 1)
TRIPLE = 1049958  # the article reached by all three URL shapes
LEGACY = "/stock/2303/7351842.shtml"
_NEXT_DATA = re.compile(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', re.S)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    """GET a URL (its non-ASCII characters percent-encoded, as a client sends them)."""
    request = urllib.request.Request(urllib.parse.quote(url, safe=":/%?=&#"), headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def file(relative: str) -> bytes:
    return (FIXTURE_SITE / relative).read_bytes()


def token(server: ReplayServer) -> str:
    status, _, headers = fetch(site.api_token_url(server.base_url))
    assert status == 200
    return headers[site.API_TOKEN_HEADER]


def api(server: ReplayServer, url: str, pcc: str | None, site_base: str = site.CANONICAL_BASE) -> tuple[int, Any]:
    status, body, headers = fetch(site.fetch_url(url, server.base_url), site.api_headers(pcc, site_base))
    assert headers["content-type"].startswith("application/json")
    return status, json.loads(body)


def next_data(body: bytes) -> Any:
    found = _NEXT_DATA.search(body.decode("utf-8"))
    assert found is not None, "a page without its __NEXT_DATA__"
    return json.loads(found.group(1))


class LoggedServer(ReplayServer):
    """A fixture server writing its access log where the tests read it."""

    def __init__(self, log: Path) -> None:
        super().__init__("--access-log", str(log))
        self.log = log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("server") / "access.jsonl"
    with LoggedServer(log) as running:
        yield running


def test_serves_fixture_pages_at_the_live_paths(server) -> None:
    status, body, headers = fetch(site.search_url("现代", 953, base=server.base_url))
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == file("search/现代/article/page-953.html")
    routes = {
        site.article_url(ARTICLE, "央行", base=server.base_url): f"article/{ARTICLE}.html",
        site.channel_url("001", base=server.base_url): "info/001.html",
        site.channel_url("001008", base=server.base_url): "info/001008.html",
        site.express_url(base=server.base_url): "express/index.html",
        site.fast_news_url(1380160, base=server.base_url): "express/fastnews/1380160.html",
        server.base_url + LEGACY: "legacy/stock/2303/7351842.html",
    }
    for url, relative in routes.items():
        status, body, _ = fetch(url)
        assert status == 200 and body == file(relative), url
    status, body, _ = fetch(f"{server.base_url}/robots.txt")
    assert status == 200 and b"User-agent: *" in body


def test_legacy_links_on_the_old_host_are_answered_when_rebased(server) -> None:
    url = site.fetch_url(site.LEGACY_BASE + LEGACY, server.base_url)
    assert url == server.base_url + LEGACY
    assert fetch(url)[1] == file("legacy/stock/2303/7351842.html")


@pytest.mark.parametrize(
    "spelling",
    [
        "/article/黄金-1049958",
        "/article/%E9%BB%84%E9%87%91-1049958",
        "/article/%e9%bb%84%e9%87%91-1049958",
        "/article/1049958",
        "/article/1049958/",
        "/article/anything-1049958",
        "/article/黄金-1049958?from=timeline",
    ],
)
def test_every_spelling_of_an_article_url_answers_the_same_page(server, spelling: str) -> None:
    status, body, _ = fetch(server.base_url + spelling)
    assert status == 200 and body == file(f"article/{TRIPLE}.html")


@pytest.mark.parametrize(
    "path",
    [
        "/article/1",
        "/article/",
        "/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=2",
        "/../pyproject.toml",
        "/article/..%2F..%2Fpyproject",
        "/info/002",
        "/express/fastnews/1",
        "/stock/2303/1234567.shtml",
        "/nothing",
    ],
)
def test_anything_else_is_404(server, path: str) -> None:
    assert fetch(server.base_url + path)[0] == 404


def test_every_request_is_in_the_access_log(server) -> None:
    fetch(f"{server.base_url}/article/{ARTICLE}?probe=1")
    entries = [json.loads(line) for line in Path(server.log).read_text().splitlines()]
    assert {"path": f"/article/{ARTICLE}?probe=1", "status": 200} in [
        {k: e[k] for k in ("path", "status")} for e in entries
    ]


def test_conditional_requests_get_304_when_the_page_is_unchanged(server) -> None:
    url = site.article_url(ARTICLE, base=server.base_url)
    etag = fetch(url)[2]["ETag"]
    assert etag and etag.startswith('"')
    assert fetch(url, {"If-None-Match": etag})[0] == 304
    assert fetch(url, {"If-None-Match": '"something-else"'})[0] == 200


# -- the JSON API and its token ----------------------------------------------------------------


def test_v_js_hands_out_the_token_as_a_response_header(server) -> None:
    status, body, headers = fetch(site.api_token_url(server.base_url))
    assert status == 200 and headers["content-type"].startswith("application/javascript")
    pcc = headers[site.API_TOKEN_HEADER]
    assert pcc and pcc.encode() in body and f"{site.API_TOKEN_HEADER}={pcc}" in headers["Set-Cookie"]


def test_the_api_refuses_calls_without_the_token_or_the_site_headers(server) -> None:
    url = site.api_channel_url("001", 1)
    assert api(server, url, None) == (403, {"code": 401, "msg": "invalid token"})
    assert api(server, url, "1.not-the-token")[0] == 403
    good = token(server)
    bare = fetch(site.fetch_url(url, server.base_url), {site.API_TOKEN_HEADER: good})
    assert bare[0] == 403  # no Origin/Referer, no Site-Channel
    foreign = {**site.api_headers(good), "Origin": "https://example.com", "Referer": "https://example.com/"}
    assert fetch(site.fetch_url(url, server.base_url), foreign)[0] == 403
    assert api(server, url, good)[0] == 200
    assert api(server, url, good, site_base=server.base_url)[0] == 200  # the replay server stands in for the site


def test_channel_api_pages_go_back_in_time_and_page_one_is_the_list_page(server) -> None:
    pcc = token(server)
    pages = [api(server, site.api_channel_url("001", number), pcc)[1] for number in (1, 2, 3, 4, 5)]
    assert all(answer["code"] == site.API_OK for answer in pages)
    items = [page["data"]["items"] for page in pages]
    assert [len(page) for page in items[:3]] == [20, 20, 20] and pages[0]["data"]["total"] >= 60
    assert items[4] == []
    shown = next_data(file("info/001.html"))["props"]["pageProps"]["data"]["infoListData"]["items"]
    assert [i[site.NEWS.news_id] for i in items[0]] == [i[site.NEWS.news_id] for i in shown]
    times = [item[site.NEWS.published] for page in items for item in page]
    assert times == sorted(times, reverse=True)
    assert api(server, site.api_channel_url("999", 1), pcc)[0] == 404


def test_the_fast_news_api_pages_the_feed(server) -> None:
    pcc = token(server)
    pages = [api(server, site.api_fast_news_url(number), pcc)[1]["data"]["items"] for number in (1, 2, 3)]
    assert [len(page) for page in pages] == [20, 20, 20]
    shown = next_data(file("express/index.html"))["props"]["pageProps"]["data"]["express"]["items"]
    assert pages[0] == shown
    ids = [item[site.FAST_NEWS.fast_news_id] for page in pages for item in page]
    assert len(set(ids)) == 60


def test_the_token_rotates_after_n_calls() -> None:
    with ReplayServer("--rotate-token-after", "2") as running:
        first = token(running)
        url = site.api_fast_news_url(1)
        assert [api(running, url, first)[0] for _ in range(3)] == [200, 200, 403]
        second = token(running)
        assert second != first
        assert api(running, url, second)[0] == 200 and api(running, url, first)[0] == 403


def test_the_gate_alone() -> None:
    gate = TokenGate(rotate_after=1)
    headers = {"_pcc": gate.token, "site-channel": "001", "referer": "https://www.fx168news.com/"}
    assert gate.why_refused(headers, "http://127.0.0.1:1") is None
    assert gate.why_refused(headers, "http://127.0.0.1:1") == "stale or missing token"
    fresh = {**headers, "_pcc": gate.token, "origin": "http://127.0.0.1:1"}
    assert gate.why_refused(fresh, "http://127.0.0.1:1") is None


# -- drift knobs ------------------------------------------------------------------------------


def test_knob_arguments_parse_and_bad_ones_are_refused() -> None:
    assert parse_kinds(None) == parse_kinds("all") and "api" in parse_kinds("all")
    assert parse_kinds("article,channel") == {"article", "channel"}
    assert KeyRename.parse("newsContent=content:article") == KeyRename("newsContent", "content", frozenset({"article"}))
    with pytest.raises(ValueError, match="page kind"):
        parse_kinds("articles")
    with pytest.raises(ValueError, match="OLD=NEW"):
        KeyRename.parse("newsContent")
    done = subprocess.run(
        [sys.executable, "-m", "replay.server", "--port", "0", "--drop-next-data", "quote"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown page kind 'quote'" in done.stderr


def test_drop_next_data_serves_pages_without_their_json() -> None:
    with ReplayServer("--drop-next-data") as running:
        for url in (
            site.article_url(ARTICLE, base=running.base_url),
            site.channel_url("001", base=running.base_url),
            site.search_url("现代", 953, base=running.base_url),
            site.express_url(base=running.base_url),
        ):
            status, body, _ = fetch(url)
            assert status == 200 and b"__NEXT_DATA__" not in body and b'class="' in body
    with ReplayServer("--drop-next-data", "article") as running:
        assert b"__NEXT_DATA__" not in fetch(site.article_url(ARTICLE, base=running.base_url))[1]
        assert fetch(site.channel_url("001", base=running.base_url))[1] == file("info/001.html")


def test_rename_json_key_renames_it_everywhere_in_the_json() -> None:
    with ReplayServer("--rename-json-key", "newsContent=content", "--rename-json-key", "newsId=id:api") as running:
        status, body, _ = fetch(site.article_url(ARTICLE, base=running.base_url))
        detail = next_data(body)["props"]["pageProps"]["data"]["getNewsDetailData"]
        assert status == 200 and "newsContent" not in detail and detail["content"].startswith("<div")
        assert body.decode().count("\\u003c") > 10  # still escaped for a script element
        original = next_data(file(f"article/{ARTICLE}.html"))["props"]["pageProps"]["data"]["getNewsDetailData"]
        assert detail["content"] == original["newsContent"]
        assert fetch(site.channel_url("001", base=running.base_url))[1] == file("info/001.html")  # no such key
        items = api(running, site.api_channel_url("001", 1), token(running))[1]["data"]["items"]
        assert "id" in items[0] and "newsId" not in items[0]


def test_article_markup_v2_renames_the_body_and_title_classes() -> None:
    with ReplayServer("--article-markup-v2") as running:
        body = fetch(site.article_url(ARTICLE, base=running.base_url))[1].decode()
        assert 'class="post-body"' in body and 'class="post-title"' in body
        assert 'class="article-body"' not in body and 'class="article-title"' not in body
        assert fetch(site.channel_url("001", base=running.base_url))[1] == file("info/001.html")


def test_knobs_alone() -> None:
    knobs = DriftKnobs.from_args("article", ["newsTitle=title:channel"], article_markup_v2=True)
    page = file(f"article/{ARTICLE}.html")
    changed = knobs.page(page, "article").decode()
    assert "__NEXT_DATA__" not in changed and 'class="post-body"' in changed
    channel = knobs.page(file("info/001.html"), "channel")
    assert b'"title":' in channel and b'"newsTitle":' not in channel
    assert knobs.page(page, None) == page and DriftKnobs().page(page, "article") == page


# -- the generated site -----------------------------------------------------------------------


def test_a_generated_site_is_served_on_demand() -> None:
    with ReplayServer("--generate", "2000") as running:
        status, body, _ = fetch(site.search_url("现代", 2000, base=running.base_url))
        assert status == 200 and "下一页".encode() not in body and b"__NEXT_DATA__" in body
        assert fetch(site.search_url("现代", 2001, base=running.base_url))[0] == 404
        link = re.search(rb'<h3 class="item-title"><a href="([^"]+)"', body)
        assert link is not None
        href = link.group(1).decode()
        assert fetch(running.base_url + href)[0] == 200
        assert fetch(running.base_url + "/article/" + href.rsplit("-", 1)[-1].rsplit("/", 1)[-1])[0] == 200
