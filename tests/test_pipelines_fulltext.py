"""Full-text search equals a plain scan: substrings for Chinese, whole words for Latin and numbers.

The reference below shares no code with storage/fulltext.py: it reads every article and
checks each term with `in` (Chinese) or a word-boundary test (Latin words and numbers).
"""

from __future__ import annotations

import random
import subprocess
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from conftest import FXCRAWL, article_item, make_crawler
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from pipelines.database import database_for
from pipelines.store import StorePipeline
from pipelines.validate import ValidatePipeline
from storage import fulltext
from storage.db import Database
from storage.migrations import alembic_config
from storage.models import Article, Source


def _cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\u3040" <= ch <= "\u30ff"


def _pieces(word: str) -> list[tuple[str, bool]]:
    """A query word split into Chinese and Latin/number pieces, the reference's own way."""
    out: list[tuple[str, bool]] = []
    for ch in unicodedata.normalize("NFKC", word).lower():
        kind = _cjk(ch) if (ch.isalnum() and ch != "_") else None
        if kind is None:
            out.append(("", False))
        elif out and out[-1][0] and out[-1][1] == kind:
            out[-1] = (out[-1][0] + ch, kind)
        else:
            out.append((ch, kind))
    return [piece for piece in out if piece[0]]


def _has_word(text: str, word: str) -> bool:
    text = unicodedata.normalize("NFKC", text).lower()
    start = text.find(word)
    while start >= 0:
        before = text[start - 1] if start else " "
        after = text[start + len(word)] if start + len(word) < len(text) else " "
        if not (before.isalnum() and not _cjk(before)) and not (after.isalnum() and not _cjk(after)):
            return True
        start = text.find(word, start + 1)
    return False


def reference(articles: list[dict[str, Any]], query: str, **filters: Any) -> list[int]:
    """Ids of the articles a full scan says match, newest first."""
    pieces = [piece for word in query.split() for piece in _pieces(word)]
    out = []
    for a in articles:
        if filters.get("source") and a["source"] != filters["source"]:
            continue
        if filters.get("since") and (a["published_at"] is None or a["published_at"] < filters["since"]):
            continue
        if filters.get("until") and (a["published_at"] is None or a["published_at"] >= filters["until"]):
            continue
        if all(
            (p in a["title"] or p in a["body"]) if cjk else (_has_word(a["title"], p) or _has_word(a["body"], p))
            for p, cjk in pieces
        ):
            out.append(a)
    out.sort(key=lambda a: (a["published_at"] is not None, a["published_at"] or datetime.min.replace(tzinfo=UTC)))
    return [a["id"] for a in reversed(out)]


def stored(database: Database) -> list[dict[str, Any]]:
    with database.session() as session:
        rows = session.execute(
            select(Article.id, Article.title, Article.body, Article.published_at, Source.name).join(Source)
        )
        return [dict(zip(("id", "title", "body", "published_at", "source"), row, strict=True)) for row in rows]


def search_all(database: Database, query: str, page: int = 7, **filters: Any) -> list[dict[str, Any]]:
    """Every result, page by page through the cursors."""
    out: list[dict[str, Any]] = []
    cursor = None
    with database.session() as session:
        while True:
            found = fulltext.search(session, query, limit=page, cursor=cursor, **filters)
            out += found.results
            if found.next_cursor is None:
                return out
            cursor = found.next_cursor


def assert_same(database: Database, articles: list[dict[str, Any]], query: str, **filters: Any) -> int:
    expected = reference(articles, query, **filters)
    results = search_all(database, query, **filters)
    got = [r["id"] for r in results]
    assert sorted(got) == sorted(expected), query
    assert len(set(got)) == len(got), f"{query}: an article twice"
    dates = [r["published_at"] for r in results if r["published_at"]]
    assert dates == sorted(dates, reverse=True), f"{query}: not newest first"
    nulls = [r["published_at"] is None for r in results]
    assert nulls == sorted(nulls), f"{query}: an unknown date before a known one"
    return len(expected)


