"""Alerts from the jobs, delivered through Telegram (implements ``jobs.notifier.Notifier``).

Who gets what: data and model alerts (drift, recall, retrains) go to subscribed chats and
admins; operational ones (a rejected inbox file, a failed job) to admins only, because they
name files and internals.  Each is sent in the chat's wording, without server paths.

One unreachable chat must not stop a broadcast: a user who blocked the bot (403) has their
subscription deactivated and the rest still get the alert; other per-chat failures are
logged and skipped.  Network failures and flood waits are retried below this layer, by the
bot's rate limiter (see ``bot/retry.py``).
"""

from __future__ import annotations

import asyncio
import io
import logging

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.access import AccessList
from bot.handlers.subscribe import active_chats, unsubscribe_chat
from bot.messages import CAPTION_LIMIT, send_text, truncate, without_server_paths
from jobs.notifier import AlertMessage
from storage.db import Database

log = logging.getLogger(__name__)

SEVERITY_MARK = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


def alert_text(alert: AlertMessage) -> str:
    """The message body: severity, title and the text in the chat's wording.

    The figures behind an alert (a dict per drifted feature, p-values, file hashes) are not
    for a chat: the sentences say what happened, the chart shows the numbers, and
    ``churnguard alerts --json`` keeps them all.
    """
    mark = SEVERITY_MARK.get(alert.severity, "•")
    return without_server_paths(f"{mark} {alert.severity.upper()} · {alert.kind}: {alert.title}\n"
                                f"{alert.text_for('chat')}")


class TelegramNotifier:
    """Sends alerts to subscribed chats and to admins (admins only for operational alerts)."""

    def __init__(self, bot: Bot, db: Database, access: AccessList) -> None:
        self.bot = bot
        self.db = db
        self.access = access
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the bot's loop so a job running on another loop or thread can still notify."""
        self._loop = loop

    async def notify(self, alert: AlertMessage) -> int:
        loop = asyncio.get_running_loop()
        if self._loop is not None and loop is not self._loop and self._loop.is_running():
            # PTB's HTTP client belongs to the bot's loop; hand the work over to it.
            future = asyncio.run_coroutine_threadsafe(self._broadcast(alert), self._loop)
            return await asyncio.wrap_future(future)
        return await self._broadcast(alert)

    async def _broadcast(self, alert: AlertMessage) -> int:
        subscribers: list[int] = []
        if alert.audience == "subscribers+admins":
            subscribers = await asyncio.to_thread(active_chats, self.db)
        recipients = sorted(set(subscribers) | set(self.access.admins))
        text = alert_text(alert)
        delivered = 0
        for chat_id in recipients:
            try:
                await self._send(chat_id, alert, text)
            except Forbidden as error:
                log.info("chat %s blocked the bot (%s); deactivating its subscription", chat_id, error)
                if chat_id in subscribers:
                    await asyncio.to_thread(unsubscribe_chat, self.db, chat_id)
                continue
            except BadRequest as error:
                # "chat not found": an admin who never opened the bot, or a deleted chat.
                log.warning("alert %s not delivered to chat %s: %s", alert.kind, chat_id, error)
                if chat_id in subscribers and "chat not found" in str(error).lower():
                    await asyncio.to_thread(unsubscribe_chat, self.db, chat_id)
                continue
            except TelegramError as error:
                log.warning("alert %s not delivered to chat %s: %s", alert.kind, chat_id, error)
                continue
            delivered += 1
        log.info("alert %s (%s) delivered to %d of %d chat(s)", alert.kind, alert.severity, delivered, len(recipients))
        return delivered

    async def _send(self, chat_id: int, alert: AlertMessage, text: str) -> None:
        if alert.chart_png:
            caption = text if len(text) <= CAPTION_LIMIT else truncate(text.split("\n", 1)[0], CAPTION_LIMIT)
            await self.bot.send_photo(chat_id, photo=io.BytesIO(alert.chart_png), caption=caption,
                                      filename=f"{alert.kind}.png")
            if len(text) > CAPTION_LIMIT:
                await send_text(self.bot, chat_id, text, filename=f"{alert.kind}.txt")
            return
        await send_text(self.bot, chat_id, text, filename=f"{alert.kind}.txt")


__all__ = ["TelegramNotifier", "alert_text"]
