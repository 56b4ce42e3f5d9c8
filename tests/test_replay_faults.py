"""The fixture server's fault injection (tests/support/faults.py), over real loopback HTTP."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.faults import SNIFF_WINDOW, FaultPlan, FaultRule, gzip_bomb, parse_spec, parse_step
from support.faultserver import FaultServer

from fx168.parsing import parse_article_page
from replay.server import FIXTURE_SITE, ReplayServer

FAULTS = {
    "^/article/[^/]*1049185$": "503,429:7,200",
    "^/article/10476": "503,200",  # several URLs: each walks the sequence on its own
    "^/article/[^/]*1049176$": "drop",
    "^/article/[^/]*1049021$": "short",
    "^/article/[^/]*1048990$": "hang",
    "^/article/[^/]*1048874$": "big:3000000",
    "^/article/[^/]*1048852$": "big:3000000:chunked",
    "^/article/[^/]*1048771$": "gzipbomb",
    "^/article/[^/]*1048703$": "charset:gbk",
    "^/article/[^/]*1048655$": "nocharset",
    "^/article/[^/]*1048612$": "metacharset:gb18030",
    "^/article/[^/]*1040017$": "latemeta:gbk",
    "^/article/[^/]*1040034$": "liecharset:ISO-8859-1",
    "^/article/[^/]*1040051$": "nocharset:gb18030:20000",
}


class LoggedFaultServer(FaultServer):
    """A fault server that keeps the path of its access log (``--access-log``) as ``log``."""

    def __init__(self, log: Path, *extra_args: str) -> None:
        super().__init__("--access-log", str(log), *extra_args)
        self.log = log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedFaultServer]:
    log = tmp_path_factory.mktemp("faults") / "access.jsonl"
    args = [arg for pattern, spec in FAULTS.items() for arg in ("--fault", f"{pattern}={spec}")]
    with LoggedFaultServer(log, "--robots", "disallow:/article/1049185", *args) as running:
        assert isinstance(running, LoggedFaultServer)  # __enter__ returns the server itself
        yield running


def connect(server: ReplayServer, timeout: float = 5.0) -> http.client.HTTPConnection:
    parts = urlsplit(server.base_url)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def get(server: ReplayServer, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    connection = connect(server)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def page(article: int) -> bytes:
    return (FIXTURE_SITE / "article" / f"{article}.html").read_bytes()


def golden(article: int) -> dict:
    return json.loads((FIXTURE_SITE / "article" / f"{article}.expected.json").read_text())["article"]


# -- specs -------------------------------------------------------------------------------------


def test_specs_parse_into_steps() -> None:
    steps = parse_spec("503,429:5,200,drop,big:10:chunked,latemeta:gb18030:100")
    assert [step.kind for step in steps] == ["status", "status", "serve", "drop", "big", "latemeta"]
    assert (steps[1].status, steps[1].retry_after) == (429, 5)
    assert (steps[4].size, steps[4].chunked) == (10, True)
    assert (steps[5].encoding, steps[5].size) == ("gb18030", 100)
    assert parse_step("nocharset").encoding == "gbk"
    rule = FaultRule.parse("/search\\?.*page=953=500")  # the last '=' splits
    assert rule.matches("/search?keyword=x&page=953") and rule.steps[0].status == 500


@pytest.mark.parametrize(
    "spec", ["teapot", "drop:1", "big", "big:ten", "charset", "charset:klingon", "latemeta:gbk:lots", "99", "429:x"]
)
def test_bad_steps_are_refused_with_a_reason(spec: str) -> None:
    with pytest.raises(ValueError, match=r"fault step|use |unknown"):
        parse_step(spec)


def test_the_server_refuses_a_bad_fault_on_its_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", FaultServer.module, "--port", "0", "--fault", "^/article/1$=teapot"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **FaultServer.env},
    )
    assert done.returncode == 2 and "unknown fault step 'teapot'" in done.stderr
    with pytest.raises(ValueError, match="disallow:/PATH"):
        FaultPlan.from_args(robots=["disallow:article"])


# -- over HTTP ---------------------------------------------------------------------------------


def test_each_url_walks_its_sequence_and_the_last_step_repeats(server) -> None:
    answers = [get(server, "/article/1049185")[0] for _ in range(4)]
    assert [a.status for a in answers] == [503, 429, 200, 200]
    assert answers[1].getheader("Retry-After") == "7" and answers[0].getheader("Retry-After") is None
    assert [get(server, "/article/1047667")[0].status for _ in range(2)] == [503, 200]
    assert get(server, "/article/1047684")[0].status == 503  # its own first request


def test_drop_closes_the_connection_without_a_response(server) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        get(server, "/article/1049176")


def test_short_promises_the_whole_body_and_sends_half(server) -> None:
    whole = page(1049021)
    connection = connect(server)
    connection.request("GET", "/article/1049021")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == str(len(whole))
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial == whole[: len(whole) // 2]


def test_hang_sends_the_headers_and_then_nothing(server) -> None:
    connection = connect(server, timeout=1.0)
    connection.request("GET", "/article/1048990")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == str(len(page(1048990)))
    with pytest.raises(socket.timeout):
        response.read()
    connection.close()


@pytest.mark.parametrize(("article", "length"), [(1048874, "3000000"), (1048852, None)])
def test_big_streams_its_size_with_or_without_a_length(server, article: int, length: str | None) -> None:
    response, body = get(server, f"/article/{article}")
    assert response.status == 200 and len(body) == 3_000_000
    assert response.getheader("Content-Length") == length
    assert response.getheader("Transfer-Encoding") == (None if length else "chunked")


def test_the_gzip_bomb_is_a_megabyte_that_inflates_past_a_gigabyte(server) -> None:
    response, body = get(server, "/article/1048771")
    assert response.getheader("Content-Encoding") == "gzip" and len(body) < 2 * 1024 * 1024
    assert body == gzip_bomb()
    inflater, inflated, rest = zlib.decompressobj(31), 0, body
    while rest and not inflater.eof:
        inflated += len(inflater.decompress(rest, 64 * 1024 * 1024))
        rest = inflater.unconsumed_tail
    assert inflater.eof and inflated > 1024**3  # a complete, valid stream (its CRC checked)
    assert gzip.decompress(gzip_bomb(3)) == bytes(3 * 1024 * 1024)


@pytest.mark.parametrize(
    ("article", "content_type", "encoding", "meta_at"),
    [
        (1048703, "text/html; charset=gbk", "gbk", None),
        (1048655, "text/html", "gbk", None),
        (1048612, "text/html", "gb18030", range(0, 200)),
        (1040017, "text/html", "gbk", range(SNIFF_WINDOW, 2 * SNIFF_WINDOW)),
        (1040034, "text/html; charset=ISO-8859-1", "gbk", None),
        (1040051, "text/html", "gb18030", None),
    ],
)
def test_pages_are_reencoded_and_declared_as_asked(
    server, article: int, content_type: str, encoding: str, meta_at: range | None
) -> None:
    response, body = get(server, f"/article/{article}")
    assert response.getheader("Content-Type") == content_type
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    position = body.find(b"<meta charset=")
    if meta_at is None:
        assert b"charset" not in body
    else:
        assert position in meta_at and body[position:].startswith(f'<meta charset="{encoding}">'.encode())
    parsed = parse_article_page(body.decode(encoding), f"https://www.fx168news.com/article/{article}").article
    assert (parsed.title, parsed.body) == (golden(article)["title"], golden(article)["body"])


def test_robots_txt_gets_the_extra_disallow_lines(server) -> None:
    response, body = get(server, "/robots.txt")
    assert response.status == 200
    assert body.startswith(b"User-agent: *\nDisallow: /article/1049185\nDisallow: /login\n")


@pytest.mark.parametrize(("robots", "statuses"), [("404", [404, 404]), ("503,200", [503, 200])])
def test_robots_txt_can_fail(robots: str, statuses: list[int]) -> None:
    with FaultServer("--robots", robots) as running:
        assert [get(running, "/robots.txt")[0].status for _ in statuses] == statuses
        assert get(running, "/article/1049185")[0].status == 200


def test_every_request_is_logged_with_its_status_and_any_fault(server) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        get(server, "/article/1049176")
    get(server, "/article/1048703")
    get(server, "/article/1049176?unrelated")  # anchored regex: no fault
    entries = [json.loads(line) for line in Path(server.log).read_text().splitlines()][-3:]
    assert [{k: v for k, v in e.items() if k != "t"} for e in entries] == [
        {"path": "/article/1049176", "status": "drop", "fault": "drop"},
        {"path": "/article/1048703", "status": 200, "fault": "charset:gbk"},
        {"path": "/article/1049176?unrelated", "status": 200},
    ]


def test_the_installed_packages_carry_no_fault_injection() -> None:
    """Gzip bombs, fault rules and markup rewrites are test equipment (tests/support): nothing the
    package installs (pyproject's packages.find include list) holds them; the offline site does."""
    import tomllib

    from setuptools import find_packages  # type: ignore[import-untyped]  # setuptools 65 ships no types; stubs not a dev dependency

    root = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    packages = find_packages(root, include=pyproject["tool"]["setuptools"]["packages"]["find"]["include"])
    assert "replay" in packages and not [p for p in packages if p.split(".")[0] in ("tests", "support")]
    for package in packages:
        for module in (root / package.replace(".", "/")).glob("*.py"):
            text = module.read_text(encoding="utf-8")
            assert not any(word in text for word in ("gzip_bomb", "gzipbomb", "FaultPlan", "perturb")), module
