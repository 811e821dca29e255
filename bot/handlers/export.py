"""/export and the button under /top: every flagged client as one document, CSV and Excel.

/top pages through at most 1,000 clients, but with most of a store flagged the retention team
needs the whole contact list.  /export sends it as two documents made in one pass
(model/export.py): a CSV and the same list as an XLSX workbook, ranked riskiest first, with
probability, risk band, the top three reasons, the model version and the as-of date.

* The list is made in a worker of the background pool (``asyncio.to_thread``: the loop's
  default executor, see bot/workers.py), whose lower priority keeps /score fast while a long
  list is written, and one at a time per bot: a second request waits for the first instead
  of ranking the whole store twice at once.
* The documents go into a temporary folder that is removed once they are sent.
* Telegram lets a bot send documents of at most 50 MB: a larger CSV is sent gzip-compressed
  (``.csv.gz``) and the reply says so; a document still over the limit is not sent, and the
  reply says that too (the Excel file is already compressed, so it is never gzipped).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.access import Role
from bot.handlers.scoring import NO_MODEL_TEXT, require_scorer
from bot.messages import CAPTION_LIMIT, reply, show_activity, truncate
from bot.services import Button, Command, Services, services
from model.export import ExportResult, when, write_list
from model.registry import NoChampion
from model.scoring import Scorer

log = logging.getLogger(__name__)

EXPORT_DATA = "export"  # callback data of the "every flagged client" button under /top
BUTTON_TEXT = "⬇ Every flagged client (CSV + Excel)"
SEND_LIMIT_BYTES = 50 * 1000 * 1000  # Telegram's limit for documents a bot sends
LOCK_KEY = "churnguard.export_lock"
NO_FLAGGED_TEXT = ("No client is flagged for contact right now (model {version}): every active client is below "
                   "the threshold of {threshold:.1%}.")


@dataclass(frozen=True)
class Outgoing:
    path: Path
    filename: str
    caption: str


@dataclass
class Prepared:
    """The documents to send, and what the chat should be told about the ones that could not go."""

    result: ExportResult
    documents: list[Outgoing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def gzip_file(path: Path) -> Path:
    """``path`` compressed next to it as ``<name>.gz``, streamed (never read whole)."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(target, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(source, packed, 1 << 20)
    return target


def summary(result: ExportResult) -> str:
    moment = when(result.as_of)
    return (f"Every flagged client: {result.rows:,} of {result.active:,} active clients, riskiest first, with "
            f"the top 3 reasons (model {result.model_version}, flagged at ≥ {result.threshold:.1%}"
            + (f", as of {moment}" if moment else "") + ").")


def fit_for_telegram(result: ExportResult, limit: int = SEND_LIMIT_BYTES) -> Prepared:
    """Which documents can be sent within ``limit`` bytes: the CSV as it is, else gzipped;
    the workbook as it is, else not at all."""
    prepared = Prepared(result)
    head = summary(result)
    csv_path, xlsx_path = result.files[".csv"], result.files[".xlsx"]
    csv_size = result.sizes[".csv"]
    if csv_size <= limit:
        prepared.documents.append(Outgoing(csv_path, csv_path.name, head))
    else:
        packed = gzip_file(csv_path)
        packed_size = packed.stat().st_size
        if packed_size <= limit:
            prepared.documents.append(Outgoing(packed, packed.name, (
                f"{head}\nThe CSV is {megabytes(csv_size)}, over Telegram's 50 MB limit for files a bot sends, so "
                f"it comes gzip-compressed ({megabytes(packed_size)}): open it with any unzip tool, or straight "
                "from most spreadsheet and data tools.")))
        else:
            prepared.notes.append(
                f"The CSV is {megabytes(csv_size)} ({megabytes(packed_size)} compressed), over Telegram's 50 MB "
                "limit for files a bot sends, so I cannot send it here; an admin can export the list on the server.")
    xlsx_size = result.sizes[".xlsx"]
    if xlsx_size <= limit:
        caption = "The same list as an Excel workbook (an \"About\" sheet says what it holds)."
        prepared.documents.append(Outgoing(xlsx_path, xlsx_path.name, caption if prepared.documents else head))
    else:
        prepared.notes.append(f"The Excel workbook is {megabytes(xlsx_size)}, over Telegram's 50 MB limit for files "
                              "a bot sends, so it is not sent" + ("; the CSV holds the same list." if
                                                                  prepared.documents else "."))
    if result.champion != result.model_version:
        prepared.notes.append(f"Note: the champion model {result.champion} could not be loaded, so its newest intact "
                              f"predecessor {result.model_version} made this list. An admin should look at /models.")
    return prepared


