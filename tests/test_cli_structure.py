"""The fxcrawl command as click builds it (issue 15, point 5), through click's CliRunner: every group
lists its commands, every bad argument is one line in argparse's words and exit code 2, the flags'
defaults are what they were, and `fxcrawl --help` imports neither the store nor Scrapy."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from crawler import settings
from fxcrawl import cli
from fxcrawl.cli.app import fxcrawl
from fxcrawl.cli.core import Group


def walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += walk(sub, (*path, name))
    return found


GROUPS = [(path, command) for path, command in walk(fxcrawl) if isinstance(command, Group)]
#: `fixtures serve` hands its arguments to the replay server's own parser (tested below on its own).
LEAVES = [(path, command) for path, command in walk(fxcrawl) if not isinstance(command, click.Group)]
PARSED_LEAVES = [(path, command) for path, command in LEAVES if path != ("fixtures", "serve")]


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(fxcrawl, list(args))


def one_line(result: click.testing.Result) -> str:
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_the_commands_are_those_argparse_had_and_the_views_added_since() -> None:
    assert {" ".join(path) for path, _ in LEAVES} == {
        "crawl search",
        "crawl latest",
        "check-live",
        "search",
        "serve",
        "articles list",
        "articles show",
        "fast-news list",
        "sources list",
        "hits list",
        "runs list",
        "rejects list",
        "frontier",
        "runs show",
        "schedule run",
        "schedule list",
        "schedule once",
        "export",
        "seed",
        "reconcile",
        "workers start",
        "db upgrade",
        "db current",
        "spool replay",
        "spool list",
        "fixtures serve",
        "fixtures golden",
        "fixtures generate",
        "completion",
        # issue 16: the WARC archive, re-parsing it, recording fixtures
        "archive list",
        "archive prune",
        "reparse",
        "fixtures record",
    }


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(path) or "fxcrawl" for path, _ in GROUPS])
def test_every_group_lists_its_commands_in_help(path: tuple[str, ...], group: Group) -> None:
    for flag in ("--help", "-h"):
        result = invoke(*path, flag)
        assert result.exit_code == 0, result.output
        listed = result.output.split("Commands:", 1)[1]
        for name in group.commands:
            assert f"  {name} " in listed or f"  {name}\n" in listed, (name, result.output)


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(path) or "fxcrawl" for path, _ in GROUPS])
def test_a_group_without_its_command_or_with_an_unknown_one_is_one_line_exit_2(
    path: tuple[str, ...], group: Group
) -> None:
    where = " ".join(("fxcrawl", *path))
    missing = invoke(*path)
    assert missing.exit_code == 2
    assert (
        one_line(missing)
        == f"fxcrawl: error: the following arguments are required: {group.choice} (see {where} --help)"
    )
    unknown = invoke(*path, "bogus")
    assert unknown.exit_code == 2
    assert one_line(unknown).startswith(
        f"fxcrawl: error: argument {group.choice}: invalid choice: 'bogus' (choose from"
    )


@pytest.mark.parametrize(("path", "command"), PARSED_LEAVES, ids=[" ".join(path) for path, _ in PARSED_LEAVES])
def test_every_command_has_help_and_refuses_a_bad_flag_in_one_line(
    path: tuple[str, ...], command: click.Command
) -> None:
    helped = invoke(*path, "--help")
    assert helped.exit_code == 0, helped.output
    assert helped.output.startswith(f"Usage: fxcrawl {' '.join(path)} ")
    refused = invoke(*path, "--no-such-flag")
    assert refused.exit_code == 2
    assert one_line(refused) == (
        f"fxcrawl: error: unrecognized arguments: --no-such-flag (see fxcrawl {' '.join(path)} --help)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["articles", "list", "--limit", "0"], "argument --limit: must be at least 1: '0'"),
        (["runs", "list", "--limit", "2000000"], "argument --limit: at most 1,000,000: '2000000'"),
        (["runs", "show", "x"], "argument ID: not a whole number: 'x'"),
        (
            ["export", "--format", "xml"],
            "argument --format: invalid choice: 'xml' (choose from 'jsonl', 'csv', 'parquet')",
        ),
        (["articles", "list", "--offset", "-1"], "argument --offset: must be at least 0: '-1'"),
        (["runs", "list", "--tz", "Mars/Base"], "argument --tz: unknown time zone: 'Mars/Base'"),
        (["completion", "tcsh"], "argument SHELL: invalid choice: 'tcsh'"),
        (["serve", "--port", "x"], "argument --port: invalid int value: 'x'"),
        (["check-live", "--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["crawl", "search", "--max-pages"], "argument --max-pages: expected one argument"),
        (["crawl", "search", "-s"], "argument -s/--set: expected one argument"),
        (["workers", "start", "2", "--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
        (["fixtures", "generate"], "the following arguments are required: --out"),
        (["articles", "list", "stray"], "unrecognized arguments: stray"),
    ],
)
def test_bad_values_are_refused_in_argparse_words(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert one_line(result).startswith(f"fxcrawl: error: {message}")


def test_fixtures_serve_refuses_through_the_replay_servers_own_flags() -> None:
    result = invoke("fixtures", "serve", "--port", "x")
    assert result.exit_code == 2
    assert one_line(result) == (
        "fxcrawl: error: argument --port: invalid int value: 'x' (see fxcrawl fixtures serve --help)"
    )
    helped = invoke("fixtures", "serve", "--help")
    assert helped.exit_code == 0 and "--drop-next-data" in helped.output and "--fault" not in helped.output


def test_main_returns_the_exit_code_rather_than_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "articles" in capsys.readouterr().out
    assert cli.main(["articles", "list", "--limit", "0"]) == cli.EXIT_USAGE


def test_defaults_are_argparses() -> None:
    crawl = cli.build_parser().parse_args(["crawl", "search", "-s", "A=1", "--set", "B=2", "--replay-arg=--x"])
    assert (crawl.keyword, crawl.log_level, crawl.db) == ("现代", "INFO", settings.FXCRAWL_DATABASE_URL)
    assert (crawl.overrides, crawl.replay_arg, crawl.replay, crawl.max_pages) == (("A=1", "B=2"), ("--x",), False, None)
    listed = cli.build_parser().parse_args(["articles", "list"])
    assert (listed.limit, listed.as_json, listed.since) == (50, False, None)
    check = cli.build_parser().parse_args(["check-live"])
    assert (check.base_url, check.delay, check.timeout) == (settings.FXCRAWL_BASE_URL, settings.DOWNLOAD_DELAY, 30.0)
    upgrade = cli.build_parser().parse_args(["db", "upgrade"])
    assert upgrade.revision == "head"


HEAVY = (
    "sqlalchemy",
    "scrapy",
    "twisted",
    "storage",
    "pipelines",
    "replay",
    "psycopg",
    "redis",
    "apscheduler",
    "prometheus_client",
    "rich",
    "tenacity",
)


@pytest.mark.parametrize(
    "args", [["--help"], ["crawl", "search", "--help"], ["articles", "list", "--help"], ["schedule", "run", "--help"]]
)
def test_help_imports_neither_the_store_nor_scrapy(args: list[str]) -> None:
    probe = (
        "import json, sys\n"
        "from fxcrawl.cli import main\n"
        f"code = main({args!r})\n"
        f"print(json.dumps([code, sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    code, heavy = json.loads(done.stdout.splitlines()[-1])
    assert (code, heavy) == (0, [])


def test_a_long_option_may_be_abbreviated_as_argparse_allowed() -> None:
    parsed = cli.build_parser().parse_args(["crawl", "search", "--max", "3", "--replay-a=--x", "--keyword", "--max"])
    assert (parsed.max_pages, parsed.replay_arg, parsed.keyword) == (3, ("--x",), "--max")
    ambiguous = invoke("crawl", "search", "--rep")
    assert ambiguous.exit_code == 2
    assert one_line(ambiguous).startswith("fxcrawl: error: ambiguous option: --rep could match --replay, --replay-arg")
