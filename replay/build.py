"""Build the fixture site from its one data file: ``python -m replay.build [--check]``.

Every fixture page under fixtures/site is rendered from fixtures/content/site.json (articles,
search pages, channel lists, 快讯), so the pages are reproducible and a change to the site's
shape is a change to the templates and one rebuild. ``--check`` renders to memory and exits 1
if any committed file differs (a test runs it). The ``*.expected.json`` goldens beside the
pages are not built here: they come from the parsers (``fxcrawl fixtures golden``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fx168 import site
from replay import render

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
DATA_FILE = ROOT / "content" / "site.json"
SITE_DIR = ROOT / "site"
GOLDEN_SUFFIX = ".expected.json"


def load_data(path: Path = DATA_FILE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


class SiteData:
    """The data file, indexed: articles by id (newsId, or legacy id for old-CMS pages)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.sources: dict[str, str] = dict(data["sources"])
        self.articles: dict[int, dict[str, Any]] = {}
        for article in data["articles"]:
            if article["id"] in self.articles:
                raise ValueError(f"article id {article['id']} twice in the data file")
            self.articles[article["id"]] = {**article, "source_slug": self.sources[article["source"]]}

    def article(self, article_id: int) -> dict[str, Any]:
        try:
            return self.articles[article_id]
        except KeyError:
            raise ValueError(f"no article {article_id} in the data file") from None

    def news_articles(self) -> list[dict[str, Any]]:
        return [a for a in self.articles.values() if "legacy" not in a]

    def legacy_articles(self) -> list[dict[str, Any]]:
        return [a for a in self.articles.values() if "legacy" in a]

    def legacy_url(self, article: Mapping[str, Any]) -> str:
        legacy = article["legacy"]
        return site.legacy_article_url(legacy["section"], legacy["yymm"], legacy["id"])

    def hit(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """A search result of the data file as render_search_page wants it."""
        article = self.article(entry["article"])
        link = self.legacy_url(article) if "legacy" in article else entry.get("link", "raw")
        return {
            "id": article["legacy"]["id"] if "legacy" in article else article["id"],
            "url_keyword": article.get("keyword"),
            "link": link,
            "title": article["title"],
            "snippet": entry["snippet"],
            "source": article["source"],
            "source_logo": f"{site.CANONICAL_BASE}/static/source/{article['source_slug']}.png",
            "date": entry.get("date") or article["published"][:10],
            "cover": article.get("image") or render.image_url(article["id"]),
        }

    def hot(self) -> list[dict[str, Any]]:
        return [
            {
                "id": entry["id"],
                "url_keyword": entry.get("keyword"),
                "link": entry.get("link", "raw"),
                "title": entry["title"],
                "image": entry.get("image") or render.image_url(entry["id"]),
            }
            for entry in self.data["hot"]
        ]

    def topics(self) -> list[dict[str, Any]]:
        return [dict(topic) for topic in self.data["topics"]]

    def channel(self, code: str) -> tuple[list[dict[str, Any]], list[str]]:
        """A channel's articles, newest first, and the href shape each has on the list page."""
        entries = self.data["channels"][code]["items"]
        articles = [self.article(entry["article"]) for entry in entries]
        order = [a["published"] for a in articles]
        if order != sorted(order, reverse=True):
            raise ValueError(f"channel {code} is not newest first")
        return articles, [entry.get("link", "raw") for entry in entries]

    def express(self) -> list[dict[str, Any]]:
        """The 快讯 feed in its order: pinned items first, then newest first."""
        entries = [dict(entry) for entry in self.data["express"]]
        return sorted(entries, key=lambda e: (not e.get("pinned"), _descending(e["published"]), -e["id"]))


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(char) for char in text)


def render_site(data: Mapping[str, Any]) -> dict[str, bytes]:
    """Every file of the fixture site, by path relative to fixtures/site."""
    index = SiteData(data)
    files: dict[str, str] = {"robots.txt": render.ROBOTS_TXT}
    hot, topics = index.hot(), index.topics()
    for page in data["search"]:
        html = render.render_search_page(
            keyword=page["keyword"],
            page=page["page"],
            last_page=page["last_page"],
            hits=[index.hit(entry) for entry in page["hits"]],
            hot=hot,
            topics=topics,
            tab=page.get("tab", site.ARTICLE_TAB),
        )
        files[f"search/{page['keyword']}/{page.get('tab', site.ARTICLE_TAB)}/page-{page['page']}.html"] = html
    for article in index.news_articles():
        files[f"article/{article['id']}.html"] = render.render_article_page(article)
    for article in index.legacy_articles():
        legacy = article["legacy"]
        files[f"legacy/{legacy['section']}/{legacy['yymm']}/{legacy['id']}.html"] = render.render_legacy_page(article)
    for code in data["channels"]:
        articles, links = index.channel(code)
        first = site.API_PAGE_SIZE
        files[f"info/{code}.html"] = render.render_channel_page(code, articles[:first], links[:first])
        files[f"api/channel/{code}.json"] = _json({"items": [render.channel_item(a) for a in articles]})
    feed = index.express()
    files["express/index.html"] = render.render_express_page(feed[: site.API_PAGE_SIZE])
    for entry in feed:
        files[f"express/fastnews/{entry['id']}.html"] = render.render_express_page([entry], permalink=True)
    files["api/fastnews.json"] = _json({"items": [render.fast_news_item(entry) for entry in feed]})
    return {path: text.encode("utf-8") for path, text in files.items()}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) + "\n"


def built_files(root: Path = SITE_DIR) -> set[str]:
    """The files under ``root`` the build owns (all but the goldens)."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not path.name.endswith(GOLDEN_SUFFIX)
    }


def differences(rendered: Mapping[str, bytes], root: Path = SITE_DIR) -> list[str]:
    """What differs between a fresh render and the files on disk ('changed: …', 'missing: …', 'stale: …')."""
    out = []
    for path, body in sorted(rendered.items()):
        file = root / path
        if not file.is_file():
            out.append(f"missing: {path}")
        elif file.read_bytes() != body:
            out.append(f"changed: {path}")
    out.extend(f"stale: {path}" for path in sorted(built_files(root) - set(rendered)))
    return out


def write_site(rendered: Mapping[str, bytes], root: Path = SITE_DIR) -> tuple[int, int]:
    """Write the render; remove built files (and goldens of pages) it no longer has. Returns
    (files written, files removed)."""
    written = removed = 0
    for path, body in rendered.items():
        file = root / path
        if file.is_file() and file.read_bytes() == body:
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)
        written += 1
    for path in built_files(root) - set(rendered):
        file = root / path
        file.unlink()
        golden = file.with_name(file.stem + GOLDEN_SUFFIX)
        if golden.is_file():
            golden.unlink()
        removed += 1
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return written, removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replay.build", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_FILE, help="the data file")
    parser.add_argument("--out", type=Path, default=SITE_DIR, help="the fixture site directory")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if any file differs")
    args = parser.parse_args(argv)
    rendered = render_site(load_data(args.data))
    if args.check:
        diffs = differences(rendered, args.out)
        for line in diffs:
            print(line)
        print(f"{len(rendered)} files; {len(diffs)} differ")
        return 1 if diffs else 0
    written, removed = write_site(rendered, args.out)
    print(f"{len(rendered)} files: {written} written, {removed} removed, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
