"""The parsers read pages as a reader sees them: fixture pages rewritten in ways that change
the markup but not what a browser shows give the same records as the pages themselves.

The rewrites (crawler.replay.perturb) are generic over any HTML page, and the pages are whatever
``fixture_pages()`` yields, so these tests hold for re-rendered fixtures too.
"""

from __future__ import annotations

import functools
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from crawler import site
from crawler.items import ArticleItem, to_jsonable
from crawler.parsing import parse_article_page, parse_search_page
from crawler.parsing.dates import SITE_TZ, parse_published
from crawler.replay import perturb
from crawler.replay.golden import fixture_pages

PAGES = list(fixture_pages())
LISTINGS = [(path, url) for path, url in PAGES if site.parse_search_url(url)]
ARTICLES = [(path, url) for path, url in PAGES if not site.parse_search_url(url)]
BODY = site.ARTICLE.body


def _ids(pages: list[tuple[Path, str]]) -> list[str]:
    return [f"{path.parent.name}/{path.name}" for path, _ in pages]


def records(html: str, url: str) -> Any:
    parser = parse_search_page if site.parse_search_url(url) else parse_article_page
    return to_jsonable(parser(html, url), derived=False)


@functools.cache
def original(path: Path, url: str) -> tuple[str, Any]:
    html = path.read_text(encoding="utf-8")
    return html, records(html, url)


def rewritten(path: Path, url: str, rewrite: perturb.Rewrite, seed: int = 0) -> tuple[str, Any, Any]:
    """(the rewritten page, its records, the page's own records)."""
    html, expected = original(path, url)
    changed = perturb.perturbed(html, [rewrite], seed)
    assert changed != perturb.serialise(perturb.parse(html)), "the rewrite changed nothing"
    return changed, records(changed, url), expected


# -- each case of the issue, on every fixture page it applies to ----------------------------


@pytest.mark.parametrize(("path", "url"), LISTINGS, ids=_ids(LISTINGS))
def test_a_pretty_printed_listing_gives_the_records_of_the_compact_one(path: Path, url: str) -> None:
    page, got, expected = rewritten(path, url, perturb.reindent)
    assert re.search(r'class="hl">\n +现', page), "highlighted characters on lines of their own"
    assert got == expected


@pytest.mark.parametrize(("path", "url"), ARTICLES[:12], ids=_ids(ARTICLES[:12]))
def test_an_extra_wrapper_around_the_body_paragraphs_changes_nothing(path: Path, url: str) -> None:
    wrap = functools.partial(perturb.wrap_blocks, containers=BODY)
    page, got, expected = rewritten(path, url, wrap)
    assert perturb.parse(page).xpath('//div[@class="article-body"]/*[self::section or self::div]/p')
    assert got == expected


@pytest.mark.parametrize(("path", "url"), ARTICLES[:12], ids=_ids(ARTICLES[:12]))
def test_br_br_between_paragraphs_is_a_paragraph_break(path: Path, url: str) -> None:
    merge = functools.partial(perturb.merge_paragraphs, containers=BODY)
    page, got, expected = rewritten(path, url, merge)
    assert "<br><br>" in page.replace("\n", "").replace(" ", "")
    assert len(got["body"]) == len(expected["body"]) > 1
    assert got == expected


def _zero_width_in(css: str) -> perturb.Rewrite:
    def rewrite(root: etree._Element, rng: random.Random) -> None:
        for element in root.iter(etree.Element):
            if element.get("class") and any(f".{cls}" in css for cls in element.get("class").split()):
                text = element.text or ""
                cut = rng.randrange(1, len(text)) if len(text) > 1 else 0
                element.text = f"\ufeff{text[:cut]}\u200b{text[cut:]}\u00ad"

    return rewrite


@pytest.mark.parametrize(("path", "url"), [*LISTINGS[:3], *ARTICLES[:6]], ids=_ids([*LISTINGS[:3], *ARTICLES[:6]]))
def test_zero_width_characters_in_titles_and_source_names_are_dropped(path: Path, url: str) -> None:
    targets = ".article-title .source-name .item-title .hot-title"
    _, got, expected = rewritten(path, url, _zero_width_in(targets))
    assert got == expected


# -- dates, on a fixture article page with its date shown another way ------------------------

FETCHED = datetime(2027, 1, 2, 22, 0, tzinfo=UTC)  # 06:00 on 3 January 2027 in Shanghai
LOCAL = FETCHED.astimezone(SITE_TZ)
TODAY = LOCAL.replace(hour=0, minute=0)


def _at(days: int, hour: int = 0, minute: int = 0) -> datetime:
    """The fetch day plus ``days``, at hour:minute, Shanghai time."""
    return datetime.combine(TODAY.date() + timedelta(days=days), datetime.min.time(), SITE_TZ).replace(
        hour=hour, minute=minute
    )


