"""Raise, store, throttle and deliver alerts.

A job describes what it saw as an :class:`AlertDraft`.  :func:`raise_alert` decides whether
people hear about it: the same condition (the draft's fingerprint, e.g. "drift of model v3")
is sent at most once per cooldown, unless it got worse — a higher severity, or a ``level``
(how bad, higher is worse: a drifted share, a recall gap) that grew by at least the draft's
``worse_by``.  Repeats inside the cooldown are not stored as alerts (the job run records
them as suppressed), so the alert history is what people were actually told.

Delivery is separate from storage.  Alerts are stored first, then handed to the notifier;
``sent_at`` stays empty until a notifier took them.  An alert raised by ``churnguard jobs
run`` in a shell is therefore still delivered by the running service (its outbox pass picks
up unsent alerts), and a notifier failure never loses one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import desc
from sqlmodel import col, select

from jobs.notifier import KINDS, SEVERITIES, AlertMessage, Audience, Notifier
from storage.db import Database
from storage.redact import redact, redact_values
from storage.tables import Alert, utcnow

log = logging.getLogger("churnguard.alerts")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
ADMIN_ONLY = ("ingest_rejected", "job_failed")
OUTBOX_HOURS = 24.0  # unsent alerts older than this are history, not news
# Bookkeeping kept in Alert.figures; the leading "_" keeps them out of what people are shown.
# CHAT holds the chat's wording of the message when it differs (see AlertDraft.chat_text).
LEVEL, TITLE, CHART, CHAT = "_level", "_title", "_chart", "_chat"


@dataclass(frozen=True)
class AlertDraft:
    """What a job wants to say.  ``condition`` names the situation within the kind (e.g. the
    model version, a file's checksum); kind + condition make the cooldown fingerprint.

    ``text`` is what the command line and the log show; ``chat_text``, when given, is the same
    news for a chat: without server paths or command-line advice (a chat user has no shell).
    ``figures`` are for ``--json`` and charts; people read the sentences."""

    kind: str
    severity: str
    condition: str
    title: str
    text: str
    figures: dict[str, Any] = field(default_factory=dict)
    level: float | None = None
    worse_by: float = 0.0
    chart_png: bytes | None = None
    chat_text: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"alert kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")

    @property
    def fingerprint(self) -> str:
        return f"{self.kind}:{self.condition}"[:200]

    @property
    def audience(self) -> Audience:
        return audience_of(self.kind)


@dataclass(frozen=True)
class AlertDecision:
    """What :func:`raise_alert` did: stored (and to be sent) or suppressed, and why."""

    draft: AlertDraft
    stored: bool
    reason: str
    alert_id: int | None = None
    previous_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.draft.kind,
            "severity": self.draft.severity,
            "fingerprint": self.draft.fingerprint,
            "stored": self.stored,
            "reason": self.reason,
            "alert_id": self.alert_id,
        }


def audience_of(kind: str) -> Audience:
    return "admins" if kind in ADMIN_ONLY else "subscribers+admins"


def _worse(draft: AlertDraft, previous: Alert) -> str | None:
    """Why the draft is worse than the previous alert of its condition, or None."""
    before = SEVERITY_RANK.get(previous.severity, 0)
    now = SEVERITY_RANK[draft.severity]
    if now > before:
        return f"severity rose from {previous.severity} to {draft.severity}"
    if now < before:
        return None
    old_level = previous.figures.get(LEVEL)
    if draft.level is None or not isinstance(old_level, int | float):
        return None
    if draft.level >= float(old_level) + draft.worse_by and draft.level > float(old_level):
        return f"level rose from {float(old_level):.4g} to {draft.level:.4g}"
    return None


def decide(draft: AlertDraft, previous: Alert | None, *, cooldown_hours: float, now: datetime) -> tuple[bool, str]:
    """Whether to raise ``draft`` given the newest stored alert with its fingerprint."""
    if previous is None:
        return True, "new condition"
    age = now - previous.created_at
    if age >= timedelta(hours=cooldown_hours):
        return True, f"cooldown of {cooldown_hours:g} h over since alert #{previous.id}"
    worse = _worse(draft, previous)
    if worse is not None:
        return True, f"worse than alert #{previous.id}: {worse}"
    left = timedelta(hours=cooldown_hours) - age
    return False, (
        f"suppressed: same condition as alert #{previous.id} {_ago(age)} ago and not worse "
        f"(cooldown {cooldown_hours:g} h, {_ago(left)} left)"
    )


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def raise_alert(
    db: Database,
    draft: AlertDraft,
    *,
    cooldown_hours: float,
    charts_dir: Path | None = None,
    now: datetime | None = None,
) -> AlertDecision:
    """Store the alert unless the cooldown suppresses it; its chart goes to ``charts_dir``."""
    now = now or utcnow()
    with db.session() as session:
        previous = session.exec(
            select(Alert).where(Alert.fingerprint == draft.fingerprint).order_by(desc(col(Alert.id)))
        ).first()
        raise_it, reason = decide(draft, previous, cooldown_hours=cooldown_hours, now=now)
        previous_id = None if previous is None else previous.id
        if not raise_it:
            return AlertDecision(draft, False, reason, None, previous_id)
        # Alerts quote errors (a failed job, a refused file or SQL pull): mask secrets before
        # they are stored, and so before any chat or log sees them.
        figures = redact_values(json_safe({**draft.figures, LEVEL: draft.level, TITLE: draft.title}))
        if draft.chat_text is not None and draft.chat_text != draft.text:
            figures[CHAT] = redact(draft.chat_text)
        row = Alert(
            created_at=now,
            kind=draft.kind,
            severity=draft.severity,
            fingerprint=draft.fingerprint,
            message=redact(draft.text),
            figures=figures,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        alert_id = row.id
        if draft.chart_png is not None and charts_dir is not None:
            charts_dir.mkdir(parents=True, exist_ok=True)
            path = charts_dir / f"alert-{alert_id}.png"
            path.write_bytes(draft.chart_png)
            row.figures = {**figures, CHART: str(path)}
            session.add(row)
    return AlertDecision(draft, True, reason, alert_id, previous_id)


def json_safe(value: Any) -> Any:
    """Figures as JSON the database accepts: no NaN or infinity (PostgreSQL refuses them),
    numpy scalars as plain numbers, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def message_of(row: Alert, chart_png: bytes | None = None) -> AlertMessage:
    """The notifier's view of a stored alert; the chart is read back from disk when not given."""
    figures = public_figures(row)
    if chart_png is None and isinstance(row.figures.get(CHART), str):
        path = Path(row.figures[CHART])
        if path.is_file():
            chart_png = path.read_bytes()
    return AlertMessage(
        kind=row.kind,
        severity=row.severity,
        title=title_of(row),
        text=row.message,
        figures=figures,
        chart_png=chart_png,
        audience=audience_of(row.kind),
        alert_id=row.id,
        created_at=row.created_at,
        chat_text=chat_text_of(row),
    )


def unsent(db: Database, *, within_hours: float = OUTBOX_HOURS, now: datetime | None = None) -> list[Alert]:
    """Alerts stored but never handed to a notifier, oldest first, from the last hours only."""
    since = (now or utcnow()) - timedelta(hours=within_hours)
    with db.session() as session:
        query = (
            select(Alert)
            .where(col(Alert.sent_at).is_(None), col(Alert.created_at) >= since)
            .order_by(col(Alert.id))
        )
        return list(session.exec(query).all())


def mark_sent(db: Database, alert_id: int, delivered: int) -> None:
    with db.session() as session:
        row = session.get(Alert, alert_id)
        if row is not None:
            row.sent_at = utcnow()
            row.delivered = delivered
            session.add(row)


async def deliver(db: Database, notifier: Notifier, alert_ids: list[int]) -> dict[int, int]:
    """Hand stored alerts to the notifier; returns deliveries per alert id.

    A failing notifier is logged and the alert stays unsent (the next outbox pass retries);
    it never fails the job that raised the alert.
    """
    delivered: dict[int, int] = {}
    for alert_id in alert_ids:
        with db.session() as session:
            row = session.get(Alert, alert_id)
            if row is None or row.sent_at is not None:
                continue
            message = message_of(row)
        try:
            count = int(await notifier.notify(message))
        except Exception:
            log.exception("could not deliver alert #%s (%s); it stays in the outbox", alert_id, message.kind)
            continue
        mark_sent(db, alert_id, count)
        delivered[alert_id] = count
    return delivered


async def flush_outbox(db: Database, notifier: Notifier, *, within_hours: float = OUTBOX_HOURS) -> dict[int, int]:
    """Deliver every recent unsent alert (raised by another process, or after a failed send)."""
    ids = [row.id for row in unsent(db, within_hours=within_hours) if row.id is not None]
    return await deliver(db, notifier, ids)


def public_figures(row: Alert) -> dict[str, Any]:
    """The numbers behind an alert, without the bookkeeping keys (those start with "_")."""
    return {k: v for k, v in row.figures.items() if not str(k).startswith("_")}


def chat_text_of(row: Alert) -> str:
    """The alert's message as a chat shows it (its own chat wording when it has one)."""
    chat = row.figures.get(CHAT)
    return str(chat) if isinstance(chat, str) else row.message


def title_of(row: Alert) -> str:
    return str(row.figures.get(TITLE) or row.kind.replace("_", " "))


def alert_dict(row: Alert) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "severity": row.severity,
        "time": row.created_at.isoformat(),
        "title": title_of(row),
        "message": row.message,
        "figures": public_figures(row),
        "chart": row.figures.get(CHART),
        "fingerprint": row.fingerprint,
        "audience": audience_of(row.kind),
        "sent_at": None if row.sent_at is None else row.sent_at.isoformat(),
        "delivered": row.delivered,
    }


def recent_alerts(db: Database, *, limit: int = 20, kind: str | None = None) -> list[Alert]:
    """Newest first."""
    with db.session() as session:
        query = select(Alert).order_by(desc(col(Alert.id))).limit(limit)
        if kind is not None:
            query = query.where(Alert.kind == kind)
        return list(session.exec(query).all())


__all__ = [
    "ADMIN_ONLY",
    "SEVERITY_RANK",
    "AlertDecision",
    "AlertDraft",
    "alert_dict",
    "audience_of",
    "chat_text_of",
    "decide",
    "deliver",
    "flush_outbox",
    "json_safe",
    "mark_sent",
    "message_of",
    "public_figures",
    "raise_alert",
    "recent_alerts",
    "title_of",
    "unsent",
]
