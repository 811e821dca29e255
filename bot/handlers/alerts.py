"""/alerts [n]: the most recent alerts the jobs raised, newest first, with their figures."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from telegram import Update
from telegram.ext import ContextTypes

from bot.access import Role
from bot.arguments import parse_count
from bot.messages import reply
from bot.services import Command, services
from storage.db import Database
from storage.tables import Alert

DEFAULT_COUNT = 10
MAX_COUNT = 50


def recent_alerts(db: Database, limit: int) -> list[Alert]:
    with db.read_session() as session:
        query = select(Alert).order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
        return list(session.exec(query).all())


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        text = str(value)
        return text if len(text) <= 80 else text[:79] + "…"
    return str(value)


def format_alert(alert: Alert) -> str:
    when = alert.created_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"{when} · {alert.severity.upper()} · {alert.kind}", alert.message]
    figures = {key: value for key, value in (alert.figures or {}).items() if not str(key).startswith("_")}
    if figures:
        lines.append("  " + ", ".join(f"{key}={_figure(value)}" for key, value in list(figures.items())[:8]))
    return "\n".join(lines)


def alerts_text(alerts: list[Alert], asked: int) -> str:
    if not alerts:
        return "No alerts yet. Drift, recall and job alerts will be listed here (and sent to /subscribe'd chats)."
    head = f"The {len(alerts)} most recent alert(s), newest first:" if len(alerts) < asked or asked > 1 else "Latest alert:"
    return "\n\n".join([head, *(format_alert(alert) for alert in alerts)])


async def alerts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    count = parse_count("alerts", list(context.args or []), DEFAULT_COUNT, MAX_COUNT)
    rows = await svc.offload(recent_alerts, svc.db, count)
    await reply(update, context, alerts_text(rows, count), filename="alerts.txt")


COMMANDS = (Command("alerts", "recent alerts (drift, recall, failed jobs)", Role.VIEWER, alerts, usage="[n]"),)

__all__ = ["COMMANDS", "alerts", "alerts_text", "format_alert", "recent_alerts"]
