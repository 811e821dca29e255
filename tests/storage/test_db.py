"""The database wrapper: engine settings, schema version, transactions, row counts."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from storage.db import Database
from storage.errors import UserError
from storage.tables import SCHEMA_VERSION, AuditLog, Meta


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    database = Database(sqlite_url).create_schema()
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        database.dispose()


def test_new_store_has_every_table_empty_and_its_schema_version(db):
    counts = db.row_counts()

    assert set(counts) == {table.name for table in SQLModel.metadata.sorted_tables}
    assert {"batch", "client_record", "dataset_schema", "model_version", "meta"} <= set(counts)
    assert counts["meta"] == 1 and sum(counts.values()) == 1
    with db.session() as session:
        assert session.get(Meta, "schema_version").value == str(SCHEMA_VERSION)
    assert set(db.table_names()) >= {"batch", "client_record"}


def test_session_commits_on_success_and_rolls_back_on_error(db):
    with db.session() as session:
        session.add(AuditLog(actor="test", action="kept"))
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(AuditLog(actor="test", action="lost"))
        session.flush()
        raise RuntimeError("boom")

    assert db.row_counts()["audit_log"] == 1


def test_newer_schema_version_is_refused(db_url):
    first = Database(db_url).create_schema()
    with first.session() as session:
        version = session.get(Meta, "schema_version")
        assert version is not None
        version.value = str(SCHEMA_VERSION + 1)
    first.dispose()

    second = Database(db_url)
    try:
        with pytest.raises(UserError) as caught:
            second.create_schema()
    finally:
        second.dispose()

    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value) and "upgrade ChurnGuard" in str(caught.value)


def test_unreachable_database_is_a_user_error_without_the_password():
    database = Database("postgresql+psycopg://bob:secret@127.0.0.1:1/nowhere?connect_timeout=2")
    try:
        with pytest.raises(UserError) as caught:
            database.create_schema()
    finally:
        database.dispose()

    assert "cannot open the database" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert database.safe_url == "postgresql+psycopg://bob:***@127.0.0.1:1/nowhere?connect_timeout=2"
