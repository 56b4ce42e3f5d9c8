"""`fxcrawl articles list|show`: the stored articles, newest first, and one with its body or revisions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from fxcrawl.cli import params
from fxcrawl.cli.core import Command, Group
from fxcrawl.cli.database import open_database, when
from fxcrawl.cli.output import footer, minutes, print_json, table


@click.group(cls=Group, help="stored articles")
def articles() -> None:
    pass


@articles.command("list", cls=Command, help="list articles, newest first")
@params.db
@params.as_json
@params.source
@params.since()
@params.until
@click.option("--search", help="text in the title or body")
@params.limit
@params.offset
@params.tz
def list_articles(
    db: str,
    as_json: bool,
    source: str | None,
    since: str | None,
    until: str | None,
    search: str | None,
    limit: int,
    offset: int,
    tz: str,
) -> int:
    from storage import queries

    start, end = when(since), when(until, end_of_day=True)
    with open_database(db).session() as session:
        rows = queries.list_articles(
            session, source=source, since=start, until=end, search=search, limit=limit, offset=offset
        )
        total = 0 if as_json else queries.count_articles(session, source=source, since=start, until=end, search=search)
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        row["published"] = minutes(row["published_at"], zone=tz)
    table(
        rows,
        [("id", "id", 8), ("published", "published", 16), ("source", "source", 12), ("title", "title", 60)],
        "no articles match",
    )
    footer(len(rows), offset, total, "articles", tz)
    return 0


@articles.command("show", cls=Command, help="one article with its body")
@params.db
@params.as_json
@click.argument("id_or_url", metavar="ID_OR_URL")
@click.option("--revisions", is_flag=True, help="list the article's earlier versions")
@click.option("--raw", is_flag=True, help="print the page as it was fetched, from the archive")
@params.archive_dir
def show_article(db: str, as_json: bool, id_or_url: str, revisions: bool, raw: bool, archive_dir: Path | None) -> int:
    from storage import queries

    key = id_or_url.strip()
    if not key.isdigit():  # any spelling of an article's URL names the one it is stored under
        from fx168 import site

        key = site.canonical_url(key)
    if raw:
        return print_raw(db, key, archive_dir)
    with open_database(db).session() as session:
        article = queries.get_article(session, key, with_revisions=revisions)
    if article is None:
        print(f"fxcrawl: no article {id_or_url!r}", file=sys.stderr)
        return 1
    if as_json:
        print_json(article)
    elif revisions:
        print_revisions(article)
    else:
        print_article(article)
    return 0


def print_raw(db: str, key: str, archive_dir: Path | None) -> int:
    """The archived page the stored version was read from, its body as fetched (bytes), on stdout."""
    from sqlalchemy import select

    from storage.archive import Location, archive_dir_for, read_page, read_payload
    from storage.archive.selection import PayloadIndex
    from storage.models import Article

    database = open_database(db)
    column = Article.id if key.isdigit() else Article.url
    with database.session() as session:
        row = session.execute(
            select(Article.url, Article.warc_file, Article.warc_offset, Article.warc_length).where(
                column == (int(key) if key.isdigit() else key)
            )
        ).first()
    if row is None:
        print(f"fxcrawl: no article {key!r}", file=sys.stderr)
        return 1
    if row.warc_file is None:
        print(f"fxcrawl: article {key} has no archived page (fetched with archiving off, or pruned)", file=sys.stderr)
        return 1
    directory = archive_dir_for(archive_dir, db)
    page = read_page(directory, Location(row.warc_file, row.warc_offset, row.warc_length))
    page = read_payload(directory, page, PayloadIndex(database).location) if page is not None else None
    if page is None:
        print(
            f"fxcrawl: the archived page of article {key} cannot be read ({row.warc_file} at {row.warc_offset}: "
            "file missing or damaged, or a revisit whose original was pruned)",
            file=sys.stderr,
        )
        return 1
    sys.stdout.flush()
    sys.stdout.buffer.write(page.body)
    sys.stdout.buffer.flush()
    return 0


def print_revisions(article: dict[str, Any]) -> None:
    print(f"{article['title']} ({article['url']}): revision {article['revision']} is current")
    if not article["revisions"]:
        print("no earlier revisions")
    for old in article["revisions"]:
        span = f"{old['valid_from'][:16]} to {old['replaced_at'][:16]}"
        print(f"revision {old['revision']}: {span}, then {old['summary']}")


def print_article(article: dict[str, Any]) -> None:
    if not article["published_at"]:  # a date nobody could read: show it as the page did
        article["published_at"] = f"unknown (the page says {article.get('published_text') or 'nothing'!r})"
    for field in ("id", "news_id", "url", "title", "source", "author", "published_at", "kind"):
        print(f"{field:>13}: {article[field] or ''}")
    if article["reprinted"] or article["ai_generated"]:
        notes = ["reprinted from " + article["source"]] * article["reprinted"] + ["written by AI"] * article[
            "ai_generated"
        ]
        print(f"{'notes':>13}: {'; '.join(notes)}")
    print(f"{'tags':>13}: {', '.join(article['tags'])}")
    topics = ", ".join(f"#{topic['name']}# ({topic['id']})" for topic in article["topics"])
    print(f"{'topics':>13}: {topics}")
    print(f"{'symbols':>13}: {', '.join(article['symbols'])}")
    if article["video"]:
        print(f"{'video':>13}: {json.dumps(article['video'], ensure_ascii=False)}")
    if article["summary"]:
        print(f"{'summary':>13}: {article['summary']}")
    print()
    print(article["body"])
