"""The database wrapper: engine settings, schema version, transactions, row counts."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import func, text
from sqlmodel import SQLModel, select

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


def _in_threads(*jobs) -> list[BaseException]:
    """Run each job in its own thread; the errors they raised."""
    errors: list[BaseException] = []

    def run(job) -> None:
        try:
            job()
        except BaseException as error:  # reported by the caller's assertion
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_sqlite_writers_at_once_both_succeed_and_the_second_reads_what_the_first_wrote(sqlite_url):
    # Two stores on one file, as the bot and the inbox job are: each reads, then writes what
    # it read.  With deferred transactions both read before either wrote (the barrier lets
    # them meet) and both saw 0; a write session takes the lock first, so the second one
    # waits on the busy timeout (its partner gives up on the barrier) and then sees 1.
    Database(sqlite_url).create_schema().dispose()
    barrier = threading.Barrier(2, timeout=1)

    def writer(name: str) -> None:
        database = Database(sqlite_url)
        try:
            with database.session() as session:
                seen = session.exec(select(func.count()).select_from(AuditLog)).one()
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()
                session.add(AuditLog(actor=name, action=f"saw {seen}"))
        finally:
            database.dispose()

    errors = _in_threads(lambda: writer("bot"), lambda: writer("inbox"))

    assert errors == []
    with Database(sqlite_url) as database, database.session() as session:
        actions = sorted(row.action for row in session.exec(select(AuditLog)).all())
    assert actions == ["saw 0", "saw 1"]


def test_sqlite_readers_never_wait_for_a_write_session(sqlite_url):
    database = Database(sqlite_url).create_schema()
    seen: list[int] = []

    def count_by_every_kind_of_reader() -> None:
        with database.read_session() as session:
            seen.append(session.exec(select(func.count()).select_from(AuditLog)).one())
        with database.engine.connect() as connection:
            seen.append(connection.execute(select(func.count()).select_from(AuditLog)).scalar_one())

    try:
        with database.session() as session:
            session.add(AuditLog(actor="test", action="uncommitted"))
            session.flush()  # this session now holds the write lock
            # Another thread reads the last committed state (a reader waiting for the lock
            # would fail with "database is locked" after the busy timeout instead).
            assert _in_threads(count_by_every_kind_of_reader) == []
            # A session opened inside this one, in its own thread, reads too instead of
            # waiting for the lock its own thread holds.
            with database.session() as inner:
                seen.append(inner.exec(select(func.count()).select_from(AuditLog)).one())
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")  # SQLAlchemy's autocommit still works on SQLite
        with database.read_session() as session:
            seen.append(session.exec(select(func.count()).select_from(AuditLog)).one())
    finally:
        database.dispose()

    assert seen == [0, 0, 0, 1]
