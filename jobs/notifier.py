"""How jobs hand alerts to people, without knowing about Telegram.

The bot implements :class:`Notifier` (send to subscribed chats and admins); the command line
and the tests use :class:`LogNotifier` and :class:`RecordingNotifier`.  An alert is plain
data (:class:`AlertMessage`), so nothing Telegram-specific ever reaches ``jobs``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from storage.errors import Channel
from storage.tables import utcnow

Audience = Literal["subscribers+admins", "admins"]
SEVERITIES = ("info", "warning", "critical")
KINDS = ("drift", "recall", "early_warning", "retrain", "ingest_rejected", "job_failed")

log = logging.getLogger("churnguard.alerts")


@dataclass(frozen=True)
class AlertMessage:
    """One alert ready to send.

    ``figures`` are the numbers behind it (JSON-able, for ``--json`` and charts, not for
    people to read); ``chart_png`` an optional picture; ``audience`` says who must see it:
    data and model alerts go to subscribed chats and admins, operational ones (a rejected
    file, a failed job) to admins only.  ``chat_text`` is ``text`` worded for a chat (no
    server paths, no command-line advice) when the two differ; :meth:`text_for` picks.
    """

    kind: str
    severity: str
    title: str
    text: str
    figures: dict[str, Any] = field(default_factory=dict)
    chart_png: bytes | None = None
    audience: Audience = "subscribers+admins"
    alert_id: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    chat_text: str | None = None

    def text_for(self, channel: Channel) -> str:
        return self.chat_text if channel == "chat" and self.chat_text is not None else self.text

    def as_text(self) -> str:
        """Title and body in one message, e.g. for a log line or a chat."""
        return f"[{self.severity.upper()}] {self.title}\n{self.text}"


@runtime_checkable
class Notifier(Protocol):
    """Delivers an alert; returns how many chats received it (0 when nobody did)."""

    async def notify(self, alert: AlertMessage) -> int: ...


class LogNotifier:
    """Writes alerts to the log: the command line's notifier when no bot runs in the process."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    async def notify(self, alert: AlertMessage) -> int:
        level = logging.WARNING if alert.severity in ("warning", "critical") else logging.INFO
        self.logger.log(level, "alert %s (%s): %s", alert.kind, alert.audience, alert.as_text())
        return 0


class RecordingNotifier:
    """Keeps every alert in ``sent``; ``deliveries`` is what ``notify`` reports per alert.

    ``fail`` makes ``notify`` raise, to test that a broken delivery path never loses the
    stored alert or fails the job that raised it.
    """

    def __init__(self, deliveries: int = 1, *, fail: bool = False) -> None:
        self.sent: list[AlertMessage] = []
        self.deliveries = deliveries
        self.fail = fail

    async def notify(self, alert: AlertMessage) -> int:
        if self.fail:
            raise ConnectionError("notifier is down")
        self.sent.append(alert)
        return self.deliveries

    def kinds(self) -> list[str]:
        return [alert.kind for alert in self.sent]


__all__ = ["KINDS", "SEVERITIES", "AlertMessage", "Audience", "LogNotifier", "Notifier", "RecordingNotifier"]
