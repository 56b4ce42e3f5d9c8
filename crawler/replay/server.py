"""The fixture server: the offline site over loopback HTTP, at the live site's paths.

Run it with ``fxcrawl fixtures serve`` (or ``python -m crawler.replay.server``); it prints
``serving http://127.0.0.1:PORT`` once listening. ``ReplayServer`` starts one in a child
process for a crawl, a test or a benchmark, so the crawler takes Scrapy's real download
path and the server never competes with it for the interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol
from urllib.parse import unquote, urlsplit

from crawler import site
from crawler.replay import faults
from crawler.replay.faults import FaultPlan
from crawler.replay.generator import GeneratedSite
from crawler.replay.render import ROBOTS_TXT

#: The bundled offline copy of the portal.
FIXTURE_SITE = Path(__file__).resolve().parents[2] / "fixtures" / "site"


class SiteSource(Protocol):
    def get(self, path: str, query: str) -> bytes | None:
        """The page body at path?query, or None for 404."""


class FixtureDirectory:
    """Pages stored as files: search/<keyword>/<tab>/page-<n>.html, article/<id>.html, robots.txt."""

    def __init__(self, root: Path = FIXTURE_SITE) -> None:
        self.root = root

    def file_for(self, path: str, query: str) -> Path | None:
        if path == "/robots.txt":
            return self.root / "robots.txt"
        if (search := site.parse_search_url(f"{path}?{query}")) is not None:
            return self.root / "search" / search.keyword / search.tab / f"page-{search.page}.html"
        if (article_id := site.article_id(path)) is not None:
            return self.root / "article" / f"{article_id}.html"
        return None

    def get(self, path: str, query: str) -> bytes | None:
        file = self.file_for(path, query)
        if file is None or not file.is_file() or not file.resolve().is_relative_to(self.root.resolve()):
            return None
        return file.read_bytes()


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


def make_site(  # type: ignore[no-untyped-def]
    source: SiteSource, access_log: IO[str] | None = None, delay: float = 0.0, plan: FaultPlan | None = None
):
    """A twisted.web Site serving ``source``, each response ``delay`` seconds late, with the
    faults of ``plan`` (see crawler/replay/faults.py) injected where its rules match."""
    from twisted.internet import reactor
    from twisted.web import resource, server

    plan = plan or FaultPlan()

    class Replay(resource.Resource):
        isLeaf = True

        def render_GET(self, request):  # type: ignore[no-untyped-def]
            arrived = time.time()
            uri = request.uri.decode("latin-1")
            parts = urlsplit(uri)
            body = source.get(unquote(parts.path), parts.query)
            if body is not None and parts.path == "/robots.txt":
                body = plan.robots(body)
            step = plan.step_for(uri)

            def record(status: int | str) -> None:
                if access_log is not None:
                    entry = {"t": arrived, "path": uri, "status": status}
                    if step.is_fault:
                        entry["fault"] = step.text
                    access_log.write(json.dumps(entry) + "\n")
                    access_log.flush()

            if step.is_fault:
                return faults.respond(step, request, body, record)
            status = 200 if body is not None else 404
            if body is not None:
                etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
                request.setHeader(b"etag", etag.encode())
                if (request.getHeader(b"if-none-match") or b"").decode("latin-1") == etag:
                    status, body = 304, b""
            record(status)
            request.setResponseCode(status)
            is_text = parts.path.endswith(".txt")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8" if is_text else b"text/html; charset=utf-8")
            if status == 304:
                return b""
            payload = body if body is not None else b"<html><body><h1>404</h1></body></html>"
            if delay <= 0:
                return payload
            call = reactor.callLater(delay, _finish, request, payload)  # type: ignore[attr-defined]
            request.notifyFinish().addErrback(lambda _failure: call.cancel() if call.active() else None)
            return server.NOT_DONE_YET

    def _finish(request, payload: bytes) -> None:  # type: ignore[no-untyped-def]
        request.write(payload)
        request.finish()

    factory = server.Site(Replay())
    factory.log = lambda _request: None  # the access log above replaces twisted's own
    return factory


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
        "--fault",
        action="append",
        default=[],
        type=_checked(faults.FaultRule.parse),
        metavar="PATH_REGEX=SPEC",
        help="misbehave on matching paths, one SPEC step per request: 503,503,200 or drop, short, hang, "
        "429:SECS, big:BYTES, gzipbomb, charset:NAME, nocharset, metacharset:NAME, latemeta:NAME, "
        "liecharset:NAME (see crawler/replay/faults.py); repeatable, the first matching rule wins",
    )
    parser.add_argument(
        "--robots",
        action="append",
        default=[],
        type=_checked(lambda value: FaultPlan.from_args(robots=[value])),
        metavar="SPEC",
        help="robots.txt: disallow:/PATH adds a Disallow line; 404, 503, hang … answer it so; repeatable",
    )


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the value as given, once ``parse`` accepts it (its ValueError: a usage error)."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return check


def serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    source: SiteSource = (
        GeneratedSource(
            GeneratedSite(keyword=args.keyword, pages=args.generate, added=args.added, edited=args.edited),
            broken_markup=args.broken_markup,
        )
        if args.generate
        else FixtureDirectory(args.root)
    )
    log = args.access_log.open("a", encoding="utf-8") if args.access_log else None
    plan = FaultPlan.from_args(args.fault, args.robots)
    plan.prepare()
    port = reactor.listenTCP(args.port, make_site(source, log, args.delay, plan), interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"serving http://127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]
    return 0


class ReplayServer:
    """A fixture server in a child process, for the duration of a ``with`` block."""

    def __init__(self, *extra_args: str, startup_timeout: float = 30.0) -> None:
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ReplayServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crawler.replay.server", "--port", "0", *self.extra_args],
            stdout=subprocess.PIPE,
            text=True,
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
