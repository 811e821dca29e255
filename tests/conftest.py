"""Shared fixtures: a real SQLite file and a real PostgreSQL schema per test.

PostgreSQL tests run in CI (CI=true), where a server must answer at 127.0.0.1:5432; outside
CI they skip with the reason when none answers.  Each PostgreSQL test gets its own schema
(search_path), so tests never see each other's rows and parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage.db import Database

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TELCO = REPO / "storage" / "sample_data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
PG_ADMIN_URL = os.environ.get("CHURNGUARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

os.environ.setdefault("MPLBACKEND", "Agg")


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    import psycopg

    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return None
    except Exception as error:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}".splitlines()[0]


_PG_REASON: str | None = None
_PG_CHECKED = False


def pg_url_or_skip() -> str:
    """A fresh PostgreSQL schema URL; skips (or fails in CI) when no server answers."""
    global _PG_REASON, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_REASON = _pg_available()
        _PG_CHECKED = True
    if _PG_REASON is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL: {_PG_REASON}")
        pytest.skip(_PG_REASON)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    return f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def open_store(engine: str, sqlite_path: Path) -> Iterator[Database]:
    """A ready store on ``engine``: a SQLite file at ``sqlite_path``, or a fresh PostgreSQL
    schema that is dropped afterwards (skipped, or failed in CI, when no server answers)."""
    url = f"sqlite:///{sqlite_path.as_posix()}" if engine == "sqlite" else pg_url_or_skip()
    database = Database(url).create_schema()
    try:
        yield database
    finally:
        database.dispose()
        if engine != "sqlite":
            drop_pg_schema(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each engine; the same test runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'churnguard.db').as_posix()}"
        return
    url = pg_url_or_skip()
    try:
        yield url
    finally:
        drop_pg_schema(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'churnguard.db').as_posix()}"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url).create_schema()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated CHURNGUARD_HOME with every ChurnGuard/Telegram variable cleared."""
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    monkeypatch.setenv("CHURNGUARD_HOME", str(path))
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return path
