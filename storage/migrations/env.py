"""Alembic's environment: migrations run on the connection ``storage.migrate`` hands over.

ChurnGuard opens the connection and its transaction itself (so an upgrade is one
transaction, under the store's write lock), and passes it in ``config.attributes``.  SQLite
cannot alter most of a table in place, so changes use Alembic's batch mode (copy the table).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import storage.campaign_tables  # registers the campaign tables on the metadata
import storage.events.tables  # registers the event tables on the metadata
import storage.tables  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only an `alembic` command line without ChurnGuard gets here
    raise RuntimeError("run migrations through storage.migrate.upgrade(), which passes a connection")
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
