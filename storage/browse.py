"""The read side for browsing a large store: keyset pages (no OFFSET, so page 1,000 costs what
page 1 does), an article with every version and what changed, and the hot lists and topics."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from storage.models import Article, ArticleRevision, CrawlRun, HotEntry, Source, Topic
from storage.queries import article_json, run_json, site_time


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _article_cursor(published_at: datetime | None, id_: int) -> str:
    return f"{published_at.astimezone(UTC).isoformat() if published_at else ''}|{id_}"


def _parse_article_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        stamp, id_text = cursor.split("|")
        published = datetime.fromisoformat(stamp) if stamp else None
        if published is not None and published.tzinfo is None:
            raise ValueError("naive")
        return published, int(id_text)
    except ValueError as exc:
        raise ValueError(f"bad cursor {cursor!r}") from exc


def articles(
    session: Session,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Newest first (unknown dates last), ``limit`` at a time after ``cursor``."""
    base = select(Article, Source.name).join(Source, Article.source_id == Source.id)
    if source:
        base = base.where(Source.name == source)
    if since:
        base = base.where(Article.published_at >= since)
    if until:
        base = base.where(Article.published_at < until)
    published, id_ = _parse_article_cursor(cursor) if cursor else (None, None)
    rows: Sequence[Any] = []
    # Dated articles first, then undated: two index-ordered range reads, each a plain
    # (published_at, id) walk down ix_articles_published_at. One ORDER BY … NULLS LAST with an
    # OR in the cursor condition made both databases read and sort every row.
    if published is not None or id_ is None:
        dated = base.where(Article.published_at.is_not(None))
        if published is not None:
            dated = dated.where(tuple_(Article.published_at, Article.id) < tuple_(published, id_))
        rows = session.execute(dated.order_by(Article.published_at.desc(), Article.id.desc()).limit(limit + 1)).all()
    if len(rows) <= limit and not (since or until):
        undated = base.where(Article.published_at.is_(None))
        if published is None and id_ is not None:
            undated = undated.where(Article.id < id_)
        rows = [*rows, *session.execute(undated.order_by(Article.id.desc()).limit(limit + 1 - len(rows))).all()]
    items = [article_json(article, name) for article, name in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return Page(items, _article_cursor(last.published_at, last.id) if last else None)


def runs(session: Session, *, cursor: str | None = None, limit: int = 50) -> Page:
    """Newest run first."""
    query = select(CrawlRun).order_by(CrawlRun.id.desc()).limit(limit + 1)
    if cursor:
        if not cursor.isdigit():
            raise ValueError(f"bad cursor {cursor!r}")
        query = query.where(CrawlRun.id < int(cursor))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    return Page([run_json(run) for run in rows[:limit]], str(rows[limit - 1].id) if more else None)


def article(session: Session, article_id: int) -> dict[str, Any] | None:
    """One article with its body and every earlier version, each with the diff to the next."""
    row = session.execute(
        select(Article, Source.name).join(Source, Article.source_id == Source.id).where(Article.id == article_id)
    ).first()
    if row is None:
        return None
    current, name = row
    data = article_json(current, name, with_body=True)
    data["revision"] = current.revision
    versions: list[Any] = list(
        session.scalars(
            select(ArticleRevision).where(ArticleRevision.article_id == article_id).order_by(ArticleRevision.revision)
        )
    )
    data["revisions"] = []
    for index, old in enumerate(versions):
        new = versions[index + 1] if index + 1 < len(versions) else current
        data["revisions"].append(
            {
                "revision": old.revision,
                "title": old.title,
                "valid_from": site_time(old.valid_from),
                "replaced_at": site_time(old.replaced_at),
                "diff": diff(old, new),
            }
        )
    return data


def diff(old: Any, new: Any) -> list[dict[str, str]]:
    """What the next version changed, line by line: {'op': ' '|'+'|'-', 'text': …} (title,
    author, tags and body paragraphs)."""

    def lines(version: Any) -> list[str]:
        head = [f"标题: {version.title}", f"作者: {version.author or ''}", f"标签: {', '.join(version.tags or [])}"]
        body: str = version.body
        return head + body.split("\n\n")

    out = []
    for line in difflib.ndiff(lines(old), lines(new)):
        if line[:1] in (" ", "+", "-"):
            out.append({"op": line[:1], "text": line[2:]})
    return out


def hot_and_topics(session: Session, limit: int = 100) -> dict[str, list[dict[str, Any]]]:
    """The 24小时热点 entries and 最新话题, most recently seen first, with when each was first and last seen."""
    hot = session.scalars(select(HotEntry).order_by(HotEntry.last_seen_at.desc(), HotEntry.rank).limit(limit))
    topics = session.scalars(select(Topic).order_by(Topic.last_seen_at.desc(), Topic.rank).limit(limit))
    return {
        "hot": [
            {
                "title": h.title,
                "url": h.url,
                "rank": h.rank,
                "first_seen_at": site_time(h.first_seen_at),
                "last_seen_at": site_time(h.last_seen_at),
            }
            for h in hot
        ],
        "topics": [
            {
                "name": t.name,
                "url": t.url,
                "discussions": t.discussions,
                "rank": t.rank,
                "first_seen_at": site_time(t.first_seen_at),
                "last_seen_at": site_time(t.last_seen_at),
            }
            for t in topics
        ],
    }
