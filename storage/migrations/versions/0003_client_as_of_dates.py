"""Observation (as-of) dates for client records, the remembered as-of column, carried columns.

* ``client_record.as_of``: the date a record's features describe.  Records stored before it
  existed describe the day they were ingested, so it is backfilled with ``observed_at``;
  then it becomes NOT NULL, with the ``(as_of, client_id)`` index snapshot frames read by.
* ``dataset_schema.as_of_column``: the column of a file that holds the as-of dates
  (``CHURNGUARD_AS_OF_COLUMN``); empty for stores that never named one.
* ``batch.carried_columns``: the columns a batch's records took over from earlier records.
  Batches of older releases that carried columns say so only in a warning; for those, the
  list is taken from their records (only those batches are read).

Churn lists live in new tables (``churn_list``, ``client_churn``), which ``storage.migrate``
creates after the upgrade like any new table.

Revision ID: client_as_of_dates
Revises: relative_model_dirs
Create Date: 2026-12-12
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "client_as_of_dates"
down_revision = "relative_model_dirs"
branch_labels = None
depends_on = None

_CARRY_NOTE = "carried forward from each client's previous record"


def upgrade() -> None:
    with op.batch_alter_table("client_record") as batch:
        batch.add_column(sa.Column("as_of", sa.DateTime(), nullable=True))
    op.execute("UPDATE client_record SET as_of = observed_at")
    with op.batch_alter_table("client_record") as batch:
        batch.alter_column("as_of", existing_type=sa.DateTime(), nullable=False)
        batch.create_index("ix_client_record_as_of_client", ["as_of", "client_id"])
    with op.batch_alter_table("dataset_schema") as batch:
        batch.add_column(sa.Column("as_of_column", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("batch") as batch:
        batch.add_column(sa.Column("carried_columns", sa.JSON(), nullable=False, server_default="[]"))
    _backfill_carried_columns()


def _backfill_carried_columns() -> None:
    connection = op.get_bind()
    batches = sa.table("batch", sa.column("id", sa.Integer()), sa.column("kind", sa.String()),
                       sa.column("columns", sa.JSON()), sa.column("warnings", sa.JSON()),
                       sa.column("carried_columns", sa.JSON()))
    records = sa.table("client_record", sa.column("batch_id", sa.Integer()), sa.column("data", sa.JSON()))
    rows = connection.execute(
        sa.select(batches.c.id, batches.c.columns, batches.c.warnings).where(batches.c.kind == "clients")
    ).all()
    for batch_id, columns, warnings in rows:
        notes: list[Any] = warnings or []
        if not any(isinstance(note, dict) and _CARRY_NOTE in str(note.get("message", "")) for note in notes):
            continue
        own = set(columns or {})
        carried: dict[str, None] = {}
        for (data,) in connection.execute(sa.select(records.c.data).where(records.c.batch_id == batch_id)):
            carried.update(dict.fromkeys(name for name in (data or {}) if name not in own))
        connection.execute(sa.update(batches).where(batches.c.id == batch_id).values(carried_columns=list(carried)))


def downgrade() -> None:
    with op.batch_alter_table("batch") as batch:
        batch.drop_column("carried_columns")
    with op.batch_alter_table("dataset_schema") as batch:
        batch.drop_column("as_of_column")
    with op.batch_alter_table("client_record") as batch:
        batch.drop_index("ix_client_record_as_of_client")
        batch.drop_column("as_of")
