"""Engine and session handling for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine, select

import storage.events.tables  # registers the event tables on SQLModel.metadata
import storage.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.errors import UserError
from storage.tables import SCHEMA_VERSION, Meta


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the bot read while a job writes; busy_timeout waits out short writer locks
    # instead of failing; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """One store: an engine plus schema management.  Create one per process and share it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._ready = False

    def create_schema(self) -> Database:
        """Create missing tables and check the schema version (see README, "Schema changes")."""
        if self._ready:
            return self
        try:
            SQLModel.metadata.create_all(self.engine)
        except OperationalError as error:
            raise UserError(f"cannot open the database {self.safe_url}: {error.orig}") from error
        with Session(self.engine) as session:
            row = session.get(Meta, "schema_version")
            if row is None:
                session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                session.commit()
            elif int(row.value) > SCHEMA_VERSION:
                raise UserError(
                    f"the database {self.safe_url} has schema version {row.value}, newer than this "
                    f"ChurnGuard ({SCHEMA_VERSION}); upgrade ChurnGuard before using it"
                )
        self._ready = True
        return self

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        self.create_schema()
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def row_counts(self) -> dict[str, int]:
        """Rows per table: the tests' proof that a rejected input stored nothing."""
        self.create_schema()
        counts: dict[str, int] = {}
        with Session(self.engine) as session:
            for table in SQLModel.metadata.sorted_tables:
                counts[table.name] = int(session.exec(select(func.count()).select_from(table)).one())
        return counts

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Commands open a store for one call; leaving the block closes its connections."""
        self.dispose()
