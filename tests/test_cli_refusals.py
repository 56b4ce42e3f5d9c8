"""Bad input is refused before any work starts, in one line and with its own exit code; read-only
commands never create a database or a folder (issue 14, bullet 3)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FXCRAWL, unwritable
from sqlalchemy import text

from fxcrawl import cli
from storage.db import Database, DatabaseUnwritable


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A database at this code's schema, with nothing in it."""
    url = f"sqlite:///{tmp_path / 'fx.db'}"
    Database(url).prepare().dispose()
    return url


READ_ONLY_COMMANDS = [
    ["articles", "list"],
    ["articles", "show", "1"],
    ["sources", "list"],
    ["runs", "list"],
    ["runs", "show", "1"],
    ["export", "--format", "jsonl"],
    ["db", "current"],
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_read_only_command_on_a_missing_database_creates_nothing_and_says_how(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    code, out, err = run(capsys, *command, "--db", f"sqlite:///{missing}")
    assert code == 1
    assert "fxcrawl db upgrade" in one_line(err) and str(missing) in err
    assert out == ""
    assert not (tmp_path / "nonexistent").exists()


def test_spool_list_on_a_missing_database_creates_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "x.db"
    code, out, _ = run(capsys, "spool", "list", "--db", f"sqlite:///{missing}")
    assert code == 0 and out.startswith("0 spool files")
    assert not (tmp_path / "nonexistent").exists()


def test_a_read_only_command_on_an_empty_sqlite_file_leaves_it_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = run(capsys, "articles", "list", "--db", f"sqlite:///{empty}")
    assert code == 1 and "fxcrawl db upgrade" in one_line(err)
    assert empty.stat().st_size == 0


@pytest.mark.parametrize(
    ("db", "culprit"),
    [("notaurl", "notaurl"), ("mysql://x", "mysql"), ("postgresql+nosuchdriver://h/db", "nosuchdriver")],
)
@pytest.mark.parametrize("command", [["articles", "list"], ["runs", "list"], ["db", "upgrade"], ["spool", "list"]])
def test_an_unusable_db_url_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], db: str, culprit: str, command: list[str]
) -> None:
    code, out, err = run(capsys, *command, "--db", db)
    assert code == 2, err
    assert out == ""
    assert culprit in one_line(err) and err.startswith("fxcrawl: error:")


def test_export_into_a_missing_folder_or_onto_a_folder_is_refused(
    capsys: pytest.CaptureFixture[str], stored: str, tmp_path: Path
) -> None:
    for out_path in (tmp_path / "no" / "such" / "out.jsonl", tmp_path):
        code, _, err = run(capsys, "export", "--out", str(out_path), "--db", stored)
        assert code == 2, err
        assert str(out_path.parent if out_path != tmp_path else tmp_path) in one_line(err)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", [["articles", "list"], ["runs", "list"]])
def test_a_huge_limit_is_refused(capsys: pytest.CaptureFixture[str], stored: str, command: list[str]) -> None:
    code, _, err = run(capsys, *command, "--limit", str(10**30), "--db", stored)
    assert code == 2
    assert "at most" in one_line(err)


def test_db_upgrade_on_an_unknown_schema_is_one_line_and_advises_no_downgrade(
    capsys: pytest.CaptureFixture[str], stored: str
) -> None:
    database = Database(stored)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    database.dispose()
    code, _, err = run(capsys, "db", "upgrade", "--db", stored)
    assert code == 2
    assert "newer than this fxcrawl" in one_line(err) and "upgrade fxcrawl" in err
    assert "downgrade" not in err  # there is no `fxcrawl db downgrade` to advise
    code, _, err = run(capsys, "articles", "list", "--db", stored)
    assert code == 1 and "downgrade" not in one_line(err)


def test_db_upgrade_to_an_unknown_revision_is_refused(capsys: pytest.CaptureFixture[str], stored: str) -> None:
    code, _, err = run(capsys, "db", "upgrade", "nosuchrev", "--db", stored)
    assert code == 2 and "nosuchrev" in one_line(err)


def crawl(tmp_path: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    """`fxcrawl crawl search --replay …` in a child process, its fixture server logging every request."""
    command = [
        *FXCRAWL,
        "crawl",
        "search",
        "--pages",
        "1",
        "--replay",
        "--access-log",
        str(tmp_path / "access.log"),
        "--db",
        db or f"sqlite:///{tmp_path / 'crawl.db'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--base-url", "notaurl"], "notaurl"),
        (["--base-url", "ftp://example.com"], "ftp://example.com"),
        (["-s", "CONCURRENT_REQUESTS=abc"], "CONCURRENT_REQUESTS"),
        (["-s", "FXCRAWL_STORE_RETRY_BUDGET=soon"], "FXCRAWL_STORE_RETRY_BUDGET"),
    ],
)
def test_bad_crawl_options_are_one_line_exit_2_and_nothing_is_fetched(
    tmp_path: Path, args: list[str], culprit: str
) -> None:
    done = crawl(tmp_path, *args)
    assert done.returncode == 2, done.stderr[-2000:]
    assert culprit in one_line(done.stderr)
    assert not (tmp_path / "access.log").exists() or not (tmp_path / "access.log").read_text()


@contextlib.contextmanager
def read_only(target: Path) -> Iterator[None]:
    """Make a file or folder unwritable, for root too (root ignores permission bits: chattr +i)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(target)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(target)], check=True)
        return
    mode = target.stat().st_mode
    target.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        target.chmod(mode)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_database_is_refused_before_anything_is_fetched(tmp_path: Path, what: str) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'fx.db'}"
    Database(url).prepare().dispose()
    with read_only(folder / "fx.db" if what == "file" else folder):
        done = crawl(tmp_path, db=url)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "read-only" in one_line(done.stderr) and "refusing to crawl" in done.stderr
    log = tmp_path / "access.log"
    assert not log.exists() or log.read_text() == ""  # nothing fetched, not even robots.txt


def test_a_read_only_postgresql_database_is_found_at_start(postgres_url: str) -> None:
    database = Database(postgres_url).prepare()
    database.check_writable()
    with unwritable(postgres_url):
        database.dispose()
        with pytest.raises(DatabaseUnwritable, match="read-only"):
            Database(postgres_url).check_writable()


@pytest.mark.parametrize("command", [["seed"], ["reconcile"], ["workers", "start", "2"]])
def test_a_bad_base_url_for_the_workers_is_refused(
    capsys: pytest.CaptureFixture[str], stored: str, command: list[str]
) -> None:
    code, _, err = run(capsys, *command, "--base-url", "notaurl", "--db", stored)
    assert code == 2 and "notaurl" in one_line(err)
