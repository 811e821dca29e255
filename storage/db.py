"""Engine and session handling for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, inspect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine, select

import storage.campaign_tables  # registers the campaign tables on SQLModel.metadata
import storage.events.tables  # registers the event tables on SQLModel.metadata
import storage.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.errors import NotFound, UserError


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the bot read while a job writes; busy_timeout waits out short writer locks
    # instead of failing; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


WRITE_OPTION = "churnguard_write"  # execution option: this connection's transaction will write


def _sqlite_begin(connection: Connection) -> None:
    """Begin a write session's transaction with BEGIN IMMEDIATE (SQLAlchemy's recipe for pysqlite).

    pysqlite on its own begins a transaction only at the first INSERT/UPDATE/DELETE, and
    deferred: the reads a writer makes before that (is this batch new? is the schema
    stored? what is each client's latest record?) are not part of its transaction, so two
    simultaneous writers can both act on what they read before the other one wrote.  BEGIN
    IMMEDIATE takes the write lock first, so the second writer waits on the busy timeout and
    then reads what the first one committed.  Every other connection (readers, raw
    ``engine.connect()``, SQLAlchemy's AUTOCOMMIT) keeps pysqlite's own handling unchanged:
    in WAL mode readers never wait for a writer."""
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    dbapi_connection: Any = connection.connection.dbapi_connection
    if options.get(WRITE_OPTION):
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own; COMMIT/ROLLBACK still work
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dbapi_connection.isolation_level is None:
        dbapi_connection.isolation_level = ""  # the pooled connection served a write session: pysqlite's default


def _read_only_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # any write fails at once instead of taking the lock
    cursor.execute(f"PRAGMA busy_timeout={READ_ONLY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _read_only_postgresql(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


# A read-only store answers quickly or not at all: health checks must never hang.
READ_ONLY_TIMEOUT_SECONDS = 5


class Database:
    """One store: an engine plus schema management.  Create one per process and share it.

    ``session()`` is for work that writes (on SQLite it takes the write lock when it begins);
    ``read_session()`` for reading only.  Raw ``engine.connect()`` connections read.

    ``Database.read_only(url)`` opens an existing store for reading only (``churnguard health``
    and ``status``): no schema creation or migration, no write lock, short time-outs."""

    def __init__(self, url: str, *, echo: bool = False, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not read_only:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False,
                                      "timeout": READ_ONLY_TIMEOUT_SECONDS if read_only else 30}
        else:
            kwargs["pool_pre_ping"] = True
            if read_only and "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": READ_ONLY_TIMEOUT_SECONDS}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        if read_only:
            event.listen(self.engine, "connect", _read_only_sqlite if self.dialect == "sqlite" else _read_only_postgresql)
        # Shares the engine's pool and listeners; only the way a SQLite transaction begins differs.
        self._write_engine: Engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._local = threading.local()  # sessions open in this thread, to spot nesting
        self._ready = read_only  # a read-only store is never created nor migrated
        self.migrated: list[str] = []  # the revisions create_schema applied

    @classmethod
    def open_read_only(cls, url: str) -> Database:
        """An existing store, for reading only; ``NotFound`` when there is none at ``url``.

        Nothing is created or migrated and no write lock is ever taken, so it answers while an
        ingest holds SQLite's write lock (WAL readers never wait for the writer)."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database or ""
            if path in ("", ":memory:") or not Path(path).is_file():
                raise NotFound(f"no store at {path or url}: nothing was ingested yet (the first `churnguard ingest` "
                               "or `churnguard run` creates it)")
        database = cls(url, read_only=True)
        try:
            with database.engine.connect() as connection:
                tables = set(inspect(connection).get_table_names())
        except OperationalError as error:
            database.dispose()
            raise UserError(f"cannot open the database {database.safe_url}: {error.orig}") from error
        if "meta" not in tables:
            database.dispose()
            raise NotFound(f"no store in the database {database.safe_url}: nothing was ingested yet (the first "
                           "`churnguard ingest` or `churnguard run` creates it)")
        return database

    def create_schema(self) -> Database:
        """Create a new store's tables, or migrate an older store's schema (``storage.migrate``);
        refuse a store made by a newer ChurnGuard.  Runs once per process and store, before
        the first session: nothing reads or writes a store whose schema is behind."""
        if self._ready:
            return self
        from storage.migrate import prepare  # Alembic is only needed once per process

        try:
            with self._write_engine.begin() as connection:
                self.migrated = prepare(connection, safe_url=self.safe_url)
        except OperationalError as error:
            raise UserError(f"cannot open the database {self.safe_url}: {error.orig}") from error
        self._ready = True
        return self

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for work that writes: its transaction commits on success and rolls back on
        any error.  On SQLite it begins with BEGIN IMMEDIATE, so of two writers at once (the
        bot's upload and the inbox job, say) the second waits on the busy timeout and then reads
        what the first wrote, instead of acting on what it read before.  A session opened while
        another is open in the same thread (a
        nested call, or another coroutine on the bot's event loop) begins deferred instead:
        waiting for the write lock its own thread holds would only time out."""
        if self.read_only:
            raise RuntimeError("this store was opened read-only; use read_session()")
        nested = getattr(self._local, "open", 0) > 0
        with self._session(self.engine if nested else self._write_engine) as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: deferred on SQLite, so it never waits for a writer
        (WAL lets it read the last committed state while a batch is being stored)."""
        with self._session(self.engine) as session:
            yield session

    @contextmanager
    def _session(self, bind: Engine) -> Iterator[Session]:
        self.create_schema()
        self._local.open = getattr(self._local, "open", 0) + 1
        try:
            with Session(bind, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        finally:
            self._local.open -= 1

    def row_counts(self) -> dict[str, int]:
        """Rows per table: the tests' proof that a rejected input stored nothing."""
        self.create_schema()
        counts: dict[str, int] = {}
        with self.read_session() as session:
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
