"""`fxcrawl fixtures record`: live pages (or archived ones) into the fixture tree, each with the
parsers' golden JSON beside it, so a page that breaks a parser is a fixture and a test at once.

Recorded pages live under ``fixtures/recorded/<name>/``, laid out as ``fixtures/site/`` is
(``article/<newsId>.html``, ``search/<keyword>/<tab>/page-<n>.html``, ``info/<code>.html`` …),
with ``pages.json`` naming each file's live URL and when and where it was fetched. They are kept
apart from ``fixtures/site/``, which ``python -m replay.build`` renders (and prunes) from its
data file. ``tests/test_parsing_recorded.py`` parses every recorded page against its golden; a
page the parsers cannot read gets a golden saying why, and that test fails until they can.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fx168 import site
from replay.golden import RECORDED, golden_path, recorded_golden


@dataclass(frozen=True)
class Recorded:
    url: str
    path: Path | None
    problem: str | None = None


def fixture_path(url: str) -> str:
    """Where a page of the site goes in the fixture layout (relative)."""
    kind = site.page_kind(url)
    if (query := site.parse_search_url(url)) is not None:
        return f"search/{query.keyword}/{query.tab}/page-{query.page}.html"
    if kind == site.PageKind.LEGACY_ARTICLE:
        parts = [p for p in unquote(urlsplit(url).path).split("/") if p]
        return "legacy/" + "/".join([*parts[:-1], parts[-1].removesuffix(".shtml") + ".html"])
    if kind == site.PageKind.ARTICLE and (ref := site.article_ref(url)) is not None:
        return f"article/{ref.id}.html"
    if kind == site.PageKind.CHANNEL and (code := site.channel_code(url)):
        return f"info/{code}.html"
    if kind == site.PageKind.EXPRESS:
        return "express/index.html"
    return f"other/{hashlib.sha256(url.encode()).hexdigest()[:16]}.html"


def save(pages: list[dict[str, Any]], name: str, root: Path = RECORDED) -> list[Recorded]:
    """Write the fetched pages and their goldens under root/name; pages.json keeps each live URL."""
    folder = root / name
    manifest_path = folder / "pages.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    done = []
    for page in pages:
        url = page["url"]
        if page.get("error") or page.get("status") != 200:
            done.append(Recorded(url, None, page.get("error") or f"HTTP {page.get('status')}"))
            continue
        relative = fixture_path(url)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page["text"], encoding="utf-8")
        manifest[relative] = {key: page[key] for key in ("url", "fetched_at", "fetched_from") if page.get(key)}
        golden = recorded_golden(target, url)
        golden_path(target).write_text(json.dumps(golden, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        done.append(Recorded(url, target, golden.get("parse_error")))
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    manifest_path.write_text(text, encoding="utf-8")
    return done


def fetch(urls: list[str], overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Fetch the pages with the project's live-site manners, through Scrapy (in this process)."""
    from fxcrawl.run import project_settings_with, run_crawl

    with tempfile.TemporaryDirectory(prefix="fxcrawl-record-") as scratch:
        out = Path(scratch) / "pages.jsonl"
        feed = {str(out): {"format": "jsonlines", "encoding": "utf8"}}
        settings = project_settings_with({**overrides, "FEEDS": feed})
        run_crawl("record", settings, urls=" ".join(urls))
        lines = out.read_text(encoding="utf-8").splitlines() if out.is_file() else []
    fetched = {page["url"]: page for page in map(json.loads, lines)}
    return [fetched.get(url, {"url": url, "error": "not fetched (see the log above)"}) for url in urls]


def from_archive(urls: list[str], db: str, archive_dir: Path | None) -> list[dict[str, Any]]:
    """The newest archived copy of each page (its live URL compared canonically)."""
    from scrapy.http import TextResponse

    from crawler.spiders.reparse import live_url
    from storage.archive import ReadReport, archive_dir_for
    from storage.archive.selection import Selection, SelectionCounts, selected_pages
    from storage.db import Database

    wanted = {site.canonical_url(url): url for url in urls}
    found: dict[str, dict[str, Any]] = {}
    database = Database(db)
    try:
        pages = selected_pages(
            archive_dir_for(archive_dir, db), database, Selection(), ReadReport(), SelectionCounts(), live_url
        )
        for _, page in pages:
            key = site.canonical_url(live_url(page.url))
            if key in wanted and key not in found and page.status == 200:
                headers = {k.encode("latin-1"): v.encode("latin-1") for k, v in page.original_headers}
                response = TextResponse(url=page.url, headers=headers, body=page.body)
                found[key] = {
                    "url": wanted[key],
                    "fetched_from": f"archive: {page.location.file} at {page.location.offset}",
                    "status": 200,
                    "text": response.text,
                    "fetched_at": page.fetched_at.isoformat(),
                }
                if len(found) == len(wanted):
                    break
    finally:
        database.dispose()
    return [found.get(site.canonical_url(url), {"url": url, "error": "not in the archive"}) for url in urls]
