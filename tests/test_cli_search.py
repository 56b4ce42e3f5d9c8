"""`fxcrawl search` on one replay crawl of the bundled site."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from wcwidth import wcswidth

from fxcrawl import cli

CRAWL = [sys.executable, "-m", "fxcrawl.cli", "crawl", "search", "--keyword", "现代", "--pages", "1,951-955,1000"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'fx.db'}"
    done = subprocess.run(
        [*CRAWL, "--replay", "--db", url, "--log-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return url


def run(db: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(["search", *args, "--db", db])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_search_prints_an_aligned_table_with_marked_snippets(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(db, capsys, "现代", "--limit", "5")
    assert code == 0
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 2 + 5
    assert lines[0].split() == ["id", "published", "source", "title", "snippet"]
    # columns line up in display width, Chinese being two columns wide
    starts = [wcswidth(line[: line.index(" ", 6)]) for line in lines[2:]]
    assert all("【现代】" in line for line in lines[2:])
    assert len(set(starts)) <= 2


def test_search_json_filters_and_ranks(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(db, capsys, "现代", "--json", "--limit", "100")
    everything = json.loads(out)
    assert code == 0 and len(everything) > 20
    dates = [row["published_at"] for row in everything if row["published_at"]]
    assert dates == sorted(dates, reverse=True)
    source = everything[0]["source"]
    _, out, _ = run(db, capsys, "现代", "--json", "--source", source, "--limit", "100")
    assert {row["source"] for row in json.loads(out)} == {source}
    _, out, _ = run(db, capsys, "现代", "--json", "--since", "2023-02-24", "--until", "2023-02-24", "--limit", "100")
    assert {row["published_at"][:10] for row in json.loads(out)} == {"2023-02-24"}
    _, out, _ = run(db, capsys, "现代", "--json", "--rank", "--limit", "3")
    ranked = json.loads(out)
    assert len(ranked) == 3 and [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    code, out, _ = run(db, capsys, "没有这样的词组")
    assert (code, out.strip()) == (0, "no articles match")


def test_a_query_with_nothing_to_search_for_is_a_usage_error(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(db, capsys, "，。")
    assert code == 2 and "nothing to search for" in err