def store_items(database_url: str, items: list) -> None:
    crawler = make_crawler(FXCRAWL_DATABASE_URL=database_url, FXCRAWL_STORE_BATCH_SIZE=100)
    validate = ValidatePipeline.from_crawler(crawler)
    store = StorePipeline.from_crawler(crawler)
    store.open_spider()
    for item in items:
        store.process_item(validate.process_item(item))
    store.close_spider()
    database_for(crawler).dispose()


WORDS = ("现代", "现代化", "金融", "体系", "央行", "市场", "风险", "改革", "开放", "数字", "经济", "增长", "人民币")
LATIN = ("GDP", "gdp", "Fed", "A股", "2023", "3.5%", "CPI数据", "fed2", "ETF", "x", "Café")
PUNCT = ("，", "。", "、", "：", " ", "\n", "“", "”", "-", "/")


def generated_items(n: int, seed: int = 17) -> list:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(5, 60)):
            roll = rng.random()
            if roll < 0.55:
                parts.append(rng.choice(WORDS))
            elif roll < 0.65:
                parts.append(rng.choice(LATIN))
            elif roll < 0.85:
                parts.append(chr(rng.randint(0x4E00, 0x4E00 + 300)))
            else:
                parts.append(rng.choice(PUNCT))
        body = "".join(parts)
        paragraphs = [p for p in body.split("\n") if p.strip()] or ["空"]
        title = "".join(rng.choice(WORDS + LATIN) for _ in range(rng.randint(1, 4)))
        day = 1 + i % 28
        published = f"2023-{1 + (i * 7) % 12:02d}-{day:02d} {i % 24:02d}:{(i * 13) % 60:02d}"
        if i % 23 == 0:
            published = "2023-13-45"  # unreadable: stored with an unknown date
        items.append(
            article_item(
                f"https://www.fx168news.com/article/{900000 + i}",
                title=title,
                body=paragraphs,
                published=published,
                source=rng.choice(("金融界", "金色财经", "证券之星")),
                tags=[],
            )
        )
    return items


QUERIES = (
    "现代",
    "现",
    "化",
    "现代化",
    "代化",
    "现代 金融",
    "现代化 体系 央行",
    "人民币",
    "币",
    "gdp",
    "GDP",
    "fed",
    "fed2",
    "2023",
    "A股",
    "股",
    "cpi",
    "cpi数据",
    "café",
    "x",
    "ETF 现代",
    "不存在的词",
    "zzz",
    "3.5",
)


def test_the_analyzer_makes_bigrams_and_keeps_latin_words_whole() -> None:
    assert fulltext.analyze("中国式现代化") == ["中国", "国式", "式现", "现代", "代化", "化"]
    assert fulltext.analyze("央") == ["央"]
    assert fulltext.analyze("A股上涨3.5%，ＧＤＰ增长 Café") == [
        "a",
        "股上",
        "上涨",
        "涨",
        "3",
        "5",
        "gdp",
        "增长",
        "长",
        "café",
    ]


#: Text as articles hold it: ideographs, kana, Hangul, astral ideographs, Latin words with
#: accents and full-width forms, digits, punctuation of both widths, compatibility ideographs
#: (NFKC changes them), NUL and other controls.
_MIXED_TEXT = st.text(
    alphabet=st.sampled_from(
        list("中国式现代化央行利率上涨ひらがなカタカナ한국어𠀀𠀁")
        + list("abcXYZé09ＧＤＰ１２，。、！ -_.%\n\x00\t")
        + ["\uf900", "\uff76", "\u3000"]
    ),
    max_size=80,
)


@given(title=_MIXED_TEXT, body=_MIXED_TEXT)
@settings(max_examples=400, deadline=None)
def test_the_stored_document_holds_exactly_the_analyzers_tokens(title: str, body: str) -> None:
    """document() is analyze() built another way, for speed: the same tokens, as many times."""
    assert sorted(fulltext.document(title, body).split()) == sorted(fulltext.analyze(f"{title}\n{body}"))


