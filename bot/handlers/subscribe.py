"""/subscribe and /unsubscribe: which chats receive alerts.

Subscriptions live in the database (``Subscriber``), not in PTB's memory, so a restart or a
new deployment keeps them.  A chat is deactivated rather than deleted when it unsubscribes
or blocks the bot, which keeps the history of who was told what.
"""

from __future__ import annotations

from sqlmodel import col, select
from telegram import Update
from telegram.ext import ContextTypes

from bot.access import Role
from bot.messages import reply
from bot.services import Command, services
from storage.db import Database
from storage.tables import Subscriber, utcnow


def subscribe_chat(db: Database, chat_id: int, user_id: int | None) -> bool:
    """Activate alerts for ``chat_id``; False when it was already subscribed."""
    with db.session() as session:
        row = session.get(Subscriber, chat_id)
        if row is not None and row.active:
            return False
        if row is None:
            row = Subscriber(chat_id=chat_id, user_id=user_id)
        row.active = True
        row.user_id = user_id
        row.subscribed_at = utcnow()
        session.add(row)
        return True


def unsubscribe_chat(db: Database, chat_id: int) -> bool:
    """Stop alerts for ``chat_id``; False when it was not subscribed."""
    with db.session() as session:
        row = session.get(Subscriber, chat_id)
        if row is None or not row.active:
            return False
        row.active = False
        session.add(row)
        return True


def active_chats(db: Database) -> list[int]:
    with db.read_session() as session:
        query = select(Subscriber.chat_id).where(col(Subscriber.active)).order_by(col(Subscriber.chat_id))
        return [int(chat) for chat in session.exec(query).all()]


async def subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    user = update.effective_user
    added = await svc.offload(subscribe_chat, svc.db, chat.id, user.id if user else None)
    if added:
        await reply(update, context, "Subscribed: alerts about data drift, recall and retrained models will come to "
                                     "this chat. /unsubscribe stops them.")
    else:
        await reply(update, context, "This chat is already subscribed to alerts. /unsubscribe stops them.")


async def unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    removed = await svc.offload(unsubscribe_chat, svc.db, chat.id)
    if removed:
        await reply(update, context, "Unsubscribed: this chat gets no more alerts. /subscribe turns them back on.")
    else:
        await reply(update, context, "This chat is not subscribed to alerts. /subscribe turns them on.")


COMMANDS = (
    Command("subscribe", "send alerts to this chat", Role.VIEWER, subscribe, private_only=False),
    Command("unsubscribe", "stop alerts to this chat", Role.VIEWER, unsubscribe, private_only=False),
)

__all__ = ["COMMANDS", "active_chats", "subscribe", "subscribe_chat", "unsubscribe", "unsubscribe_chat"]
