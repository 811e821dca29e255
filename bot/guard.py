"""The Telegram side of access control: the gate in front of every handler, and the one guard
that commands, uploads and buttons all go through.

The gate runs in handler group -1, before anything else sees an update, so no handler can
forget a check and leak client data to a stranger.  A stranger gets exactly one polite
refusal (remembered in the audit log, so a restart does not re-open the conversation) and
silence afterwards; every attempt is audited.  When the database cannot say whether a
stranger was told, the stranger is told: a second refusal is a smaller harm than none.  The
guard then enforces each command's role (a viewer asking for /retrain is refused) and its
privacy (client data only in a private chat), audits every refusal, and writes the audit row
of every admin action with its result.

A button is a command by other means: pressing "CSV" under /top must obey /top's rules, or a
forged press in a group posts the client list there.  :func:`guard_button` applies the same
checks with the command's role and privacy, audits every press, and treats the callback data
as untrusted input: it must be offered by the message it came from, fit Telegram's 64 bytes
and parse, and a refusal is answered with answerCallbackQuery, never sent into the chat.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.constants import CallbackQueryLimit, ChatType, InlineKeyboardButtonLimit
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.access import STRANGER_ACTION, STRANGER_REPLIED, STRANGER_SILENT, Role, stranger_was_told
from bot.messages import reply, truncate
from bot.services import Button, Command, HandlerCallback, Services, services
from storage.errors import UserError

log = logging.getLogger(__name__)

STRANGER_TEXT = (
    "Sorry, this is the private bot of a retention team and you do not have access to it. "
    "If you should, ask one of its admins to add your Telegram user id: {user_id}."
)
VIEWER_REFUSAL = "Sorry, /{name} is for admins only. Your attempt has been recorded."
UPLOAD_REFUSAL = "Sorry, only admins can upload data. Your attempt has been recorded."
PRIVATE_ONLY = ("For privacy I answer /{name} only in a private chat with me: everyone in this group would "
                "see the answer. Open a chat with me and ask there.")
PRIVATE_UPLOAD = "For privacy I take uploads only in a private chat with me; nothing was stored."
UNKNOWN_BUTTON = "This button is not valid (it may belong to an old message); send the command again."
CALLBACK_DATA_LIMIT: int = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes
CALLBACK_ANSWER_LIMIT: int = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH  # 200 characters


def describe_update(update: object) -> str:
    """A short, loggable description of what the user sent (no file contents)."""
    if not isinstance(update, Update):
        return type(update).__name__
    message = update.effective_message
    if update.callback_query is not None:
        return f"button {update.callback_query.data!r}"[:500]
    if message is not None:
        if message.document is not None:
            size = message.document.file_size
            return f"document {message.document.file_name!r} ({size if size is not None else '?'} bytes)"[:500]
        if message.text:
            return message.text[:500]
        return "message without text"
    return "update without message"


async def audit(svc: Services, *, actor: int | None, action: str, detail: str = "", result: str = "ok") -> None:
    """Write an audit row off the event loop.  While the database is down the row waits in
    memory and is written when it is back (``AuditTrail``); an audit problem is logged, never
    fatal to the reply."""
    try:
        await svc.offload(svc.audit_trail.record, actor=actor, action=action, detail=detail, result=result)
    except Exception:
        log.exception("could not write the audit row for %s by %s", action, actor)


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every update that does not come from an admin or a viewer."""
    svc = services(context)
    user = update.effective_user
    if user is None or update.edited_message is not None:
        # Channel posts, poll results and the like: nothing to answer and nobody to refuse.
        # An edited message is not a new request: re-running an edited /retrain would train twice.
        raise ApplicationHandlerStop
    if svc.access.role(user.id) >= Role.VIEWER:
        return
    await refuse_stranger(update, context, svc, user.id)
    raise ApplicationHandlerStop


async def refuse_stranger(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services, user_id: int) -> None:
    detail = describe_update(update)
    async with svc.stranger_lock:
        told = user_id in svc.told_strangers
        if not told:
            try:
                told = await svc.offload(stranger_was_told, svc.db, user_id)
            except Exception as error:
                # Fail safe: a stranger who may never have been told gets told (perhaps twice).
                log.warning("could not read the audit log (%s); telling stranger %s, who may have been told "
                            "before", type(error).__name__, user_id)
                told = False
        if told:
            svc.told_strangers.add(user_id)
            await audit(svc, actor=user_id, action=STRANGER_ACTION, detail=detail, result=STRANGER_SILENT)
            return
        svc.told_strangers.add(user_id)
        # Audit first: if the send fails, the stranger is still never told twice.
        await audit(svc, actor=user_id, action=STRANGER_ACTION, detail=detail, result=STRANGER_REPLIED)
    log.info("refused stranger %s (%s)", user_id, detail)
    chat = update.effective_chat
    if update.callback_query is not None or chat is None:
        return
    try:
        await context.bot.send_message(chat.id, STRANGER_TEXT.format(user_id=user_id))
    except Exception:
        log.warning("could not send the refusal to stranger %s", user_id, exc_info=True)


