"""The read side: what the CLI shows and exports, as plain JSON-ready dicts."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from fx168.site import SITE_TZ
from storage.models import Article, ArticleRevision, CrawlRun, FastNews, Source
from storage.runs import shown_counts


def site_time(value: datetime | None) -> str | None:
    """ISO 8601 in the portal's own offset (+08:00)."""
    return value.astimezone(SITE_TZ).isoformat() if value else None


def article_json(article: Article, source: str, with_body: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "source": source,
        "published_at": site_time(article.published_at),
        "published_unknown": article.published_unknown,
        "published_text": article.published_text,
        "author": article.author,
        "tags": list(article.tags or []),
        "first_seen_at": site_time(article.first_seen_at),
        "updated_at": site_time(article.updated_at),
    }
    if with_body:
        data.update(
            news_id=article.news_id,
            kind=article.kind,
            summary=article.summary,
            topics=list(article.topics or []),
            symbols=list(article.symbols or []),
            video=article.video,
            reprinted=article.reprinted,
            ai_generated=article.ai_generated,
            body=article.body,
        )
    return data


def count_rows(session: Session, query: Select[*tuple[Any, ...]]) -> int:
    """How many rows ``query`` would return (the total a paged listing shows beside its page)."""
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _fast_news_query(since: datetime | None) -> Select[FastNews]:
    query = select(FastNews)
    if since:
        query = query.where(FastNews.published_at >= since)
    return query


def count_fast_news(session: Session, *, since: datetime | None = None) -> int:
    return count_rows(session, _fast_news_query(since))


def list_fast_news(
    session: Session, *, since: datetime | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """快讯, newest first (items whose time is unknown last)."""
    query = (
        _fast_news_query(since)
        .order_by(FastNews.published_at.desc().nulls_last(), FastNews.fast_news_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "id": item.fast_news_id,
            "url": item.url,
            "published_at": site_time(item.published_at),
            "published_text": item.published_text,
            "pinned": item.pinned,
            "source_tag": item.source_tag,
            "text": item.text,
        }
        for item in session.scalars(query)
    ]


def _articles_query(
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    search: str | None = None,
) -> Select[Article, str]:
    query = select(Article, Source.name).join(Source, Article.source_id == Source.id)
    if source:
        query = query.where(Source.name == source)
    if since:
        query = query.where(Article.published_at >= since)
    if until:
        query = query.where(Article.published_at < until)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Article.title.ilike(pattern, escape="\\"), Article.body.ilike(pattern, escape="\\")))
    return query


