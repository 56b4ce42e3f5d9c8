"""`fxcrawl check-live`: one page of each kind from the live site, through the same parsers."""

from __future__ import annotations

import sys

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command
from fxcrawl.cli.errors import UsageError
from fxcrawl.cli.output import print_json


@click.command(
    "check-live",
    cls=Command,
    help="fetch one page of each kind and say whether the site still matches its description",
)
@click.option(
    "--base-url", default=params.setting("FXCRAWL_BASE_URL"), show_default="the live site", help="the site to check"
)
@click.option("--keyword", default="现代", help="the search page to check")
@click.option("--channel", default="001", help="the channel list to check")
@click.option("--timeout", type=params.FLOAT, default=30.0, help="seconds to wait for each page")
@click.option(
    "--delay",
    type=params.FLOAT,
    default=params.setting("DOWNLOAD_DELAY"),
    show_default="1, the crawl's DOWNLOAD_DELAY",
    help="seconds between requests",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def check_live(base_url: str, keyword: str, channel: str, timeout: float, delay: float, as_json: bool) -> int:
    from fxcrawl.livecheck import BadBaseURL, check_site, print_report

    try:
        report = check_site(base_url, keyword=keyword, channel=channel, timeout=timeout, delay=delay)
    except BadBaseURL as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        print_json([row.as_dict() for row in report])
    else:
        print_report(report)
    drifted = [row.kind for row in report if not row.ok]
    if drifted:
        print(f"fxcrawl: the site no longer matches its description: {', '.join(drifted)}", file=sys.stderr)
        return 1
    return 0
