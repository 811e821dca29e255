"""Who may use the bot, and the audit trail of what they did with it.

Roles come only from settings (``CHURNGUARD_ADMIN_IDS`` / ``CHURNGUARD_VIEWER_IDS``), never
from anything a Telegram user can send, so that access cannot be talked into existence.
Refusals and every admin action are written to ``AuditLog`` because a retention team has
to be able to answer "who promoted that model?" and "who has been knocking on the door?".

A short database outage (PostgreSQL restarting, a network blip) must not lose those rows, nor
hold up the answers: :class:`AuditTrail` keeps the rows it cannot write in memory (bounded)
and writes them, with the time they happened, at the next write that gets through or at the
bot's periodic retry.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import select

from storage.db import Database
from storage.redact import redact
from storage.tables import AuditLog, utcnow

log = logging.getLogger(__name__)

STRANGER_ACTION = "stranger"
STRANGER_REPLIED = "refused, told once"
STRANGER_SILENT = "refused, ignored"
AUDIT_BUFFER_ROWS = 1000  # rows kept in memory while the database is down; the oldest go first
AUDIT_RETRY_SECONDS = 5.0  # while it is down, the database is tried at most this often


class Role(enum.IntEnum):
    """Ordered so that ``role >= Role.VIEWER`` reads as "may at least view"."""

    STRANGER = 0
    VIEWER = 1
    ADMIN = 2


@dataclass(frozen=True)
class AccessList:
    """The allow-lists of one running bot."""

    admins: frozenset[int]
    viewers: frozenset[int]

    @classmethod
    def from_ids(cls, admins: Iterable[int], viewers: Iterable[int]) -> AccessList:
        admin_set = frozenset(int(user) for user in admins)
        # An id in both lists is an admin: the stronger grant wins, listing it twice is harmless.
        return cls(admins=admin_set, viewers=frozenset(int(user) for user in viewers) - admin_set)

    def role(self, user_id: int | None) -> Role:
        if user_id is None:
            return Role.STRANGER
        if user_id in self.admins:
            return Role.ADMIN
        if user_id in self.viewers:
            return Role.VIEWER
        return Role.STRANGER

    def describe(self) -> str:
        """The /users answer: who has access, by role."""

        def listing(ids: frozenset[int]) -> str:
            return ", ".join(str(user) for user in sorted(ids)) if ids else "nobody"

        return f"Admins ({len(self.admins)}): {listing(self.admins)}\nViewers ({len(self.viewers)}): {listing(self.viewers)}"


def audit_row(*, actor: int | str | None, action: str, detail: str = "", result: str = "ok",
              at: datetime | None = None) -> AuditLog:
    """One audit row, cut to the column sizes."""
    return AuditLog(
        at=at or utcnow(),
        actor=str(actor if actor is not None else "unknown")[:64],
        action=action[:64],
        detail=redact(detail)[:2000],  # an error's text may quote a secret (storage/redact.py)
        result=redact(result)[:64],
    )


def record_audit(db: Database, *, actor: int | str | None, action: str, detail: str = "", result: str = "ok") -> None:
    """Append one audit row now; raises when the database cannot take it (see :class:`AuditTrail`)."""
    with db.session() as session:
        session.add(audit_row(actor=actor, action=action, detail=detail, result=result))


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def refused_row(error: BaseException) -> bool:
    """True when the database refused the row itself (a constraint, a value it cannot store),
    which no retry mends.  Anything else (a refused connection, a reset, a lock timeout, a
    store that cannot be opened) is taken for an outage, and the row waits."""
    return any(isinstance(link, (IntegrityError, DataError)) for link in _chain(error))


def _reason(error: BaseException) -> str:
    """The innermost cause's type, for one log line (no URL, no traceback)."""
    return type(list(_chain(error))[-1]).__name__


@dataclass(frozen=True)
class _Entry:
    seq: int
    row: AuditLog


