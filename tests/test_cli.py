"""The fxcrawl command, over a database filled once by a replay crawl of the bundled site.

Read commands run in this process (``fxcrawl.cli.main``); crawl commands run in a child
process, because Scrapy's Twisted reactor cannot be restarted in one process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Result
from wcwidth import wcswidth

from fx168 import site
from fxcrawl import cli
from replay.server import FIXTURE_SITE

GOLDEN_953 = FIXTURE_SITE / "search" / "现代" / "article" / "page-953.expected.json"
PAGES = "1,951-955,1000"
ARTICLE_FIELDS = {"id", "url", "title", "source", "published_at", "author", "tags"}
TITLE_WIDTH = 60  # the title column of `articles list`, in display columns


def fxcrawl_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`fxcrawl ARGS` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "fxcrawl.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seed_hits() -> list[dict[str, Any]]:
    """The ten results of the seed page, as its golden file has them, each under the URL its
    article is stored under (a result links /article/{keyword}-{newsId}; the store keys newsId)."""
    hits = json.loads(GOLDEN_953.read_text(encoding="utf-8"))["hits"]
    assert len(hits) == 10
    return [{**hit, "url": site.canonical_url(hit["url"])} for hit in hits]


def golden_article(url: str) -> dict[str, Any]:
    ref = site.article_ref(url)
    assert ref is not None and ref.kind == "news", url
    golden = FIXTURE_SITE / "article" / f"{ref.id}.expected.json"
    return json.loads(golden.read_text(encoding="utf-8"))["article"]


def squeeze(text: str) -> str:
    """Whitespace runs as one space: a snippet joins the body's paragraphs with a space."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding one replay crawl of the bundled site (crawled once per module)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'fx.db'}"
    done = fxcrawl_process(
        "crawl", "search", "--keyword", "现代", "--pages", PAGES, "--replay", "--db", url, "--log-level", "WARNING"
    )
    assert done.returncode == 0, done.stderr
    return url


Fxcrawl = Callable[..., Result]
Articles = list[dict[str, Any]]


