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
from telegram.ext import ContextTypes

from bot.access import Role
from bot.arguments import parse_count
from bot.handlers.export import BUTTON_TEXT, EXPORT_DATA
from bot.handlers.scoring import NO_MODEL_TEXT, require_scorer
from bot.messages import reply, show_activity
from bot.services import Button, Command, Services, services
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


def _numbers(payload: str, parts: int) -> list[int] | None:
    """``parts`` non-negative whole numbers separated by ":"; None for anything else."""
    pieces = payload.split(":")
    if len(pieces) != parts or not all(piece.isascii() and piece.isdigit() and len(piece) <= 6 for piece in pieces):
        return None
    return [int(piece) for piece in pieces]


def parse_page(svc: Services, payload: str) -> tuple[int, int] | None:
    """``n:page`` of a paging button: a list length /top accepts and a page number."""
    del svc
    numbers = _numbers(payload, 2)
    if numbers is None or not 1 <= numbers[0] <= MAX_N:
        return None
    return numbers[0], numbers[1]


def parse_csv(svc: Services, payload: str) -> int | None:
    """``n`` of the CSV button: a list length /top accepts."""
    del svc
    numbers = _numbers(payload, 1)
    return numbers[0] if numbers is not None and 1 <= numbers[0] <= MAX_N else None


async def turn_page(update: Update, context: ContextTypes.DEFAULT_TYPE, wanted: tuple[int, int]) -> str:
    """A paging button (guarded as /top): the same list, another page, in the same message."""
    svc = services(context)
    query = update.callback_query
    if query is None:
        return "no query"
    n, page = wanted
    try:
        results = await ranking(svc, n)
    except NoChampion:
        await query.answer()
        await reply(update, context, NO_MODEL_TEXT)
        return "no model"
    page = min(page, page_count(len(results)) - 1)
    await query.answer()
    try:
        await query.edit_message_text(page_text(results, n, page), reply_markup=page_markup(len(results), n, page))
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise
    return f"page {page + 1} of top {n}"


async def send_csv(update: Update, context: ContextTypes.DEFAULT_TYPE, n: int) -> str:
    """The CSV button (guarded as /top): the ranked list as a file."""
    svc = services(context)
    query = update.callback_query
    chat = update.effective_chat
    if query is None or chat is None:
        return "no chat"
    await query.answer("Preparing the CSV…")
    try:
        results = await ranking(svc, n)
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return "no model"
    data = await svc.offload(ranking_csv, results)
    version = results[0].model_version if results else "none"
    await context.bot.send_document(
        chat.id, document=io.BytesIO(data), filename=f"churnguard-top-{len(results)}-{version}.csv",
        caption=f"The {len(results)} riskiest active clients (model {version}).",
    )
    return f"sent csv of {len(results)} clients"


STALE = "This button is not valid any more; send /top again."
BUTTONS = (
    Button("top", "page", PAGE_PREFIX, parse_page, turn_page, stale_text=STALE),
    Button("top", "csv", CSV_PREFIX, parse_csv, send_csv, stale_text=STALE),
)

COMMANDS = (
    Command("top", f"the riskiest active clients (default {DEFAULT_N}), with a CSV", Role.VIEWER, top, usage="[n]"),
)

__all__ = ["BUTTONS", "COMMANDS", "csv_safe", "page_markup", "page_text", "parse_csv", "parse_page", "ranking_csv", "top"]
