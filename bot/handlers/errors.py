"""The one error handler: log it, tell the user plainly, tell the admins.

A user must never see a traceback (it leaks internals and helps nobody at a retention
desk); admins get the error's type, message and where it happened so they can act without
digging through logs first.  A ``UserError`` is not a bug: its message is the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.error import Forbidden
from telegram.ext import ContextTypes

from bot.access import Role
from bot.guard import describe_update
from bot.messages import reply, truncate, without_server_paths
from bot.services import services
from storage.errors import UserError
from storage.redact import redact, redact_error

log = logging.getLogger(__name__)

GENERIC_TEXT = "Sorry, something went wrong while handling that. The admins have been notified; please try again later."
ADMIN_TEXT_LIMIT = 1500


def _sender(update: object) -> tuple[int | None, int | None]:
    if not isinstance(update, Update):
        return None, None
    user = update.effective_user
    chat = update.effective_chat
    return (user.id if user else None), (chat.id if chat else None)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    error = context.error
    svc = services(context)
    user_id, chat_id = _sender(update)
    role = svc.access.role(user_id)

    if isinstance(error, UserError):
        # Expected, explained problems (unknown version, bad file): the message is the answer.
        if isinstance(update, Update) and role >= Role.VIEWER:
            text = redact(error.for_chat())  # the chat's next step, not the command line's
            await _safe(reply(update, context, text[:1].upper() + text[1:]))
        return
    if isinstance(error, Forbidden):
        log.info("chat %s has blocked the bot: %s", chat_id, error)
        return

    where = describe_update(update)
    log.error("error while handling %s from user %s", where, user_id, exc_info=error)

    if isinstance(update, Update) and role >= Role.VIEWER and chat_id is not None:
        if update.callback_query is not None:
            await _safe(update.callback_query.answer("Something went wrong", show_alert=False))
        await _safe(reply(update, context, GENERIC_TEXT))

    text = truncate(without_server_paths(
        f"⚠️ ChurnGuard error while handling {where} from user {user_id if user_id is not None else '-'}:\n"
        f"{redact_error(error) if error is not None else 'unknown error'}\nDetails are in the service log."),
        ADMIN_TEXT_LIMIT,
    )
    for admin in sorted(svc.access.admins):
        await _safe(context.bot.send_message(admin, text))


async def _safe(awaitable: Awaitable[Any]) -> None:
    """Errors while reporting an error are logged, never raised (no loop of error handlers)."""
    try:
        await awaitable
    except Exception:
        log.warning("could not deliver an error notice", exc_info=True)


__all__ = ["GENERIC_TEXT", "on_error"]
