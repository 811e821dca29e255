"""Fixtures of the jobs tests.

``db`` here replaces the root fixture with a cheaper one: one store per engine and module,
emptied before each test, instead of a new PostgreSQL schema per test.  The tests still run
on both engines; they just do not pay for creating ~15 tables a hundred times.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import SQLModel

from storage.db import Database
from tests.conftest import drop_pg_schema, open_store, pg_url_or_skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with open_store(request.param, tmp_path_factory.mktemp("store") / "churnguard.db") as database:
        yield database


def wipe(database: Database) -> None:
    """Delete every row (children first), keeping the schema-version row."""
    with database.session() as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != "meta":
                session.execute(delete(table))
            else:
                session.execute(delete(table).where(table.c.key != "schema_version"))


@pytest.fixture
def db(module_store: Database) -> Iterator[Database]:
    wipe(module_store)
    yield module_store


@pytest.fixture
def db_url(db: Database) -> str:
    return db.url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The month-by-month story of tests/jobs/scenario.py, once per engine (it trains twice)."""
    from tests.jobs.scenario import build

    base = tmp_path_factory.mktemp(f"scenario-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{(base / 'churnguard.db').as_posix()}"
        built = build("sqlite", url, base / "home")
        yield built
        built.db.dispose()
        return
    url = pg_url_or_skip()
    try:
        built = build("postgresql", url, base / "home")
        yield built
        built.db.dispose()
    finally:
        drop_pg_schema(url)


@pytest.fixture
def fresh_store(scenario, tmp_path: Path) -> Iterator[Database]:
    """An empty store on the scenario's engine (for tests that must not change the shared story)."""
    with open_store(scenario.engine, tmp_path / "fresh.db") as database:
        yield database
