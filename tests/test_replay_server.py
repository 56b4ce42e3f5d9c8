"""The fixture server over real loopback HTTP."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crawler import site
from crawler.replay.server import FIXTURE_SITE, ReplayServer


def fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers["content-type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["content-type"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("server") / "access.jsonl"
    with ReplayServer("--access-log", str(log)) as running:
        running.log = log
        yield running


def test_serves_fixture_pages_at_the_live_paths(server) -> None:
    status, body, ctype = fetch(site.search_url("现代", 953, base=server.base_url))
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert body == (FIXTURE_SITE / "search" / "现代" / "article" / "page-953.html").read_bytes()
    status, body, _ = fetch(site.article_url(3039185, base=server.base_url))
    assert status == 200 and body == (FIXTURE_SITE / "article" / "3039185.html").read_bytes()
    status, body, _ = fetch(f"{server.base_url}/robots.txt")
    assert status == 200 and b"User-agent: *" in body


@pytest.mark.parametrize(
    "path",
    [
        "/article/1",
        "/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=2",
        "/../pyproject.toml",
        "/article/..%2F..%2Fpyproject",
        "/nothing",
    ],
)
def test_anything_else_is_404(server, path: str) -> None:
    assert fetch(server.base_url + path)[0] == 404


def test_every_request_is_in_the_access_log(server) -> None:
    fetch(f"{server.base_url}/article/3039176?probe=1")
    entries = [json.loads(line) for line in Path(server.log).read_text().splitlines()]
    assert {"path": "/article/3039176?probe=1", "status": 200} in [
        {k: e[k] for k in ("path", "status")} for e in entries
    ]


def test_a_generated_site_is_served_on_demand() -> None:
    with ReplayServer("--generate", "2000") as running:
        status, body, _ = fetch(site.search_url("现代", 2000, base=running.base_url))
        assert status == 200 and "下一页".encode() not in body
        assert fetch(site.search_url("现代", 2001, base=running.base_url))[0] == 404


def test_conditional_requests_get_304_when_the_page_is_unchanged(server) -> None:
    url = site.article_url(3039185, base=server.base_url)
    with urllib.request.urlopen(url, timeout=10) as resp:
        etag = resp.headers["ETag"]
    assert etag and etag.startswith('"')
    request = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 304
    stale = urllib.request.Request(url, headers={"If-None-Match": '"something-else"'})
    with urllib.request.urlopen(stale, timeout=10) as resp:
        assert resp.status == 200 and resp.read()
