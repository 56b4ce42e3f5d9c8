"""The one place a crawler gets its Database from, so every component of a crawl (the store,
the middlewares, the run ledger) shares one engine.

A database the crawl cannot use (an unusable URL, no connection, a schema behind or ahead of
this code, read-only) is said once, at ERROR, in one line; the crawl's components are still
built, and the first of them to open (``check_database``) closes the spider with the reason
``database_unusable`` before anything is fetched: Scrapy's own way to refuse a start, so
``scrapy crawl`` and a Scrapyd job end with a plain error and no traceback.
"""

from __future__ import annotations

import logging
from weakref import WeakKeyDictionary

from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database, DatabaseMissing, DatabaseUnwritable, DatabaseURLError, redact
from storage.migrations import SchemaMismatch
from storage.runs import one_line

logger = logging.getLogger(__name__)

#: The finish reason of a crawl whose database could not be used as it started.
UNUSABLE = "database_unusable"

#: What a database can fail with before a crawl starts (anything else is a bug, and raises).
_START_FAILURES = (
    DatabaseURLError,
    DatabaseUnwritable,
    DatabaseMissing,
    SchemaMismatch,
    SQLAlchemyError,
    OSError,
)


_databases: WeakKeyDictionary[Crawler, Database] = WeakKeyDictionary()
#: Databases a crawl could not use, and why.
_refusals: WeakKeyDictionary[Database, str] = WeakKeyDictionary()


def database_for(crawler: Crawler) -> Database:
    """The crawl's Database (from FXCRAWL_DATABASE_URL), migrated to the current schema on first
    use and checked writable, so a crawl that could store nothing never starts (see the module)."""
    database = _databases.get(crawler)
    if database is None:
        database = _databases[crawler] = _open(crawler.settings.get("FXCRAWL_DATABASE_URL"))
    return database


def check_database(database: Database) -> None:
    """Raise CloseSpider(UNUSABLE) if the crawl could not use this database; for the components
    that open with the spider (the store's open_spider, the run ledger's spider_opened)."""
    if database in _refusals:
        raise CloseSpider(UNUSABLE)


def _open(url: str) -> Database:
    try:
        database = Database(url)
    except _START_FAILURES as exc:  # no engine at all: a stand-in no component will use, the spider closes first
        return _refused(url, Database("sqlite://"), exc)
    try:
        database.check_writable(before_open=True)
        database.prepare().check_writable()
    except _START_FAILURES as exc:
        return _refused(url, database, exc)
    return database


def _refused(url: str, database: Database, exc: BaseException) -> Database:
    detail = one_line(getattr(exc, "orig", None) or exc) if isinstance(exc, SQLAlchemyError) else one_line(exc)
    try:
        shown = redact(url)
    except Exception:  # not a URL at all (the error says so): nothing in it to hide
        shown = repr(url)
    logger.error("cannot crawl into the database %s: %s (the crawl stops before fetching anything)", shown, detail)
    _refusals[database] = detail
    return database
