"""`fxcrawl fixtures serve|golden|generate|record`: the offline site the tests and `--replay` crawl,
and pages recorded from the live site (or the archive) with their golden JSON.

`fixtures serve` hands its arguments to the replay server's own argparse definition
(replay.server.add_serve_arguments), so its many fault and drift flags are written down once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.errors import UsageError


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
    from replay.golden import write_goldens, write_recorded_goldens

    written = write_goldens() + write_recorded_goldens()
    print(f"wrote {len(written)} golden files; review them with: git diff fixtures/")
    return 0


@fixtures.command(
    "record", cls=Command, help="fetch pages (politely) or take them from the archive into fixtures/recorded"
)
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--name", help="the recording's folder under fixtures/recorded (default: today's date)")
@click.option("--from-archive", is_flag=True, help="take each page's newest archived copy; fetch nothing")
@click.option("--base-url", help="fetch from this origin instead of the live site (a fixture server)")
@click.option("--out", type=params.PATH, help="the recordings' root (default: fixtures/recorded)")
@params.db
@params.archive_dir
@params.log_level
@params.settings_overrides("override a Scrapy or fxcrawl setting (e.g. DOWNLOAD_DELAY)")
def record(
    urls: tuple[str, ...],
    name: str | None,
    from_archive: bool,
    base_url: str | None,
    out: Path | None,
    db: str,
    archive_dir: Path | None,
    log_level: str,
    overrides: tuple[str, ...],
) -> int:
    import time

    from fxcrawl import record as recording
    from fxcrawl.cli.crawl import setting_value
    from fxcrawl.cli.database import check_base_url
    from replay.golden import RECORDED

    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"not an http(s) URL: {url!r}")
    if from_archive:
        pages = recording.from_archive(list(urls), db, archive_dir)
    else:
        settings: dict[str, Any] = {"LOG_LEVEL": log_level}
        if base_url:
            check_base_url(base_url)
            settings["FXCRAWL_BASE_URL"] = base_url
        for assignment in overrides:
            key, sep, value = assignment.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--set takes NAME=VALUE, not {assignment!r}")
            settings[key.strip()] = setting_value(key.strip(), value)
        pages = recording.fetch(list(urls), settings)
    done = recording.save(pages, name or time.strftime("%Y-%m-%d"), out or RECORDED)
    failed = 0
    for entry in done:
        if entry.path is None:
            failed += 1
            print(f"not recorded: {entry.url}: {entry.problem}", file=sys.stderr)
        elif entry.problem:
            print(f"recorded {entry.path} (the parsers cannot read it: {entry.problem}; its test fails until they can)")
        else:
            print(f"recorded {entry.path} and its golden JSON")
    return 1 if failed else 0


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
