"""The `fxcrawl` command: its groups, in the order `fxcrawl --help` lists them (one module each)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fxcrawl.cli.archive import archive, reparse
from fxcrawl.cli.articles import articles
from fxcrawl.cli.check_live import check_live
from fxcrawl.cli.core import Command, Program
from fxcrawl.cli.crawl import crawl
from fxcrawl.cli.db import db_group
from fxcrawl.cli.distributed import reconcile, seed, workers
from fxcrawl.cli.export import export
from fxcrawl.cli.fast_news import fast_news
from fxcrawl.cli.fixtures import fixtures
from fxcrawl.cli.ledger_views import frontier, hits, rejects
from fxcrawl.cli.params import Choice
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
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(package_name="fxcrawl", prog_name="fxcrawl", message="%(prog)s %(version)s")
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


@click.command("completion", cls=Command, help="print the shell completion script (eval it in your shell's rc file)")
@click.argument("shell", metavar="SHELL", type=Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Click's own completion: the script calls fxcrawl back with _FXCRAWL_COMPLETE set."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # every choice is one click ships
    print(completer(fxcrawl, {}, "fxcrawl", "_FXCRAWL_COMPLETE").source())
    return 0


for command in (
    crawl,
    check_live,
    search,
    serve,
    articles,
    fast_news,
    sources,
    hits,
    runs,
    rejects,
    frontier,
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
    completion,
):
    fxcrawl.add_command(command)
