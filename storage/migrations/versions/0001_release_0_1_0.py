"""The schema of release 0.1.0: the baseline every later change starts from.

Stores made by 0.1.0 have no ``alembic_version`` table; ``storage.migrate`` stamps them with
this revision before upgrading.  A new store is created from the current table definitions
and stamped with the newest revision, so this file never has anything to do.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
