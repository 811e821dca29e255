"""CSV upload (admin): a CRM export sent as a document is ingested like ``churnguard ingest``.

The type and size are checked from the message metadata *before* anything is downloaded,
so a 2 GB file sent by mistake costs nothing.  The file is stored only through the same
``ingest_file`` as the command line, in one transaction, and the reply is its report:
exactly what was stored, or exactly why nothing was.

A stored batch then gets what the inbox job gives a new batch (``jobs.ingest_job.after_ingest``,
run as the ``arrival`` job on the bot's job runner): scoring with the champion, the drift and
performance checks, and a retrain on new labels per ``CHURNGUARD_RETRAIN_ON``.  They start in
the background *after* the reply, so the admin is answered at once; their alerts reach
subscribers and admins through the notifier, like any job's.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from telegram import Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.first_upload import upload_schema
from bot.messages import reply, show_activity
from bot.retry import retry_call
from bot.services import Services, services
from jobs.ingest_job import ARRIVAL_JOB, arrival_follow_ups
from jobs.runner import FOLLOW_UP_WAIT_SECONDS
from storage.errors import IngestRejected, UserError
from storage.ingest import ingest_file
from storage.readers import Limits

if TYPE_CHECKING:
    from churnguard import Settings

log = logging.getLogger(__name__)

ACCEPTED_SUFFIXES = (".csv", ".csv.gz")
TELEGRAM_DOWNLOAD_MB = 20.0  # getFile's limit on Telegram's servers (a self-hosted Bot API server may allow more)
OFFICIAL_API = "https://api.telegram.org"
NOTHING_STORED = "Nothing was stored."
CHECK_NAMES = {"drift": "the drift check", "performance": "the performance check (realised recall)",
               "retrain": "a retrain on the new labels"}


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def upload_limit(settings: Settings) -> tuple[float, bool]:
    """The largest document the bot can take (MB), and whether Telegram's own download limit
    is what sets it: on Telegram's servers no setting can raise that limit."""
    official = settings.telegram_api_base_url.rstrip("/") == OFFICIAL_API
    if official and settings.max_upload_mb > TELEGRAM_DOWNLOAD_MB:
        return TELEGRAM_DOWNLOAD_MB, True
    return settings.max_upload_mb, False


def large_file_help(limit_mb: float, inbox_mb: float | None = None) -> str:
    """How to get a file over the upload limit in anyway: no command and no server path,
    because the reader is in a chat."""
    inbox = f" (up to {inbox_mb:g} MB)" if inbox_mb is not None else ""
    return (f"To send it anyway: compress it to .csv.gz (a CSV export usually shrinks to a tenth or less), or split "
            f"it into files under {limit_mb:g} MB that each start with the header row. Or ask someone with access "
            f"to the server to copy it into ChurnGuard's inbox folder (the CHURNGUARD_INBOX setting): files "
            f"there{inbox} are ingested automatically, with the same checks.")


def check_document(file_name: str | None, file_size: int | None, max_upload_mb: float, *,
                   telegram_limit: bool = False, inbox_mb: float | None = None) -> str | None:
    """Why this document cannot be ingested, from its metadata alone; None when it may be downloaded.
    ``telegram_limit``: ``max_upload_mb`` is Telegram's download limit, not the setting's."""
    if not file_name:
        return "The file has no name, so I cannot tell what it is. Send a CRM export as a .csv or .csv.gz document."
    if not file_name.lower().endswith(ACCEPTED_SUFFIXES):
        return (f"{file_name!r} is not a .csv or .csv.gz file. Export the data as CSV (comma or semicolon "
                "separated), optionally gzip-compressed, and send it again.")
    limit = int(max_upload_mb * 1024 * 1024)
    if file_size is not None and file_size > limit:
        why = (f"Telegram lets bots download files of at most {max_upload_mb:g} MB, whatever "
               "CHURNGUARD_MAX_UPLOAD_MB says." if telegram_limit else
               f"uploads are limited to {max_upload_mb:g} MB (CHURNGUARD_MAX_UPLOAD_MB).")
        return f"{file_name!r} is {megabytes(file_size)}; {why} {large_file_help(max_upload_mb, inbox_mb)}"
    return None


def refused_by_server(file_name: str, file_size: int | None, inbox_mb: float | None = None) -> str:
    """The Bot API server would not hand the file over ("file is too big"): a server's limit,
    which Telegram's own servers set at 20 MB."""
    size = f" ({megabytes(file_size)})" if file_size else ""
    return (f"{file_name!r}{size} is too big for the bot to download: Telegram lets bots download files of at "
            f"most {TELEGRAM_DOWNLOAD_MB:g} MB. " + large_file_help(TELEGRAM_DOWNLOAD_MB, inbox_mb))


