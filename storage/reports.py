"""What the crawl left besides articles, as the CLI shows it: rejects, the frontier's state and
search hits (each a page of JSON-ready dicts and the total the filters match)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import frontier
from storage.models import FrontierEntry, Reject, SearchHit
from storage.queries import count_rows, site_time


def list_rejects(
    session: Session, *, run_id: int | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Newest first: what could not be stored, and why."""
    query = select(Reject)
    if run_id is not None:
        query = query.where(Reject.run_id == run_id)
    if kind is not None:
        query = query.where(Reject.kind == kind)
    page = session.scalars(query.order_by(Reject.id.desc()).limit(limit).offset(offset))
    rows = [
        {
            "id": reject.id,
            "run_id": reject.run_id,
            "kind": reject.kind,
            "reason": reject.reason,
            "url": reject.url,
            "payload": reject.payload,
            "created_at": site_time(reject.created_at),
        }
        for reject in page
    ]
    return rows, count_rows(session, query)


def frontier_summary(
    session: Session, now: datetime | None = None, policy: frontier.RecrawlPolicy | None = None
) -> dict[str, Any]:
    """URLs by kind and state, how many are owed (frontier.owed: the crawl's own rule), and the
    failures grouped by their last error."""
    now = now or datetime.now(UTC)
    by_state = [
        {"kind": kind, "state": state, "urls": count}
        for kind, state, count in session.execute(
            select(FrontierEntry.kind, FrontierEntry.state, func.count())
            .group_by(FrontierEntry.kind, FrontierEntry.state)
            .order_by(FrontierEntry.kind, FrontierEntry.state)
        )
    ]
    owed = session.scalar(select(func.count()).where(frontier.owed(policy or frontier.RecrawlPolicy(), now)))
    failed = [
        {"reason": reason or "unknown", "urls": count}
        for reason, count in session.execute(
            select(FrontierEntry.last_error, func.count())
            .where(FrontierEntry.state.in_((frontier.FAILED, frontier.FORBIDDEN)))
            .group_by(FrontierEntry.last_error)
            .order_by(func.count().desc(), FrontierEntry.last_error)
        )
    ]
    return {"owed": owed or 0, "by_state": by_state, "failed": failed}


def list_failed_urls(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The failed and forbidden URLs, most attempted first."""
    query = select(FrontierEntry).where(FrontierEntry.state.in_((frontier.FAILED, frontier.FORBIDDEN)))
    page = session.scalars(query.order_by(FrontierEntry.attempts.desc(), FrontierEntry.id).limit(limit).offset(offset))
    rows = [
        {
            "url": entry.url,
            "kind": entry.kind,
            "state": entry.state,
            "attempts": entry.attempts,
            "last_error": entry.last_error,
            "next_fetch_at": site_time(entry.next_fetch_at),
        }
        for entry in page
    ]
    return rows, count_rows(session, query)


def list_hits(
    session: Session,
    *,
    keyword: str | None = None,
    run_id: int | None = None,
    page: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Search results as the listing showed them: by keyword, page and rank."""
    query = select(SearchHit)
    if keyword is not None:
        query = query.where(SearchHit.keyword == keyword)
    if run_id is not None:
        query = query.where(SearchHit.run_id == run_id)
    if page is not None:
        query = query.where(SearchHit.page == page)
    ordered = query.order_by(SearchHit.keyword, SearchHit.tab, SearchHit.page, SearchHit.rank, SearchHit.id)
    rows = [
        {
            "keyword": hit.keyword,
            "tab": hit.tab,
            "page": hit.page,
            "rank": hit.rank,
            "url": hit.article_url,
            "title": hit.title,
            "source": hit.source_name,
            "snippet": hit.snippet,
            "highlights": list(hit.highlights or []),
            "listed_on": hit.listed_on.isoformat() if hit.listed_on else None,
            "run_id": hit.run_id,
            "last_seen_at": site_time(hit.last_seen_at),
        }
        for hit in session.scalars(ordered.limit(limit).offset(offset))
    ]
    return rows, count_rows(session, query)
