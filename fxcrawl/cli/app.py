"""The `fxcrawl` command: its groups, in the order `fxcrawl --help` lists them (one module each)."""

from __future__ import annotations

import click

from fxcrawl.cli.archive import archive, reparse
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
def fxcrawl() -> None:
    pass


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
    archive,
    reparse,
    fixtures,
):
    fxcrawl.add_command(command)
