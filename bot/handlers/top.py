"""/top [n]: the riskiest active clients, a page at a time, with the full list as CSV.

Ranking every active client takes a batch prediction, so one ranking is kept for a few
minutes and the paging buttons reuse it (it is dropped when the data or the champion
changes).  The CSV goes to spreadsheet users: any cell that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with
an apostrophe, because client ids and CRM values come from outside and must never execute.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, ContextTypes

from bot.access import Role
from bot.arguments import parse_count
from bot.handlers.export import BUTTON_TEXT, EXPORT_DATA
from bot.handlers.scoring import NO_MODEL_TEXT, require_scorer
from bot.messages import reply, show_activity
from bot.services import Command, Services, services
from model.export import csv_safe
from model.reasons import reason_text
from model.registry import NoChampion
from model.scoring import Scorer, ScoreResult

log = logging.getLogger(__name__)

DEFAULT_N = 20
MAX_N = 1000
PAGE_SIZE = 10
RANKING_TTL_SECONDS = 300.0
PAGE_PREFIX = "top:"
CSV_PREFIX = "topcsv:"
CSV_COLUMNS = ("rank", "client_id", "churn_probability", "risk_band", "flagged", "threshold", "model_version",
               "reason_1", "reason_2", "reason_3")


def ranking_csv(results: Sequence[ScoreResult]) -> bytes:
    """The full ranking as UTF-8 CSV (with BOM, so Excel reads non-ASCII ids correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for rank, result in enumerate(results, start=1):
        reasons = [reason_text(item) for item in result.reasons[:3]]
        reasons += [""] * (3 - len(reasons))
        row = [
            rank,
            result.client_id,
            "" if result.probability is None else f"{result.probability:.4f}",
            result.risk_band,
            "yes" if result.flagged else "no",
            "" if result.threshold is None else f"{result.threshold:.4f}",
            result.model_version,
            *reasons,
        ]
        writer.writerow([csv_safe(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def page_text(results: Sequence[ScoreResult], n: int, page: int) -> str:
    if not results:
        return "No active clients to rank: every stored client has either left or has too little history."
    pages = page_count(len(results))
    first = results[0]
    head = (f"Top {len(results)} riskiest active clients (model {first.model_version}, "
            f"flagged at ≥ {first.threshold:.1%})" if first.threshold is not None else
            f"Top {len(results)} riskiest active clients")
    if len(results) < n:
        head += f"; only {len(results)} active clients could be ranked"
    lines = [f"{head} — page {page + 1} of {pages}:", ""]
    start = page * PAGE_SIZE
    for rank, result in enumerate(results[start:start + PAGE_SIZE], start=start + 1):
        probability = f"{result.probability:.1%}" if result.probability is not None else "?"
        reason = reason_text(result.reasons[0]) if result.reasons else ""
        lines.append(f"{rank}. {result.client_id} — {probability} {result.risk_band}"
                     + (f" · {reason}" if reason else ""))
    lines += ["", "/score <client id> explains one client."]
    return "\n".join(lines)


def page_markup(total: int, n: int, page: int) -> InlineKeyboardMarkup | None:
    if total == 0:
        return None
    pages = page_count(total)
    navigation: list[InlineKeyboardButton] = []
    if page > 0:
        navigation.append(InlineKeyboardButton("◀ Prev", callback_data=f"{PAGE_PREFIX}{n}:{page - 1}"))
    if page < pages - 1:
        navigation.append(InlineKeyboardButton("Next ▶", callback_data=f"{PAGE_PREFIX}{n}:{page + 1}"))
    rows = [navigation] if navigation else []
    rows.append([InlineKeyboardButton(f"⬇ CSV of all {total}", callback_data=f"{CSV_PREFIX}{n}")])
    rows.append([InlineKeyboardButton(BUTTON_TEXT, callback_data=EXPORT_DATA)])  # /export: beyond the top n
    return InlineKeyboardMarkup(rows)


def serving_version(scorer: Scorer) -> str:
    """The version that answers now (cheap: the registry re-reads its pointer at most once a second)."""
    return scorer.registry.serving().version


async def ranking(svc: Services, n: int) -> list[ScoreResult]:
    """The top ``n``; reused for a few minutes unless the serving model changes (a scheduled
    retrain promotes without the bot being told, so the version is part of the key)."""
    scorer = require_scorer(svc)
    key = f"top:{n}:{await svc.offload(serving_version, scorer)}"
    cached = svc.cached(key, RANKING_TTL_SECONDS)
    if cached is not None:
        return list(cached)
    results = await svc.offload(scorer.top, n)
    svc.remember(key, results)
    return results


async def top(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    n = parse_count("top", list(context.args or []), DEFAULT_N, MAX_N)
    chat = update.effective_chat
    if chat is not None:
        await show_activity(context, chat.id, ChatAction.TYPING)
    try:
        results = await ranking(svc, n)
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return
    await reply(update, context, page_text(results, n, 0), reply_markup=page_markup(len(results), n, 0))


def _parse(data: str, prefix: str, parts: int) -> list[int] | None:
    try:
        values = [int(part) for part in data[len(prefix):].split(":")]
    except ValueError:
        return None
    return values if len(values) == parts and all(v >= 0 for v in values) else None


async def turn_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    query = update.callback_query
    if query is None or query.data is None:
        return
    parsed = _parse(query.data, PAGE_PREFIX, 2)
    if parsed is None or not 1 <= parsed[0] <= MAX_N:
        await query.answer("That button is not valid any more; send /top again.")
        return
    n, page = parsed
    try:
        results = await ranking(svc, n)
    except NoChampion:
        await query.answer()
        await reply(update, context, NO_MODEL_TEXT)
        return
    page = min(page, page_count(len(results)) - 1)
    await query.answer()
    try:
        await query.edit_message_text(page_text(results, n, page), reply_markup=page_markup(len(results), n, page))
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


async def send_csv(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.data is None or chat is None:
        return
    parsed = _parse(query.data, CSV_PREFIX, 1)
    if parsed is None or not 1 <= parsed[0] <= MAX_N:
        await query.answer("That button is not valid any more; send /top again.")
        return
    await query.answer("Preparing the CSV…")
    try:
        results = await ranking(svc, parsed[0])
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return
    data = await svc.offload(ranking_csv, results)
    version = results[0].model_version if results else "none"
    await context.bot.send_document(
        chat.id, document=io.BytesIO(data), filename=f"churnguard-top-{len(results)}-{version}.csv",
        caption=f"The {len(results)} riskiest active clients (model {version}).",
    )


def callback_handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    return [
        CallbackQueryHandler(turn_page, pattern=f"^{PAGE_PREFIX}"),
        CallbackQueryHandler(send_csv, pattern=f"^{CSV_PREFIX}"),
    ]


COMMANDS = (
    Command("top", f"the riskiest active clients (default {DEFAULT_N}), with a CSV", Role.VIEWER, top, usage="[n]"),
)

__all__ = ["COMMANDS", "callback_handlers", "csv_safe", "page_markup", "page_text", "ranking_csv", "top"]