class AuditTrail:
    """The bot's audit writes, which a short database outage neither loses nor lets block.

    :meth:`record` writes at once when the database answers.  When it does not, the row
    waits in memory (at most ``limit`` rows; beyond that the oldest are dropped, and logged,
    so that an outage cannot eat the memory), and the database is tried again at most every
    ``retry_seconds``: a handler meets a dead database once, not once per message.  Rows
    that waited are written first, in order and with the time they happened, by the next
    write that gets through or by :meth:`flush` (the bot calls it periodically).  Thread-safe:
    one thread writes at a time, and a thread that finds another one writing leaves its row
    to it instead of waiting.
    """

    def __init__(self, db: Database, *, limit: int = AUDIT_BUFFER_ROWS,
                 retry_seconds: float = AUDIT_RETRY_SECONDS) -> None:
        if limit < 1:
            raise ValueError("the audit buffer must hold at least one row")
        self.db = db
        self.limit = limit
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._waiting: list[_Entry] = []
        self._seq = 0
        self._queue_lock = threading.Lock()
        self._writing = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def pending(self) -> int:
        """Rows waiting for the database."""
        with self._queue_lock:
            return len(self._waiting)

    def record(self, *, actor: int | str | None, action: str, detail: str = "", result: str = "ok") -> bool:
        """Audit one action.  Blocking (call it off the event loop); never raises for an outage.
        True when the row, and every row that waited before it, is in the database now."""
        row = audit_row(actor=actor, action=action, detail=detail, result=result)
        with self._queue_lock:
            self._seq += 1
            self._waiting.append(_Entry(self._seq, row))
            excess = len(self._waiting) - self.limit
            if excess > 0:
                lost, self._waiting = self._waiting[:excess], self._waiting[excess:]
                self.dropped += excess
                for entry in lost:
                    log.error("audit buffer full (%d rows): dropped the row %s %s by %s at %s: %s", self.limit,
                              entry.row.action, entry.row.result, entry.row.actor, entry.row.at, entry.row.detail)
        return self.flush()

    def flush(self, *, force: bool = False) -> bool:
        """Write the rows that wait; True when none waits any more.  While the database is
        down only ``force`` (the periodic retry) tries before ``retry_seconds`` have passed."""
        while True:
            if not self._writing.acquire(blocking=False):
                return False  # another thread is writing and takes the waiting rows along
            try:
                emptied = self._write_waiting(force)
            finally:
                self._writing.release()
            if not emptied:
                return False
            with self._queue_lock:
                if not self._waiting:
                    return True
            # a row came in while this thread held the writer's lock, and its thread left it here

    def _write_waiting(self, force: bool) -> bool:
        while True:
            with self._queue_lock:
                batch = list(self._waiting)
            if not batch:
                return True
            if self._down_since is not None and not force and time.monotonic() < self._next_try:
                return False
            force = False
            try:
                self._insert(batch)
            except Exception as error:
                if not refused_row(error) or not self._insert_each(batch, error):
                    self._note_outage(error, len(batch))
                    return False
                continue
            if self._down_since is not None:
                log.warning("the database answers again after %.0f s: wrote %d audit row(s) kept meanwhile",
                            time.monotonic() - self._down_since, len(batch))
                self._down_since = None
            self._forget(batch)

    def _forget(self, done: list[_Entry]) -> None:
        handled = {entry.seq for entry in done}
        with self._queue_lock:
            self._waiting = [entry for entry in self._waiting if entry.seq not in handled]

    def _insert(self, batch: list[_Entry]) -> None:
        with self.db.session() as session:
            session.add_all([_copy(entry.row) for entry in batch])

    def _insert_each(self, batch: list[_Entry], error: BaseException) -> bool:
        """The database refused the batch for another reason than an outage: write the rows one
        by one and drop (and log) only those it refuses, so one bad row cannot block the rest.
        False when an outage began meanwhile (the rows not handled yet keep waiting)."""
        log.warning("the audit rows were refused together (%s); writing them one by one", _reason(error))
        for entry in batch:
            try:
                self._insert([entry])
            except Exception as refused:
                if not refused_row(refused):
                    return False
                log.error("audit row refused by the database (%s), dropped: %s %s by %s at %s: %s",
                          _reason(refused), entry.row.action, entry.row.result, entry.row.actor,
                          entry.row.at, entry.row.detail)
            self._forget([entry])
        return True

    def _note_outage(self, error: BaseException, waiting: int) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning("the database does not answer (%s): keeping audit rows in memory (up to %d) and "
                        "retrying every %g s", _reason(error), self.limit, self.retry_seconds)
        else:
            log.info("the database still does not answer; %d audit row(s) wait", waiting)
        self._next_try = now + self.retry_seconds


def _copy(row: AuditLog) -> AuditLog:
    """A fresh row for each attempt: a failed session may have half-attached the last one."""
    return AuditLog(at=row.at, actor=row.actor, action=row.action, detail=row.detail, result=row.result)


def stranger_was_told(db: Database, user_id: int) -> bool:
    """True when this stranger has already had their one refusal (remembered across restarts)."""
    with db.read_session() as session:
        query = (
            select(AuditLog.id)
            .where(AuditLog.actor == str(user_id))
            .where(AuditLog.action == STRANGER_ACTION)
            .where(AuditLog.result == STRANGER_REPLIED)
            .limit(1)
        )
        return session.exec(query).first() is not None


def audit_entries(db: Database, *, actor: int | str | None = None, action: str | None = None) -> list[AuditLog]:
    """Audit rows, oldest first, optionally for one actor or action (tests and /users use it)."""
    with db.read_session() as session:
        query = select(AuditLog).order_by(AuditLog.id)  # type: ignore[arg-type]
        if actor is not None:
            query = query.where(AuditLog.actor == str(actor))
        if action is not None:
            query = query.where(AuditLog.action == action)
        return list(session.exec(query).all())


__all__ = [
    "AUDIT_BUFFER_ROWS",
    "AUDIT_RETRY_SECONDS",
    "STRANGER_ACTION",
    "STRANGER_REPLIED",
    "STRANGER_SILENT",
    "AccessList",
    "AuditTrail",
    "Role",
    "audit_entries",
    "audit_row",
    "record_audit",
    "refused_row",
    "stranger_was_told",
]
