"""Incremental crawling against the fixture server over loopback: what each run requests and stores."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fx168 import site
from replay.generator import GeneratedSite
from replay.server import ReplayServer
from storage.db import Database
from storage.models import Article, ArticleRevision, CrawlRun, FrontierEntry

PAGES = 100  # 1,000 articles


def crawl(base_url: str, db: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fxcrawl.cli",
            "crawl",
            "search",
            "--keyword",
            "现代",
            "--base-url",
            base_url,
            "--db",
            db,
            "--log-level",
            "INFO",
            "-s",
            f"FXCRAWL_SPOOL_DIR={tmp / 'spool'}",
            "-s",
            "AUTOTHROTTLE_ENABLED=False",
            "-s",
            "DOWNLOAD_DELAY=0",
            "-s",
            "CONCURRENT_REQUESTS=16",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def requests_in(log: Path, since: int = 0) -> list[str]:
    return [json.loads(line)["path"] for line in log.read_text().splitlines()[since:]]


def article_ids(paths: list[str]) -> set[int]:
    return {int(site.article_id(p) or 0) for p in paths if p.startswith("/article/")}


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """A 1,000-article site crawled once in full; yields (db, tmp)."""
    tmp = tmp_path_factory.mktemp("incremental")
    db = f"sqlite:///{tmp / 'fx.db'}"
    with ReplayServer("--generate", str(PAGES), "--access-log", str(tmp / "first.log")) as server:
        done = crawl(server.base_url, db, tmp, "--pages", f"1-{PAGES}")
    assert done.returncode == 0, done.stderr[-2000:]
    return db, tmp


def stored(db: str) -> tuple[int, int]:
    database = Database(db)
    with database.session() as session:
        result = (
            session.scalars(select(func.count(Article.id))).one(),
            session.scalars(select(func.count(func.distinct(Article.url)))).one(),
        )
    database.dispose()
    return result


def test_a_second_run_over_an_unchanged_site_requests_only_the_first_listing(crawled) -> None:
    db, tmp = crawled
    assert stored(db) == (1000, 1000)
    log = tmp / "second.log"
    with ReplayServer("--generate", str(PAGES), "--access-log", str(log)) as server:
        done = crawl(server.base_url, db, tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    assert requests_in(log) == ["/robots.txt", "/search?keyword=%E7%8E%B0%E4%BB%A3&type=article&page=1"]
    assert "run 2 finished: 1 pages, 0 new, 0 updated, 10 duplicate" in done.stdout
    assert stored(db) == (1000, 1000)


def test_young_articles_due_for_a_revisit_are_asked_conditionally_and_304_costs_nothing(crawled) -> None:
    db, tmp = crawled
    log = tmp / "revisit.log"
    with ReplayServer("--generate", str(PAGES), "--access-log", str(log)) as server:
        done = crawl(
            server.base_url,
            db,
            tmp,
            "-s",
            "FXCRAWL_RECRAWL_INTERVAL=0",
            "-s",
            f"FXCRAWL_RECRAWL_MAX_AGE={10 * 365 * 86400}",
        )
    assert done.returncode == 0, done.stderr[-2000:]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    details = [e for e in entries if e["path"].startswith("/article/")]
    assert len(details) == 10 and {e["status"] for e in details} == {304}  # page 1's ten, none sent again
    database = Database(db)
    with database.session() as session:
        run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).one()
        assert session.scalar(select(func.count(Article.id))) == 1000
    database.dispose()
    assert (run.articles_new, run.articles_updated, run.articles_unchanged) == (0, 0, 10)


def test_new_and_edited_articles_are_fetched_and_nothing_else(crawled) -> None:
    db, tmp = crawled
    log = tmp / "third.log"
    with ReplayServer("--generate", str(PAGES), "--added", "15", "--edited", "2", "--access-log", str(log)) as server:
        done = crawl(server.base_url, db, tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    changed = GeneratedSite(pages=PAGES, added=15, edited=2)
    expected = {changed.article_id(i) for i in range(15 + 2)}  # 15 on top, then the 2 edited ones
    assert article_ids(requests_in(log)) == expected  # no unchanged detail page requested
    database = Database(db)
    with database.session() as session:
        assert session.scalar(select(func.count(Article.id))) == 1015
        revisions = session.scalars(select(ArticleRevision)).all()
        edited = session.scalars(select(Article).where(Article.title.endswith("(更新)"))).all()
        run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).one()
    database.dispose()
    assert len(revisions) == 2 and len(edited) == 2
    assert {r.article_id for r in revisions} == {a.id for a in edited}
    assert all(
        a.revision == 2 and not r.title.endswith("(更新)")
        for a, r in zip(sorted(edited, key=lambda a: a.id), sorted(revisions, key=lambda r: r.article_id), strict=True)
    )
    assert (run.articles_new, run.articles_updated) == (15, 2)

    from fxcrawl.cli import main

    assert main(["articles", "show", str(edited[0].id), "--revisions", "--json", "--db", db]) == 0


def test_revisions_are_listed_with_a_diff_summary(crawled, capsys) -> None:
    db, _ = crawled
    from fxcrawl.cli import main

    database = Database(db)
    with database.session() as session:
        article_id = session.scalar(select(ArticleRevision.article_id).limit(1))
    database.dispose()
    assert article_id is not None, "runs after the edit scenario"
    capsys.readouterr()
    assert main(["articles", "show", str(article_id), "--revisions", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "revision 2 is current" in out
    assert "title:" in out and "(更新)" in out and "body +1/-1 paragraphs" in out


def test_a_crawl_killed_halfway_then_run_again_stores_every_article_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    Database(db).prepare().dispose()
    with ReplayServer("--generate", str(PAGES), "--delay", "0.02") as server:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fxcrawl.cli",
                "crawl",
                "search",
                "--pages",
                f"1-{PAGES}",
                "--base-url",
                server.base_url,
                "--db",
                db,
                "-s",
                f"FXCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
                "-s",
                "AUTOTHROTTLE_ENABLED=False",
                "-s",
                "DOWNLOAD_DELAY=0",
                "-s",
                "FXCRAWL_STORE_MAX_DELAY=0.2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while stored(db)[0] < 300 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
    halfway, _ = stored(db)
    assert 300 <= halfway < 1000, "the crawl was not killed halfway"
    with ReplayServer("--generate", str(PAGES)) as server:
        done = crawl(server.base_url, db, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert stored(db) == (1000, 1000)
    database = Database(db)
    with database.session() as session:
        states = dict(
            session.execute(
                select(FrontierEntry.kind + ":" + FrontierEntry.state, func.count()).group_by(
                    FrontierEntry.kind, FrontierEntry.state
                )
            ).all()
        )
    database.dispose()
    assert states == {"article:fetched": 1000, "listing:fetched": PAGES}


def test_a_run_that_stores_nothing_from_a_site_with_news_is_unhealthy(crawled) -> None:
    db, tmp = crawled
    # a redesign of the listings, their markup and their data alike: neither path reads them
    redesign = ("--broken-markup", "--drop-next-data", "search")
    with ReplayServer("--generate", str(PAGES), "--added", "30", *redesign) as server:
        done = crawl(server.base_url, db, tmp)
    assert done.returncode == 1
    assert "UNHEALTHY" in done.stdout and "rejects" in done.stdout
    database = Database(db)
    with database.session() as session:
        run = session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).one()
    database.dispose()
    assert run.health == "unhealthy" and run.articles_new == 0
    assert any("threshold" in reason for reason in run.health_reasons)
    assert any("search page(s): neither the page data nor the HTML" in reason for reason in run.health_reasons)


def test_the_frontier_start_requests_cover_a_dead_runs_leftovers(tmp_path: Path) -> None:
    """URLs discovered but never fetched are fetched by the next run even when no listing shows them."""
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    database = Database(db).prepare()
    generated = GeneratedSite(pages=5)
    leftover = site.article_url(generated.article_id(42))  # on page 5, which the next run will not read
    with database.write_session() as session:
        session.add(FrontierEntry(url=leftover, state="discovered", attempts=0))
    database.dispose()
    log = tmp_path / "access.log"
    with ReplayServer("--generate", "5", "--access-log", str(log)) as server:
        done = crawl(server.base_url, db, tmp_path, "--pages", "1-2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert generated.article_id(42) in article_ids(requests_in(log))
    database = Database(db)
    with database.session() as session:
        assert session.scalar(select(FrontierEntry.state).where(FrontierEntry.url == leftover)) == "fetched"
        assert session.scalar(select(func.count(Article.id)).where(Article.url == leftover)) == 1
    database.dispose()


def listing_page_through_the_middleware(store: object, **settings: object):
    """The incremental middleware (a frontier that knows nothing, ``store`` as its writer) and a
    search page showing one article and the walk's next page: (middleware, response, hit,
    the article's URL, the page's output as its callback yields it)."""
    from scrapy import Request
    from scrapy.http import HtmlResponse
    from scrapy.utils.test import get_crawler
    from twisted.internet.defer import succeed

    from crawler.middlewares import IncrementalMiddleware
    from crawler.spiders.portal import LISTING, NEXT_PAGE
    from fx168.items import SearchHitItem
    from storage.frontier import RecrawlPolicy

    class Frontier:
        policy = RecrawlPolicy()

        def lookup(self, urls):
            return {}

    crawler = get_crawler(settings_dict={"FXCRAWL_BASE_URL": site.CANONICAL_BASE, **settings})
    middleware = IncrementalMiddleware(
        crawler,
        Frontier(),  # type: ignore[arg-type]  # a fake with what the middleware reads
        stop_after=50,
        store=store,  # type: ignore[arg-type]  # a fake with what the middleware hands over
        in_thread=lambda function, *args: succeed(function(*args)),
    )
    listing = site.search_url("现代", 2)
    response = HtmlResponse(listing, body=b"", request=Request(listing, meta={LISTING: True}, cb_kwargs={"last": 3}))
    article = f"{site.CANONICAL_BASE}/article/1049903"
    hit = SearchHitItem("现代", "文章", 2, 1, article, "t", "s", [], "金融界", None, "2026-01-01")
    results = [hit, Request(article), Request(site.search_url("现代", 3), meta={NEXT_PAGE: True})]

    async def source():
        for result in results:
            yield result

    return middleware, response, hit, article, source


def test_a_listings_frontier_record_is_written_before_any_of_its_requests_leaves() -> None:
    """A distributed worker killed between "requests in the shared queue" and "frontier written"
    left no record of them: the page fetched again after `reconcile` had its links filtered as
    seen by the shared dupefilter, and ten articles were never stored (CI, chaos seed 0)."""
    import asyncio

    from scrapy import Request
    from twisted.internet.defer import Deferred

    events: list[str] = []

    class Store:  # the frontier's one writer: the middleware waits for its commit
        def __init__(self) -> None:
            self.committed: Deferred[None] = Deferred()

        def record(self, discovery):
            events.append(f"discover {len(discovery.listed)} next={discovery.next_listing is not None}")
            return self.committed

    store = Store()
    # a shared queue's worker (in one process the facts ride with the items: the next test)
    middleware, response, _, _, source = listing_page_through_the_middleware(store, FXCRAWL_FRONTIER_AWAIT_COMMIT=True)

    async def crawl() -> None:
        output = middleware.process_spider_output(response, source())
        first = asyncio.ensure_future(output.__anext__())
        await asyncio.sleep(0.01)
        assert not first.done()
        events.append("committed")  # nothing left the middleware before the writer committed
        store.committed.callback(None)
        outs = [await first, *[out async for out in output]]
        events.extend(f"request {out.url}" for out in outs if isinstance(out, Request))

    asyncio.run(crawl())
    assert events[:2] == ["discover 1 next=True", "committed"], events
    assert len(events) == 4


def test_in_one_process_a_listings_facts_ride_with_its_items_and_nothing_waits() -> None:
    import asyncio

    from scrapy import Request

    class Store:
        def __init__(self) -> None:
            self.handed: list = []

        def record(self, discovery):
            raise AssertionError("nothing in one process waits for a commit of its own")

        def record_with_items(self, discovery):
            self.handed.append(discovery)

    store = Store()
    middleware, response, hit, article, source = listing_page_through_the_middleware(store)
    assert not middleware.await_commit

    async def crawl() -> list:
        return [out async for out in middleware.process_spider_output(response, source())]

    outs = asyncio.run(crawl())
    assert len(store.handed) == 1
    (discovery,) = store.handed
    assert [listed.url for listed in discovery.listed] == [article]
    assert discovery.next_listing == site.canonical_url(site.search_url("现代", 3)) and discovery.walk_until == 3
    assert outs[0] is hit and sum(isinstance(out, Request) for out in outs) == 2


def test_listing_requests_wait_for_the_commit_only_where_requests_outlive_the_process() -> None:
    """A shared scrapy-redis queue or a JOBDIR keeps requests after a kill: there the listing's
    facts are committed first. In one process the queue dies with it, and the writer commits the
    listing before any item of its requests anyway, so the walk does not wait."""
    from scrapy.settings import Settings

    from crawler.middlewares import _requests_outlive_process

    assert _requests_outlive_process(Settings({"SCHEDULER": "crawler.distributed.ResilientScheduler"}))
    assert _requests_outlive_process(Settings({"SCHEDULER": "scrapy_redis.scheduler.Scheduler"}))
    assert _requests_outlive_process(Settings({"SCHEDULER": "scrapy.core.scheduler.Scheduler", "JOBDIR": "jobs"}))
    assert not _requests_outlive_process(Settings({"SCHEDULER": "scrapy.core.scheduler.Scheduler"}))
    overridden = {"SCHEDULER": "scrapy.core.scheduler.Scheduler", "FXCRAWL_FRONTIER_AWAIT_COMMIT": "true"}
    assert _requests_outlive_process(Settings(overridden))
    redis = {"SCHEDULER": "crawler.distributed.ResilientScheduler", "FXCRAWL_FRONTIER_AWAIT_COMMIT": False}
    assert not _requests_outlive_process(Settings(redis))