@pytest.fixture
def fxcrawl(db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Fxcrawl:
    """Run `fxcrawl ARGS --db DB` in this process; returns its exit code, stdout and stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = cli.main([*args, "--db", db])
        except SystemExit as exc:  # argparse errors
            assert isinstance(exc.code, int), exc.code  # argparse exits with a status number
            code = exc.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def all_articles(fxcrawl: Fxcrawl) -> Articles:
    return fxcrawl("articles", "list", "--json", "--limit", "1000").json()


@pytest.fixture
def exported(fxcrawl: Fxcrawl) -> Articles:
    """Every article with its body, from `export --format jsonl` on stdout."""
    result = fxcrawl("export", "--format", "jsonl")
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def ids(articles: Articles) -> list[int]:
    return [article["id"] for article in articles]


# -- articles list --------------------------------------------------------------------------


def test_articles_list_json_holds_all_68_articles_with_their_fields(all_articles: Articles) -> None:
    assert len(all_articles) == 68
    assert len(set(ids(all_articles))) == 68
    assert len({a["url"] for a in all_articles}) == 68
    for article in all_articles:
        assert article.keys() >= ARTICLE_FIELDS, article
        assert isinstance(article["id"], int)
        assert re.fullmatch(
            r"https://www\.fx168news\.com/article/\d+|https://news\.fx168news\.com/[a-z]+/\d{4}/\d{7}\.shtml",
            article["url"],
        ), article["url"]
        assert article["title"] and article["source"] and article["author"]
        assert isinstance(article["tags"], list) and all(isinstance(tag, str) for tag in article["tags"])
        assert datetime.fromisoformat(article["published_at"]).utcoffset() == timedelta(hours=8)
    published = [datetime.fromisoformat(a["published_at"]) for a in all_articles]
    assert published == sorted(published, reverse=True), "newest first"


def test_articles_list_has_the_seed_pages_ten_articles_exactly(all_articles: Articles) -> None:
    by_url = {article["url"]: article for article in all_articles}
    for hit in seed_hits():
        article = by_url.get(hit["url"])
        assert article is not None, f"{hit['url']} ({hit['title']}) not listed"
        detail = golden_article(hit["url"])
        assert article["title"] == hit["title"]
        assert article["source"] == hit["source"]
        assert article["author"] == detail["author"]
        assert article["tags"] == detail["tags"]
        assert hit["date"] == "2023-02-24"
        # the detail page's machine-readable time, in the site's own offset
        assert article["published_at"] == detail["published_datetime"] and article["published_at"].endswith("+08:00")
        assert article["published_at"].startswith(f"{hit['date']}T")


def test_articles_list_filters_by_source(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    listed = fxcrawl("articles", "list", "--json", "--limit", "1000", "--source", "金融界").json()
    expected = [a for a in all_articles if a["source"] == "金融界"]
    assert 0 < len(expected) < len(all_articles)
    assert ids(listed) == ids(expected)
    nothing = fxcrawl("articles", "list", "--json", "--source", "no such outlet").json()
    assert nothing == []


def test_articles_list_filters_by_day_in_the_sites_time_zone(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    def day(article: dict[str, Any]) -> str:
        return article["published_at"][:10]  # +08:00 wall-clock date

    one_day = fxcrawl("articles", "list", "--json", "--limit", "1000", "--since", "2023-02-24", "--until", "2023-02-24")
    expected = [a for a in all_articles if day(a) == "2023-02-24"]
    # 2023-02-24 has articles before 08:00 (+08:00), i.e. on the 23rd in UTC, and the 25th
    # has some before 08:00 too: a filter in UTC would get this wrong on both ends.
    assert any(a["published_at"][11:13] < "08" for a in expected)
    assert len(expected) >= 10
    assert ids(one_day.json()) == ids(expected)

    since = fxcrawl("articles", "list", "--json", "--limit", "1000", "--since", "2023-03-01").json()
    assert ids(since) == ids([a for a in all_articles if day(a) >= "2023-03-01"])
    until = fxcrawl("articles", "list", "--json", "--limit", "1000", "--until", "2022-12-22").json()
    assert ids(until) == ids([a for a in all_articles if day(a) <= "2022-12-22"])
    assert 0 < len(since) < len(all_articles) and 0 < len(until) < len(all_articles)


def test_articles_list_since_a_time_is_inclusive(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    last_on_seed_page = seed_hits()[-1]["url"]  # the oldest of the ten, published at 14:10
    at = next(a["published_at"] for a in all_articles if a["url"] == last_on_seed_page)
    since = fxcrawl("articles", "list", "--json", "--limit", "1000", "--since", at[:16].replace("T", " ")).json()
    expected = [a for a in all_articles if datetime.fromisoformat(a["published_at"]) >= datetime.fromisoformat(at)]
    assert last_on_seed_page in {a["url"] for a in since}
    assert 0 < len(expected) < len(all_articles)
    assert ids(since) == ids(expected)


def test_articles_list_search_matches_title_or_body(
    fxcrawl: Fxcrawl,
    all_articles: Articles,
    exported: Articles,
) -> None:
    bodies = {a["id"]: a["body"] for a in exported}
    for text in ("央行", "ChatGPT", "中粮信托"):
        listed = fxcrawl("articles", "list", "--json", "--limit", "1000", "--search", text).json()
        expected = [a for a in all_articles if text in a["title"] or text in bodies[a["id"]]]
        assert 0 < len(expected) < len(all_articles), text
        assert ids(listed) == ids(expected), text


def test_articles_list_search_treats_like_wildcards_as_text(
    fxcrawl: Fxcrawl,
    all_articles: Articles,
    exported: Articles,
) -> None:
    bodies = {a["id"]: a["body"] for a in exported}
    for text in ("_", "%"):
        expected = [a for a in all_articles if text in a["title"] or text in bodies[a["id"]]]
        assert len(expected) < len(all_articles)
        listed = fxcrawl("articles", "list", "--json", "--limit", "1000", "--search", text).json()
        assert ids(listed) == ids(expected), text


def test_articles_list_limit_keeps_the_newest(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    assert ids(fxcrawl("articles", "list", "--json", "--limit", "5").json()) == ids(all_articles[:5])
    default = fxcrawl("articles", "list", "--json").json()
    assert ids(default) == ids(all_articles[:50])
    combined = fxcrawl(
        "articles",
        "list",
        "--json",
        "--source",
        "金融界",
        "--since",
        "2023-02-24",
        "--until",
        "2023-02-24",
        "--limit",
        "3",
    ).json()
    expected = [a for a in all_articles if a["source"] == "金融界" and a["published_at"].startswith("2023-02-24")]
    assert len(expected) > 3
    assert ids(combined) == ids(expected[:3])


# -- articles show --------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 6])
def test_articles_show_by_id_and_by_url_gives_the_body_with_the_snippet(
    fxcrawl: Fxcrawl,
    all_articles: Articles,
    rank: int,
) -> None:
    hit = seed_hits()[rank - 1]
    article_id = next(a["id"] for a in all_articles if a["url"] == hit["url"])
    by_id = fxcrawl("articles", "show", str(article_id), "--json").json()
    by_url = fxcrawl("articles", "show", hit["url"], "--json").json()
    assert by_id == by_url
    assert by_id["id"] == article_id
    assert by_id["url"] == hit["url"]
    assert by_id["title"] == hit["title"]
    assert by_id["source"] == hit["source"]
    assert len(by_id["body"]) >= len(hit["snippet"]) > 0
    assert squeeze(hit["snippet"]) in squeeze(by_id["body"])
    paragraphs = [line for line in by_id["body"].split("\n") if line.strip()]
    assert paragraphs == golden_article(hit["url"])["body"]


def test_articles_show_human_output_has_the_fields_and_the_body(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    hit = seed_hits()[0]
    article = next(a for a in all_articles if a["url"] == hit["url"])
    result = fxcrawl("articles", "show", str(article["id"]))
    assert result.code == 0, result.err
    head = result.out.split("\n\n", 1)[0].splitlines()  # the fields, then a blank line and the body
    fields = dict(line.strip().split(": ", 1) if ": " in line else [line.strip().rstrip(":"), ""] for line in head)
    assert fields["title"] == hit["title"]
    assert fields["source"] == hit["source"]
    assert fields["url"] == hit["url"]
    assert fields["tags"] == ", ".join(article["tags"])
    assert squeeze(hit["snippet"]) in squeeze(result.out)


@pytest.mark.parametrize("unknown", ["999999", "https://www.fx168news.com/article/1"])
def test_articles_show_unknown_exits_1(fxcrawl: Fxcrawl, unknown: str) -> None:
    result = fxcrawl("articles", "show", unknown, "--json")
    assert result.code == 1
    assert result.out == ""
    assert len(result.err.splitlines()) == 1 and unknown in result.err


# -- sources and runs -----------------------------------------------------------------------


def test_sources_list_counts_equal_the_articles_listed(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    sources = fxcrawl("sources", "list", "--json").json()
    counts = {source["name"]: source["articles"] for source in sources}
    assert {"金融界", "金色财经", "格上财富", "证券之星"} <= counts.keys()
    assert counts == dict(Counter(a["source"] for a in all_articles))
    assert sum(counts.values()) == 68
    assert [s["articles"] for s in sources] == sorted(counts.values(), reverse=True)


def test_runs_list_shows_the_finished_crawl(fxcrawl: Fxcrawl) -> None:
    runs = fxcrawl("runs", "list", "--json").json()
    assert len(runs) == 1
    (run,) = runs
    assert run["finish_reason"] == "finished"
    assert run["pages"] == 75  # 7 listing pages + 68 articles
    assert run["new"] == 68
    assert (run["updated"], run["duplicate"], run["rejected"], run["errors"]) == (0, 0, 0, 0)
    assert run["args"]["keyword"] == "现代" and run["args"]["pages"] == PAGES
    assert datetime.fromisoformat(run["finished_at"]) >= datetime.fromisoformat(run["started_at"])


# -- export ---------------------------------------------------------------------------------


def test_export_jsonl_to_a_file_has_every_article_with_its_body(
    fxcrawl: Fxcrawl,
    all_articles: Articles,
    tmp_path: Path,
) -> None:
    out = tmp_path / "articles.jsonl"
    result = fxcrawl("export", "--format", "jsonl", "--out", str(out))
    assert result.code == 0, result.err
    assert result.out == ""
    assert "68" in result.err
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 68
    assert sorted(ids(records)) == sorted(ids(all_articles))
    listed = {a["id"]: a for a in all_articles}
    for record in records:
        assert record["body"].strip()
        assert {k: record[k] for k in ARTICLE_FIELDS} == {k: listed[record["id"]][k] for k in ARTICLE_FIELDS}
    by_url = {record["url"]: record for record in records}
    for hit in seed_hits():
        assert squeeze(hit["snippet"]) in squeeze(by_url[hit["url"]]["body"])


def test_export_csv_to_a_file_parses_back(
    fxcrawl: Fxcrawl,
    exported: Articles,
    tmp_path: Path,
) -> None:
    out = tmp_path / "articles.csv"
    result = fxcrawl("export", "--format", "csv", "--out", str(out))
    assert result.code == 0, result.err
    with out.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        assert set(reader.fieldnames or ()) >= {*ARTICLE_FIELDS, "body"}
    assert len(rows) == 68
    by_id = {record["id"]: record for record in exported}
    assert sorted(int(row["id"]) for row in rows) == sorted(by_id)
    for row in rows:
        record = by_id[int(row["id"])]
        assert row["url"] == record["url"]
        assert row["title"] == record["title"]
        assert row["source"] == record["source"]
        assert row["published_at"] == record["published_at"]
        assert row["tags"] == ";".join(record["tags"])
        assert row["body"] == record["body"]
    assert any("\n" in row["body"] for row in rows)  # multi-line bodies survive the round trip


# -- human output ---------------------------------------------------------------------------


def parse_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of an aligned table, asserting that every column starts at the same
    display column (CJK characters are two columns wide) on every line."""
    lines = text.rstrip("\n").split("\n")
    header, dashes, *rows = lines
    assert re.fullmatch(r"-+(  -+)*", dashes), dashes
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]

    def cells(line: str) -> list[str]:
        at: dict[int, int] = {}  # display column -> index of the character starting there
        column = 0
        for index, char in enumerate(line):
            at[column] = index
            width = wcswidth(char)
            assert width >= 0, f"unprintable {char!r} in {line!r}"
            column += width
        at[column] = len(line)
        out = []
        for number, (start, end) in enumerate(spans):
            assert start in at, f"column {number} does not start at display column {start}: {line!r}"
            first = at[start]
            if number:
                assert line[first - 2 : first] == "  ", f"no gap before column {number}: {line!r}"
            assert first < len(line) and line[first] != " ", f"column {number} empty or misaligned: {line!r}"
            last = at.get(spans[number + 1][0], len(line)) if number + 1 < len(spans) else len(line)
            cell = line[first:last].rstrip()
            assert wcswidth(cell) <= end - start, f"column {number} wider than its dashes: {line!r}"
            out.append(cell)
        return out

    return cells(header), [cells(row) for row in rows]


