"""The one place a crawler gets its Database from, so every component of a crawl (the store,
the middlewares, the run ledger) shares one engine."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from scrapy.crawler import Crawler

from storage.db import Database

_databases: WeakKeyDictionary[Crawler, Database] = WeakKeyDictionary()


def database_for(crawler: Crawler) -> Database:
    """The crawl's Database (from FXCRAWL_DATABASE_URL), migrated to the current schema on first
    use and checked writable, so a crawl that could store nothing never starts."""
    database = _databases.get(crawler)
    if database is None:
        database = Database(crawler.settings.get("FXCRAWL_DATABASE_URL"))
        database.check_writable(before_open=True)
        database.prepare().check_writable()
        _databases[crawler] = database
    return database
