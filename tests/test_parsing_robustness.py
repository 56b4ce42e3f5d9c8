"""The parsers read pages as a reader sees them, on both of a page's paths.

A fixture page is HTML with its data also as JSON in ``<script id="__NEXT_DATA__">``; the
parsers read the JSON first and the HTML second (``use_json=False``: the HTML alone). So each
rewrite that changes markup but not what a browser shows (tests/support/perturb.py) is tried on
both halves of a page:

- the HTML path: the page's markup outside the script rewritten, read with ``use_json=False``,
  must give the records the page's own HTML gives;
- the JSON path: the HTML strings inside the JSON (an article's ``newsContent``, a search hit's
  ``highlightContent``, a 快讯 item's ``textContent``) rewritten and the JSON written back as
  Next.js writes it, read by default, must give the records the page's own JSON gives, with no
  drift between the two halves.

The rewrites are generic over any HTML, and the pages are whatever ``fixture_pages()`` yields
(every page kind), so these tests hold for re-rendered fixtures too.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from support import perturb

from fx168 import site
from fx168.items import ArticleItem, to_jsonable
from fx168.parsing.dates import SITE_TZ, parse_published
from fx168.parsing.nextdata import differences, iso_time, next_data, split_page
from fx168.parsing.text import select
from pipelines.validate import ValidatePipeline
from replay.golden import PARSERS, fixture_pages
from replay.server import FIXTURE_SITE

Page = tuple[Path, str]
K = site.NEWS
J = site.SEARCH_JSON
F = site.FAST_NEWS

#: The keys of a page's JSON whose values are HTML: the JSON-path rewrites work on these.
HTML_KEYS = frozenset({K.content, J.highlight, F.text})
#: Plain-text twins the parsers read instead of an HTML key when both are there (a 快讯 item's
#: ``pureTextContent``): dropped before the JSON is rewritten, so that the HTML is what is read.
PLAIN_TWINS = frozenset({F.plain_text})
#: The elements holding an article's body paragraphs: the page's body container, the
#: ``newsContent`` container in it (and in the JSON), a legacy page's body.
CONTAINERS = f"{site.ARTICLE.body}, {site.CONTENT.container}, {site.LEGACY_ARTICLE.body}"

PAGES: list[Page] = list(fixture_pages())


def _kind(url: str) -> site.PageKind:
    kind = site.page_kind(url)
    assert kind is not None, url
    return kind


BY_KIND: dict[site.PageKind, list[Page]] = {}
for _page in PAGES:
    BY_KIND.setdefault(_kind(_page[1]), []).append(_page)


def _has_html_in_json(page: Page) -> bool:
    data = next_data(page[0].read_text(encoding="utf-8"))
    return data is not None and any(perturb.html_strings(data, HTML_KEYS))


LISTINGS = BY_KIND[site.PageKind.SEARCH]
#: Portal article pages with a body (not a video item's player).
ARTICLES = [page for page in BY_KIND[site.PageKind.ARTICLE] if _has_html_in_json(page)]
LEGACY = BY_KIND.get(site.PageKind.LEGACY_ARTICLE, [])


def _ids(pages: list[Page]) -> list[str]:
    return [f"{path.parent.name}/{path.name}" for path, _ in pages]


def read(html: str, url: str, *, use_json: bool = True) -> Any:
    """The page record its parser gives (by default the JSON first, the HTML read to verify)."""
    return PARSERS[_kind(url)](html, url, use_json=use_json)


def records(page: Any) -> Any:
    """What a page record holds, as the goldens keep it (not how it was read)."""
    return to_jsonable(page, derived=False, meta=False)


def drop_twins(html: str) -> str:
    """The page with the plain-text twins of its JSON's HTML strings left out."""

    def edit(data: Any) -> Any:
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if any(key in node for key in HTML_KEYS):
                    for twin in PLAIN_TWINS:
                        node.pop(twin, None)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return data

    return perturb.with_next_data(html, edit)


@dataclass(frozen=True)
class Original:
    html: str  # the page as served
    json_html: str  # the page with the plain-text twins dropped: the page the JSON rewrites start from
    by_html: Any  # its records from the HTML path
    by_json: Any  # its records from the default path
    via: str  # which path the default read took ("json"; "html" for a page without JSON)


