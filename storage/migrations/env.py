"""Alembic environment: fxcrawl's models are the target; the connection comes from fxcrawl.

``storage.migrations`` hands a live connection in ``config.attributes["connection"]``; the
plain ``alembic`` command line (``script_location = "storage:migrations"`` in pyproject.toml)
uses ``-x url=…`` or $DATABASE_URL instead. Alembic runs this file as a script, never imported.
"""

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from storage.fulltext import include_name
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,  # the full-text index's tables are not models
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("alembic: pass -x url=DATABASE_URL or set $DATABASE_URL")
    with create_engine(url).connect() as conn:
        run_with(conn)
