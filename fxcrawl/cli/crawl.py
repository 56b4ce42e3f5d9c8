"""`fxcrawl crawl search|latest`: one crawl in this process, then what it stored.

Every argument is checked before anything is fetched (page ranges, --base-url, each -s NAME=VALUE,
a database that could store nothing); one crawl of a spider (or one run of a --job) at a time.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import check_base_url, open_database
from fxcrawl.cli.distributed import job_name
from fxcrawl.cli.errors import EXIT_FAILED, EXIT_SKIPPED, CommandError, UsageError
from fxcrawl.cli.output import table


@dataclass(frozen=True)
class Crawl:
    """What `crawl search` and `crawl latest` were asked, as one value (the two share most options)."""

    spider: str
    db: str
    replay: bool
    base_url: str | None
    access_log: Path | None
    replay_generate: int | None
    replay_delay: float | None
    replay_arg: tuple[str, ...]
    log_level: str
    job: str | None
    no_wait: bool
    overrides: tuple[str, ...]
    max_pages: int | None
    archive_dir: Path | None = None
    no_archive: bool = False
    keyword: str = "现代"
    pages: str | None = None
    distributed: bool = False
    redis_url: str = params.DEFAULT_REDIS_URL
    channels: str = "001"
    no_express: bool = False
    alert_webhook: str | None = None
    alert_command: str | None = None
    metrics_textfile: Path | None = None

    @property
    def job_name(self) -> str:
        return job_name(self.job, self.keyword, self.spider, self.channels)


crawl_options = params.options(
    params.db,
    click.option("--replay", is_flag=True, help="crawl the bundled offline site through a local server"),
    click.option("--base-url", help="fetch from this origin instead of the live site"),
    click.option("--access-log", type=params.PATH, help="with --replay: the fixture server's access log"),
    click.option("--replay-generate", type=params.POSITIVE, metavar="PAGES", help="with --replay: a generated site"),
    click.option("--replay-delay", type=params.FLOAT, metavar="SECONDS", help="with --replay: latency per response"),
    click.option(
        "--replay-arg",
        multiple=True,
        metavar="ARG",
        help="with --replay: pass ARG to the fixture server (e.g. --replay-arg=--drop-next-data)",
    ),
    params.log_level,
    click.option("--job", help="the scheduled job this crawl runs for (one at a time, health per job)"),
    click.option(
        "--no-wait",
        is_flag=True,
        help=f"without --job: skip (exit {EXIT_SKIPPED}) rather than wait while another crawl of the spider runs",
    ),
    params.archive_dir,
    click.option("--no-archive", is_flag=True, help="keep no WARC archive of the pages fetched"),
    params.settings_overrides("override a Scrapy or fxcrawl setting"),
    click.option(
        "--alert-webhook", metavar="URL", help="an unhealthy or crashed run POSTs its summary here (JSON, retried)"
    ),
    click.option(
        "--alert-command", metavar="COMMAND", help="an unhealthy or crashed run runs this, its summary on stdin"
    ),
    click.option(
        "--metrics-textfile",
        type=params.PATH,
        metavar="PATH",
        help="write the Prometheus series here at the end (textfile-collector format)",
    ),
)


@click.group(cls=Group, choice="SPIDER", help="run a crawl")
def crawl() -> None:
    pass


@crawl.command("search", cls=Command, help="crawl keyword search results and their articles")
@crawl_options
@click.option("--keyword", default="现代")
@click.option("--pages", help="page ranges, e.g. 951-955 or 1,951-955,1000 (default: from page 1)")
@click.option("--max-pages", type=params.POSITIVE, help="fetch at most this many listing pages")
@click.option(
    "--distributed", is_flag=True, help="run as a worker sharing the job's frontier through Redis (see `fxcrawl seed`)"
)
@click.option(
    "--redis-url",
    default=params.setting("FXCRAWL_REDIS_URL"),
    show_default="$REDIS_URL, the configuration file's, or redis://127.0.0.1:6379/0",
    help="Redis for --distributed",
)
def search(**options: Any) -> int:
    return run(Crawl(spider="search", **options))


@crawl.command("latest", cls=Command, help="crawl the newest news: channel lists, their articles, and 快讯")
@crawl_options
@click.option("--channels", default="001", help="channel codes, comma-separated (001 资讯, 001001 要闻 …)")
@click.option("--max-pages", type=params.POSITIVE, help="pages of each list to read at most (default 5)")
@click.option("--no-express", is_flag=True, help="leave out the 快讯 feed")
def latest(**options: Any) -> int:
    return run(Crawl(spider="latest", **options))


def run(request: Crawl) -> int:
    """Check everything, take the spider's (or the job's) lock, crawl, print what is stored."""
    overrides = checked_settings(request)
    # A database at another schema version stops the crawl here, and so does one that could
    # store nothing: before anything is fetched.
    database = open_database(request.db, create=True, writable=True)
    if request.distributed:
        from crawler.distributed import distributed_settings

        overrides.update(distributed_settings(request.redis_url, request.job_name))
        return crawl_and_report(request, overrides)  # many workers run one job at once, by design: no job lock
    from storage.locks import JobLock, JobLockHeld

    # A scheduled job (--job) runs once at a time and is skipped while it runs elsewhere. Without
    # --job, one crawl of the spider at a time on this database: the second waits (--no-wait: skips).
    lock = JobLock(database, request.job or f"crawl:{request.spider}")
    wait = not request.job and not request.no_wait
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
        return crawl_and_report(request, overrides)
    finally:
        lock.release()


def checked_settings(request: Crawl) -> dict[str, Any]:
    """The spider's arguments and the settings overrides, refused in one line when they are wrong."""
    try:
        if request.spider == "latest":
            from crawler.spiders.latest import parse_channels

            parse_channels(request.channels)
        else:
            from crawler.spiders.search import check_keyword, parse_page_spec

            parse_page_spec(request.pages)
            check_keyword(request.keyword)
    except ValueError as exc:
        raise UsageError(str(exc).replace("keyword ", "--keyword ", 1)) from None
    if request.base_url:
        check_base_url(request.base_url)
    overrides: dict[str, Any] = {"FXCRAWL_DATABASE_URL": request.db, "LOG_LEVEL": request.log_level}
    if request.job:
        overrides["FXCRAWL_JOB"] = request.job
    if request.alert_webhook:
        overrides["FXCRAWL_ALERT_WEBHOOK"] = request.alert_webhook
    if request.alert_command:
        overrides["FXCRAWL_ALERT_COMMAND"] = request.alert_command
    if request.metrics_textfile:
        overrides["FXCRAWL_METRICS_TEXTFILE"] = str(request.metrics_textfile)
    if request.archive_dir:
        overrides["FXCRAWL_ARCHIVE_DIR"] = str(request.archive_dir)
    if request.no_archive:
        overrides["FXCRAWL_ARCHIVE_ENABLED"] = False
    for assignment in request.overrides:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, not {assignment!r}")
        overrides[name.strip()] = setting_value(name.strip(), value)
    check_observability(overrides)
    return overrides


