"""articles.published_unknown: an unreadable publication date is kept as unknown

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Until now an article whose date could not be read was rejected; from 0003 on it is stored
with published_at NULL and this flag set. Articles stored before all had a date, hence the
server default.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_unknown", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("published_unknown")
