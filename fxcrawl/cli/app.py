"""The `fxcrawl` command: its groups, in the order `fxcrawl --help` lists them (one module each)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fxcrawl.cli.articles import articles
from fxcrawl.cli.check_live import check_live
from fxcrawl.cli.core import Program
from fxcrawl.cli.crawl import crawl
from fxcrawl.cli.db import db_group
from fxcrawl.cli.distributed import reconcile, seed, workers
from fxcrawl.cli.export import export
from fxcrawl.cli.fast_news import fast_news
from fxcrawl.cli.fixtures import fixtures
from fxcrawl.cli.runs import runs
from fxcrawl.cli.schedule import schedule
from fxcrawl.cli.search import search, serve
from fxcrawl.cli.sources import sources
from fxcrawl.cli.spool import spool


@click.group(
    "fxcrawl",
    cls=Program,
    choice="COMMAND",
    help="Crawl FX168 search results into a relational store and inspect it.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="configuration file (TOML; default: $FXCRAWL_CONFIG, else ./fxcrawl.toml if there is one)",
)
def fxcrawl(config_file: Path | None) -> None:
    from crawler.config import CONFIG_ENV, ConfigError, load

    if config_file is not None:  # through the environment, so the crawls this command starts read it too
        os.environ[CONFIG_ENV] = str(config_file.expanduser().resolve())
    try:
        load()
    except ConfigError as exc:  # a file that cannot be read is refused before any command runs
        raise click.UsageError(str(exc)) from None


for command in (
    crawl,
    check_live,
    search,
    serve,
    articles,
    fast_news,
    sources,
    runs,
    schedule,
    export,
    seed,
    reconcile,
    workers,
    db_group,
    spool,
    fixtures,
):
    fxcrawl.add_command(command)