def check_observability(overrides: dict[str, Any]) -> None:
    """The alert webhook and command, and the metrics textfile's folder, refused before any work."""
    from fxcrawl.alerts import AlertTarget
    from fxcrawl.run import project_settings_with

    settings = project_settings_with(overrides)
    try:
        AlertTarget.from_settings(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    textfile = settings.get("FXCRAWL_METRICS_TEXTFILE")
    if textfile and not Path(textfile).resolve().parent.is_dir():
        raise UsageError(f"--metrics-textfile {textfile}: its folder does not exist")


def setting_value(name: str, value: str) -> Any:
    """A -s NAME=VALUE checked against the setting's default type, so CONCURRENT_REQUESTS=abc is
    refused here, in one line, rather than as a traceback once the crawl is built."""
    from scrapy.settings import default_settings

    from crawler import settings as project_settings

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


def spider_arguments(request: Crawl) -> dict[str, Any]:
    if request.spider == "latest":
        arguments: dict[str, Any] = {"channels": request.channels, "express": not request.no_express}
        if request.max_pages:
            arguments["max_pages"] = request.max_pages
        return arguments
    return {"keyword": request.keyword, "pages": request.pages, "max_pages": request.max_pages}


def replay_server_arguments(request: Crawl) -> list[str]:
    arguments = ["--access-log", str(request.access_log)] if request.access_log else []
    arguments += request.replay_arg
    if request.replay_generate:
        arguments += ["--generate", str(request.replay_generate)]
    if request.replay_delay:
        arguments += ["--delay", str(request.replay_delay)]
    return arguments


def crawl_and_report(request: Crawl, overrides: dict[str, Any]) -> int:
    from fxcrawl.run import project_settings_with, run_crawl
    from replay.server import ReplayServer

    with ExitStack() as stack:
        if request.replay:
            server = stack.enter_context(ReplayServer(*replay_server_arguments(request)))
            overrides["FXCRAWL_BASE_URL"] = server.base_url
            print(f"replaying the bundled site from {server.base_url}", file=sys.stderr)
        elif request.base_url:
            overrides["FXCRAWL_BASE_URL"] = request.base_url
        settings = project_settings_with(overrides, replay=request.replay)
        spider: Any = request.spider
        if request.distributed:
            from crawler.distributed import DistributedSearchSpider

            spider = DistributedSearchSpider
        result = run_crawl(spider, settings, **spider_arguments(request))
    code = report(request, result.run_id, result.stats)
    if not code and not result.ok:
        why = "unhealthy" if result.stats.get("fxcrawl/health") == "unhealthy" else result.finish_reason
        print(f"fxcrawl: crawl did not end cleanly ({why}); see the log above", file=sys.stderr)
        code = EXIT_FAILED
    after_crawl(request, settings, result.run_id, code)
    return code


def after_crawl(request: Crawl, settings: Any, run_id: int | None, code: int) -> None:
    """Once the reactor has stopped: the alert for a bad run, then the metrics textfile. Neither
    changes the crawl's exit code; a failure of either is said on stderr."""
    from fxcrawl.alerts import AlertTarget, alert_for_run

    target = AlertTarget.from_settings(settings)
    if target and code != 0:
        result = alert_for_run(target, request.db, run_id, job=request.job_name, exit_code=code)
        if result and result.failed:
            print(f"fxcrawl: the alert could not be sent by {', '.join(result.failed)} (see the log)", file=sys.stderr)
    textfile = settings.get("FXCRAWL_METRICS_TEXTFILE")
    if textfile:
        from crawler import settings as project
        from fxcrawl.metrics import AlertCollector, StoreCollector, registry_with, write_textfile

        store = StoreCollector(request.db, settings.get("FXCRAWL_SPOOL_DIR") or project.FXCRAWL_SPOOL_DIR)
        try:
            write_textfile(Path(textfile), registry_with(store, AlertCollector()))
        except OSError as exc:
            print(f"fxcrawl: could not write the metrics textfile {textfile}: {exc}", file=sys.stderr)
        finally:
            store.close()


def report(request: Crawl, run_id: int | None, stats: dict[str, Any]) -> int:
    """The run's counts and the store's totals; exit 1 if the database the crawl wrote cannot be read."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage import queries

    try:  # the summary reads the database the crawl wrote, and never makes one (a deleted file stays deleted)
        database = open_database(request.db)
        with database.session() as session:
            run = queries.get_run(session, run_id) if run_id else None
            total = queries.totals(session)
            sources = queries.list_sources(session)
    except (CommandError, SQLAlchemyError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"fxcrawl: crawl did not end cleanly: its database cannot be read ({detail})", file=sys.stderr)
        if stats.get("fxcrawl/store/spooled_items") or stats.get("fxcrawl/runs/row_spooled"):
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
    table(sources, [("name", "source", 20), ("articles", "articles", 8)], "no sources stored")
    return 0
