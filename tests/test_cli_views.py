"""The command line's views and flags added for people who use it every day (issue 18, point 4):
paging with a total, rejects, the frontier and search hits, runs by job and health, the
schedule's last runs, export filters and formats, time zones, --version, completion, defaults in
help, tables that fit the terminal, and feed records that name their kind."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ROOT, Result
from sqlalchemy import insert
from wcwidth import wcswidth

from fxcrawl import cli
from fxcrawl.cli import output
from fxcrawl.cli.app import fxcrawl as fxcrawl_group
from storage.db import Database
from storage.models import CrawlRun, FastNews, FrontierEntry, Reject

PAGES = "1,951-955,1000"


Fxcrawl = Callable[..., Result]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One replay crawl of the bundled site, then what a long-lived store also holds: two rejects,
    failed and forbidden URLs, and an unhealthy scheduled run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('views') / 'fx.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fxcrawl.cli",
            "crawl",
            "search",
            "--keyword",
            "现代",
            "--pages",
            PAGES,
            "--replay",
            "--db",
            url,
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    database = Database(url)
    now = datetime.now(UTC)
    with database.write_session() as session:
        session.execute(
            insert(Reject),
            [
                {"run_id": 1, "kind": "article", "reason": "title: missing", "url": "https://x/1", "payload": {}},
                {"run_id": 1, "kind": "page", "reason": "unparsable: no results", "url": "https://x/2", "payload": {}},
            ],
        )
        session.execute(
            insert(FrontierEntry),
            [
                {"url": "https://x/a", "kind": "article", "state": "failed", "attempts": 3, "last_error": "http 500"},
                {
                    "url": "https://x/b",
                    "kind": "article",
                    "state": "failed",
                    "attempts": 1,
                    "last_error": "http 500",
                    "next_fetch_at": now + timedelta(hours=1),
                },
                {
                    "url": "https://x/c",
                    "kind": "article",
                    "state": "forbidden",
                    "attempts": 1,
                    "last_error": "Forbidden by robots.txt",
                },
                {"url": "https://x/d", "kind": "article", "state": "discovered"},
            ],
        )
        session.execute(
            insert(FastNews),
            [
                {
                    "fast_news_id": 1000 + n,
                    "url": f"https://www.fx168news.com/express/{1000 + n}",
                    "published_at": now - timedelta(minutes=n) if n != 4 else None,
                    "published_text": "刚刚" if n == 4 else "",
                    "text": f"快讯 {n}",
                }
                for n in range(5)
            ],
        )
        session.execute(
            insert(CrawlRun),
            [
                {
                    "spider": "search",
                    "job": "nightly",
                    "args": {},
                    "started_at": now,
                    "finished_at": now,
                    "finish_reason": "finished",
                    "health": "unhealthy",
                    "health_reasons": ["no pages"],
                }
            ],
        )
    database.dispose()
    return url


@pytest.fixture
def fxcrawl(db: str, capsys: pytest.CaptureFixture[str]) -> Fxcrawl:
    def run(*args: str, with_db: bool = True) -> Result:
        capsys.readouterr()
        code = cli.main([*args, "--db", db] if with_db else list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


# -- paging --------------------------------------------------------------------------------------


def test_articles_list_pages_with_offset_and_says_the_total(fxcrawl: Fxcrawl) -> None:
    every = fxcrawl("articles", "list", "--json", "--limit", "1000").json()
    assert len(every) == 68
    pages = [fxcrawl("articles", "list", "--json", "--limit", "30", "--offset", str(at)).json() for at in (0, 30, 60)]
    assert [a["id"] for page in pages for a in page] == [a["id"] for a in every]
    first = fxcrawl("articles", "list", "--limit", "30")
    assert first.err.strip() == "articles 1–30 of 68; next page: --offset 30; times in Asia/Shanghai"
    last = fxcrawl("articles", "list", "--limit", "30", "--offset", "60")
    assert last.err.strip() == "articles 61–68 of 68; times in Asia/Shanghai"
    past = fxcrawl("articles", "list", "--offset", "500")
    assert past.err.strip() == "no articles at --offset 500 (of 68); times in Asia/Shanghai"
    filtered = fxcrawl("articles", "list", "--source", "金融界")
    expected = sum(1 for a in every if a["source"] == "金融界")
    assert f" of {expected};" in filtered.err


def test_a_time_zone_flag_converts_the_tables_times(fxcrawl: Fxcrawl) -> None:
    newest = fxcrawl("articles", "list", "--json", "--limit", "1").json()[0]
    utc = datetime.fromisoformat(newest["published_at"]).astimezone(UTC)
    table = fxcrawl("articles", "list", "--limit", "1", "--tz", "UTC")
    assert f"{utc:%Y-%m-%d %H:%M}" in table.out.splitlines()[2]
    assert table.err.strip().endswith("times in UTC")


# -- runs, rejects, frontier, hits -----------------------------------------------------------------


def test_runs_list_filters_by_job_and_health_and_shows_job_and_spooled(fxcrawl: Fxcrawl) -> None:
    every = fxcrawl("runs", "list", "--json").json()
    assert [run["job"] for run in every] == ["nightly", "search:现代"]
    assert [r["id"] for r in fxcrawl("runs", "list", "--json", "--job", "nightly").json()] == [every[0]["id"]]
    assert [r["health"] for r in fxcrawl("runs", "list", "--json", "--unhealthy").json()] == ["unhealthy"]
    table = fxcrawl("runs", "list", "--job", "search:现代")
    header = table.out.splitlines()[0].split()
    assert {"spooled", "job", "health"} <= set(header)
    assert "search:现代" in table.out and "nightly" not in table.out
    assert table.err.strip() == "runs 1–1 of 1; times in Asia/Shanghai"


def test_rejects_list_shows_what_was_refused_and_why(fxcrawl: Fxcrawl) -> None:
    rejects = fxcrawl("rejects", "list", "--json").json()
    assert [(r["kind"], r["reason"]) for r in rejects] == [
        ("page", "unparsable: no results"),
        ("article", "title: missing"),
    ]
    assert [r["kind"] for r in fxcrawl("rejects", "list", "--json", "--kind", "article").json()] == ["article"]
    assert fxcrawl("rejects", "list", "--json", "--run", "2").json() == []
    table = fxcrawl("rejects", "list", "--limit", "1")
    assert "unparsable: no results" in table.out and "title: missing" not in table.out
    assert table.err.startswith("rejects 1–1 of 2; next page: --offset 1")


def test_frontier_shows_states_what_is_owed_and_failures_by_reason(fxcrawl: Fxcrawl) -> None:
    summary = fxcrawl("frontier", "--json").json()
    states = {(row["kind"], row["state"]): row["urls"] for row in summary["by_state"]}
    assert states[("article", "fetched")] == 68
    assert (states[("article", "failed")], states[("article", "forbidden")]) == (2, 1)
    assert summary["owed"] == 2  # the discovered one, and the failed one due now (the other waits an hour)
    assert summary["failed"] == [
        {"reason": "http 500", "urls": 2},
        {"reason": "Forbidden by robots.txt", "urls": 1},
    ]
    shown = fxcrawl("frontier")
    assert shown.out.startswith("owed: 2 URLs")
    failed = fxcrawl("frontier", "--failed", "--json").json()
    assert [row["url"] for row in failed] == ["https://x/a", "https://x/b", "https://x/c"]


def test_hits_list_shows_the_seed_pages_results_in_rank_order(fxcrawl: Fxcrawl) -> None:
    golden = json.loads(
        (ROOT / "fixtures/site/search/现代/article/page-953.expected.json").read_text(encoding="utf-8")
    )["hits"]
    hits = fxcrawl("hits", "list", "--json", "--keyword", "现代", "--page", "953").json()
    assert [h["title"] for h in hits] == [h["title"] for h in golden]
    assert [h["rank"] for h in hits] == list(range(1, 11))
    every = fxcrawl("hits", "list", "--json", "--limit", "1000").json()
    table = fxcrawl("hits", "list", "--limit", "5")
    assert table.err.startswith(f"hits 1–5 of {len(every)}; next page: --offset 5")


def test_fast_news_pages_with_a_total_and_shows_an_unknown_time_as_the_page_did(fxcrawl: Fxcrawl) -> None:
    every = fxcrawl("fast-news", "list", "--json").json()
    assert [item["id"] for item in every] == [1000, 1001, 1002, 1003, 1004]  # the unknown time last
    second = fxcrawl("fast-news", "list", "--json", "--limit", "2", "--offset", "2").json()
    assert [item["id"] for item in second] == [1002, 1003]
    table = fxcrawl("fast-news", "list", "--limit", "2", "--offset", "3")
    assert table.err.strip() == "fast news 4–5 of 5; times in Asia/Shanghai"
    assert "刚刚" in table.out


def test_search_pages_through_its_cursor(fxcrawl: Fxcrawl) -> None:
    every = fxcrawl("search", "现代", "--json", "--limit", "1000").json()
    assert len(every) > 3
    first = fxcrawl("search", "现代", "--limit", "3")
    cursor = first.err.split("next page: --after ", 1)[1].split(";", 1)[0]
    second = fxcrawl("search", "现代", "--json", "--limit", "3", "--after", cursor).json()
    assert [a["id"] for a in second] == [a["id"] for a in every[3:6]]
    bad = fxcrawl("search", "现代", "--after", "not-a-cursor")
    assert bad.code == 2 and bad.err.startswith("fxcrawl: error: argument --after:")


# -- schedule list --db ------------------------------------------------------------------------------


def test_schedule_list_with_a_database_shows_each_jobs_last_run_and_health(
    fxcrawl: Fxcrawl, db: str, tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[jobs.nightly]\ncron = "0 3 * * *"\n\n[jobs.new]\ninterval = "6h"\n', encoding="utf-8")
    rows = fxcrawl("schedule", "list", "--file", str(schedule), "--json", "--db", db, with_db=False).json()
    by_job = {row["job"]: row for row in rows}
    assert by_job["nightly"]["health"] == "unhealthy" and by_job["nightly"]["last_run"]["job"] == "nightly"
    assert (by_job["new"]["last"], by_job["new"]["last_run"]) == ("never", None)
    table = fxcrawl("schedule", "list", "--file", str(schedule), "--db", db, with_db=False)
    assert "last run" in table.out.splitlines()[0] and "unhealthy" in table.out
    plain = fxcrawl("schedule", "list", "--file", str(schedule), with_db=False)
    assert "last run" not in plain.out


# -- export -------------------------------------------------------------------------------------------


def test_export_takes_the_lists_filters(fxcrawl: Fxcrawl) -> None:
    filters = ("--source", "金融界", "--since", "2023-01-01")
    listed = fxcrawl("articles", "list", "--json", "--limit", "1000", *filters).json()
    exported = fxcrawl("export", *filters)
    assert exported.code == 0, exported.err
    assert sorted(json.loads(line)["id"] for line in exported.out.splitlines()) == sorted(a["id"] for a in listed)
    assert listed  # the filter keeps some, not none


def test_export_csv_with_a_bom_opens_in_excel_and_parses_back(fxcrawl: Fxcrawl, tmp_path: Path) -> None:
    out = tmp_path / "articles.csv"
    assert fxcrawl("export", "--format", "csv", "--bom", "--out", str(out)).code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 68 and rows[0].keys() >= {"id", "title", "body"}
    plain = tmp_path / "plain.csv"
    assert fxcrawl("export", "--format", "csv", "--out", str(plain)).code == 0
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    refused = fxcrawl("export", "--bom")
    assert refused.code == 2 and "--bom is for --format csv" in refused.err


def test_export_parquet_holds_every_article_typed(fxcrawl: Fxcrawl, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is the optional [parquet] extra")
    out = tmp_path / "articles.parquet"
    done = fxcrawl("export", "--format", "parquet", "--out", str(out))
    assert done.code == 0, done.err
    table = pq.read_table(out)
    assert table.num_rows == 68
    every = {json.loads(line)["id"]: json.loads(line) for line in fxcrawl("export").out.splitlines()}
    for row in table.to_pylist():
        assert row["title"] == every[row["id"]]["title"] and row["tags"] == every[row["id"]]["tags"]
    refused = fxcrawl("export", "--format", "parquet")
    assert refused.code == 2 and "--out" in refused.err


# -- the command itself ---------------------------------------------------------------------------------


def test_version_names_the_installed_package() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(fxcrawl_group, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"fxcrawl {version('fxcrawl')}"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_that_calls_fxcrawl_back(shell: str) -> None:
    result = CliRunner().invoke(fxcrawl_group, ["completion", shell])
    assert result.exit_code == 0 and "_FXCRAWL_COMPLETE" in result.output


def test_completion_completes_commands_and_flags() -> None:
    env = {"_FXCRAWL_COMPLETE": "bash_complete", "COMP_WORDS": "fxcrawl art", "COMP_CWORD": "1"}
    result = CliRunner().invoke(fxcrawl_group, [], env=env, prog_name="fxcrawl")
    assert "plain,articles" in result.output.splitlines()
    env = {"_FXCRAWL_COMPLETE": "bash_complete", "COMP_WORDS": "fxcrawl runs list --unh", "COMP_CWORD": "3"}
    result = CliRunner().invoke(fxcrawl_group, [], env=env, prog_name="fxcrawl")
    assert "plain,--unhealthy" in result.output.splitlines()


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    import click

    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


@pytest.mark.parametrize("path", [p for p, _ in _leaves(fxcrawl_group) if p != ("fixtures", "serve")], ids=" ".join)
def test_help_shows_every_flags_default(path: tuple[str, ...]) -> None:
    """Every option that has a default shows it: the value, or where it comes from."""
    import click

    command = dict(_leaves(fxcrawl_group))[path]
    helped = " ".join(CliRunner().invoke(fxcrawl_group, [*path, "--help"], terminal_width=1000).output.split())
    ctx = click.Context(command)
    for param in command.params:
        default = param.get_default(ctx, call=False)
        if not isinstance(param, click.Option) or param.is_flag or default in (None, (), False):
            continue
        if type(default).__name__ == "Sentinel":  # click's "no default" marker
            continue
        shown = (
            param.show_default
            if isinstance(param.show_default, str)
            else str(default() if callable(default) else default)
        )
        assert f"[default: {shown}]" in helped or f"[default: ({shown})]" in helped, (param.name, helped)


def test_a_table_gives_way_to_fit_the_terminal() -> None:
    assert output.fit_widths([8, 16, 12, 60], None) == [8, 16, 12, 60]
    fitted = output.fit_widths([8, 16, 12, 60], 80)
    assert sum(fitted) + 2 * 3 <= 80 and fitted[:3] == [8, 16, 12]
    tiny = output.fit_widths([8, 16, 12, 60], 10)
    assert min(tiny) >= output.MIN_COLUMN


def test_on_a_terminal_the_articles_table_fits_its_width(db: str) -> None:
    """Run under a pseudo-terminal 70 columns wide: every line of the table fits."""
    import pty

    script = "import sys; from fxcrawl.cli import main; sys.exit(main(sys.argv[1:]))"
    leader, follower = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 70, 0, 0))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "70"}
    child = subprocess.Popen(
        [sys.executable, "-c", script, "articles", "list", "--limit", "20", "--db", db],
        stdout=follower,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    import os

    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    os.close(leader)
    lines = b"".join(chunks).decode("utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")
    assert len(lines) == 22
    assert max(wcswidth(line) for line in lines) <= 70, lines


# -- the Scrapy feed ----------------------------------------------------------------------------------


def test_feed_records_name_their_kind(tmp_path: Path) -> None:
    from replay.server import ReplayServer

    feed = tmp_path / "items.jsonl"
    with ReplayServer() as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "scrapy",
                "crawl",
                "search",
                "-a",
                "keyword=现代",
                "-a",
                "pages=953",
                "-s",
                f"FXCRAWL_BASE_URL={server.base_url}",
                "-s",
                f"FXCRAWL_DATABASE_URL=sqlite:///{tmp_path / 'f.db'}",
                "-s",
                "LOG_LEVEL=WARNING",
                "-s",  # the fixture server, not the site: no polite delays (11 requests took 12 s)
                "AUTOTHROTTLE_ENABLED=False",
                "-s",
                "DOWNLOAD_DELAY=0",
                "-O",
                str(feed),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    kinds = [record["item_type"] for record in records]
    assert kinds.count("article") == 10 and kinds.count("hit") == 10 and "source" in kinds
    assert all(next(iter(record)) == "item_type" for record in records)
    articles = [r for r in records if r["item_type"] == "article"]
    assert all(r["kind"] in ("news", "article", "video") for r in articles)  # the article's own kind stays


def test_help_is_timed_in_fresh_processes_and_deferring_imports_pays(tmp_path: Path) -> None:
    """`fxcrawl --help` timed by `make bench`'s own row (median of 5 fresh processes); the figure
    against 0.5 s is the bench row's, on a shared machine. Asserted here: help is faster than the
    same help with the store and Scrapy imported up front, which is what deferring them buys."""
    out = tmp_path / "cli.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "cli", "--out", str(out), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [row["figure"] for row in rows] == ["`fxcrawl --help` ms", "`fxcrawl articles list --help` ms"]
    for row in rows:
        assert row["baseline"] < row["value"] < row["extra"]["eager_s"] * 1000, row
        print(row["figure"], round(row["value"]), "ms; eager", round(row["extra"]["eager_s"] * 1000), "ms")