def test_the_stored_document_of_one_run_is_its_bigrams_then_its_last_character() -> None:
    assert fulltext.document("中国式现代化", "") == "中国 国式 式现 现代 代化 化"
    assert fulltext.document("央", "A股") == "央 股 a"
    assert fulltext.document("", "") == ""


def test_queries_are_parsed_into_tokens_prefixes_and_checks() -> None:
    query = fulltext.parse_query('现代化 央 GDP "Federal Reserve"')
    assert query.tokens == ["现代", "代化", "gdp", "federal", "reserve"]
    assert query.prefixes == ["央"]
    assert query.substrings == ["现代化"]
    assert query.phrases == ["federal reserve"]
    with pytest.raises(ValueError, match="nothing to search for"):
        fulltext.parse_query(" ，。 ")


def test_search_equals_a_scan_on_generated_articles(database_url: str) -> None:
    store_items(database_url, generated_items(400))
    database = Database(database_url)
    articles = stored(database)
    assert len(articles) == 400
    total = sum(assert_same(database, articles, q) for q in QUERIES)
    assert total > 1000  # the queries do find things
    assert_same(database, articles, "现代", source="金融界")
    assert_same(database, articles, "现代", source="无此来源")
    since, until = datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 6, 15, 12, tzinfo=UTC)
    assert_same(database, articles, "金融 gdp", since=since)
    assert_same(database, articles, "现代化", until=until)
    assert_same(database, articles, "现", since=since, until=until, source="证券之星")
    database.dispose()


@pytest.mark.parametrize(
    ("probe", "walk"),
    [(5, 40), (5, 1000), (0, 3), (1000, 1000)],
    ids=["walk-falls-short-then-gin", "walk-fills", "gin-at-once", "probe-only"],
)
def test_every_postgres_plan_equals_a_scan(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, probe: int, walk: int
) -> None:
    """PostgreSQL's newest-first search picks its plan by what the newest rows held (probe them,
    walk on, or sort GIN's matches): with small thresholds each is taken, paged through, and must
    give the scan's answer."""
    monkeypatch.setattr(fulltext, "PROBE_ROWS", probe)
    monkeypatch.setattr(fulltext, "WALK_ROWS", walk)
    # the newest articles hold both bigrams of 现代化 but never the word: the text check must run
    decoys = [
        article_item(
            f"https://www.fx168news.com/article/{990000 + i}",
            title=f"现代与代化之{i}",
            body=["现代。代化，金融"],
            published=f"2024-01-{1 + i:02d} 08:00",
            source="金融界",
            tags=[],
        )
        for i in range(25)
    ]
    store_items(postgres_url, generated_items(200, seed=5) + decoys)
    database = Database(postgres_url)
    articles = stored(database)
    for query in ("现代", "现代化", "现代 金融", "gdp", "币", "cpi数据", "不存在的词"):
        assert_same(database, articles, query)
    assert_same(database, articles, "现代", source="金融界")
    assert_same(database, articles, "现代化", since=datetime(2023, 3, 1, tzinfo=UTC))
    database.dispose()


def test_revised_articles_are_found_by_their_new_text_only(database_url: str) -> None:
    url = "https://www.fx168news.com/article/77"
    store_items(database_url, [article_item(url, title="旧标题", body=["原来的正文讲改革。"])])
    store_items(database_url, [article_item(url, title="新标题", body=["修订后的正文讲开放。"])])
    store_items(
        database_url, [article_item(url, title="新标题", body=["再修订的正文讲开放。"], published="2023-03-01 10:00")]
    )
    database = Database(database_url)
    with database.session() as session:
        assert fulltext.search(session, "改革").results == []
        assert fulltext.search(session, "旧标题").results == []
        found = fulltext.search(session, "开放").results
        assert [r["url"] for r in found] == [url]
        assert fulltext.search(session, "开放", since=datetime(2023, 3, 1, tzinfo=UTC)).results == found
    database.dispose()


