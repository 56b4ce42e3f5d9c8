"""`fxcrawl fixtures serve|golden|generate`: the offline site the tests and `--replay` crawl.

`fixtures serve` hands its arguments to the replay server's own argparse definition
(replay.server.add_serve_arguments), so its many fault and drift flags are written down once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group


class OneLineParser(argparse.ArgumentParser):
    """argparse refusing in fxcrawl's one line (and exit code 2) rather than its usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"fxcrawl: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


@click.group(cls=Group, help="the offline site")
def fixtures() -> None:
    pass


@fixtures.command(
    "serve",
    cls=Command,
    help="serve the offline site on 127.0.0.1 (`fxcrawl fixtures serve --help` lists its options)",
    short_help="serve the offline site on 127.0.0.1",
    add_help_option=False,
    context_settings={"ignore_unknown_options": True},
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def serve(arguments: tuple[str, ...]) -> int:
    from replay.server import add_serve_arguments
    from replay.server import serve as serve_site

    parser = OneLineParser(prog="fxcrawl fixtures serve", description="serve the offline site on 127.0.0.1")
    add_serve_arguments(parser)
    return serve_site(parser.parse_args(arguments))


@fixtures.command("golden", cls=Command, help="rewrite the golden JSON beside each fixture page")
def golden() -> int:
    from replay.golden import write_goldens

    written = write_goldens()
    print(f"wrote {len(written)} golden files; review them with: git diff fixtures/")
    return 0


@fixtures.command("generate", cls=Command, help="write a generated site to a directory")
@click.option("--pages", type=params.POSITIVE, default=100)
@click.option("--keyword", default="现代")
@click.option("--out", type=params.PATH, required=True)
def generate(pages: int, keyword: str, out: Path) -> int:
    from replay.generator import GeneratedSite
    from replay.render import ROBOTS_TXT

    generated = GeneratedSite(keyword=keyword, pages=pages)
    search_dir = out / "search" / keyword / "article"
    article_dir = out / "article"
    search_dir.mkdir(parents=True, exist_ok=True)
    article_dir.mkdir(parents=True, exist_ok=True)
    (out / "robots.txt").write_text(ROBOTS_TXT, encoding="utf-8")
    for page in range(1, generated.pages + 1):
        (search_dir / f"page-{page}.html").write_text(generated.search_page(page) or "", encoding="utf-8")
        for index in generated.page_indices(page):
            article_id = generated.article_id(index)
            (article_dir / f"{article_id}.html").write_text(generated.article_page(article_id) or "", encoding="utf-8")
    print(f"wrote {generated.pages} listing pages and {generated.article_count} articles to {out}")
    return 0
