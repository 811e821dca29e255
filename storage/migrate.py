"""Bring a store's schema up to date when it is opened: create a new one, migrate an old one.

Why at opening: every entry point (the service, each CLI command, the jobs) opens the store
through ``Database.create_schema``, so a store is never used by code newer than its schema.

* **A new store** gets every table from the current definitions and is stamped with the
  newest Alembic revision: there is nothing to migrate.
* **A store of an older release** is upgraded with the revisions in
  ``storage/migrations/versions``, in one transaction that holds the store's write lock (on
  PostgreSQL also an advisory lock, so two services starting at once migrate once).  On
  PostgreSQL DDL is transactional: a failed migration leaves the store as it was.  SQLite
  migrations use Alembic's batch mode, which copies a table it cannot alter in place.
  Stores of release 0.1.0 have no ``alembic_version`` table and are stamped as the baseline
  revision first.  Tables that did not exist yet are then created from the current
  definitions.
* **A store of a newer release** (an unknown revision, or a newer ``schema_version``) is
  refused: guessing would damage it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from storage.errors import UserError
from storage.tables import SCHEMA_VERSION, Meta

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema of release 0.1.0, which had no alembic_version table
_ADVISORY_KEY = 0x43475F4D  # "CG_M": one migration at a time per PostgreSQL database


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    """The revisions this release knows (read once per process)."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    revision = scripts().get_current_head()
    assert revision is not None, "storage/migrations/versions holds no revision"
    return revision


def current_revision(connection: Connection) -> str | None:
    """The store's Alembic revision; None for a store made before migrations existed."""
    return MigrationContext.configure(connection).get_current_revision()


def prepare(connection: Connection, *, safe_url: str) -> list[str]:
    """Create or upgrade the schema on ``connection`` (inside its transaction); returns the
    revisions applied, oldest first (empty for a new or an up-to-date store)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    ours = set(SQLModel.metadata.tables)
    existing = set(inspect(connection).get_table_names()) & ours
    if not existing:
        SQLModel.metadata.create_all(connection)
        MigrationContext.configure(connection).stamp(scripts(), head())
        _set_version(connection, safe_url)
        return []
    _refuse_newer_version(connection, safe_url)
    current = current_revision(connection)
    if current is None:
        MigrationContext.configure(connection).stamp(scripts(), BASELINE)
        current = BASELINE
    try:
        scripts().get_revision(current)
    except Exception:
        raise UserError(f"the database {safe_url} was migrated by a newer ChurnGuard (schema revision {current}); "
                        "upgrade ChurnGuard before using it") from None
    applied: list[str] = []
    if current != head():
        applied = [script.revision for script in reversed(list(scripts().walk_revisions(current, head())))
                   if script.revision != current]
        log.info("migrating the database %s: revisions %s", safe_url, ", ".join(applied))
        command.upgrade(_config(connection), "head")
    SQLModel.metadata.create_all(connection)  # tables this release added
    _set_version(connection, safe_url)
    return applied


def require_current(connection: Connection, *, safe_url: str) -> None:
    """For read-only commands, which never migrate: refuse a store whose schema is not this
    release's, saying what to run (reading it anyway would fail on a missing column)."""
    current = current_revision(connection)
    if current == head():
        return
    known = {script.revision for script in scripts().walk_revisions()}
    if current is not None and current not in known:
        raise UserError(f"the database {safe_url} was migrated by a newer ChurnGuard (schema revision {current}); "
                        "upgrade ChurnGuard before using it")
    shown = "that of release 0.1.0" if current is None else f"revision {current}"
    raise UserError(f"the database {safe_url} has an older schema ({shown}; this ChurnGuard uses {head()}); "
                    "any command that writes, such as `churnguard run`, migrates it (back it up first)")


def _refuse_newer_version(connection: Connection, safe_url: str) -> None:
    if "meta" not in inspect(connection).get_table_names():
        return
    row = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise UserError(f"the database {safe_url} has schema version {row[0]}, newer than this ChurnGuard "
                        f"({SCHEMA_VERSION}); upgrade ChurnGuard before using it")


def _set_version(connection: Connection, safe_url: str) -> None:
    """Record the schema version, so that an older ChurnGuard (which knows no Alembic) refuses
    a store it would misread."""
    meta = Meta.__table__  # type: ignore[attr-defined]
    found = connection.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    if found is None:
        connection.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
    elif int(found[0]) != SCHEMA_VERSION:
        connection.execute(update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


__all__ = ["BASELINE", "MIGRATIONS", "current_revision", "head", "prepare", "require_current", "scripts"]