def list_articles(
    session: Session,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first; articles whose date is unknown last (on SQLite and PostgreSQL alike)."""
    query = (
        _articles_query(source, since, until, search)
        .order_by(Article.published_at.desc().nulls_last(), Article.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [article_json(article, name) for article, name in session.execute(query)]


def count_articles(
    session: Session,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    search: str | None = None,
) -> int:
    """How many articles list_articles would page through with these filters."""
    return count_rows(session, _articles_query(source, since, until, search))


def get_article(session: Session, id_or_url: str, with_revisions: bool = False) -> dict[str, Any] | None:
    query = _articles_query()
    query = query.where(Article.id == int(id_or_url)) if id_or_url.isdigit() else query.where(Article.url == id_or_url)
    row = session.execute(query).first()
    if row is None:
        return None
    data = article_json(row[0], row[1], with_body=True)
    if with_revisions:
        data["revision"] = row[0].revision
        data["revisions"] = revisions(session, row[0])
    return data


def revisions(session: Session, article: Article) -> list[dict[str, Any]]:
    """Earlier versions, oldest first, each with a summary of what the next version changed."""
    versions = list(
        session.scalars(
            select(ArticleRevision).where(ArticleRevision.article_id == article.id).order_by(ArticleRevision.revision)
        )
    )
    out = []
    for index, version in enumerate(versions):
        successor = versions[index + 1] if index + 1 < len(versions) else article
        out.append(
            {
                "revision": version.revision,
                "title": version.title,
                "valid_from": site_time(version.valid_from),
                "replaced_at": site_time(version.replaced_at),
                "summary": diff_summary(version, successor),
            }
        )
    return out


def diff_summary(old: Any, new: Any) -> str:
    """'title changed; body +2/-1 paragraphs (+35 characters); tags +央行 -宏观'"""
    parts = []
    if old.title != new.title:
        parts.append(f"title: {old.title!r} -> {new.title!r}")
    if old.author != new.author:
        parts.append(f"author: {old.author!r} -> {new.author!r}")
    old_paragraphs, new_paragraphs = old.body.split("\n\n"), new.body.split("\n\n")
    if old.body != new.body:
        matcher = difflib.SequenceMatcher(a=old_paragraphs, b=new_paragraphs, autojunk=False)
        added = removed = 0
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op != "equal":
                removed += i2 - i1
                added += j2 - j1
        parts.append(f"body +{added}/-{removed} paragraphs ({len(new.body) - len(old.body):+d} characters)")
    old_tags, new_tags = set(old.tags or []), set(new.tags or [])
    if old_tags != new_tags:
        parts.append(
            "tags "
            + " ".join(
                [*(f"+{t}" for t in sorted(new_tags - old_tags)), *(f"-{t}" for t in sorted(old_tags - new_tags))]
            )
        )
    return "; ".join(parts) or "no visible change"


def iter_articles(
    session: Session,
    batch: int = 1000,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    search: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every article (or those the list's filters keep) with its body, oldest id first, streamed."""
    query = _articles_query(source, since, until, search).order_by(Article.id).execution_options(yield_per=batch)
    for article, name in session.execute(query):
        yield article_json(article, name, with_body=True)


def list_sources(session: Session) -> list[dict[str, Any]]:
    count = func.count(Article.id)
    query = (
        select(Source, count)
        .outerjoin(Article, Article.source_id == Source.id)
        .group_by(Source.id)
        .order_by(count.desc(), Source.name)
    )
    return [
        {
            "id": source.id,
            "name": source.name,
            "logo_url": source.logo_url,
            "articles": n,
            "first_seen_at": site_time(source.first_seen_at),
            "last_seen_at": site_time(source.last_seen_at),
        }
        for source, n in session.execute(query)
    ]


def run_json(run: CrawlRun, with_stats: bool = False) -> dict[str, Any]:
    data = {
        "id": run.id,
        "spider": run.spider,
        "args": run.args,
        "started_at": site_time(run.started_at),
        "finished_at": site_time(run.finished_at),
        "finish_reason": run.finish_reason,
        **shown_counts(run),
        "job": run.job,
        "health": run.health,
        "health_reasons": list(run.health_reasons or []),
        "host": run.host,
        "pid": run.pid,
        "heartbeat_at": site_time(run.heartbeat_at),
    }
    if with_stats:
        data["stats"] = run.stats
    return data


def _runs_query(job: str | None, unhealthy: bool) -> Select[CrawlRun]:
    query = select(CrawlRun)
    if job is not None:
        query = query.where(CrawlRun.job == job)
    if unhealthy:
        query = query.where(CrawlRun.health == "unhealthy")
    return query


def list_runs(
    session: Session, limit: int = 50, *, offset: int = 0, job: str | None = None, unhealthy: bool = False
) -> list[dict[str, Any]]:
    """Newest first; only a job's (``job``), only the unhealthy ones (``unhealthy``)."""
    query = _runs_query(job, unhealthy).order_by(CrawlRun.id.desc()).limit(limit).offset(offset)
    return [run_json(run) for run in session.execute(query).scalars()]


def count_runs(session: Session, *, job: str | None = None, unhealthy: bool = False) -> int:
    return count_rows(session, _runs_query(job, unhealthy))


def last_runs(session: Session, jobs: list[str]) -> dict[str, dict[str, Any]]:
    """Each job's newest run (what `schedule list --db` shows beside the job)."""
    newest = select(func.max(CrawlRun.id)).where(CrawlRun.job.in_(jobs)).group_by(CrawlRun.job).scalar_subquery()
    runs = session.scalars(select(CrawlRun).where(CrawlRun.id.in_(newest)))
    return {run.job: run_json(run) for run in runs if run.job is not None}


def get_run(session: Session, run_id: int, with_stats: bool = False) -> dict[str, Any] | None:
    run = session.get(CrawlRun, run_id)
    return run_json(run, with_stats) if run else None


def totals(session: Session) -> dict[str, int]:
    return {
        "articles": session.scalar(select(func.count(Article.id))) or 0,
        "sources": session.scalar(select(func.count(Source.id))) or 0,
    }
