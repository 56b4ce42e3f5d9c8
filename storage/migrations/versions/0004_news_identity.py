"""the real site's shape: articles keyed by newsId, their topics and symbols, channel lists, 快讯

Revision ID: 0004_news_identity
Revises: 0003_run_ledger
Create Date: 2026-12-02

An article's identity is its newsId, whatever the keyword or encoding of the URL it was
reached by: every stored article URL of the portal is rewritten to its one spelling
(``https://www.fx168news.com/article/{newsId}``) with ``news_id`` set, and two rows that
turn out to be one article are merged (the newer content kept, the older kept as a
revision; hits, frontier rows and revisions follow). Stores written before this revision
hold bare-id URLs only, so for them this is adding the columns and filling ``news_id``.

The URL rules are copied here, not imported: a migration must keep meaning what it meant
when it was written, whatever the site description says later.
"""

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004_news_identity"
down_revision: str | Sequence[str] | None = "0003_run_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PORTAL_HOSTS = {"fx168news.com", "www.fx168news.com", "m.fx168news.com"}
_ARTICLE_PATH = re.compile(r"^/article/(?:.+-)?(\d+)/?$", re.DOTALL)


def _news_url(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _PORTAL_HOSTS:
        return None
    match = _ARTICLE_PATH.match(unquote(parts.path))
    if match is None:
        return None
    news_id = int(match.group(1))
    return f"https://www.fx168news.com/article/{news_id}", news_id


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("news_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="article"))
        batch_op.add_column(sa.Column("summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("topics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("symbols", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("video", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("reprinted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("ai_generated", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("image_url", sa.String(length=1000), nullable=True))
    _rekey_articles()
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.alter_column("topics", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("symbols", existing_type=sa.JSON(), nullable=False)
        batch_op.create_unique_constraint("uq_articles_news_id", ["news_id"])

    op.create_table(
        "channel_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("article_url", sa.String(length=1000), nullable=False),
        sa.Column("news_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_text", sa.String(length=100), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("image_url", sa.String(length=1000), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["crawl_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "article_url"),
    )
    op.create_index(op.f("ix_channel_entries_article_url"), "channel_entries", ["article_url"], unique=False)
    op.create_table(
        "fast_news",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fast_news_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_unknown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("published_text", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source_tag", sa.String(length=50), nullable=True),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["first_run_id"], ["crawl_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fast_news_id"),
    )
    op.create_index("ix_fast_news_published_at", "fast_news", ["published_at"], unique=False)


def _rekey_articles() -> None:
    """Every portal article under its newsId URL, one row per newsId."""
    bind = op.get_bind()
    meta = sa.MetaData()
    articles = sa.Table("articles", meta, autoload_with=bind)
    revisions = sa.Table("article_revisions", meta, autoload_with=bind)
    hits = sa.Table("search_hits", meta, autoload_with=bind)
    frontier = sa.Table("frontier", meta, autoload_with=bind)
    bind.execute(sa.update(articles).values(topics=[], symbols=[]))
    rows = bind.execute(
        sa.select(articles.c.id, articles.c.url, articles.c.updated_at, articles.c.revision).order_by(articles.c.id)
    ).all()
    keep: dict[int, tuple[int, str]] = {}  # news_id -> (article id, its new URL)
    for row in rows:
        found = _news_url(row.url)
        if found is None:
            continue
        url, news_id = found
        if news_id in keep:  # two spellings stored as two articles: one article, kept once
            _merge(bind, articles, revisions, row.id, keep[news_id][0])
        else:
            keep[news_id] = (row.id, url)
            bind.execute(sa.update(articles).where(articles.c.id == row.id).values(news_id=news_id, url=url))
        if url != row.url:
            _rename_url(bind, hits, hits.c.article_url, row.url, url, ("keyword", "tab", "page"))
            _rename_url(bind, frontier, frontier.c.url, row.url, url, ())


def _merge(bind: sa.Connection, articles: sa.Table, revisions: sa.Table, gone: int, kept: int) -> None:
    """Fold article ``gone`` into ``kept``: its versions become revisions of ``kept``."""
    top = bind.execute(sa.select(sa.func.max(revisions.c.revision)).where(revisions.c.article_id == kept)).scalar()
    current = bind.execute(sa.select(articles.c.revision).where(articles.c.id == kept)).scalar() or 1
    number = max(top or 0, current)
    for old in bind.execute(
        sa.select(revisions).where(revisions.c.article_id == gone).order_by(revisions.c.revision)
    ).mappings():
        number += 1
        values = {k: v for k, v in old.items() if k not in ("id", "article_id", "revision")}
        bind.execute(sa.insert(revisions).values(**values, article_id=kept, revision=number))
    bind.execute(sa.delete(revisions).where(revisions.c.article_id == gone))
    row = bind.execute(sa.select(articles).where(articles.c.id == gone)).mappings().one()
    number += 1
    bind.execute(
        sa.insert(revisions).values(
            article_id=kept,
            revision=number,
            title=row["title"],
            author=row["author"],
            body=row["body"],
            tags=row["tags"],
            content_hash=row["content_hash"],
            valid_from=row["updated_at"],
            replaced_at=row["updated_at"],
            replaced_by_run_id=None,
        )
    )
    bind.execute(sa.update(articles).where(articles.c.id == kept).values(revision=number + 1))
    bind.execute(sa.delete(articles).where(articles.c.id == gone))


def _rename_url(
    bind: sa.Connection, table: sa.Table, column: sa.Column[Any], old: str, new: str, key: tuple[str, ...]
) -> None:
    """Rows of ``old`` move to ``new``; where ``new`` already has the row (same key), the old one goes."""
    for row in bind.execute(sa.select(table).where(column == old)).mappings():
        clash = sa.and_(column == new, *(table.c[name] == row[name] for name in key))
        if bind.execute(sa.select(sa.func.count()).select_from(table).where(clash)).scalar():
            bind.execute(sa.delete(table).where(table.c.id == row["id"]))
        else:
            bind.execute(sa.update(table).where(table.c.id == row["id"]).values({column.name: new}))


def downgrade() -> None:
    op.drop_index("ix_fast_news_published_at", table_name="fast_news")
    op.drop_table("fast_news")
    op.drop_index(op.f("ix_channel_entries_article_url"), table_name="channel_entries")
    op.drop_table("channel_entries")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_constraint("uq_articles_news_id", type_="unique")
        for column in ("image_url", "ai_generated", "reprinted", "video", "symbols", "topics", "summary", "kind"):
            batch_op.drop_column(column)
        batch_op.drop_column("news_id")
