"""`fxcrawl check-live` against the fixture server as it is (exit 0) and with the site changed
under it (exit 1, naming the page kind); a crawl of such a site is unhealthy and says where."""

from __future__ import annotations

import subprocess

import pytest
from conftest import FXCRAWL

from fxcrawl.livecheck import BadBaseURL, CheckRow, check_site, empty_fields
from replay.server import ReplayServer


def check_live(base_url: str) -> subprocess.CompletedProcess[str]:
    command = [*FXCRAWL, "check-live", "--base-url", base_url, "--delay", "0"]  # a loopback server: no need to wait
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_fixture_site_matches_its_description() -> None:
    with ReplayServer() as server:
        result = check_live(server.base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["page", "kind", "status", "path", "records", "result"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"search", "channel", "article", "express", "api"}
    for kind, row in rows.items():
        assert row[1] == "200" and int(row[3]) > 0 and row[4] == "ok", kind
    assert rows["article"][2] == "json" and rows["api"][2] == "api"


@pytest.mark.parametrize(
    ("knob", "drifted"),
    [
        (["--drop-next-data"], {"search", "channel", "article", "express"}),
        (["--drop-next-data", "article"], {"article"}),
        (["--rename-json-key", "newsContent=content"], {"article"}),
        (["--rename-json-key", "newsTitle=title:channel"], {"channel"}),
        (["--article-markup-v2"], {"article"}),
    ],
)
def test_each_change_of_the_site_is_drift_named_by_page_kind(knob: list[str], drifted: set[str]) -> None:
    with ReplayServer(*knob) as server:
        result = check_live(server.base_url)
    assert result.returncode == 1, result.stdout
    named = result.stderr.strip().rsplit(": ", 1)[1].split(", ")
    assert set(named) == drifted
    for line in result.stdout.splitlines()[1:]:
        kind = line.split()[0]
        assert ("DRIFT" in line) == (kind in drifted), line


def test_a_bad_base_url_is_refused() -> None:
    with pytest.raises(BadBaseURL):
        check_site("notaurl")
    result = check_live("notaurl")
    assert result.returncode == 2 and "http(s) origin" in result.stderr and "Traceback" not in result.stderr


def test_empty_fields_are_named() -> None:
    from fx168.items import FastNewsItem

    assert empty_fields([FastNewsItem(1, "u", "", "text")]) == ["published"]
    assert not CheckRow("search", "u", 200, "json", 3, ["title"]).ok


def test_a_crawl_of_a_drifted_site_is_unhealthy_and_names_the_urls(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    crawl = subprocess.run(
        [
            *FXCRAWL,
            "crawl",
            "search",
            "--keyword",
            "现代",
            "--pages",
            "953",
            "--replay",
            "--replay-arg=--drop-next-data",
            "--replay-arg=article",
            "--log-level",
            "WARNING",
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert crawl.returncode == 1, crawl.stdout + crawl.stderr
    assert "UNHEALTHY" in crawl.stdout and "article page(s): page data" in crawl.stdout
    assert crawl.stderr.count("the site no longer matches its description") == 1  # warned once per run
    shown = subprocess.run([*FXCRAWL, "runs", "show", "1", "--db", db], capture_output=True, text=True, timeout=60)
    assert "health: unhealthy" in shown.stdout.replace("       ", "")
    assert "json_missing/article:" in shown.stdout
    urls = [line.strip() for line in shown.stdout.splitlines() if "/article/" in line]
    assert len(urls) == 10  # page 953's ten articles, each named
    # the articles themselves were still stored, from the HTML
    listed = subprocess.run([*FXCRAWL, "articles", "list", "--db", db], capture_output=True, text=True, timeout=60)
    assert len(listed.stdout.strip().splitlines()) == 12  # header, rule and ten articles
