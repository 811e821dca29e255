"""Who may use the bot, and the audit trail of what they did with it.

Roles come only from settings (``CHURNGUARD_ADMIN_IDS`` / ``CHURNGUARD_VIEWER_IDS``), never
from anything a Telegram user can send, so that access cannot be talked into existence.
Refusals and every admin action are written to ``AuditLog`` because a retention team has
to be able to answer "who promoted that model?" and "who has been knocking on the door?".
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import select

from storage.db import Database
from storage.redact import redact
from storage.tables import AuditLog

log = logging.getLogger(__name__)

STRANGER_ACTION = "stranger"
STRANGER_REPLIED = "refused, told once"
STRANGER_SILENT = "refused, ignored"


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


def record_audit(db: Database, *, actor: int | str | None, action: str, detail: str = "", result: str = "ok") -> None:
    """Append one audit row.  Blocking: the bot calls it through ``Services.offload``."""
    row = AuditLog(
        actor=str(actor if actor is not None else "unknown")[:64],
        action=action[:64],
        detail=redact(detail)[:2000],  # an error's text may quote a secret (storage/redact.py)
        result=redact(result)[:64],
    )
    with db.session() as session:
        session.add(row)


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
    "STRANGER_ACTION",
    "STRANGER_REPLIED",
    "STRANGER_SILENT",
    "AccessList",
    "Role",
    "audit_entries",
    "record_audit",
    "stranger_was_told",
]