@functools.cache
def original(path: Path, url: str) -> Original:
    html = path.read_text(encoding="utf-8")
    default = read(html, url)
    assert default.drift == [], f"the fixture page itself drifts: {default.drift}"
    return Original(html, drop_twins(html), records(read(html, url, use_json=False)), records(default), default.via)


def html_half(page: Page, rewrites: list[perturb.Rewrite], seed: int = 0) -> tuple[str, Any]:
    """(the page with its HTML rewritten, the HTML path's record of it)."""
    path, url = page
    html = original(path, url).html
    changed = perturb.perturbed(html, rewrites, seed)
    assert changed != perturb.serialise(perturb.parse(html)), "the rewrite changed nothing"
    return changed, read(changed, url, use_json=False)


def json_half(page: Page, rewrites: list[perturb.Rewrite], seed: int = 0) -> tuple[str, Any]:
    """(the page with the HTML in its JSON rewritten, the default path's record of it, which
    must have come from the JSON and agree with the page's unchanged HTML)."""
    path, url = page
    html = original(path, url).json_html
    changed = perturb.perturbed_next_data(html, rewrites, seed, HTML_KEYS)
    assert changed != html, "the rewrite changed nothing"
    got = read(changed, url)
    assert (got.via, got.drift) == ("json", [])
    return changed, got


def json_strings(html: str, key: str) -> list[str]:
    data = next_data(html)
    return [node[k] for node, k in perturb.html_strings(data, frozenset({key}))]


# -- each case of the issue, on every fixture page it applies to, on both paths ----------------


#: Pretty-printing: each element on its own line, and long lines broken at their spaces.
PRETTY: list[perturb.Rewrite] = [perturb.reindent, functools.partial(perturb.break_spaces, share=1.0)]


def first_keyword_character(url: str) -> str:
    """The first character of the keyword a listing's search URL asks for."""
    query = site.parse_search_url(url)
    assert query is not None, url
    return query.keyword[0]


@pytest.mark.parametrize("page", LISTINGS, ids=_ids(LISTINGS))
def test_a_pretty_printed_listing_gives_the_records_of_the_compact_one(page: Page) -> None:
    first = first_keyword_character(page[1])
    changed, got = html_half(page, PRETTY)
    assert re.search(rf'class="hl">\n +{first}', changed), "highlighted characters on lines of their own"
    assert records(got) == original(*page).by_html


@pytest.mark.parametrize("page", LISTINGS, ids=_ids(LISTINGS))
def test_pretty_printed_snippets_in_the_json_give_the_records_of_the_compact_ones(page: Page) -> None:
    first = first_keyword_character(page[1])
    changed, got = json_half(page, PRETTY)
    assert any(re.search(rf'class="hl">\n +{first}', s) for s in json_strings(changed, J.highlight))
    assert records(got) == original(*page).by_json
    assert any(hit.highlights for hit in got.hits)


def _deepest_paragraph(root: etree._Element) -> int:
    return max((len(list(p.iterancestors())) for p in root.iter("p")), default=0)


def _fragment(html: str) -> etree._Element:
    [content] = json_strings(html, K.content)
    return perturb.parse(f"<html><body>{content}</body></html>")


WRAPPERS = ["section", "div"]


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("page", [*ARTICLES[:12], *LEGACY], ids=_ids([*ARTICLES[:12], *LEGACY]))
def test_an_extra_wrapper_around_the_body_paragraphs_changes_nothing(page: Page, wrapper: str) -> None:
    wrap = functools.partial(perturb.wrap_blocks, containers=CONTAINERS, wrappers=(wrapper,))
    changed, got = html_half(page, [wrap])
    assert _deepest_paragraph(perturb.parse(changed)) > _deepest_paragraph(perturb.parse(original(*page).html))
    assert records(got) == original(*page).by_html


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("page", ARTICLES[:12], ids=_ids(ARTICLES[:12]))
def test_an_extra_wrapper_around_the_paragraphs_of_the_json_body_changes_nothing(page: Page, wrapper: str) -> None:
    wrap = functools.partial(perturb.wrap_blocks, containers=CONTAINERS, wrappers=(wrapper,))
    changed, got = json_half(page, [wrap])
    assert _deepest_paragraph(_fragment(changed)) > _deepest_paragraph(_fragment(original(*page).html))
    assert records(got) == original(*page).by_json


