"""The fixture server: the offline site over loopback HTTP, at the live site's paths.

Run it with ``fxcrawl fixtures serve`` (or ``python -m replay.server``); it prints
``serving http://127.0.0.1:PORT`` once listening. ``ReplayServer`` starts one in a child
process for a crawl, a test or a benchmark, so the crawler takes Scrapy's real download
path and the server never competes with it for the interpreter.

It answers the site's pages (search, every spelling of an article URL, legacy .shtml pages,
channel lists, 快讯), ``/app/common/v.js`` with the API token in its ``_pcc`` response header,
and the JSON API's paths (in replay the crawler sends API calls and legacy links here) behind
the token gate (``--rotate-token-after N``). Drift knobs change the pages as a redesign would
(``--drop-next-data``, ``--rename-json-key``, ``--article-markup-v2``, replay/drift.py).

Making it misbehave as networks do (status sequences, dropped and hung connections, size and
gzip bombs, lying charsets, an unreachable robots.txt) is test equipment and is not installed:
tests/support/faults.py plugs into ``make_site``'s ``misbehaviour`` and ``serve``, and
``python -m support.faultserver`` (``tests`` on PYTHONPATH) is this server with ``--fault`` and
``--robots``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fx168 import site
from replay.drift import DriftKnobs, KeyRename, parse_kinds
from replay.generator import GeneratedSite
from replay.render import ROBOTS_TXT, api_envelope, v_js

#: The bundled offline copy of the portal: fixtures/site in a checkout, replay/site in an
#: installed wheel (setup.py copies it there, without the golden files).
_INSTALLED_SITE = Path(__file__).resolve().parent / "site"
_CHECKOUT_SITE = Path(__file__).resolve().parents[1] / "fixtures" / "site"
FIXTURE_SITE = _INSTALLED_SITE if _INSTALLED_SITE.is_dir() else _CHECKOUT_SITE


class SiteSource(Protocol):
    def get(self, path: str, query: str) -> bytes | None:
        """The page body at path?query (path percent-decoded), or None for 404."""

    def api_items(self, feed: str) -> list[dict[str, Any]] | None:
        """Every item of an API feed ('channel/001', 'fastnews'), newest first; None: no such feed."""


class FixtureDirectory:
    """Pages stored as files under fixtures/site (written by ``python -m replay.build``):
    search/<keyword>/<tab>/page-<n>.html, article/<newsId>.html (every spelling of an article's
    URL), legacy/<section>/<YYMM>/<id>.html, info/<code>.html, express/index.html,
    express/fastnews/<id>.html, api/channel/<code>.json and api/fastnews.json (the API's
    feeds, paged by the server), robots.txt."""

    def __init__(self, root: Path = FIXTURE_SITE) -> None:
        self.root = root
        self._feeds: dict[str, list[dict[str, Any]] | None] = {}

    def file_for(self, path: str, query: str) -> Path | None:
        if path == "/robots.txt":
            return self.root / "robots.txt"
        if (search := site.parse_search_url(f"{path}?{query}")) is not None:
            return self.root / "search" / search.keyword / search.tab / f"page-{search.page}.html"
        if match := site.LEGACY_PATH_RE.match(path):
            return self.root / "legacy" / match["section"] / match["yymm"] / f"{match['id']}.html"
        if (article_id := site.article_id(path)) is not None:
            return self.root / "article" / f"{int(article_id)}.html"
        if (code := site.channel_code(path)) is not None:
            return self.root / "info" / f"{code}.html"
        if path.rstrip("/") == site.EXPRESS_PATH:
            return self.root / "express" / "index.html"
        if match := site.FAST_NEWS_PATH_RE.match(path):
            return self.root / "express" / "fastnews" / f"{int(match['id'])}.html"
        return None

    def get(self, path: str, query: str) -> bytes | None:
        file = self.file_for(path, query)
        if file is None or not file.is_file() or not file.resolve().is_relative_to(self.root.resolve()):
            return None
        return file.read_bytes()

    def api_items(self, feed: str) -> list[dict[str, Any]] | None:
        if feed not in self._feeds:
            file = self.root / "api" / f"{feed}.json"
            ok = file.is_file() and file.resolve().is_relative_to(self.root.resolve())
            self._feeds[feed] = json.loads(file.read_text(encoding="utf-8"))["items"] if ok else None
        return self._feeds[feed]


class GeneratedSource:
    """The deterministic large site, rendered on request (``broken_markup``: as after a redesign
    that renamed the result list's class, which the parsers do not know)."""

    def __init__(self, generated: GeneratedSite, broken_markup: bool = False) -> None:
        self.generated = generated
        self.broken_markup = broken_markup

    def get(self, path: str, query: str) -> bytes | None:
        if path == "/robots.txt":
            return ROBOTS_TXT.encode()
        search = site.parse_search_url(f"{path}?{query}")
        if search is not None:
            if search.keyword != self.generated.keyword or search.tab != site.ARTICLE_TAB:
                return None
            html = self.generated.search_page(search.page)
            if html is not None and self.broken_markup:
                html = html.replace('class="search-list"', 'class="result-list-v2"')
        elif (article_id := site.article_id(path)) is not None:
            html = self.generated.article_page(int(article_id))
        else:
            return None
        return html.encode("utf-8") if html is not None else None

    def api_items(self, feed: str) -> list[dict[str, Any]] | None:
        return None


def page_kind(path: str, query: str = "") -> str | None:
    """The page kind a drift knob is limited by ('api' for the JSON API), or None."""
    if path in (site.API_CHANNEL_PATH, site.API_FAST_NEWS_PATH):
        return "api"
    if site.FAST_NEWS_PATH_RE.match(path):
        return site.PageKind.EXPRESS.value
    kind = site.page_kind(f"{quote(path)}?{query}" if query else quote(path))
    return kind.value if kind is not None else None


#: ``record(status)`` writes a request's access-log line; status is an int or "drop".
Recorder = Callable[[int | str], None]


class Fault(Protocol):
    """One request answered otherwise than the site would (tests/support/faults.py)."""

    @property
    def text(self) -> str:
        """What the access log names it."""

    def respond(self, request: Any, page: bytes | None, record: Recorder) -> Any:
        """Answer the twisted.web ``request`` (``page``: what the site would have served, None:
        nothing); returns the body, or NOT_DONE_YET."""


class Misbehaviour(Protocol):
    """What a test server injects into the site it serves."""

    def fault_for(self, uri: str) -> Fault | None:
        """This request's fault (the request as sent: path and query), or None to serve it."""

    def robots(self, body: bytes) -> bytes:
        """robots.txt as this server serves it."""


class TokenGate:
    """The JSON API's gate (live-site.md): calls need the current ``_pcc`` token (handed out as
    the response header of /app/common/v.js), Origin/Referer of the site and ``Site-Channel``.
    With ``rotate_after`` N, a token goes stale after N accepted calls and v.js hands out the next."""

    def __init__(self, rotate_after: int | None = None) -> None:
        self.rotate_after = rotate_after
        self.generation = 1
        self.calls = 0

    @property
    def token(self) -> str:
        digest = hashlib.sha256(f"fxcrawl-pcc:{self.generation}".encode()).hexdigest()[:24]
        return f"{self.generation}.{digest}"

    def why_refused(self, headers: Mapping[str, str], own_origin: str) -> str | None:
        """None if a call with these headers passes; else what is wrong (counted as a call if it passes)."""
        if headers.get(site.API_TOKEN_HEADER.lower()) != self.token:
            return "stale or missing token"
        if headers.get("site-channel") != site.API_SITE_CHANNEL:
            return "no Site-Channel"
        origins = [headers[name] for name in ("origin", "referer") if headers.get(name)]
        if not origins or not all(_is_site_origin(value, own_origin) for value in origins):
            return "Origin/Referer not of the site"
        self.calls += 1
        if self.rotate_after and self.calls >= self.rotate_after:
            self.generation += 1
            self.calls = 0
        return None


def _is_site_origin(value: str, own_origin: str) -> bool:
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    return host in site.SITE_HOSTS or f"{parts.scheme}://{parts.netloc}" == own_origin


def api_answer(source: SiteSource, path: str, query: str) -> dict[str, Any] | None:
    """The API's answer to a call that passed the gate (None: 404): one page of a feed."""
    params = {key: values[0] for key, values in parse_qs(query).items()}
    if path == site.API_CHANNEL_PATH:
        codes = [code for code in params.get("channelCodes", "").split(",") if code]
        feeds = [source.api_items(f"channel/{code}") for code in codes]
        if not feeds or any(feed is None for feed in feeds):
            return None
        items = sorted(
            {item[site.NEWS.news_id]: item for feed in feeds for item in feed or []}.values(),
            key=lambda item: (item[site.NEWS.published], item[site.NEWS.news_id]),
            reverse=True,
        )
    elif path == site.API_FAST_NEWS_PATH:
        if params.get("fastChannelId", site.API_SITE_CHANNEL) != site.API_SITE_CHANNEL:
            return None
        feed = source.api_items("fastnews")
        if feed is None:
            return None
        items = feed
    else:
        return None
    try:
        page = max(1, int(params.get("pageNo", "1")))
        size = max(1, min(100, int(params.get("pageSize", str(site.API_PAGE_SIZE)))))
    except ValueError:
        return None
    return api_envelope(items[(page - 1) * size : page * size], len(items))


def make_site(
    source: SiteSource,
    access_log: IO[str] | None = None,
    delay: float = 0.0,
    misbehaviour: Misbehaviour | None = None,
    knobs: DriftKnobs | None = None,
    gate: TokenGate | None = None,
) -> Any:
    """A twisted.web Site serving ``source``, each response ``delay`` seconds late, the pages
    changed as ``knobs`` say, the JSON API behind ``gate``, and ``misbehaviour``'s faults (tests
    only) where it finds one."""
    from twisted.internet import reactor as installed
    from twisted.web import resource, server

    reactor: Any = installed  # the running reactor (twisted types the name as its module)
    drift = knobs or DriftKnobs()
    api_gate = gate or TokenGate()

    class Replay(resource.Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> Any:
            arrived = time.time()
            uri = request.uri.decode("latin-1")
            parts = urlsplit(uri)
            path = unquote(parts.path)
            kind = page_kind(path, parts.query)
            fault = misbehaviour.fault_for(uri) if misbehaviour is not None else None
            status = 200
            content_type = _content_type(path)
            cacheable = True
            if kind == "api" and fault is None:
                cacheable = False
                headers = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in request.requestHeaders.getAllRawHeaders()
                    for value in [value[-1]]
                }
                host = (request.getHeader(b"host") or b"").decode("latin-1")
                refused = api_gate.why_refused(headers, f"http://{host}")
                if refused is not None:
                    status = 403
                    answer: dict[str, Any] | None = {"code": 401, "msg": "invalid token"}
                else:
                    answer = api_answer(source, path, parts.query)
                    answer = drift.rename(answer, "api") if answer is not None else None
                if answer is None:
                    status, answer = 404, {"code": 404, "msg": "not found"}
                body: bytes | None = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            elif path == site.API_TOKEN_PATH:
                cacheable = False
                body = v_js(api_gate.token).encode()
                request.setHeader(site.API_TOKEN_HEADER.encode(), api_gate.token.encode())
                request.addCookie(site.API_TOKEN_HEADER.encode(), api_gate.token.encode(), path=b"/")
            else:
                body = source.get(path, parts.query)
                if body is not None and parts.path == "/robots.txt" and misbehaviour is not None:
                    body = misbehaviour.robots(body)
                if body is not None and content_type.startswith(b"text/html"):
                    body = drift.page(body, kind)

            def record(status: int | str) -> None:
                if access_log is not None:
                    entry = {"t": arrived, "path": uri, "status": status}
                    if fault is not None:
                        entry["fault"] = fault.text
                    access_log.write(json.dumps(entry) + "\n")
                    access_log.flush()

            if fault is not None:
                return fault.respond(request, body, record)
            if body is None:
                status = 404
                content_type = b"text/html; charset=utf-8"
            elif cacheable:
                etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
                request.setHeader(b"etag", etag.encode())
                if (request.getHeader(b"if-none-match") or b"").decode("latin-1") == etag:
                    status, body = 304, b""
            record(status)
            request.setResponseCode(status)
            request.setHeader(b"content-type", content_type)
            if status == 304:
                return b""
            payload = body if body is not None else b"<html><body><h1>404</h1></body></html>"
            if delay <= 0:
                return payload
            call = reactor.callLater(delay, _finish, request, payload)
            request.notifyFinish().addErrback(lambda _failure: call.cancel() if call.active() else None)
            return server.NOT_DONE_YET

    def _finish(request: Any, payload: bytes) -> None:
        request.write(payload)
        request.finish()

    class QuietSite(server.Site):
        def log(self, request: Any) -> None:
            """Nothing: the access log above replaces twisted's own."""

    return QuietSite(Replay())


def _content_type(path: str) -> bytes:
    if path.endswith(".txt"):
        return b"text/plain; charset=utf-8"
    if path.endswith(".js"):
        return b"application/javascript; charset=utf-8"
    if path in (site.API_CHANNEL_PATH, site.API_FAST_NEWS_PATH):
        return b"application/json; charset=utf-8"
    return b"text/html; charset=utf-8"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fxcrawl fixtures serve", description=__doc__)
    add_serve_arguments(parser)
    return serve(parser.parse_args(argv))


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8168, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--root", type=Path, default=FIXTURE_SITE, help="fixture site directory")
    parser.add_argument("--generate", type=int, metavar="PAGES", help="serve a generated site of PAGES listing pages")
    parser.add_argument("--keyword", default="现代", help="keyword of the generated site")
    parser.add_argument("--added", type=int, default=0, help="generated site: new articles on top")
    parser.add_argument("--edited", type=int, default=0, help="generated site: newest original articles rewritten")
    parser.add_argument("--access-log", type=Path, help="append one JSON line per request to this file")
    parser.add_argument("--broken-markup", action="store_true", help="generated site: listings in an unknown markup")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each response")
    parser.add_argument(
        "--rotate-token-after",
        type=int,
        metavar="N",
        help="the JSON API's token goes stale after N accepted calls (v.js then hands out the next)",
    )
    parser.add_argument(
        "--drop-next-data",
        nargs="?",
        const="all",
        type=checked(parse_kinds),
        metavar="KINDS",
        help="serve pages without their __NEXT_DATA__ script; optionally only these page kinds "
        "(comma-separated: search, article, channel, express)",
    )
    parser.add_argument(
        "--rename-json-key",
        action="append",
        default=[],
        type=checked(KeyRename.parse),
        metavar="OLD=NEW[:KINDS]",
        help="rename a JSON key everywhere in __NEXT_DATA__ and the API's answers (e.g. newsContent=content), "
        "optionally only on these page kinds (search, article, channel, express, api); repeatable",
    )
    parser.add_argument(
        "--article-markup-v2",
        action="store_true",
        help="article pages after a redesign: body container div.post-body, title h1.post-title",
    )


def checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the value as given, once ``parse`` accepts it (its ValueError: a usage error)."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return check


def serve(args: argparse.Namespace, misbehaviour: Misbehaviour | None = None) -> int:
    """Serve until killed, as ``args`` (add_serve_arguments) say; ``misbehaviour``: tests' faults."""
    from twisted.internet import reactor as installed

    reactor: Any = installed  # the running reactor (twisted types the name as its module)

    source: SiteSource = (
        GeneratedSource(
            GeneratedSite(keyword=args.keyword, pages=args.generate, added=args.added, edited=args.edited),
            broken_markup=args.broken_markup,
        )
        if args.generate
        else FixtureDirectory(args.root)
    )
    log = args.access_log.open("a", encoding="utf-8") if args.access_log else None
    knobs = DriftKnobs.from_args(args.drop_next_data, args.rename_json_key, args.article_markup_v2)
    gate = TokenGate(args.rotate_token_after)
    factory = make_site(source, log, args.delay, misbehaviour, knobs, gate)
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    # Twisted types the reactor and its ports as zope interfaces, whose methods mypy reads
    # right only with the mypy-zope plugin; getHost() is an IPv4Address here.
    address = port.getHost()  # type: ignore[misc]  # a zope interface method (see above)
    print(f"serving http://127.0.0.1:{address.port}", flush=True)
    reactor.run()  # type: ignore[misc]  # a zope interface method (see above)
    return 0


class ReplayServer:
    """A fixture server in a child process, for the duration of a ``with`` block."""

    #: The module the child runs (``python -m MODULE --port 0 …``), and what it adds to the environment.
    module: ClassVar[str] = "replay.server"
    env: ClassVar[dict[str, str]] = {}

    def __init__(self, *extra_args: str, startup_timeout: float = 30.0) -> None:
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ReplayServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", "0", *self.extra_args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("serving "):
            self.close()
            raise RuntimeError(f"fixture server did not start (said {line!r})")
        self.base_url = line.removeprefix("serving ")
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    sys.exit(main())
