"""Alembic revisions, one file per schema change, oldest first by revision id."""