def _br_br(text: str) -> bool:
    return "<br><br>" in re.sub(r"\s+", "", text)


@pytest.mark.parametrize("page", [*ARTICLES[:12], *LEGACY], ids=_ids([*ARTICLES[:12], *LEGACY]))
def test_br_br_between_paragraphs_is_a_paragraph_break(page: Page) -> None:
    merge = functools.partial(perturb.merge_paragraphs, containers=CONTAINERS)
    changed, got = html_half(page, [merge])
    assert _br_br(split_page(changed).markup)
    assert len(got.article.body) == len(original(*page).by_html["article"]["body"]) > 1
    assert records(got) == original(*page).by_html


@pytest.mark.parametrize("page", ARTICLES[:12], ids=_ids(ARTICLES[:12]))
def test_br_br_between_paragraphs_of_the_json_body_is_a_paragraph_break(page: Page) -> None:
    merge = functools.partial(perturb.merge_paragraphs, containers=CONTAINERS)
    changed, got = json_half(page, [merge])
    assert _br_br(json_strings(changed, K.content)[0])
    assert len(got.article.body) == len(original(*page).by_json["article"]["body"]) > 1
    assert records(got) == original(*page).by_json


def _invisible(text: str, rng: random.Random) -> str:
    """``text`` with a BOM before it, a zero-width space inside and a soft hyphen after it."""
    cut = rng.randrange(1, len(text)) if len(text) > 1 else 0
    return f"\ufeff{text[:cut]}\u200b{text[cut:]}\u00ad"


def _zero_width_in(css: str) -> perturb.Rewrite:
    def rewrite(root: etree._Element, rng: random.Random) -> None:
        for element in select(root, css):
            node = next((el for el in element.iter(etree.Element) if (el.text or "").strip()), None)
            assert node is not None, f"{css}: no text"
            node.text = _invisible(node.text, rng)

    return rewrite


#: Titles and source names, as each page kind shows them.
NAMES = ", ".join(
    [
        site.ARTICLE.title,
        site.ARTICLE.source_name,
        site.LEGACY_ARTICLE.title,
        site.LEGACY_ARTICLE.source_name,
        site.SEARCH.result_title,
        site.SEARCH.result_source_name,
        site.SEARCH.hot_link,
    ]
)
ZERO_WIDTH_PAGES = [*LISTINGS[:3], *ARTICLES[:6], *LEGACY[:1]]


@pytest.mark.parametrize("page", ZERO_WIDTH_PAGES, ids=_ids(ZERO_WIDTH_PAGES))
def test_zero_width_characters_in_titles_and_source_names_are_dropped(page: Page) -> None:
    changed, got = html_half(page, [_zero_width_in(NAMES)])
    assert "\u200b" in changed
    assert records(got) == original(*page).by_html


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self.values[key] = self.values.get(key, start) + count


def validated(page: Any) -> Any:
    """The page's items after the validate pipeline (fetched at FETCHED)."""
    pipeline = ValidatePipeline(_Stats(), site.CANONICAL_BASE, str(SITE_TZ))  # type: ignore[arg-type]  # only inc_value is used
    items = [page.article] if hasattr(page, "article") else [*page.hits, *page.hot]
    out = []
    for item in items:
        if hasattr(item, "fetched_at"):
            item.fetched_at = FETCHED
        out.append(to_jsonable(pipeline.process_item(item)))
    return out


#: The JSON's title and source keys.
NAME_KEYS = frozenset({K.title, K.source, J.source})


