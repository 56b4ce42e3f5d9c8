"""Parse: milliseconds per page for the listing and article parsers, beside the floor of
building the same page's tree (parsel.Selector, which the parsers start from).

Each page is parsed once to warm up and then ``repeat`` times; a page's figure is the median
of its runs and a row's figure the median over its pages. The seed page 953 (an 18,000-character
snippet, one element per highlighted character) is reported on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from parsel import Selector

from benchmarks.common import KEYWORD, Row, median, ratio, verdict
from crawler import site
from crawler.parsing import parse_article_page, parse_search_page
from crawler.replay.generator import GeneratedSite
from crawler.replay.server import FIXTURE_SITE

TARGET_MS = 3.0
SEED_PAGE = 953


def page_ms(parse: Callable[[], Any], tree: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median ms of the parser and of the tree-only baseline on one page, their runs interleaved
    so that both see the same machine (this VM's speed drifts by up to 2× within seconds)."""
    parse()  # warm-up (and: it must not raise)
    tree()
    parsed, built = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        parse()
        parsed.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        tree()
        built.append((time.perf_counter() - started) * 1000)
    return median(parsed), median(built)


def measure(name: str, pages: list[tuple[str, str]], parser: Callable[[str, str], Any], repeat: int, note: str) -> Row:
    timings = [
        page_ms(lambda h=html, u=url: parser(h, u), lambda h=html: Selector(text=h), repeat) for html, url in pages
    ]
    parsed, floor = [t[0] for t in timings], [t[1] for t in timings]
    value, baseline = median(parsed), median(floor)
    sizes = sorted(len(html) for html, _ in pages)
    return Row(
        "parse",
        name,
        value,
        "ms",
        baseline=baseline,
        baseline_name="tree only (parsel)",
        ratio=ratio(value, baseline),
        target=f"median ≤ {TARGET_MS:g} ms",
        status=verdict(value <= TARGET_MS),
        note=f"{len(pages)} pages, {sizes[0]:,}–{sizes[-1]:,} chars; slowest {max(parsed):.2f} ms; {note}",
        extra={"per_page_ms": parsed, "tree_ms": floor},
    )


def fixture_listings() -> dict[int, tuple[str, str]]:
    folder = FIXTURE_SITE / "search" / KEYWORD / site.ARTICLE_TAB
    pages = {}
    for path in sorted(folder.glob("page-*.html")):
        number = int(path.stem.removeprefix("page-"))
        pages[number] = (path.read_text(encoding="utf-8"), site.search_url(KEYWORD, number))
    return pages


def fixture_articles() -> list[tuple[str, str]]:
    return [
        (path.read_text(encoding="utf-8"), site.article_url(path.stem))
        for path in sorted((FIXTURE_SITE / "article").glob("*.html"))
    ]


def generated_pages(listings: int, articles: int, site_pages: int = 1000) -> tuple[list, list]:
    generated = GeneratedSite(keyword=KEYWORD, pages=site_pages)
    step = max(1, site_pages // listings)
    numbers = list(range(1, site_pages + 1, step))[:listings]
    listing_pages = [(generated.search_page(n), site.search_url(KEYWORD, n)) for n in numbers]
    indices = range(0, generated.article_count, max(1, generated.article_count // articles))
    article_pages = [
        (generated.article_page(generated.article_id(i)), site.article_url(generated.article_id(i)))
        for i in list(indices)[:articles]
    ]
    return listing_pages, article_pages


def crawl_path(parser: Callable[..., Any]) -> Callable[[str, str], Any]:
    """The parser as a crawl calls it on most pages: the JSON path, the HTML not read."""
    return lambda html, url: parser(html, url, verify=False)


def both_paths(parser: Callable[..., Any]) -> Callable[[str, str], Any]:
    """The parser on a page the crawl verifies (the first of each kind, then one in ten): both paths."""
    return lambda html, url: parser(html, url, verify=True)


def html_path(parser: Callable[..., Any]) -> Callable[[str, str], Any]:
    """The fallback: a page without its JSON, read from its HTML."""
    return lambda html, url: parser(html, url, use_json=False)


def run(repeat: int, log: Any = print) -> list[Row]:
    listings = fixture_listings()
    seed = listings.pop(SEED_PAGE)
    gen_listings, gen_articles = generated_pages(listings=20, articles=50)
    search, article = parse_search_page, parse_article_page
    fixtures_note = f"pages {', '.join(map(str, listings))}"
    rows = [
        measure("listing page, seed 953", [seed], crawl_path(search), repeat * 3, "18,000-char snippet; JSON path"),
        measure("listing page, fixtures", list(listings.values()), crawl_path(search), repeat, fixtures_note),
        measure("listing page, generated", gen_listings, crawl_path(search), repeat, "1,000-page site; JSON path"),
        measure("article page, fixtures", fixture_articles(), crawl_path(article), repeat, "JSON path"),
        measure("article page, generated", gen_articles, crawl_path(article), repeat, "10,000 articles; JSON path"),
        measure("listing page, HTML path", gen_listings, html_path(search), repeat, "generated; the fallback"),
        measure("article page, HTML path", gen_articles, html_path(article), repeat, "generated; the fallback"),
        measure("listing page, both paths", gen_listings, both_paths(search), repeat, "generated; a verified page"),
        measure("article page, both paths", gen_articles, both_paths(article), repeat, "generated; a verified page"),
    ]
    for row in rows:
        log(f"  parse {row.figure}: {row.value:.3f} ms (tree only {row.baseline:.3f} ms)")
    return rows


if __name__ == "__main__":
    for row in run(5):
        print(row)
