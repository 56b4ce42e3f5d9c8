"""The latest spider: channel lists and 快讯 through their pages and the gated JSON API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import FXCRAWL
from sqlalchemy import create_engine, text

from crawler.spiders.latest import parse_channels


def crawl_latest(db: str, log: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [*FXCRAWL, "crawl", "latest", "--replay", "--access-log", str(log), "--log-level", "INFO", "--db", db]
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=240)


def requests_in(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def scalar(db: str, sql: str) -> int:
    engine = create_engine(db)
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar()
    engine.dispose()
    return int(value or 0)


def test_channel_codes_are_checked() -> None:
    assert parse_channels(None) == ["001"]
    assert parse_channels("001, 001003,001") == ["001", "001003"]
    with pytest.raises(ValueError, match="bad channel code"):
        parse_channels("news")


def test_latest_stores_channel_articles_and_fast_news_then_stops_at_what_is_stored(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    first = crawl_latest(db, tmp_path / "first.jsonl")
    assert first.returncode in (0, 1), first.stderr[-2000:]
    paths = [entry["path"] for entry in requests_in(tmp_path / "first.jsonl")]
    assert "/info/001" in paths and "/express" in paths
    assert "/app/common/v.js" in paths  # the API's token, fetched before its first call
    api_calls = [p for p in paths if p.startswith("/cms/api/")]
    assert any("getNewsByChannel" in p and "pageNo=2" in p for p in api_calls)
    assert any("fastNews/getList" in p and "pageNo=2" in p for p in api_calls)
    articles = scalar(db, "SELECT count(*) FROM articles")
    entries = scalar(db, "SELECT count(DISTINCT article_url) FROM channel_entries")
    fast_news = scalar(db, "SELECT count(*) FROM fast_news")
    assert articles >= 40 and entries >= 40 and fast_news >= 40
    assert (
        scalar(
            db,
            "SELECT count(*) FROM channel_entries e LEFT JOIN articles a ON a.url = e.article_url WHERE a.id IS NULL",
        )
        == 0
    )  # every listed article stored
    assert scalar(db, "SELECT count(*) FROM fast_news WHERE source_tag IS NOT NULL") > 0
    assert scalar(db, "SELECT count(*) FROM fast_news WHERE pinned") >= 1
    # the special pieces of channel 001: a video (its ids, no body), a reprint (stored under its
    # original outlet) and an AI-written piece (its notice out of the body)
    assert scalar(db, "SELECT count(*) FROM articles WHERE kind = 'video' AND video IS NOT NULL AND body = ''") == 1
    assert (
        scalar(
            db,
            "SELECT count(*) FROM articles a JOIN sources s ON s.id = a.source_id "
            "WHERE a.reprinted AND s.name = '金色财经'",
        )
        == 1
    )
    assert scalar(db, "SELECT count(*) FROM articles WHERE ai_generated AND body NOT LIKE '%本文为AI%'") == 1

    second = crawl_latest(db, tmp_path / "second.jsonl")
    assert second.returncode in (0, 1), second.stderr[-2000:]
    paths = [entry["path"] for entry in requests_in(tmp_path / "second.jsonl")]
    assert sorted(p for p in paths if p != "/robots.txt") == ["/express", "/info/001"]
    assert scalar(db, "SELECT count(*) FROM articles") == articles
    assert scalar(db, "SELECT count(*) FROM fast_news") == fast_news


def test_a_rotated_token_is_fetched_again_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fx.db'}"
    # one list, so its API calls go one after another and the token goes stale between two of them
    rotate = ("--replay-arg=--rotate-token-after", "--replay-arg=2", "--no-express")
    result = crawl_latest(db, tmp_path / "log.jsonl", *rotate)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    log = requests_in(tmp_path / "log.jsonl")
    api = [entry for entry in log if entry["path"].startswith("/cms/api/")]
    refused = [entry for entry in api if entry["status"] == 403]
    assert refused, "the server rotated its token, so some call was refused"
    assert sum(entry["path"] == "/app/common/v.js" for entry in log) >= 2  # fetched again after a refusal
    # every refused page was asked again with the new token, and answered
    answered = {entry["path"] for entry in api if entry["status"] == 200}
    assert {entry["path"] for entry in refused} <= answered
    assert "fxcrawl/api/token_refreshed" in result.stderr
    assert "fxcrawl/api/refused" not in result.stderr