@pytest.mark.parametrize("page", [*LISTINGS[:3], *ARTICLES[:6]], ids=_ids([*LISTINGS[:3], *ARTICLES[:6]]))
def test_zero_width_characters_in_the_json_titles_and_source_names_are_dropped(page: Page) -> None:
    path, url = page
    rng = random.Random(0)
    touched: list[str] = []

    def edit(data: Any) -> Any:
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in NAME_KEYS and isinstance(value, str) and value:
                        node[key] = _invisible(value, rng)
                        touched.append(key)
                    elif isinstance(value, dict | list):
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)
        return data

    changed = perturb.with_next_data(original(path, url).html, edit)
    assert {K.title} < set(touched)
    got = read(changed, url)
    assert (got.via, got.drift) == ("json", [])
    assert records(got) == original(path, url).by_json
    assert validated(got) == validated(read(original(path, url).html, url))


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
    """The page with its visible time (``time.article-time``) showing ``shown``, its
    ``datetime`` attribute ``machine`` (or none)."""
    root = perturb.parse(html)
    [time] = select(root, site.ARTICLE.published)
    for child in list(time):
        time.remove(child)
    time.text = shown
    if machine is None:
        time.attrib.pop("datetime", None)
    else:
        time.set("datetime", machine)
    return perturb.serialise(root)


def _published(item: ArticleItem) -> datetime | None:
    return parse_published(item.published, FETCHED, machine=item.published_datetime)


def _but_dates(record: dict[str, Any]) -> dict[str, Any]:
    article = {k: v for k, v in record["article"].items() if k not in ("published", "published_datetime")}
    return {**record, "article": article}


DATED = ARTICLES[0]


@pytest.mark.parametrize(("shown", "expected"), DATE_FORMS.items(), ids=list(DATE_FORMS))
def test_each_date_form_on_an_article_page_reads_as_the_right_instant(shown: str, expected: datetime) -> None:
    path, url = DATED
    page = read(_with_date(original(path, url).html, shown, None), url, use_json=False)
    assert page.article.published == shown.replace("\u3000", " ").strip()  # the visible text is kept
    assert page.article.published_datetime is None
    assert _published(page.article) == expected
    assert _but_dates(records(page)) == _but_dates(original(path, url).by_html)


MACHINE_WINS = [
    ("12-21", "2026-12-21T10:31:00+08:00", datetime(2026, 12, 21, 10, 31, tzinfo=SITE_TZ)),
    ("3天前", "2026-12-30T08:15:00+08:00", datetime(2026, 12, 30, 8, 15, tzinfo=SITE_TZ)),
    ("刚才发布", "2027-01-03T05:58:00+08:00", datetime(2027, 1, 3, 5, 58, tzinfo=SITE_TZ)),  # text unreadable
]


@pytest.mark.parametrize(
    ("shown", "machine", "expected"),
    [
        *MACHINE_WINS,
        ("2026-12-21 10:31", "2026-12-21", datetime(2026, 12, 21, 10, 31, tzinfo=SITE_TZ)),  # the text is finer
    ],
)
def test_a_time_datetime_attribute_wins_over_coarser_visible_text(shown: str, machine: str, expected: datetime) -> None:
    path, url = DATED
    page = read(_with_date(original(path, url).html, shown, machine), url, use_json=False)
    # a datetime without a time of day is no machine time: the finer text is read
    assert (page.article.published, page.article.published_datetime) == (shown, iso_time(machine))
    assert _published(page.article) == expected
    assert validated(page)[0]["published_at"] == expected.isoformat()


def _with_json_time(html: str, text: str) -> str:
    def edit(data: Any) -> Any:
        detail = data["props"]["pageProps"]["data"]["getNewsDetailData"]
        detail[K.published] = text
        return data

    return perturb.with_next_data(html, edit)


@pytest.mark.parametrize(("shown", "machine", "expected"), MACHINE_WINS)
def test_the_json_time_wins_over_coarser_visible_text(shown: str, machine: str, expected: datetime) -> None:
    """The page shows a coarse time and no ``datetime``; its JSON has the time to the second."""
    path, url = DATED
    json_time = expected.strftime("%Y-%m-%d %H:%M:%S")
    page = read(_with_json_time(_with_date(original(path, url).html, shown, None), json_time), url)
    assert page.via == "json"
    assert (page.article.published, page.article.published_datetime) == (json_time, machine)
    assert _published(page.article) == expected
    assert validated(page)[0]["published_at"] == expected.isoformat()
    assert _but_dates(records(page)) == _but_dates(original(path, url).by_json)
    # the HTML alone still says only what it shows
    html_only = read(_with_json_time(_with_date(original(path, url).html, shown, None), json_time), url, use_json=False)
    assert (html_only.article.published, html_only.article.published_datetime) == (shown, None)


