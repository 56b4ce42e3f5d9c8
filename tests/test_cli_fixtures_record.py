"""`fxcrawl fixtures record`: pages fetched from the fixture server (politely: robots.txt asked
first) or taken from the archive become fixtures with the parsers' golden JSON beside them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from replay.golden import golden_path, recorded_pages, write_recorded_goldens
from replay.server import FIXTURE_SITE, ReplayServer

ARTICLE = "https://www.fx168news.com/article/1049849"
CHANNEL = "https://www.fx168news.com/info/001"
MISSING = "https://www.fx168news.com/article/9999999"


def fxcrawl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxcrawl.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def golden(path: Path) -> object:
    return json.loads(golden_path(path).read_text(encoding="utf-8"))


def test_recording_from_the_fixture_server_writes_pages_and_goldens(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with ReplayServer("--access-log", str(log)) as server:
        done = fxcrawl(
            "fixtures", "record", ARTICLE, CHANNEL, MISSING, "--base-url", server.base_url,
            "--out", str(tmp_path / "recorded"), "--name", "sample", "--log-level", "WARNING",
        )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one of the three is not there
    assert f"not recorded: {MISSING}: HTTP 404" in done.stderr
    requested = [json.loads(line)["path"] for line in log.read_text(encoding="utf-8").splitlines()]
    assert requested[0] == "/robots.txt"  # manners first
    folder = tmp_path / "recorded" / "sample"
    article, channel = folder / "article" / "1049849.html", folder / "info" / "001.html"
    assert article.read_bytes() == (FIXTURE_SITE / "article" / "1049849.html").read_bytes()
    # the same page, so the same golden the offline site has
    assert golden(article) == golden(FIXTURE_SITE / "article" / "1049849.html")
    assert golden(channel) == golden(FIXTURE_SITE / "info" / "001.html")
    assert dict(recorded_pages(tmp_path / "recorded")) == {article: ARTICLE, channel: CHANNEL}


def test_recording_from_the_archive_fetches_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    crawled = fxcrawl(
        "crawl", "latest", "--replay", "--channels", "001", "--no-express", "--max-pages", "1",
        "--log-level", "WARNING", "--db", db,
    )  # fmt: skip
    assert crawled.returncode == 0, crawled.stderr[-2000:]
    done = fxcrawl("fixtures", "record", CHANNEL, "--from-archive", "--db", db, "--out", str(tmp_path / "rec"))
    assert done.returncode == 0, done.stderr
    page = tmp_path / "rec" / next(p.name for p in (tmp_path / "rec").iterdir()) / "info" / "001.html"
    assert golden(page) == golden(FIXTURE_SITE / "info" / "001.html")
    manifest = json.loads((page.parents[1] / "pages.json").read_text(encoding="utf-8"))
    assert manifest["info/001.html"]["fetched_from"].startswith("archive: fxcrawl-1-00001.warc.gz at ")


def test_a_page_the_parsers_cannot_read_is_recorded_with_why(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    (folder / "article").mkdir(parents=True)
    (folder / "article" / "1.html").write_text("<html><body>改版了</body></html>", encoding="utf-8")
    (folder / "pages.json").write_text(json.dumps({"article/1.html": {"url": ARTICLE}}), encoding="utf-8")
    (written,) = write_recorded_goldens(tmp_path)
    assert "parse_error" in json.loads(written.read_text(encoding="utf-8"))
