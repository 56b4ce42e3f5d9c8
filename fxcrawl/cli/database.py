"""What the commands need before they touch the store: the database at --db, dates and origins checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fxcrawl.cli.errors import CommandError, UsageError

if TYPE_CHECKING:
    from storage.db import Database


def open_database(url: str, create: bool = False, writable: bool = False) -> Database:
    """The database at --db at this code's schema. Only commands that write may ``create`` it (and
    its folder): a read-only command on a missing database says how to make one instead. A
    ``writable`` one is checked before it is opened: a crawl that could store nothing never starts."""
    from storage.db import Database, DatabaseMissing, DatabaseUnwritable, DatabaseURLError
    from storage.migrations import SchemaMismatch

    try:
        database = Database(url, create=create)
        if writable:
            database.check_writable(before_open=True)
        database.prepare()
        if writable:
            database.check_writable()
        return database
    except DatabaseURLError as exc:
        raise UsageError(str(exc)) from None
    except DatabaseUnwritable as exc:
        raise CommandError(f"{exc}; refusing to crawl") from None
    except (SchemaMismatch, DatabaseMissing) as exc:
        raise CommandError(str(exc)) from None


def when(text: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A --since or --until in the site's time zone; a bare day as --until means up to its end."""
    if not text:
        return None
    from fx168.parsing.dates import DateError, parse_site_datetime

    try:
        value = parse_site_datetime(text, datetime.now(UTC))
    except DateError as exc:
        raise UsageError(f"{exc}; use a date such as 2023-02-24 or 2023-02-24 10:05") from None
    date_only = len(text.strip()) <= 10
    return value + timedelta(days=1) if end_of_day and date_only else value


def check_base_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise UsageError(f"--base-url {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url must be an http(s) origin such as https://www.fx168news.com, not {url!r}")