# -- the property: any mix of the rewrites, on either half of any fixture page ---------------

STRUCTURAL: list[perturb.Rewrite] = [
    perturb.reindent,
    functools.partial(perturb.reindent, share=0.5),
    perturb.break_spaces,
    functools.partial(perturb.wrap_blocks, containers=CONTAINERS),
    perturb.wrap_inline,
    perturb.shuffle_attributes,
    perturb.insert_comments,
    functools.partial(perturb.merge_paragraphs, containers=CONTAINERS),
    perturb.zero_width,
]

KINDS = sorted(BY_KIND)
#: The pages by kind and URL shape (how deep the page lies in the site): the 快讯 page is
#: then a shape of its own, apart from its 60 permalinks.
SHAPES: dict[tuple[str, int], list[Page]] = {}
for _page in PAGES:
    SHAPES.setdefault((_kind(_page[1]), len(_page[0].relative_to(FIXTURE_SITE).parts)), []).append(_page)
#: A page shape first, then a page of it: the many small 快讯 permalinks do not crowd out the rest.
ANY_PAGE = st.sampled_from(sorted(SHAPES)).flatmap(lambda shape: st.sampled_from(SHAPES[shape]))


def both_halves(page: Page, rewrites: list[perturb.Rewrite], seed: int) -> str:
    """The page with its HTML and the HTML strings of its JSON rewritten."""
    path, url = page
    return perturb.perturbed_next_data(
        perturb.perturbed(original(path, url).json_html, rewrites, seed), rewrites, seed + 1, HTML_KEYS
    )


