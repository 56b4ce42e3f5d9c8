"""Value types and the options many commands share (--db, --json, the crawl and Redis options).

The types refuse a bad value in argparse's words ("must be at least 1: '0'"), and the defaults that
come from the project's settings are read only when a command runs, so `fxcrawl --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

#: Redis when neither a flag, $REDIS_URL nor the configuration file names one.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The most rows a listing command prints (a bigger --limit is a typo, not a wish).
MAX_LIMIT = 1_000_000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

F = TypeVar("F", bound=Callable[..., Any])


class Number(click.ParamType):
    """An int or a float, refused as argparse did: "invalid int value: 'x'"."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind = kind
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind):
            return value
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"invalid {self.name} value: {value!r}", param, ctx)


class Positive(click.ParamType):
    """A whole number from 1 up to ``at_most`` (a page count, a row limit, a worker count)."""

    name = "integer"

    def __init__(self, at_most: int | None = None, at_least: int = 1) -> None:
        self.at_most = at_most
        self.at_least = at_least

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"not a whole number: {value!r}", param, ctx)
        if number < self.at_least:
            self.fail(f"must be at least {self.at_least}: {value!r}", param, ctx)
        if self.at_most is not None and number > self.at_most:
            self.fail(f"at most {self.at_most:,}: {value!r}", param, ctx)
        return number


class TimeZone(click.ParamType):
    """An IANA time zone name (``Asia/Shanghai``, ``UTC``, ``Europe/London``)."""

    name = "zone"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"unknown time zone: {value!r} (e.g. Asia/Shanghai, UTC)", param, ctx)
        return str(value)


class Choice(click.Choice):
    """One of a few words, refused as argparse did: "invalid choice: 'x' (choose from 'a', 'b')"."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        self.fail(f"invalid choice: {value!r} (choose from {', '.join(map(repr, self.choices))})", param, ctx)


INT, FLOAT = Number(int), Number(float)
ZONE = TimeZone()
POSITIVE, LIMIT = Positive(), Positive(at_most=MAX_LIMIT)
PATH = click.Path(path_type=Path)


def setting(name: str) -> Callable[[], Any]:
    """A default read when the command runs (not when --help is shown): the environment's or the
    configuration file's value (crawler/config.py, read anew), else the project's settings."""

    def default() -> Any:
        from crawler import config, settings

        return config.load().get(name, getattr(settings, name))

    return default


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator, listed in --help in the order given."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


db = click.option(
    "--db",
    default=setting("FXCRAWL_DATABASE_URL"),
    metavar="URL",
    show_default="$DATABASE_URL, the configuration file's, or sqlite:///data/fxcrawl.db",
    help="database URL",
)
as_json = click.option("--json", "as_json", is_flag=True, help="print one JSON array")
source = click.option("--source", help="only this source (e.g. 金融界)")
until = click.option("--until", help="published before the end of this day or at this time")
limit = click.option("--limit", type=LIMIT, default=50, help="rows per page")
offset = click.option(
    "--offset", type=Positive(at_least=0), default=0, help="rows to skip (the footer names the next page's)"
)
tz = click.option("--tz", type=ZONE, default="Asia/Shanghai", help="time zone of the table's times")


def since(example: str = "2023-02-24") -> Callable[[F], F]:
    return click.option("--since", help=f"published at or after (Asia/Shanghai), e.g. {example}")


def log_level(function: F) -> F:
    return click.option("--log-level", default="INFO", type=Choice(LOG_LEVELS))(function)


def settings_overrides(help: str | None = None) -> Callable[[F], F]:
    return click.option("-s", "--set", "overrides", multiple=True, metavar="NAME=VALUE", help=help)


metrics_port = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar="FXCRAWL_METRICS_PORT",
    show_envvar=True,
    help="serve Prometheus /metrics on 127.0.0.1:PORT (0: off)",
)

#: The options of a job shared through Redis: `seed`, `reconcile` and `workers start`.
redis_job = options(
    click.option("--keyword", default="现代"),
    click.option("--job", help="the job's name (default: search:KEYWORD)"),
    click.option(
        "--redis-url",
        default=setting("FXCRAWL_REDIS_URL"),
        show_default="$REDIS_URL, the configuration file's, or redis://127.0.0.1:6379/0",
        help="Redis of the shared frontier",
    ),
    click.option(
        "--base-url",
        default=setting("FXCRAWL_BASE_URL"),
        show_default="the configuration file's, or the live site",
        help="origin the workers fetch from",
    ),
)


archive_dir = click.option(
    "--archive-dir",
    type=PATH,
    default=setting("FXCRAWL_ARCHIVE_DIR"),
    show_default="$FXCRAWL_ARCHIVE_DIR, the configuration file's, else an `archive` folder beside the SQLite file",
    help="the WARC archive's folder",
)
