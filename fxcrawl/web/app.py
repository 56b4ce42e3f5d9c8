"""A read-only web view and JSON API over the store: Starlette, Jinja2 templates, uvicorn.

Everything is rendered on the server with autoescaping on; no script runs in the page, and the
Content-Security-Policy says so (`default-src 'none'`, the stylesheet from this origin only).
The database is opened so that it cannot be written: SQLite with ``PRAGMA query_only``,
PostgreSQL with ``default_transaction_read_only``.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fx168 import site
from storage import browse, fulltext, queries
from storage.migrations import current_revision, head_revision

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
PAGE_SIZE = 20
MAX_LIMIT = 200


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write to the store."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:" or not Path(path).exists():
            raise SystemExit(f"fxcrawl serve: no database at {path or url!r}")
        engine = create_engine(parsed)

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA query_only = ON")

        return engine
    return create_engine(parsed, pool_pre_ping=True, connect_args={"options": "-c default_transaction_read_only=on"})


class SecurityHeaders:
    """Adds the CSP and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _day(value: str | None, name: str, end: bool = False) -> datetime | None:
    """YYYY-MM-DD as the start (or, for ``end``, the end) of that day in the site's time zone."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}: use a date such as 2023-02-24") from None
    start = datetime(day.year, day.month, day.day, tzinfo=site.SITE_TZ)
    return start + timedelta(days=1) if end else start


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise HTTPException(400, f"limit: a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        "source": params.get("source") or None,
        "since": _day(params.get("since"), "since"),
        "until": _day(params.get("until"), "until", end=True),
    }


def link(path: str, params: Any = None, **changes: Any) -> str:
    """``path`` with the current query parameters, some changed (None drops one)."""
    values = {key: value for key, value in (params or {}).items() if value}
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return f"{path}?{urlencode(values)}" if values else path


def create_app(database_url: str) -> Starlette:
    """The web view over the store at ``database_url`` (which must be at this fxcrawl's schema)."""
    engine = read_only_engine(database_url)
    found, head = current_revision(engine), head_revision()
    if found != head:
        raise SystemExit(
            f"fxcrawl serve: the database's schema is {found or 'empty'}, this fxcrawl reads {head}: "
            "run `fxcrawl db upgrade` (or a crawl) first"
        )
    sessions = sessionmaker(engine)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.globals["marked_parts"] = fulltext.parts
    env.globals["link"] = link

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(request=request, params=request.query_params, **context)
        return HTMLResponse(html, status_code=status)

    def session() -> Session:
        return sessions()

    def search_page(request: Request) -> fulltext.SearchPage | None:
        q = request.query_params.get("q", "").strip()
        if not q:
            return None
        try:
            with session() as s:
                return fulltext.search(
                    s,
                    q,
                    **_filters(request),
                    limit=_limit(request),
                    rank=request.query_params.get("rank") == "1",
                    cursor=request.query_params.get("cursor") or None,
                )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def articles_page(request: Request) -> browse.Page:
        try:
            with session() as s:
                return browse.articles(
                    s, **_filters(request), cursor=request.query_params.get("cursor") or None, limit=_limit(request)
                )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def article_data(request: Request) -> dict[str, Any]:
        raw = request.path_params["article_id"]
        with session() as s:
            data = browse.article(s, raw)
        if data is None:
            raise HTTPException(404, f"no article {raw}")
        return data

    def runs_page(request: Request) -> browse.Page:
        try:
            with session() as s:
                return browse.runs(s, cursor=request.query_params.get("cursor") or None, limit=_limit(request))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def sources_data() -> list[dict[str, Any]]:
        with session() as s:
            return queries.list_sources(s)

    # -- HTML ---------------------------------------------------------------------------

    def home(request: Request) -> Response:
        found = search_page(request)
        if found is None:
            return page(request, "search.html", found=None, latest=articles_page(request))
        return page(request, "search.html", found=found, latest=None)

    def articles(request: Request) -> Response:
        return page(request, "articles.html", found=articles_page(request), sources=sources_data())

    def article(request: Request) -> Response:
        return page(request, "article.html", article=article_data(request))

    def sources(request: Request) -> Response:
        return page(request, "sources.html", sources=sources_data())

    def runs(request: Request) -> Response:
        return page(request, "runs.html", found=runs_page(request))

    def hot(request: Request) -> Response:
        with session() as s:
            lists = browse.hot_and_topics(s)
        return page(request, "hot.html", hot=lists["hot"], topics=lists["topics"])

    # -- JSON ---------------------------------------------------------------------------

    def api_articles(request: Request) -> Response:
        found = articles_page(request)
        return JSONResponse({"items": found.items, "next_cursor": found.next_cursor})

    def api_article(request: Request) -> Response:
        return JSONResponse(article_data(request))

    def api_search(request: Request) -> Response:
        if not request.query_params.get("q", "").strip():
            raise HTTPException(400, "q: give something to search for")
        found = search_page(request)
        assert found is not None
        return JSONResponse({"items": found.results, "next_cursor": found.next_cursor})

    def api_sources(request: Request) -> Response:
        return JSONResponse({"items": sources_data(), "next_cursor": None})

    def api_runs(request: Request) -> Response:
        found = runs_page(request)
        return JSONResponse({"items": found.items, "next_cursor": found.next_cursor})

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        return page(request, "error.html", status=status, status_code=status, detail=detail)

    routes = [
        Route("/", home),
        Route("/search", home),
        Route("/articles", articles),
        Route("/articles/{article_id:int}", article),
        Route("/sources", sources),
        Route("/runs", runs),
        Route("/hot", hot),
        Route("/api/articles", api_articles),
        Route("/api/articles/{article_id:int}", api_article),
        Route("/api/search", api_search),
        Route("/api/sources", api_sources),
        Route("/api/runs", api_runs),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: error, Exception: error},
    )
    app.state.engine = engine
    return app


def serve(database_url: str, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Run the web view until interrupted."""
    import uvicorn

    app = create_app(database_url)
    print(f"fxcrawl serve: http://{host}:{port}/ (read-only; Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