@settings(
    derandomize=True,
    database=None,
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    page=ANY_PAGE,
    rewrites=st.lists(st.sampled_from(STRUCTURAL), min_size=1, max_size=5),
    entities=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_meaning_preserving_rewrites_of_any_fixture_page_give_the_same_records_on_both_paths(
    page: Page, rewrites: list[perturb.Rewrite], entities: bool, seed: int
) -> None:
    path, url = page
    base = original(path, url)
    changed = both_halves(page, [*rewrites, *([perturb.entities] if entities else [])], seed)
    by_html = read(changed, url, use_json=False)
    assert records(by_html) == base.by_html
    by_default = read(changed, url)
    assert by_default.via == base.via
    assert records(by_default) == base.by_json
    assert by_default.drift == []


def _names(rewrite: perturb.Rewrite) -> str:
    if isinstance(rewrite, functools.partial):
        shown = ", ".join(f"{key}={value}" for key, value in rewrite.keywords.items() if key != "containers")
        return f"{rewrite.func.__name__}({shown})"
    return rewrite.__name__


def _each_rewrite_on_each_kind() -> list[Any]:
    """(page, rewrite) for the first page of each kind whose JSON holds HTML, and each rewrite
    that changes that JSON (a rewrite with nothing to act on there is left out: it could not fail)."""
    cases = []
    for kind in KINDS:
        page = next((page for page in BY_KIND[kind] if _has_html_in_json(page)), None)
        if page is None:
            continue
        html = original(*page).json_html
        for rewrite in [*STRUCTURAL, perturb.entities]:
            seed = next(
                (seed for seed in range(5) if perturb.perturbed_next_data(html, [rewrite], seed, HTML_KEYS) != html),
                None,
            )
            if seed is not None:
                cases.append(pytest.param(page, rewrite, seed, id=f"{kind}-{_names(rewrite)}"))
    return cases


def _each_rewrite_on_each_shape() -> list[Any]:
    """(page, rewrite, seed) for the first page of each shape and each rewrite that changes its
    HTML with one of the first seeds tried."""
    cases = []
    for shape in sorted(SHAPES):
        page = SHAPES[shape][0]
        html = original(*page).html
        unchanged = perturb.serialise(perturb.parse(html))
        for rewrite in [*STRUCTURAL, perturb.entities]:
            seed = next((seed for seed in range(5) if perturb.perturbed(html, [rewrite], seed) != unchanged), None)
            if seed is not None:
                cases.append(pytest.param(page, rewrite, seed, id=f"{_ids([page])[0]}-{_names(rewrite)}"))
    return cases


@pytest.mark.parametrize(("page", "rewrite", "seed"), _each_rewrite_on_each_shape())
def test_each_rewrite_alone_of_the_html_gives_the_same_records(page: Page, rewrite: perturb.Rewrite, seed: int) -> None:
    """One rewrite at a time, so that a failure names the rewrite and the page at once."""
    _, got = html_half(page, [rewrite], seed)
    assert records(got) == original(*page).by_html


@pytest.mark.parametrize(("page", "rewrite", "seed"), _each_rewrite_on_each_kind())
def test_each_rewrite_alone_of_the_json_html_gives_the_same_records(
    page: Page, rewrite: perturb.Rewrite, seed: int
) -> None:
    """One rewrite at a time, so that a failure names the rewrite and the page kind at once."""
    _, got = json_half(page, [rewrite], seed)
    assert records(got) == original(*page).by_json


def test_the_rewrites_reach_both_halves_of_every_page() -> None:
    """The property is not empty: all the rewrites change every page's HTML, and the JSON of
    every page whose JSON holds HTML, and such pages are of every kind that has HTML in its JSON."""
    everything = [*STRUCTURAL, perturb.entities]
    with_html_in_json = set()
    for page in PAGES:
        base = original(*page)
        changed = both_halves(page, everything, 0)
        assert split_page(changed).markup != split_page(base.json_html).markup, page
        if _has_html_in_json(page):
            with_html_in_json.add(_kind(page[1]))
            assert next_data(changed) != next_data(base.json_html), page
    assert with_html_in_json == {site.PageKind.SEARCH, site.PageKind.ARTICLE, site.PageKind.EXPRESS}


def test_dropping_the_plain_text_twins_changes_no_record() -> None:
    """The JSON rewrites start from the page without ``pureTextContent``: its ``textContent``
    read as HTML must say the same (else the property would compare unlike things)."""
    dropped = 0
    for path, url in PAGES:
        base = original(path, url)
        if base.json_html != base.html:
            dropped += 1
            page = read(base.json_html, url)
            assert (page.via, page.drift) == ("json", [])
            assert differences(records(page), base.by_json) is None
    assert dropped >= len(BY_KIND[site.PageKind.EXPRESS])


def test_rewriting_no_string_of_the_json_leaves_every_page_byte_for_byte() -> None:
    """The JSON is written back as Next.js writes it (``<`` as ``\\u003c`` …), so a rewrite
    that changes nothing changes no byte: the rewritten pages differ only where rewritten."""
    for path, _ in PAGES:
        html = path.read_text(encoding="utf-8")
        assert perturb.perturbed_next_data(html, [], 0, HTML_KEYS) == html


def test_rewrites_leave_scripts_and_the_head_alone() -> None:
    """A Next.js page's data lives in a script: no rewrite of the HTML may touch it."""
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


def test_json_rewrites_leave_the_html_and_other_json_alone() -> None:
    blob = '{"props":{"pageProps":{"newsTitle":"<b>现代</b>","newsContent":"<p>正文</p><p>二段</p>"}}}'
    page = f'<html><body><p>尾</p><script id="__NEXT_DATA__" type="application/json">{blob}</script></body></html>'
    everything = [*STRUCTURAL, perturb.entities]
    for seed in range(20):
        changed = perturb.perturbed_next_data(page, everything, seed, HTML_KEYS)
        assert changed.startswith("<html><body><p>尾</p><script") and changed.endswith("</script></body></html>")
        data = next_data(changed)
        assert data is not None
        assert data["props"]["pageProps"]["newsTitle"] == "<b>现代</b>"
        assert "\\u003c" in changed and "<p>" not in changed.split("__NEXT_DATA__")[1]
