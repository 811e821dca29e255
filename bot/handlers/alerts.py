"""/alerts [n]: the most recent alerts the jobs raised, newest first, in sentences.

Viewers see the alerts about the data and the model (drift, recall, retrains), the ones
subscribers receive; admins see everything, operational alerts (a rejected inbox file, a
failed job) included.  An alert reads as its title and text in the chat's wording; the
numbers behind it stay in ``churnguard alerts --json`` and in its chart.
"""

from __future__ import annotations

from sqlmodel import col, select
from telegram import Update
from telegram.ext import ContextTypes

from bot.access import Role
from bot.arguments import parse_count
from bot.messages import reply
from bot.services import Command, services
from jobs.alerts import ADMIN_ONLY, chat_text_of, title_of
from storage.db import Database
from storage.tables import Alert

DEFAULT_COUNT = 10
MAX_COUNT = 50


def recent_alerts(db: Database, limit: int, role: Role = Role.ADMIN) -> list[Alert]:
    """Newest first; below admin, only the alerts that subscribers receive."""
    with db.read_session() as session:
        query = select(Alert)
        if role < Role.ADMIN:
            query = query.where(col(Alert.kind).not_in(ADMIN_ONLY))
        query = query.order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
        return list(session.exec(query).all())


def format_alert(alert: Alert) -> str:
    when = alert.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{when} · {alert.severity.upper()} · {alert.kind}: {title_of(alert)}\n{chat_text_of(alert)}"


def alerts_text(alerts: list[Alert], asked: int, role: Role = Role.ADMIN) -> str:
    if not alerts:
        what = "Drift, recall, retrain and job alerts" if role >= Role.ADMIN else "Drift, recall and retrain alerts"
        return f"No alerts yet. {what} will be listed here (and sent to /subscribe'd chats)."
    head = f"The {len(alerts)} most recent alert(s), newest first:" if len(alerts) < asked or asked > 1 else "Latest alert:"
    return "\n\n".join([head, *(format_alert(alert) for alert in alerts)])


async def alerts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    count = parse_count("alerts", list(context.args or []), DEFAULT_COUNT, MAX_COUNT)
    user = update.effective_user
    role = svc.access.role(user.id if user is not None else None)
    rows = await svc.offload(recent_alerts, svc.db, count, role)
    await reply(update, context, alerts_text(rows, count, role), filename="alerts.txt")


COMMANDS = (Command("alerts", "recent alerts (drift, recall, retrains; failed jobs for admins)", Role.VIEWER, alerts,
                    usage="[n]"),)

__all__ = ["COMMANDS", "alerts", "alerts_text", "format_alert", "recent_alerts"]
