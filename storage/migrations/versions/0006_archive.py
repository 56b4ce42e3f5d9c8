"""The WARC archive: each article's record (file, offset, length) and the payload index for revisits

Revision ID: 0006_archive
Revises: 0005_fulltext
Create Date: 2026-12-02

Articles stored before keep no record (NULL): they were fetched before there was an archive.
``archive_payloads`` maps a payload's digest to the record that holds it in full, so a later
identical response is written as a revisit. Self-contained: it names its tables and columns
itself rather than reading them from the models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_archive"
down_revision: str | Sequence[str] | None = "0005_fulltext"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the article pointer columns and the payload index."""
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warc_file", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("warc_offset", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("warc_length", sa.BigInteger(), nullable=True))
    op.create_table(
        "archive_payloads",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("date", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=100), nullable=False),
        sa.Column("warc_file", sa.String(length=200), nullable=False),
        sa.Column("warc_offset", sa.BigInteger(), nullable=False),
        sa.Column("warc_length", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_archive_payloads_warc_file", "archive_payloads", ["warc_file"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_archive_payloads_warc_file", table_name="archive_payloads")
    op.drop_table("archive_payloads")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("warc_length")
        batch_op.drop_column("warc_offset")
        batch_op.drop_column("warc_file")
