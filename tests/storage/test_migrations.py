"""Schema migrations: a new store starts at the newest revision; a store made by release 0.1.0
upgrades in place on SQLite and PostgreSQL, keeping every row; a newer store is refused."""

from __future__ import annotations

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
