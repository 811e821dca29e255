"""One service per store: a lock file in the home, and a PostgreSQL advisory lock.

Two ``churnguard run`` on one store fight over ``getUpdates`` (409 Conflict for both) and run
every scheduled job twice.  The service therefore holds, for its whole life:

* an exclusive ``flock`` on ``<home>/locks/service.lock``.  The kernel releases it when the
  process ends, however it ends, so ``kill -9`` never leaves a stale lock; the file's content
  (pid, command, start time) only serves the refusal message and ``churnguard health``.  The
  descriptor is not inheritable, so a training worker the service spawned does not keep it.
* on PostgreSQL, a session-level advisory lock on a connection of its own, keyed by the
  schema the store lives in, because two homes (two hosts, two containers) can point at one
  database.  PostgreSQL releases it when that connection closes, which a killed process's
  socket does at once.

The second instance is refused at start with one line (``AlreadyRunning``).  ``holder`` tells
whether some process holds the home's lock, without taking it for more than an instant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.errors import UserError

LOCK_NAME = "service.lock"
# First key of the two-key advisory lock ("CGSV"); the second is the hash of the schema name.
# pg_advisory_xact_lock(bigint) in storage/migrate.py lives in another key space.
ADVISORY_CLASS = 0x43475356
# A starting service retries this long before refusing: `churnguard health` probes the lock
# for an instant, and must never make a real start fail.
ACQUIRE_SECONDS = 2.0


class AlreadyRunning(UserError):
    """Another ChurnGuard service already serves this home or this database."""


@dataclass(frozen=True)
class Holder:
    """Who holds the home's service lock, as it wrote itself into the lock file."""

    pid: int | None
    command: str
    started_at: str
    host: str

    def describe(self) -> str:
        parts = [f"pid {self.pid}" if self.pid else None, self.command or None,
                 f"on {self.host}" if self.host else None, f"since {self.started_at}" if self.started_at else None]
        return ", ".join(part for part in parts if part)


def lock_path(home: Path) -> Path:
    return Path(home) / "locks" / LOCK_NAME


def _read_holder(path: Path) -> Holder:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    pid = data.get("pid")
    return Holder(pid if isinstance(pid, int) else None, str(data.get("command", "")),
                  str(data.get("started_at", "")), str(data.get("host", "")))


def holder(home: Path) -> Holder | None:
    """The process holding the home's service lock, or None when no service runs on it.

    Probes with a shared lock for an instant (a starting service retries for
    ``ACQUIRE_SECONDS``, so the probe cannot make it fail).  Never creates the home.
    """
    path = lock_path(home)
    try:
        handle = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


class InstanceLock:
    """Held by ``churnguard run`` and ``churnguard sandbox`` for their whole life."""

    def __init__(self, home: Path, command: str) -> None:
        self.home = Path(home)
        self.command = command
        self._file: IO[str] | None = None
        self._pg: Connection | None = None

    # ---------------------------------------------------------------- the home
    def acquire_home(self, wait_seconds: float = ACQUIRE_SECONDS) -> InstanceLock:
        path = lock_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")  # never truncate before the lock is ours
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    found = _read_holder(path)
                    handle.close()
                    raise AlreadyRunning(
                        f"another ChurnGuard service is already running on the home {self.home} "
                        f"({found.describe() or 'details unknown'}); stop it first, or give this one its own "
                        "CHURNGUARD_HOME") from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "command": self.command, "host": socket.gethostname(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), "argv": sys.argv[1:],
        }))
        handle.flush()
        self._file = handle
        return self

    # ---------------------------------------------------------------- PostgreSQL
    def acquire_database(self, db: Database) -> InstanceLock:
        """On PostgreSQL, the advisory lock of the store's schema; nothing to do on SQLite
        (its file lives in the home, whose lock is already held)."""
        if db.dialect != "postgresql":
            return self
        connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"),
                                     {"key": ADVISORY_CLASS}).scalar()
            schema = connection.execute(text("SELECT current_schema()")).scalar()
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            raise AlreadyRunning(
                f"another ChurnGuard service is already running on the database {db.safe_url} (schema {schema}), "
                "probably from another home or host; stop it first, or give this one its own "
                "CHURNGUARD_DATABASE_URL")
        self._pg = connection
        return self

    # ---------------------------------------------------------------- releasing
    def release(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):  # a lost connection has released it already
                self._pg.execute(text("SELECT pg_advisory_unlock(:key, hashtext(current_schema()))"),
                                 {"key": ADVISORY_CLASS})
            with contextlib.suppress(Exception):
                # Closed for good, never back to the pool: a pooled connection that still held
                # the lock (had the unlock failed) would keep it for whoever borrows it next.
                self._pg.invalidate()
                self._pg.close()
            self._pg = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


@contextlib.contextmanager
def instance_lock(home: Path, command: str) -> Iterator[InstanceLock]:
    """The home's lock for the block; add the database's with ``acquire_database``."""
    lock = InstanceLock(home, command).acquire_home()
    try:
        yield lock
    finally:
        lock.release()


__all__ = ["ACQUIRE_SECONDS", "AlreadyRunning", "Holder", "InstanceLock", "holder", "instance_lock", "lock_path"]