def test_ranking_snippets_and_phrases(database_url: str) -> None:
    store_items(
        database_url,
        [
            article_item("https://www.fx168news.com/article/1", title="现代", body=["现代" * 20 + "，现代金融。"]),
            article_item("https://www.fx168news.com/article/2", title="别的", body=["一次现代，其余是别的内容。" * 5]),
            article_item(
                "https://www.fx168news.com/article/3",
                title="Fed",
                body=["The Federal Reserve raised rates; reserve federal 现代 <script>"],
                published="2023-01-01 08:00",
            ),
        ],
    )
    database = Database(database_url)
    with database.session() as session:
        ranked = fulltext.search(session, "现代", rank=True).results
        assert next(r["id"] for r in ranked) == session.scalar(select(Article.id).where(Article.title == "现代"))
        assert all("score" in r for r in ranked)
        phrase = fulltext.search(session, '"federal reserve"').results
        assert [r["title"] for r in phrase] == ["Fed"]
        assert fulltext.search(session, '"reserve raised federal"').results == []
        result = fulltext.search(session, "reserve 现代").results[0]
        marked = fulltext.marked(result["snippet"], result["snippet_marks"])
        assert "【Reserve】" in marked and "【reserve】" in marked and "【现代】" in marked
        assert "<script>" in result["snippet"]  # text, escaped by whoever renders it
        page = fulltext.search(session, "现代", limit=1, rank=True)
        assert page.next_cursor and len(page.results) == 1
        second = fulltext.search(session, "现代", limit=1, rank=True, cursor=page.next_cursor).results
        assert second[0]["id"] == ranked[1]["id"]
        with pytest.raises(ValueError, match="bad cursor"):
            fulltext.search(session, "现代", cursor="nonsense")
    database.dispose()


def test_the_migration_indexes_an_existing_store(database_url: str) -> None:
    store_items(database_url, generated_items(120, seed=5))
    database = Database(database_url)
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004_news_identity")  # the revision before the index
    with database.engine.begin() as connection:
        assert not set(fulltext.INDEX_TABLES) & set(inspect(connection).get_table_names()) - {"sqlite_sequence"}
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    articles = stored(database)
    for query in ("现代", "现代化 金融", "gdp", "化"):
        assert_same(database, articles, query)
    database.dispose()


def test_search_equals_a_scan_on_the_bundled_articles_after_a_replay_crawl(database_url: str, tmp_path) -> None:
    crawl = subprocess.run(
        [
            *FXCRAWL,
            "crawl",
            "search",
            "--keyword",
            "现代",
            "--pages",
            "1,951-955,1000",
            "--replay",
            "--log-level",
            "WARNING",
            "--db",
            database_url,
            "-s",
            f"FXCRAWL_SPOOL_DIR={tmp_path / 'spool'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crawl.returncode == 0, crawl.stderr
    database = Database(database_url)
    articles = stored(database)
    assert len(articles) > 50
    words = {"现代", "现", "中国式现代化", "央行", "金融 现代", "a股", "2023", "美联储", "的", "港股 市场"}
    words |= {a["title"][:2] for a in articles[:10]} | {a["title"][1:5] for a in articles[:10]}
    for query in sorted(words):
        assert_same(database, articles, query)
    database.dispose()


def test_a_giant_article_is_stored_and_found(database_url: str) -> None:
    rng = random.Random(9)
    body = ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(2000)) for _ in range(150)]  # 300,000 characters
    body[0] = "开头的现代" + body[0]
    store_items(database_url, [article_item("https://www.fx168news.com/article/31", title="巨型", body=body)])
    database = Database(database_url)
    with database.session() as session:  # stored (not spooled), and found by its first words at least
        assert [r["title"] for r in fulltext.search(session, "巨型 现代").results] == ["巨型"]
    database.dispose()
