"""Schema migrations: a new store starts at the newest revision; a store made by release 0.1.0
upgrades in place on SQLite and PostgreSQL, keeping every row; a newer store is refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.errors import UserError
from storage.migrate import BASELINE, current_revision, head, scripts
from storage.tables import SCHEMA_VERSION
from tests.conftest import drop_pg_schema
from tests.storage.old_store import COUNTS, restore


def _schema_version(db: Database) -> str:
    with db.engine.connect() as connection:
        return str(connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar_one())


def test_a_new_store_is_created_at_the_newest_revision(db):
    with db.engine.connect() as connection:
        assert current_revision(connection) == head()
    assert db.migrated == []
    assert _schema_version(db) == str(SCHEMA_VERSION)


def test_the_revisions_form_one_line_from_the_baseline():
    revisions = list(scripts().walk_revisions())
    assert len(scripts().get_heads()) == 1
    assert revisions[-1].revision == BASELINE and revisions[-1].down_revision is None


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_release_0_1_0_store_upgrades_in_place_and_keeps_every_row(engine, tmp_path):
    url = restore(engine, tmp_path / "home")
    db = Database(url)
    try:
        db.create_schema()
        counts = db.row_counts()
        with db.engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        db.dispose()
        if engine == "postgresql":
            drop_pg_schema(url)

    assert revision == head()
    assert {name: counts[name] for name in COUNTS} == COUNTS
    expected = [s.revision for s in reversed(list(scripts().walk_revisions(BASELINE, head())))
                if s.revision != BASELINE]
    assert db.migrated == expected


def test_opening_an_upgraded_store_again_migrates_nothing(tmp_path):
    url = restore("sqlite", tmp_path / "home")
    with Database(url) as first:
        first.create_schema()
    with Database(url) as second:
        second.create_schema()
        assert second.migrated == []
        assert _schema_version(second) == str(SCHEMA_VERSION)


def test_a_store_migrated_by_a_newer_release_is_refused(db_url):
    with Database(db_url) as first:
        first.create_schema()
        with first.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with Database(db_url) as second, pytest.raises(UserError) as caught:
        second.create_schema()

    assert "newer ChurnGuard" in str(caught.value) and "9999" in str(caught.value)


def _restored(engine: str, tmp_path):
    url = restore(engine, tmp_path / "home")
    return url, Database(url)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_upgraded_release_store_dates_each_record_by_its_ingest_time_and_matches_the_tables(engine, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from storage.schema import Schema
    from storage.snapshots import as_of_dates, snapshot_frame

    url, db = _restored(engine, tmp_path)
    try:
        with db.engine.connect() as connection:
            before = connection.execute(text(
                "SELECT id, observed_at, is_latest FROM client_record ORDER BY id")).all()
        db.create_schema()
        with db.engine.connect() as connection:
            after = connection.execute(text(
                "SELECT id, as_of, is_latest FROM client_record ORDER BY id")).all()
            schema_column = connection.execute(text("SELECT as_of_column FROM dataset_schema")).scalar_one()
            carried = connection.execute(text("SELECT carried_columns FROM batch WHERE kind = 'clients'")).all()
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        dates = as_of_dates(db, horizon_days=30)
        frame = snapshot_frame(db, Schema("customerID", "Churn", "Yes"), horizon_days=30, labelled_only=True)
    finally:
        db.dispose()
        if engine == "postgresql":
            drop_pg_schema(url)

    assert after == before and len(after) == COUNTS["client_record"]  # as_of = observed_at, flags kept
    assert schema_column == "" and {str(c) for (c,) in carried} <= {"[]"}
    assert differences == []  # the upgraded store has exactly the tables a new store gets
    assert [(d.rows, d.labelled) for d in dates] == [(600, 600), (99, 0)]
    assert len(frame) == 600 and frame["Churn"].dtype == "int64"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_upgrade_recovers_which_columns_old_batches_carried_forward(engine, tmp_path):
    url, db = _restored(engine, tmp_path)
    note = '[{"column": null, "message": "not in this batch, carried forward from each client\'s previous record ' \
           '(1 of 1 clients): tenure, Contract"}]'
    try:
        with db.engine.begin() as connection:  # an outcomes-only batch as release 0.1.0 stored it
            batch_id = connection.execute(text(
                "INSERT INTO batch (source_name, kind, received_at, row_count, sha256, columns, labelled, positives, "
                "status, warnings) VALUES ('out.csv', 'clients', '2026-01-01 00:00:00', 1, :sha, '{}', :yes, 1, "
                "'stored', :note) RETURNING id"), {"sha": "f" * 64, "yes": True, "note": note}).scalar_one()
            connection.execute(text(
                "INSERT INTO client_record (client_id, batch_id, observed_at, is_latest, label, data) "
                "VALUES ('7590-VHVEG', :batch, '2026-01-01 00:00:00', :no, 1, :data)"),
                {"batch": batch_id, "no": False, "data": '{"tenure": 1, "Contract": "Month-to-month"}'})
        db.create_schema()
        with db.engine.connect() as connection:
            carried = connection.execute(text("SELECT carried_columns FROM batch WHERE id = :id"),
                                         {"id": batch_id}).scalar_one()
    finally:
        db.dispose()
        if engine == "postgresql":
            drop_pg_schema(url)

    assert (carried if isinstance(carried, list) else json.loads(carried)) == ["tenure", "Contract"]
