"""The fxcrawl command: crawl, inspect and export. Argument parsing and printing only."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sqlalchemy.exc import SQLAlchemyError
from tabulate import tabulate
from wcwidth import wcswidth

from crawler import settings as project_settings
from fx168.parsing.dates import DateError, parse_site_datetime

DEFAULT_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

#: Exit codes: 0 done; 1 the work failed (or the run is unhealthy); 2 bad arguments, refused
#: before any work; 3 skipped: the job (or, without --job, the spider) is running elsewhere.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3
#: The most rows a listing command prints (a bigger --limit is a typo, not a wish).
MAX_LIMIT = 1_000_000


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit code 2."""


class CommandError(Exception):
    """The command could not do its work (database unreachable, wrong schema): one line, exit 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"fxcrawl: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# -- helpers ------------------------------------------------------------------------------


def _database(args: argparse.Namespace, create: bool = False, writable: bool = False):  # type: ignore[no-untyped-def]
    """The database at --db at this code's schema. Only commands that write may ``create`` it (and
    its folder): a read-only command on a missing database says how to make one instead. A
    ``writable`` one is checked before it is opened: a crawl that could store nothing never starts."""
    from storage.db import Database, DatabaseMissing, DatabaseUnwritable, DatabaseURLError
    from storage.migrations import SchemaMismatch

    try:
        database = Database(args.db, create=create)
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


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _fit(text: Any, width: int) -> str:
    """Truncate to a display width (CJK characters are two columns wide)."""
    text = "" if text is None else str(text)
    if wcswidth(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        w = max(wcswidth(char), 0)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, int]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    body = [[_fit(row.get(key), width) for key, _, width in columns] for row in rows]
    print(tabulate(body, headers=[header for _, header, _ in columns], tablefmt="simple", disable_numparse=True))


def _when(text: str | None, *, end_of_day: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        value = parse_site_datetime(text, datetime.now(UTC))
    except DateError as exc:
        raise UsageError(f"{exc}; use a date such as 2023-02-24 or 2023-02-24 10:05") from None
    date_only = len(text.strip()) <= 10
    return value + timedelta(days=1) if end_of_day and date_only else value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _limit(text: str) -> int:
    value = _positive(text)
    if value > MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"at most {MAX_LIMIT:,}: {text!r}")
    return value


def _check_base_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise UsageError(f"--base-url {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url must be an http(s) origin such as https://www.fx168news.com, not {url!r}")


def _setting_value(name: str, value: str) -> Any:
    """A -s NAME=VALUE checked against the setting's default type, so CONCURRENT_REQUESTS=abc is
    refused here, in one line, rather than as a traceback once the crawl is built."""
    from scrapy.settings import default_settings

    default = getattr(project_settings, name, getattr(default_settings, name, None))
    try:
        if isinstance(default, bool):
            if value.strip().lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("not a boolean")
        elif isinstance(default, int):
            int(value)
        elif isinstance(default, float):
            float(value)
    except ValueError:
        kind = type(default).__name__
        raise UsageError(f"-s {name}={value!r}: {name} takes a {kind} (default {default!r})") from None
    return value


# -- commands -----------------------------------------------------------------------------


def cmd_crawl(args: argparse.Namespace) -> int:
    try:
        if args.spider == "latest":
            from crawler.spiders.latest import parse_channels

            parse_channels(args.channels)
        else:
            from crawler.spiders.search import check_keyword, parse_page_spec

            parse_page_spec(args.pages)
            check_keyword(args.keyword)
    except ValueError as exc:
        raise UsageError(str(exc).replace("keyword ", "--keyword ", 1)) from None
    if args.base_url:
        _check_base_url(args.base_url)
    overrides: dict[str, Any] = {"FXCRAWL_DATABASE_URL": args.db, "LOG_LEVEL": args.log_level}
    if args.job:
        overrides["FXCRAWL_JOB"] = args.job
    for assignment in args.set:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, not {assignment!r}")
        overrides[name.strip()] = _setting_value(name.strip(), value)
    # A database at another schema version stops the crawl here, and so does one that could
    # store nothing: before anything is fetched.
    database = _database(args, create=True, writable=True)
    if getattr(args, "distributed", False):
        from crawler.distributed import distributed_settings

        overrides.update(distributed_settings(args.redis_url, _job(args)))
        return _crawl(args, overrides)  # many workers run one job at once, by design: no job lock
    from storage.locks import JobLock, JobLockHeld

    # A scheduled job (--job) runs once at a time and is skipped while it runs elsewhere. Without
    # --job, one crawl of the spider at a time on this database: the second waits (--no-wait: skips).
    lock = JobLock(database, args.job or f"crawl:{args.spider}")
    wait = not args.job and not args.no_wait
    announced = False
    while True:
        try:
            lock.acquire()
            break
        except JobLockHeld as exc:
            if not wait:
                print(f"fxcrawl: skipped: {exc} (exit code {EXIT_SKIPPED})", file=sys.stderr)
                return EXIT_SKIPPED
            if not announced:
                print(f"fxcrawl: waiting: {exc}; --no-wait to skip instead", file=sys.stderr)
                announced = True
            time.sleep(1.0)
    try:
        return _crawl(args, overrides)
    finally:
        lock.release()


def _crawl(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from fxcrawl.run import project_settings_with, run_crawl
    from replay.server import ReplayServer
    from storage import queries

    with ExitStack() as stack:
        if args.replay:
            server_args = ["--access-log", str(args.access_log)] if args.access_log else []
            server_args += args.replay_arg
            if args.replay_generate:
                server_args += ["--generate", str(args.replay_generate)]
            if args.replay_delay:
                server_args += ["--delay", str(args.replay_delay)]
            server = stack.enter_context(ReplayServer(*server_args))
            overrides["FXCRAWL_BASE_URL"] = server.base_url
            print(f"replaying the bundled site from {server.base_url}", file=sys.stderr)
        elif args.base_url:
            overrides["FXCRAWL_BASE_URL"] = args.base_url
        settings = project_settings_with(overrides, replay=args.replay)
        spider: Any = args.spider
        if args.spider == "latest":
            spider_args: dict[str, Any] = {"channels": args.channels, "express": not args.no_express}
            if args.max_pages:
                spider_args["max_pages"] = args.max_pages
        else:
            spider_args = {"keyword": args.keyword, "pages": args.pages, "max_pages": args.max_pages}
        if getattr(args, "distributed", False):
            from crawler.distributed import DistributedSearchSpider

            spider = DistributedSearchSpider
        result = run_crawl(spider, settings, **spider_args)
    try:  # the summary reads the database the crawl wrote, and never makes one (a deleted file stays deleted)
        database = _database(args)
        with database.session() as session:
            run = queries.get_run(session, result.run_id) if result.run_id else None
            total = queries.totals(session)
            sources = queries.list_sources(session)
    except (CommandError, SQLAlchemyError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"fxcrawl: crawl did not end cleanly: its database cannot be read ({detail})", file=sys.stderr)
        if result.stats.get("fxcrawl/store/spooled_items") or result.stats.get("fxcrawl/runs/row_spooled"):
            print("fxcrawl: what it fetched is spooled: `fxcrawl spool replay` stores it", file=sys.stderr)
        return EXIT_FAILED
    if run:
        print(
            f"\nrun {run['id']} {run['finish_reason']}: {run['pages']} pages, {run['new']} new, "
            f"{run['updated']} updated, {run['duplicate']} duplicate, {run['rejected']} rejected, "
            f"{run['spooled']} spooled, {run['errors']} errors"
        )
        if run["health"] == "unhealthy":
            print("UNHEALTHY: " + "; ".join(run["health_reasons"]))
    print(f"stored: {total['articles']} articles from {total['sources']} sources\n")
    _table(sources, [("name", "source", 20), ("articles", "articles", 8)], "no sources stored")
    if not result.ok:
        why = "unhealthy" if result.stats.get("fxcrawl/health") == "unhealthy" else result.finish_reason
        print(f"fxcrawl: crawl did not end cleanly ({why}); see the log above", file=sys.stderr)
        return 1
    return 0


def _job(args: argparse.Namespace) -> str:
    if getattr(args, "spider", "search") == "latest":
        return args.job or f"latest:{args.channels or '001'}"
    return args.job or f"search:{args.keyword.strip()}"


def _redis(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import redis

    server = redis.Redis.from_url(args.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        server.ping()
    except redis.RedisError as exc:
        raise CommandError(f"Redis unavailable at {args.redis_url}: {exc}") from None
    return server


def _reconcile(args: argparse.Namespace, server: Any) -> int:
    from crawler.distributed import push, recovery_entries
    from storage.frontier import Frontier, RecrawlPolicy

    database = _database(args, create=True)  # a job's first seed may come before its first crawl
    owed = Frontier(database, RecrawlPolicy()).pending()
    database.dispose()
    return push(server, _job(args), recovery_entries(owed, args.base_url))


def cmd_reconcile(args: argparse.Namespace) -> int:
    _check_base_url(args.base_url)
    queued = _reconcile(args, _redis(args))
    print(f"queued {queued} URLs the frontier still owes for job {_job(args)!r}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from crawler.distributed import push, start_entries

    _check_base_url(args.base_url)
    try:
        entries = start_entries(args.keyword, args.pages, args.base_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server = _redis(args)
    recovered = _reconcile(args, server)
    push(server, _job(args), entries)
    print(f"job {_job(args)!r}: queued {len(entries)} listing walks and {recovered} URLs owed by earlier runs")
    return 0


def cmd_workers_start(args: argparse.Namespace) -> int:
    import subprocess

    _check_base_url(args.base_url)

    command = [
        sys.executable,
        "-m",
        "fxcrawl.cli",
        "crawl",
        "search",
        "--distributed",
        "--keyword",
        args.keyword,
        "--db",
        args.db,
        "--redis-url",
        args.redis_url,
        "--base-url",
        args.base_url,
        "--log-level",
        args.log_level,
    ]
    if args.job:
        command += ["--job", args.job]
    for assignment in args.set:
        command += ["--set", assignment]
    workers = [subprocess.Popen(command) for _ in range(args.count)]
    codes = [worker.wait() for worker in workers]
    failed = [code for code in codes if code != 0]
    print(f"{args.count} workers finished; exit codes {codes}", file=sys.stderr)
    return 1 if failed else 0


def cmd_articles_list(args: argparse.Namespace) -> int:
    from storage import queries

    since, until = _when(args.since), _when(args.until, end_of_day=True)
    with _database(args).session() as session:
        rows = queries.list_articles(
            session, source=args.source, since=since, until=until, search=args.search, limit=args.limit
        )
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            row["published"] = (row["published_at"] or "")[:16].replace("T", " ")
        _table(
            rows,
            [("id", "id", 8), ("published", "published", 16), ("source", "source", 12), ("title", "title", 60)],
            "no articles match",
        )
    return 0


def cmd_articles_show(args: argparse.Namespace) -> int:
    from storage import queries

    key = args.id_or_url.strip()
    if not key.isdigit():  # any spelling of an article's URL names the one it is stored under
        from fx168 import site

        key = site.canonical_url(key)
    with _database(args).session() as session:
        article = queries.get_article(session, key, with_revisions=args.revisions)
    if article is None:
        print(f"fxcrawl: no article {args.id_or_url!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(article)
        return 0
    if args.revisions:
        print(f"{article['title']} ({article['url']}): revision {article['revision']} is current")
        if not article["revisions"]:
            print("no earlier revisions")
        for old in article["revisions"]:
            span = f"{old['valid_from'][:16]} to {old['replaced_at'][:16]}"
            print(f"revision {old['revision']}: {span}, then {old['summary']}")
        return 0
    if not article["published_at"]:  # a date nobody could read: show it as the page did
        article["published_at"] = f"unknown (the page says {article.get('published_text') or 'nothing'!r})"
    for field in ("id", "news_id", "url", "title", "source", "author", "published_at", "kind"):
        print(f"{field:>13}: {article[field] or ''}")
    if article["reprinted"] or article["ai_generated"]:
        notes = ["reprinted from " + article["source"]] * article["reprinted"] + ["written by AI"] * article[
            "ai_generated"
        ]
        print(f"{'notes':>13}: {'; '.join(notes)}")
    print(f"{'tags':>13}: {', '.join(article['tags'])}")
    topics = ", ".join(f"#{topic['name']}# ({topic['id']})" for topic in article["topics"])
    print(f"{'topics':>13}: {topics}")
    print(f"{'symbols':>13}: {', '.join(article['symbols'])}")
    if article["video"]:
        print(f"{'video':>13}: {json.dumps(article['video'], ensure_ascii=False)}")
    if article["summary"]:
        print(f"{'summary':>13}: {article['summary']}")
    print()
    print(article["body"])
    return 0


def cmd_fast_news_list(args: argparse.Namespace) -> int:
    from storage import queries

    with _database(args).session() as session:
        rows = queries.list_fast_news(session, since=_when(args.since), limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        row["published"] = (row["published_at"] or row["published_text"] or "")[:16].replace("T", " ")
        row["pin"] = "置顶" if row["pinned"] else ""
    _table(
        rows,
        [
            ("id", "id", 8),
            ("published", "published", 16),
            ("pin", "", 4),
            ("source_tag", "tag", 6),
            ("text", "text", 70),
        ],
        "no fast news stored",
    )
    return 0


def cmd_sources_list(args: argparse.Namespace) -> int:
    from storage import queries

    with _database(args).session() as session:
        rows = queries.list_sources(session)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            row["last_seen"] = (row["last_seen_at"] or "")[:16].replace("T", " ")
        _table(
            rows,
            [("id", "id", 6), ("name", "source", 20), ("articles", "articles", 8), ("last_seen", "last seen", 16)],
            "no sources stored",
        )
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from storage import queries

    with _database(args).session() as session:
        rows = queries.list_runs(session, limit=args.limit)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            row["started"] = (row["started_at"] or "")[:19].replace("T", " ")
        _table(
            rows,
            [
                ("id", "run", 5),
                ("started", "started", 19),
                ("finish_reason", "finish", 12),
                ("pages", "pages", 6),
                ("new", "new", 6),
                ("updated", "updated", 7),
                ("unchanged", "unchanged", 9),
                ("duplicate", "duplicate", 9),
                ("rejected", "rejected", 8),
                ("errors", "errors", 6),
                ("health", "health", 9),
            ],
            "no runs recorded",
        )
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from storage import queries

    with _database(args).session() as session:
        run = queries.get_run(session, args.run_id, with_stats=True)
    if run is None:
        print(f"fxcrawl: no run {args.run_id}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(run)
        return 0
    for key in (
        "id",
        "job",
        "spider",
        "args",
        "started_at",
        "finished_at",
        "finish_reason",
        "pages",
        "new",
        "updated",
        "unchanged",
        "duplicate",
        "rejected",
        "spooled",
        "errors",
        "retries",
        "health",
    ):
        value = json.dumps(run[key], ensure_ascii=False) if isinstance(run[key], dict) else run[key]
        print(f"{key:>13}: {'' if value is None else value}")
    for reason in run["health_reasons"]:
        print(f"{'':>13}  - {reason}")
    from storage.health import drift_urls

    for counter, urls in drift_urls(run.get("stats") or {}).items():
        print(f"{'':>13}  {counter.removeprefix('fxcrawl/markup/')}:")
        for url in urls:
            print(f"{'':>13}    {url}")
    return 0


def cmd_check_live(args: argparse.Namespace) -> int:
    from fxcrawl.livecheck import BadBaseURL, check_site, print_report

    try:
        report = check_site(
            args.base_url, keyword=args.keyword, channel=args.channel, timeout=args.timeout, delay=args.delay
        )
    except BadBaseURL as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json([row.as_dict() for row in report])
    else:
        print_report(report)
    drifted = [row.kind for row in report if not row.ok]
    if drifted:
        print(f"fxcrawl: the site no longer matches its description: {', '.join(drifted)}", file=sys.stderr)
        return 1
    return 0


EXPORT_COLUMNS = ("id", "url", "title", "source", "published_at", "author", "tags", "body")


def cmd_export(args: argparse.Namespace) -> int:
    from storage import queries

    if args.out is not None:
        if args.out.is_dir():
            raise UsageError(f"--out {args.out} is a folder; name a file in it")
        if not args.out.parent.is_dir():
            raise UsageError(f"--out {args.out}: no folder {args.out.parent}")
        if args.out.exists() and not os.access(args.out, os.W_OK):
            raise UsageError(f"--out {args.out} is read-only")
        if not args.out.exists() and not os.access(args.out.parent, os.W_OK):
            raise UsageError(f"--out {args.out}: the folder {args.out.parent} is read-only")
    database = _database(args)  # before the file is opened: a missing database leaves no empty export
    with ExitStack() as stack:
        out: TextIO = stack.enter_context(args.out.open("w", encoding="utf-8", newline="")) if args.out else sys.stdout
        session = stack.enter_context(database.session())
        count = _write_export(queries.iter_articles(session), args.format, out)
    if args.out:
        print(f"exported {count} articles to {args.out}", file=sys.stderr)
    return 0


def _write_export(articles: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for article in articles:
            writer.writerow({**article, "tags": ";".join(article["tags"])})
            count += 1
    else:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
            count += 1
    return count


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import Database, redact
    from storage.migrations import current_revision, known_revisions, newer_schema_message, upgrade

    known = known_revisions()
    if args.revision not in (*known, "head"):
        raise UsageError(f"no schema revision {args.revision!r}; known: head, {', '.join(sorted(known))}")
    database = Database(args.db)
    before = current_revision(database.engine)
    if before is not None and before not in known:
        raise UsageError(newer_schema_message(before))
    upgrade(database.engine, args.revision)
    print(f"{redact(args.db)}: schema {before or '(empty)'} -> {current_revision(database.engine)}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    from storage.db import Database, redact
    from storage.migrations import current_revision, head_revision

    current, head = current_revision(Database(args.db, create=False).engine), head_revision()
    state = "up to date" if current == head else f"this fxcrawl needs {head}: run `fxcrawl db upgrade`"
    print(f"{redact(args.db)}: schema {current or '(empty)'} ({state})")
    return 0


def cmd_spool_replay(args: argparse.Namespace) -> int:
    from pipelines.store import BatchWriter
    from storage.runs import finish_run
    from storage.spool import Spool, spool_dir_for

    spool = Spool(spool_dir_for(args.spool_dir, args.db))
    database = _database(args)
    writer = BatchWriter(database)
    result = spool.replay(
        lambda items: writer.write(items, None), lambda run_id, values: finish_run(database, run_id, values)
    )
    left = len(spool.files()) + len(spool.run_files())
    print(
        f"replayed {result.items} items from {result.files} spool files and {result.runs} run rows; {left} files left"
    )
    return 1 if result.failed_files else 0


def cmd_spool_list(args: argparse.Namespace) -> int:
    from storage.db import DatabaseURLError
    from storage.spool import Spool, spool_dir_for

    try:
        spool = Spool(spool_dir_for(args.spool_dir, args.db))
    except DatabaseURLError as exc:
        raise UsageError(str(exc)) from None
    files = spool.files()
    runs = f", {len(spool.run_files())} run rows" if spool.run_files() else ""
    print(f"{len(files)} spool files, {spool.pending_items()} items waiting{runs} in {spool.directory}")
    return 0


def _schedule(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from fxcrawl.schedule import ScheduleError, load_schedule

    try:
        return load_schedule(args.file)
    except ScheduleError as exc:
        raise CommandError(str(exc)) from None


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from fx168.parsing.dates import SITE_TZ

    now = datetime.now(SITE_TZ)
    rows = [
        {
            "job": job.name,
            "spider": job.spider,
            "trigger": job.describe_trigger,
            "next": f"{job.next_run(now):%Y-%m-%d %H:%M %z}",
            "options": json.dumps(job.options, ensure_ascii=False),
        }
        for job in _schedule(args)
    ]
    _table(
        rows,
        [("job", "job", 20), ("trigger", "trigger", 40), ("next", "next run", 22), ("options", "options", 50)],
        "no jobs",
    )
    return 0


def cmd_schedule_once(args: argparse.Namespace) -> int:
    from fxcrawl.schedule import Runner

    jobs = {job.name: job for job in _schedule(args)}
    if args.job not in jobs:
        raise UsageError(f"no job {args.job!r} in {args.file} (jobs: {', '.join(jobs)})")
    _close_crashed(args)
    return Runner(args.db).run(jobs[args.job])


def _close_crashed(args: argparse.Namespace) -> None:
    """A scheduler starting closes the ledger rows of crawls that died (SIGKILL, power loss)."""
    from storage.runs import close_crashed_runs

    database = _database(args, create=True)
    crashed = close_crashed_runs(database)
    database.dispose()
    if crashed:
        print(
            f"fxcrawl: marked crashed runs {', '.join(map(str, crashed))} (their processes are gone)", file=sys.stderr
        )


def cmd_schedule_run(args: argparse.Namespace) -> int:
    import logging

    from fxcrawl.schedule import Runner, run_scheduler

    jobs = _schedule(args)
    _close_crashed(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
    run_scheduler(jobs, Runner(args.db))
    return 0


def cmd_fixtures_serve(args: argparse.Namespace) -> int:
    from replay.server import serve

    return serve(args)


def cmd_fixtures_golden(args: argparse.Namespace) -> int:
    from replay.golden import write_goldens

    written = write_goldens()
    print(f"wrote {len(written)} golden files; review them with: git diff fixtures/")
    return 0


def cmd_fixtures_generate(args: argparse.Namespace) -> int:
    from replay.generator import GeneratedSite
    from replay.render import ROBOTS_TXT

    generated = GeneratedSite(keyword=args.keyword, pages=args.pages)
    search_dir = args.out / "search" / args.keyword / "article"
    article_dir = args.out / "article"
    search_dir.mkdir(parents=True, exist_ok=True)
    article_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "robots.txt").write_text(ROBOTS_TXT, encoding="utf-8")
    for page in range(1, generated.pages + 1):
        (search_dir / f"page-{page}.html").write_text(generated.search_page(page) or "", encoding="utf-8")
        for index in generated.page_indices(page):
            article_id = generated.article_id(index)
            (article_dir / f"{article_id}.html").write_text(generated.article_page(article_id) or "", encoding="utf-8")
    print(f"wrote {generated.pages} listing pages and {generated.article_count} articles to {args.out}")
    return 0


# -- parser -------------------------------------------------------------------------------


# -- search and the web view (issue 17) ---------------------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    from storage import fulltext

    since, until = _when(args.since), _when(args.until, end_of_day=True)
    try:
        query = fulltext.parse_query(args.query)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with _database(args).session() as session:
        rows = fulltext.search(
            session, query, source=args.source, since=since, until=until, limit=args.limit, rank=args.rank
        ).results
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        row["published"] = (row["published_at"] or "")[:16].replace("T", " ")
        row["snippet"] = fulltext.marked(row["snippet"], row["snippet_marks"])
    columns = [("id", "id", 8), ("published", "published", 16), ("source", "source", 12), ("title", "title", 40)]
    if args.rank:
        columns.append(("score", "score", 8))
    _table(rows, [*columns, ("snippet", "snippet", 60)], "no articles match")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from fxcrawl.web.app import serve

    return serve(args.db, host=args.host, port=args.port)


def _search_and_serve(commands: Any, command: Callable[..., Parser], db: Parser, as_json: Parser) -> None:
    """`fxcrawl search QUERY` and `fxcrawl serve`."""
    search = command(commands, "search", cmd_search, "full-text search of the stored articles", [db, as_json])
    search.add_argument("query", metavar="QUERY", help='words, 现代 or "a phrase"; every term must match')
    search.add_argument("--source", help="only this source (e.g. 金融界)")
    search.add_argument("--since", help="published at or after (Asia/Shanghai), e.g. 2023-02-24")
    search.add_argument("--until", help="published before the end of this day or at this time")
    search.add_argument("--limit", type=_positive, default=20)
    search.add_argument("--rank", action="store_true", help="by relevance among the newest 1,000 matches")
    serve = command(commands, "serve", cmd_serve, "read-only web view and JSON API of the store", [db])
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)


def build_parser() -> Parser:
    db = Parser(add_help=False)
    db.add_argument(
        "--db",
        default=project_settings.FXCRAWL_DATABASE_URL,
        metavar="URL",
        help="database URL (default: $DATABASE_URL or sqlite:///data/fxcrawl.db)",
    )
    as_json = Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON array")

    parser = Parser(prog="fxcrawl", description="Crawl FX168 search results into a relational store and inspect it.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: Any,
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help: str,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> Parser:
        sub = parent.add_parser(name, help=help, description=help, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    crawl = commands.add_parser("crawl", help="run a crawl").add_subparsers(
        dest="spider", required=True, metavar="SPIDER"
    )
    crawl_options = Parser(add_help=False)
    crawl_options.add_argument(
        "--replay", action="store_true", help="crawl the bundled offline site through a local server"
    )
    crawl_options.add_argument("--base-url", help="fetch from this origin instead of the live site")
    crawl_options.add_argument("--access-log", type=Path, help="with --replay: the fixture server's access log")
    crawl_options.add_argument(
        "--replay-generate", type=_positive, metavar="PAGES", help="with --replay: a generated site"
    )
    crawl_options.add_argument(
        "--replay-delay", type=float, metavar="SECONDS", help="with --replay: latency per response"
    )
    crawl_options.add_argument(
        "--replay-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="with --replay: pass ARG to the fixture server (e.g. --replay-arg=--drop-next-data)",
    )
    crawl_options.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    crawl_options.add_argument("--job", help="the scheduled job this crawl runs for (one at a time, health per job)")
    crawl_options.add_argument(
        "--no-wait",
        action="store_true",
        help=f"without --job: skip (exit {EXIT_SKIPPED}) rather than wait while another crawl of the spider runs",
    )
    crawl_options.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE", help="override a Scrapy or fxcrawl setting"
    )
    search = command(crawl, "search", cmd_crawl, "crawl keyword search results and their articles", [db, crawl_options])
    search.add_argument("--keyword", default="现代")
    search.add_argument("--pages", help="page ranges, e.g. 951-955 or 1,951-955,1000 (default: from page 1)")
    search.add_argument("--max-pages", type=_positive, help="fetch at most this many listing pages")
    search.add_argument(
        "--distributed",
        action="store_true",
        help="run as a worker sharing the job's frontier through Redis (see `fxcrawl seed`)",
    )
    search.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Redis for --distributed")
    latest = command(
        crawl,
        "latest",
        cmd_crawl,
        "crawl the newest news: channel lists, their articles, and 快讯",
        [db, crawl_options],
    )
    latest.add_argument("--channels", default="001", help="channel codes, comma-separated (001 资讯, 001001 要闻 …)")
    latest.add_argument("--max-pages", type=_positive, help="pages of each list to read at most (default 5)")
    latest.add_argument("--no-express", action="store_true", help="leave out the 快讯 feed")

    check = command(
        commands,
        "check-live",
        cmd_check_live,
        "fetch one page of each kind and say whether the site still matches its description",
    )
    check.add_argument("--base-url", default=project_settings.FXCRAWL_BASE_URL, help="the site (default: the live one)")
    check.add_argument("--keyword", default="现代", help="the search page to check")
    check.add_argument("--channel", default="001", help="the channel list to check")
    check.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each page")
    check.add_argument(
        "--delay", type=float, default=project_settings.DOWNLOAD_DELAY, help="seconds between requests (default 1)"
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    _search_and_serve(commands, command, db, as_json)
    articles = commands.add_parser("articles", help="stored articles").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = command(articles, "list", cmd_articles_list, "list articles, newest first", [db, as_json])
    listing.add_argument("--source", help="only this source (e.g. 金融界)")
    listing.add_argument("--since", help="published at or after (Asia/Shanghai), e.g. 2023-02-24")
    listing.add_argument("--until", help="published before the end of this day or at this time")
    listing.add_argument("--search", help="text in the title or body")
    listing.add_argument("--limit", type=_limit, default=50)
    show = command(articles, "show", cmd_articles_show, "one article with its body", [db, as_json])
    show.add_argument("id_or_url", metavar="ID_OR_URL")
    show.add_argument("--revisions", action="store_true", help="list the article's earlier versions")

    fast_news = commands.add_parser("fast-news", help="stored 快讯 (fast news)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    fast_list = command(fast_news, "list", cmd_fast_news_list, "快讯, newest first", [db, as_json])
    fast_list.add_argument("--since", help="published at or after (Asia/Shanghai), e.g. 2026-12-01")
    fast_list.add_argument("--limit", type=_positive, default=50)

    sources = commands.add_parser("sources", help="sources (outlets)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command(sources, "list", cmd_sources_list, "sources with their article counts", [db, as_json])

    runs = commands.add_parser("runs", help="crawl runs").add_subparsers(dest="action", required=True, metavar="ACTION")
    runs_list = command(runs, "list", cmd_runs_list, "crawl runs, newest first", [db, as_json])
    runs_list.add_argument("--limit", type=_limit, default=50)
    runs_show = command(runs, "show", cmd_runs_show, "one run: counts, health and why", [db, as_json])
    runs_show.add_argument("run_id", type=_positive, metavar="ID")

    schedule_file = Parser(add_help=False)
    schedule_file.add_argument("--file", type=Path, default=Path("schedule.toml"), help="schedule file (TOML)")
    schedule = commands.add_parser("schedule", help="scheduled crawls").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command(schedule, "run", cmd_schedule_run, "run jobs on their schedule until SIGTERM", [db, schedule_file])
    command(schedule, "list", cmd_schedule_list, "the jobs and their next run times", [schedule_file])
    once = command(schedule, "once", cmd_schedule_once, "run one job now", [db, schedule_file])
    once.add_argument("job", metavar="JOB")

    export = command(commands, "export", cmd_export, "export every article with its body", [db])
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")

    redis_job = Parser(add_help=False)
    redis_job.add_argument("--keyword", default="现代")
    redis_job.add_argument("--job", help="the job's name (default: search:KEYWORD)")
    redis_job.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    redis_job.add_argument(
        "--base-url", default=project_settings.FXCRAWL_BASE_URL, help="origin the workers fetch from"
    )
    seed = command(
        commands,
        "seed",
        cmd_seed,
        "queue a job's start requests (and the frontier's leftovers) in Redis",
        [db, redis_job],
    )
    seed.add_argument("--pages", help="page ranges, e.g. 1-200 (default: from page 1)")
    command(commands, "reconcile", cmd_reconcile, "queue every URL the database frontier still owes", [db, redis_job])
    workers = commands.add_parser("workers", help="distributed workers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    workers_start = command(
        workers, "start", cmd_workers_start, "run N worker processes on this machine", [db, redis_job]
    )
    workers_start.add_argument("count", type=_positive, metavar="N")
    workers_start.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    workers_start.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE")

    db_commands = commands.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    db_upgrade = command(db_commands, "upgrade", cmd_db_upgrade, "migrate the database schema", [db])
    db_upgrade.add_argument("revision", nargs="?", default="head")
    command(db_commands, "current", cmd_db_current, "show the database's schema version", [db])

    spool_dir = Parser(add_help=False)
    spool_dir.add_argument(
        "--spool-dir",
        type=Path,
        default=project_settings.FXCRAWL_SPOOL_DIR,
        help="spool root (default: $FXCRAWL_SPOOL_DIR, else beside the SQLite file or the per-user data folder)",
    )
    spool = commands.add_parser("spool", help="batches waiting to be stored").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command(spool, "replay", cmd_spool_replay, "store every spooled batch, exactly once", [db, spool_dir])
    command(spool, "list", cmd_spool_list, "count the spooled batches", [db, spool_dir])

    fixtures = commands.add_parser("fixtures", help="the offline site").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    from replay.server import add_serve_arguments

    add_serve_arguments(command(fixtures, "serve", cmd_fixtures_serve, "serve the offline site on 127.0.0.1"))
    command(fixtures, "golden", cmd_fixtures_golden, "rewrite the golden JSON beside each fixture page")
    generate = command(fixtures, "generate", cmd_fixtures_generate, "write a generated site to a directory")
    generate.add_argument("--pages", type=_positive, default=100)
    generate.add_argument("--keyword", default="现代")
    generate.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "db", None) is not None:  # a --db that is no URL, or no database we write: refused first
            from storage.db import DatabaseURLError, parse_database_url

            try:
                parse_database_url(args.db)
            except DatabaseURLError as exc:
                raise UsageError(str(exc)) from None
        return args.handler(args)
    except UsageError as exc:
        print(f"fxcrawl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"fxcrawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RuntimeError as exc:
        from storage.db import DatabaseMissing, DatabaseUnwritable

        if not isinstance(exc, DatabaseMissing | DatabaseUnwritable):
            raise
        print(f"fxcrawl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        from storage.db import redact

        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"fxcrawl: database error ({redact(args.db)}): {detail}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
