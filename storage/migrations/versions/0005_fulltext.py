"""Full-text search: the CJK bigram index (SQLite FTS5, PostgreSQL tsvector + GIN), built for the stored articles

Revision ID: 0005_fulltext
Revises: 0004_news_identity
Create Date: 2026-12-02

The index's tables are made by storage.fulltext (their DDL is dialect-specific and lives
beside the analyzer that fills them), then every stored article is indexed in batches.
From here on the store keeps the index current in each batch's transaction.
"""

from collections.abc import Sequence

from alembic import op

from storage import fulltext

# revision identifiers, used by Alembic.
revision: str = "0005_fulltext"
down_revision: str | Sequence[str] | None = "0004_news_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the index and fill it from the articles table."""
    connection = op.get_bind()
    fulltext.create(connection)
    fulltext.bulk_build(connection)


def downgrade() -> None:
    """Drop the index."""
    fulltext.drop(op.get_bind())