DATE_FORMS = {
    "刚刚": LOCAL,
    "30秒前": LOCAL - timedelta(seconds=30),
    "5分钟前": LOCAL - timedelta(minutes=5),
    "半小时前": LOCAL - timedelta(minutes=30),
    "3小时前": LOCAL - timedelta(hours=3),
    "今天 05:10": _at(0, 5, 10),
    "昨天 10:30": _at(-1, 10, 30),
    "前天 23:59": _at(-2, 23, 59),
    "2天前": LOCAL - timedelta(days=2),
    "05:40": _at(0, 5, 40),
    "19:12": _at(-1, 19, 12),  # read at 06:00: yesterday's, not 13 hours ahead
    "12-26": datetime(2026, 12, 26, tzinfo=SITE_TZ),  # read on 3 January: last year's
    "01-02 15:30": datetime(2027, 1, 2, 15, 30, tzinfo=SITE_TZ),
    "11月22日": datetime(2026, 11, 22, tzinfo=SITE_TZ),
    "11月22日 15:30": datetime(2026, 11, 22, 15, 30, tzinfo=SITE_TZ),
    "11月22日15:30": datetime(2026, 11, 22, 15, 30, tzinfo=SITE_TZ),
    "2022年12月21日 14:20": datetime(2022, 12, 21, 14, 20, tzinfo=SITE_TZ),
    "2022年12月21日14:20": datetime(2022, 12, 21, 14, 20, tzinfo=SITE_TZ),
    "2022-12-21": datetime(2022, 12, 21, tzinfo=SITE_TZ),
    "2022/12/21": datetime(2022, 12, 21, tzinfo=SITE_TZ),
    "２０２２年１２月２１日 １４：２０": datetime(2022, 12, 21, 14, 20, tzinfo=SITE_TZ),
    "１９：１２": _at(-1, 19, 12),
}


def _with_date(html: str, shown: str, machine: str | None) -> str:
    root = perturb.parse(html)
    [time] = [el for el in root.iter("time") if "article-time" in (el.get("class") or "")]
    time.text = shown
    if machine is None:
        time.attrib.pop("datetime", None)
    else:
        time.set("datetime", machine)
    return perturb.serialise(root)


def _published(item: ArticleItem) -> datetime:
    return parse_published(item.published, FETCHED, machine=item.published_datetime)


@pytest.mark.parametrize(("shown", "expected"), DATE_FORMS.items(), ids=list(DATE_FORMS))
def test_each_date_form_on_an_article_page_reads_as_the_right_instant(shown: str, expected: datetime) -> None:
    path, url = ARTICLES[0]
    html, page_records = original(path, url)
    item = parse_article_page(_with_date(html, shown, None), url)
    assert item.published == shown.replace("\u3000", " ").strip()  # the visible text is kept
    assert _published(item) == expected
    unchanged = {key: value for key, value in page_records.items() if key not in ("published", "published_datetime")}
    assert {key: value for key, value in to_jsonable(item, derived=False).items() if key in unchanged} == unchanged


@pytest.mark.parametrize(
    ("shown", "machine", "expected"),
    [
        ("12-21", "2026-12-21T10:31:00+08:00", datetime(2026, 12, 21, 10, 31, tzinfo=SITE_TZ)),
        ("3天前", "2026-12-30T08:15:00+08:00", datetime(2026, 12, 30, 8, 15, tzinfo=SITE_TZ)),
        ("刚才发布", "2027-01-03T05:58:00+08:00", datetime(2027, 1, 3, 5, 58, tzinfo=SITE_TZ)),  # text unreadable
        ("2026-12-21 10:31", "2026-12-21", datetime(2026, 12, 21, 10, 31, tzinfo=SITE_TZ)),  # the text is finer
    ],
)
def test_a_time_datetime_attribute_wins_over_coarser_visible_text(shown: str, machine: str, expected: datetime) -> None:
    path, url = ARTICLES[0]
    item = parse_article_page(_with_date(original(path, url)[0], shown, machine), url)
    assert (item.published, item.published_datetime) == (shown, machine)
    assert _published(item) == expected


# -- the property: any mix of the rewrites, on any fixture page ------------------------------

STRUCTURAL: list[perturb.Rewrite] = [
    perturb.reindent,
    functools.partial(perturb.reindent, share=0.5),
    functools.partial(perturb.wrap_blocks, containers=BODY),
    perturb.wrap_inline,
    perturb.shuffle_attributes,
    perturb.insert_comments,
    functools.partial(perturb.merge_paragraphs, containers=BODY),
    perturb.zero_width,
]


@settings(
    derandomize=True,
    database=None,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    page=st.sampled_from(PAGES),
    rewrites=st.lists(st.sampled_from(STRUCTURAL), min_size=1, max_size=5),
    entities=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_meaning_preserving_rewrites_of_any_fixture_page_give_the_same_records(
    page: tuple[Path, str], rewrites: list[perturb.Rewrite], entities: bool, seed: int
) -> None:
    path, url = page
    html, expected = original(path, url)
    changed = perturb.perturbed(html, [*rewrites, *([perturb.entities] if entities else [])], seed)
    assert records(changed, url) == expected


def test_rewrites_leave_scripts_and_the_head_alone() -> None:
    """A Next.js page's data lives in a script: no rewrite may touch it."""
    blob = '{"props":{"pageProps":{"title":"现代\\n化","newsContent":"<p>正文</p><p>二</p>"}}}'
    page = (
        "<!DOCTYPE html><html><head><title>现代 化</title></head><body><div class='article-body'><p>正文</p>"
        f'<p>二段</p></div><script id="__NEXT_DATA__" type="application/json">{blob}</script>'
        "<p>尾<span>现</span><span>代</span>化</p></body></html>"
    )
    everything = [*STRUCTURAL, perturb.entities]
    for seed in range(20):
        root = perturb.parse(perturb.perturbed(page, everything, seed))
        assert root.find(".//script").text == blob
        assert root.find(".//title").text == "现代 化"
