"""/score <client id> and its "Why?" button.

Scoring and drawing happen in a worker thread (``Services.offload``): a LightGBM call or a
matplotlib figure on the event loop would make every other user wait.  The scorer caches
the champion, so each answer costs one record lookup and one tree walk.
"""

from __future__ import annotations

import hashlib
import io
import logging

from sqlmodel import col, select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.access import Role
from bot.messages import CAPTION_LIMIT, reply, show_activity, truncate
from bot.services import Button, Command, Services, services
from model.registry import NoChampion
from model.scoring import MalformedId, Scorer, ScoreResult, clean_client_id, contribution_chart
from storage.db import Database
from storage.errors import UserError
from storage.events.tables import EventClient
from storage.tables import ClientRecord

log = logging.getLogger(__name__)

WHY_PREFIX = "why:"
CALLBACK_DATA_LIMIT = 64  # bytes, Telegram's limit for callback_data
CHART_REASONS = 10
NO_MODEL_TEXT = "No model is serving yet, so I cannot score clients. An admin can train one with /retrain."
USAGE = "Which client? Send /score <client id>"
EXAMPLE_TTL_SECONDS = 300.0


def example_client_id(db: Database) -> str | None:
    """An id this store really holds, for the usage hint (a Telco id means nothing to a bank)."""
    with db.read_session() as session:
        found = session.exec(select(ClientRecord.client_id).where(col(ClientRecord.is_latest))
                             .order_by(col(ClientRecord.id)).limit(1)).first()
        if found is None:
            found = session.exec(select(EventClient.client_id).order_by(col(EventClient.id)).limit(1)).first()
    return None if found is None else str(found)


async def usage_text(svc: Services) -> str:
    example = svc.cached("example-client", EXAMPLE_TTL_SECONDS)
    if example is None:
        example = await svc.offload(example_client_id, svc.db)
        if example is not None:
            svc.remember("example-client", example)
    return f"{USAGE}, for example /score {example}." if example else f"{USAGE}."


def command_argument(text: str | None) -> str:
    """Everything after the command word, so an id with inner spaces survives intact."""
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def why_data(svc: Services, client_id: str) -> str:
    """Callback data for the "Why?" button; long ids go through a short token kept in memory."""
    data = f"{WHY_PREFIX}{client_id}"
    if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
        return data
    token = "#" + hashlib.sha256(client_id.encode("utf-8")).hexdigest()[:24]
    if len(svc.tokens) > 10_000:
        svc.tokens.clear()
    svc.tokens[token] = client_id
    return f"{WHY_PREFIX}{token}"


def client_from_why(svc: Services, data: str) -> str | None:
    return parse_why(svc, data[len(WHY_PREFIX):])


def parse_why(svc: Services, payload: str) -> str | None:
    """The client a "Why?" press asks about: a token this bot handed out, or an id that passes
    the same rule as /score's argument; None for anything else (the data is untrusted)."""
    if payload.startswith("#"):
        return svc.tokens.get(payload)
    try:
        return clean_client_id(payload)
    except MalformedId:
        return None


def score_markup(svc: Services, result: ScoreResult) -> InlineKeyboardMarkup | None:
    if not result.scored or not result.reasons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton("Why?", callback_data=why_data(svc, result.client_id))]])


def require_scorer(svc: Services) -> Scorer:
    if svc.scorer is None:
        raise UserError(NO_MODEL_TEXT)
    scorer: Scorer = svc.scorer
    return scorer


async def score(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    message = update.effective_message
    client_id = command_argument(message.text if message else None)
    if not client_id:
        await reply(update, context, await usage_text(svc))
        return
    scorer = require_scorer(svc)
    try:
        result = await svc.offload(scorer.score_client, client_id)
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return
    await reply(update, context, result.to_text("chat"), reply_markup=score_markup(svc, result))


def chart_for(scorer: Scorer, client_id: str) -> tuple[ScoreResult, bytes | None]:
    """In a worker thread: rescore with more reasons and draw them."""
    result = scorer.score_client(client_id, top=CHART_REASONS)
    if not result.scored or not result.reasons:
        return result, None
    return result, contribution_chart(result)


async def why(update: Update, context: ContextTypes.DEFAULT_TYPE, client_id: str) -> str:
    """The "Why?" button (guarded as /score): the chart of one client's reasons."""
    svc = services(context)
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None:
        return "no chat"
    await query.answer()
    scorer = require_scorer(svc)
    await show_activity(context, chat.id, ChatAction.UPLOAD_PHOTO)
    try:
        result, png = await svc.offload(chart_for, scorer, client_id)
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return "no model"
    if png is None:
        await reply(update, context, result.to_text("chat"))
        return f"not scored: {result.status}"
    caption = truncate(
        f"Why client {result.client_id} scores {result.probability:.1%} ({result.risk_band}, model "
        f"{result.model_version}): red bars raise the churn risk, green bars lower it.",
        CAPTION_LIMIT,
    )
    await context.bot.send_photo(chat.id, photo=io.BytesIO(png), caption=caption, filename="why.png")
    return "chart sent"


BUTTONS = (
    Button("score", "why", WHY_PREFIX, parse_why, why,
           stale_text="This button has expired; send /score <client id> again."),
)


COMMANDS = (
    Command("score", "churn risk of one client, with reasons", Role.VIEWER, score, usage="<client id>"),
)

__all__ = ["BUTTONS", "COMMANDS", "client_from_why", "command_argument", "parse_why", "score", "why", "why_data"]