def test_articles_list_table_is_aligned_in_display_width(fxcrawl: Fxcrawl, all_articles: Articles) -> None:
    result = fxcrawl("articles", "list", "--limit", "1000")
    assert result.code == 0, result.err
    header, rows = parse_table(result.out)
    assert header == ["id", "published", "source", "title"]
    assert len(rows) == len(all_articles) == 68
    truncated = 0
    for (article_id, published, source, title), article in zip(rows, all_articles, strict=True):
        assert article_id == str(article["id"])
        assert published == article["published_at"][:16].replace("T", " ")
        assert source == article["source"]
        if wcswidth(article["title"]) <= TITLE_WIDTH:
            assert title == article["title"]
        else:
            truncated += 1
            assert title.endswith("…") and article["title"].startswith(title[:-1])
            assert TITLE_WIDTH - 2 <= wcswidth(title) <= TITLE_WIDTH
    assert truncated >= 1  # the seed's 【预见2023】中粮信托曲晓燕… title is wider than the column


def test_sources_and_runs_tables_are_aligned(fxcrawl: Fxcrawl) -> None:
    sources = fxcrawl("sources", "list", "--json").json()
    header, rows = parse_table(fxcrawl("sources", "list").out)
    assert header == ["id", "source", "articles", "last seen"]
    assert [(row[1], row[2]) for row in rows] == [(s["name"], str(s["articles"])) for s in sources]

    header, rows = parse_table(fxcrawl("runs", "list").out)
    assert header[:5] == ["run", "started", "finish", "pages", "new"]
    assert len(rows) == 1
    assert rows[0][2:5] == ["finished", "75", "68"]


# -- bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["articles", "list", "--limit", "0"], "0"),
        (["articles", "list", "--since", "bogus"], "bogus"),
        (["articles", "list", "--until", "bogus"], "bogus"),
        (["bogus"], "bogus"),
        (["articles", "bogus"], "bogus"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_2(fxcrawl: Fxcrawl, args: list[str], culprit: str) -> None:
    result = fxcrawl(*args)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1, result.err
    assert result.err.startswith("fxcrawl: error:") and culprit in result.err


@pytest.mark.parametrize("pages", ["0-3", "5-2"])
def test_bad_page_ranges_print_one_line_and_exit_2(tmp_path: Path, pages: str) -> None:
    # --replay: should the range be accepted after all, nothing reaches the live site
    db = tmp_path / "never.db"
    done = fxcrawl_process("crawl", "search", "--pages", pages, "--replay", "--db", f"sqlite:///{db}", timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("fxcrawl: error:") and repr(pages) in done.stderr


# -- output plumbing ------------------------------------------------------------------------


def test_json_output_follows_redirected_stdout(db: str) -> None:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(["sources", "list", "--json", "--db", db])
    assert code == 0
    assert {source["name"] for source in json.loads(buffer.getvalue())} >= {"金融界", "金色财经"}