def _refusal(svc: Services, update: Update, *, name: str, role: Role, private_only: bool) -> tuple[str, str] | None:
    """Why the sender may not use command ``name`` here: (audit result, text for them), or None.

    Private-only comes first: in a group even an admin's request would show client data to
    everyone in it, so the answer is the same whoever asks.
    """
    have = svc.access.role(update.effective_user.id if update.effective_user is not None else None)
    chat = update.effective_chat
    if private_only and chat is not None and chat.type != ChatType.PRIVATE:
        return "refused: not a private chat", PRIVATE_UPLOAD if name == "upload" else PRIVATE_ONLY.format(name=name)
    if have < role:
        return f"refused: {have.name.lower()}", UPLOAD_REFUSAL if name == "upload" else VIEWER_REFUSAL.format(name=name)
    return None


def guard(action: str, role: Role, callback: HandlerCallback, *, private_only: bool = True) -> HandlerCallback:
    """Wrap ``callback`` so it runs only for ``role`` or higher (and, when ``private_only``, only in
    a private chat); refusals and admin actions are audited with their result.

    An admin callback may return a short result string for the audit row ("promoted v3").
    """

    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        svc = services(context)
        user = update.effective_user
        user_id = user.id if user is not None else None
        if svc.access.role(user_id) == Role.STRANGER:
            return  # the gate has already dealt with it; never answer a stranger from here
        detail = describe_update(update)
        refused = _refusal(svc, update, name=action, role=role, private_only=private_only)
        if refused is not None:
            result, text = refused
            await audit(svc, actor=user_id, action=action, detail=detail, result=result)
            await reply(update, context, text)
            return
        if role < Role.ADMIN:
            await callback(update, context)
            return
        await _audited(svc, user_id, action, detail, callback(update, context))

    guarded.__name__ = getattr(callback, "__name__", action)
    guarded.__qualname__ = guarded.__name__
    return guarded


async def _audited(svc: Services, user_id: int | None, action: str, detail: str,
                   work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` and audit how it ended: its result string, a refusal, or an error."""
    try:
        result = await work
    except UserError as error:
        await audit(svc, actor=user_id, action=action, detail=f"{detail} | {error}", result="refused")
        raise
    except Exception as error:
        await audit(svc, actor=user_id, action=action, detail=f"{detail} | {type(error).__name__}: {error}",
                    result="error")
        raise
    await audit(svc, actor=user_id, action=action, detail=detail, result=str(result or "ok"))


def offered(query: CallbackQuery, data: str) -> bool:
    """Whether the message the press came from carries a button with exactly this data.

    Telegram passes on whatever data a client sends; the message is the server's.  A press
    whose data its message never offered is forged (or from a keyboard since replaced).
    """
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return False
    return any(button.callback_data == data for row in message.reply_markup.inline_keyboard for button in row)


async def answer_button(query: CallbackQuery, text: str) -> None:
    """Tell the presser why nothing happens, as a pop-up (never a message into the chat)."""
    try:
        await query.answer(truncate(text, CALLBACK_ANSWER_LIMIT), show_alert=True)
    except TelegramError as error:
        log.warning("could not answer a button press: %s", error)


def guard_button(button: Button, command: Command) -> HandlerCallback:
    """Wrap a button's callback in its command's rules: the role and private-only checks of
    :func:`guard`, then the data itself (offered by its message, within Telegram's 64 bytes,
    parsed by ``button.parse``).  Every press is audited, refused or not; a refused one gets its
    reason through answerCallbackQuery and nothing is sent into the chat."""

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        svc = services(context)
        query = update.callback_query
        user = update.effective_user
        user_id = user.id if user is not None else None
        if query is None or svc.access.role(user_id) == Role.STRANGER:
            return
        detail = describe_update(update)
        refused = _refusal(svc, update, name=command.name, role=command.role, private_only=command.private_only)
        if refused is not None:
            result, text = refused
            await audit(svc, actor=user_id, action=button.action, detail=detail, result=result)
            await answer_button(query, text)
            return
        data = query.data or ""
        payload = None
        if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT and data.startswith(button.prefix) and offered(query, data):
            payload = button.parse(svc, data[len(button.prefix):])
        if payload is None:
            await audit(svc, actor=user_id, action=button.action, detail=detail, result="refused: invalid button")
            await answer_button(query, button.stale_text)
            return
        await _audited(svc, user_id, button.action, detail, button.callback(update, context, payload))

    pressed.__name__ = f"{button.command}_{button.name}_button"
    pressed.__qualname__ = pressed.__name__
    return pressed


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press whose data no button knows (an old message, or a forged press): said and audited."""
    svc = services(context)
    query = update.callback_query
    user = update.effective_user
    user_id = user.id if user is not None else None
    if query is None or svc.access.role(user_id) == Role.STRANGER:
        return
    await audit(svc, actor=user_id, action="button", detail=describe_update(update), result="refused: unknown button")
    await answer_button(query, UNKNOWN_BUTTON)


__all__ = [
    "PRIVATE_ONLY",
    "PRIVATE_UPLOAD",
    "STRANGER_TEXT",
    "UNKNOWN_BUTTON",
    "UPLOAD_REFUSAL",
    "VIEWER_REFUSAL",
    "answer_button",
    "audit",
    "describe_update",
    "gate",
    "guard",
    "guard_button",
    "offered",
    "unknown_button",
]