def prepare(scorer: Scorer, folder: Path, limit: int = SEND_LIMIT_BYTES) -> Prepared:
    """Blocking: rank, write both documents into ``folder``, and fit them to Telegram's limit."""
    flagged = scorer.flagged_ranking()
    moment = f"-{flagged.as_of:%Y-%m-%d}" if flagged.as_of is not None else ""
    stem = f"churnguard-flagged-{flagged.model_version}{moment}"
    result = write_list(flagged, [folder / f"{stem}.csv", folder / f"{stem}.xlsx"])
    if result.rows == 0:
        return Prepared(result)
    return fit_for_telegram(result, limit)


def _lock(context: ContextTypes.DEFAULT_TYPE) -> asyncio.Lock:
    lock = context.application.bot_data.get(LOCK_KEY)
    if not isinstance(lock, asyncio.Lock):
        lock = context.application.bot_data[LOCK_KEY] = asyncio.Lock()
    return lock


async def send_list(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    scorer = require_scorer(svc)
    await show_activity(context, chat.id, ChatAction.UPLOAD_DOCUMENT)
    async with _lock(context):
        folder = Path(tempfile.mkdtemp(prefix="churnguard-export-"))
        try:
            try:
                prepared = await asyncio.to_thread(prepare, scorer, folder, SEND_LIMIT_BYTES)
            except NoChampion:
                await reply(update, context, NO_MODEL_TEXT)
                return
            result = prepared.result
            if result.rows == 0:
                await reply(update, context, NO_FLAGGED_TEXT.format(version=result.model_version,
                                                                    threshold=result.threshold))
                return
            for document in prepared.documents:
                with document.path.open("rb") as stream:
                    await context.bot.send_document(chat.id, document=stream, filename=document.filename,
                                                    caption=truncate(document.caption, CAPTION_LIMIT))
            if prepared.notes:
                await reply(update, context, "\n".join(prepared.notes if prepared.documents else
                                                        [summary(result), *prepared.notes]))
            log.info("sent the list of %d flagged clients (model %s) to chat %s", result.rows,
                     result.model_version, chat.id)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export: every flagged client as CSV and Excel documents."""
    await send_list(update, context)


async def export_button(update: Update, context: ContextTypes.DEFAULT_TYPE, _payload: bool) -> str:
    """The button under /top; it obeys /export's rules (viewer or admin, private chat) through
    the guard every button goes through (bot/guard.py)."""
    query = update.callback_query
    if query is None:
        return "ignored"
    await query.answer("Preparing the list of every flagged client…")
    await send_list(update, context)
    return "sent"


def parse_export(_svc: Services, payload: str) -> bool | None:
    """The button's data is exactly ``EXPORT_DATA``: nothing may follow it."""
    return True if payload == "" else None


BUTTONS = (Button("export", "all", EXPORT_DATA, parse_export, export_button),)


COMMANDS = (
    Command("export", "every flagged client as CSV and Excel files, riskiest first", Role.VIEWER, export),
)

__all__ = ["BUTTONS", "BUTTON_TEXT", "COMMANDS", "EXPORT_DATA", "export", "export_button", "fit_for_telegram",
           "parse_export", "prepare"]