def uploads_dir(home: Path) -> Path:
    path = home / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def upload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """Returns the audit result: what was stored, or why not."""
    svc = services(context)
    message = update.effective_message
    chat = update.effective_chat
    if message is None or message.document is None or chat is None:
        return "ignored: no document"
    document = message.document
    name = document.file_name or ""
    settings = svc.settings
    limit_mb, telegram_limit = upload_limit(settings)

    def check(size: int | None) -> str | None:
        return check_document(name, size, limit_mb, telegram_limit=telegram_limit, inbox_mb=settings.max_file_mb)

    problem = check(document.file_size)
    if problem is not None:
        await reply(update, context, f"{problem}\n{NOTHING_STORED}")
        return "refused before download"

    await show_activity(context, chat.id, ChatAction.TYPING)
    try:
        telegram_file = await document.get_file()
    except BadRequest as error:
        if "too big" not in str(error).lower():
            raise
        log.info("the Bot API server refused to hand over %r (%s bytes): %s", name, document.file_size, error)
        await reply(update, context, f"{refused_by_server(name, document.file_size, settings.max_file_mb)}\n"
                                     f"{NOTHING_STORED}")
        return "refused: too big for the Bot API server"
    problem = check(telegram_file.file_size)
    if problem is not None:
        await reply(update, context, f"{problem}\n{NOTHING_STORED}")
        return "refused before download"

    suffix = ".csv.gz" if name.lower().endswith(".csv.gz") else ".csv"
    target = uploads_dir(settings.home) / f"{uuid.uuid4().hex}{suffix}"
    try:
        await retry_call(lambda: telegram_file.download_to_drive(target), what="file download")
        size = target.stat().st_size
        if size > int(limit_mb * 1024 * 1024):
            # The server did not tell the size up front; the download is discarded unread.
            await reply(update, context, f"{check(size)}\n{NOTHING_STORED}")
            return "refused after download: too large"
        try:
            # The first file may name its columns in the caption (bot/first_upload.py).
            schema, explicit = await svc.offload(upload_schema, svc.db, settings, message.caption, target, name,
                                                 Limits.from_settings(settings))
            report = await svc.offload(
                ingest_file, svc.db, target, schema=schema, explicit=explicit,
                limits=Limits.from_settings(settings), source_name=name,
            )
        except IngestRejected as error:
            await reply(update, context, f"{name} was rejected. {NOTHING_STORED}\n{error.for_chat()}",
                        filename="rejected.txt")
            return f"rejected: {str(error)[:40]}"
        except UserError as error:
            await reply(update, context, f"{name} was not ingested. {NOTHING_STORED}\n{error.for_chat()}")
            return f"refused: {str(error)[:40]}"
    finally:
        with contextlib.suppress(OSError):
            target.unlink()
    await svc.offload(svc.after_change)
    text = report.to_text("chat")
    started = report.stored and svc.runner is not None
    if started:
        follow_ups = await svc.offload(arrival_follow_ups, svc.db, settings, [report.batch_id])
        text += "\n\n" + checks_text([f.job for f in follow_ups])
    await reply(update, context, text, filename="ingest-report.txt")
    if started:
        context.application.create_task(follow_up(svc, report.batch_id, name), update=update,
                                        name=f"churnguard-arrival-{report.batch_id}")
    summary = report.to_dict()
    if summary.get("duplicate_of") is not None:
        return f"duplicate of batch {summary['duplicate_of']}"
    return f"stored batch {summary.get('batch_id')}: {summary.get('rows')} rows"


def checks_text(jobs: list[str]) -> str:
    """The reply's last paragraph: which follow-ups were started, in the order they run."""
    steps = ["scoring with the champion", *(CHECK_NAMES.get(job, job) for job in jobs)]
    return (f"Started in the background: {', then '.join(steps)}. "
            "Alerts go to subscribers and admins; /alerts lists them.")


async def follow_up(svc: Services, batch_id: int, source: str) -> None:
    """In the background: the ``arrival`` job and its follow-ups, each a recorded run.

    It waits for a running arrival (two uploads in a row) instead of skipping, so every
    batch is scored.  Failures are recorded and alerted by the runner; nothing is raised.
    """
    try:
        # Owed in the store until done: a shutdown before they ran leaves them for the next start.
        reports = await svc.runner.run(ARRIVAL_JOB, trigger="upload", params={"batch_ids": [batch_id], "source": source},
                                       wait_seconds=FOLLOW_UP_WAIT_SECONDS, owe=True)
        log.info("upload of batch #%s followed up: %s", batch_id,
                 "; ".join(f"{r.job} {r.outcome}" for r in reports))
        await svc.offload(svc.after_change)  # new predictions, perhaps a new champion
    except Exception:
        log.exception("the follow-ups of uploaded batch #%s could not be run", batch_id)


__all__ = ["ACCEPTED_SUFFIXES", "NOTHING_STORED", "TELEGRAM_DOWNLOAD_MB", "check_document", "checks_text",
           "follow_up", "large_file_help", "refused_by_server", "upload", "upload_limit"]
