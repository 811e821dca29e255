"""The Telegram side of access control: the gate in front of every handler, and the per-command guard.

The gate runs in handler group -1, before anything else sees an update, so no handler can
forget a check and leak client data to a stranger.  A stranger gets exactly one polite
refusal (remembered in the audit log, so a restart does not re-open the conversation) and
silence afterwards; every attempt is audited.  When the database cannot say whether a
stranger was told, the stranger is told: a second refusal is a smaller harm than none.  The guard then enforces each command's role
(a viewer asking for /retrain is refused and audited) and writes the audit row of every
admin action with its result.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.access import STRANGER_ACTION, STRANGER_REPLIED, STRANGER_SILENT, Role, stranger_was_told
from bot.messages import reply
from bot.services import HandlerCallback, Services, services
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


def guard(action: str, role: Role, callback: HandlerCallback, *, private_only: bool = True) -> HandlerCallback:
    """Wrap ``callback`` so it runs only for ``role`` or higher (and, when ``private_only``, only in
    a private chat); admin actions are audited with their result.

    An admin callback may return a short result string for the audit row ("promoted v3").
    """
    refusal = UPLOAD_REFUSAL if action == "upload" else VIEWER_REFUSAL.format(name=action)

    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        svc = services(context)
        user = update.effective_user
        user_id = user.id if user is not None else None
        have = svc.access.role(user_id)
        if have == Role.STRANGER:
            return  # the gate has already dealt with it; never answer a stranger from here
        detail = describe_update(update)
        chat = update.effective_chat
        if private_only and chat is not None and chat.type != ChatType.PRIVATE:
            await reply(update, context, PRIVATE_UPLOAD if action == "upload" else PRIVATE_ONLY.format(name=action))
            return
        if have < role:
            await audit(svc, actor=user_id, action=action, detail=detail, result=f"refused: {have.name.lower()}")
            await reply(update, context, refusal)
            return
        if role < Role.ADMIN:
            await callback(update, context)
            return
        try:
            result = await callback(update, context)
        except UserError as error:
            await audit(svc, actor=user_id, action=action, detail=f"{detail} | {error}", result="refused")
            raise
        except Exception as error:
            await audit(svc, actor=user_id, action=action, detail=f"{detail} | {type(error).__name__}: {error}",
                        result="error")
            raise
        await audit(svc, actor=user_id, action=action, detail=detail, result=str(result or "ok"))

    guarded.__name__ = getattr(callback, "__name__", action)
    guarded.__qualname__ = guarded.__name__
    return guarded


__all__ = ["PRIVATE_ONLY", "PRIVATE_UPLOAD", "STRANGER_TEXT", "UPLOAD_REFUSAL", "VIEWER_REFUSAL", "audit", "describe_update", "gate", "guard"]
