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

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.messages import reply, show_activity
from bot.retry import retry_call
from bot.services import Services, services
from jobs.ingest_job import ARRIVAL_JOB, arrival_follow_ups
from jobs.runner import FOLLOW_UP_WAIT_SECONDS
from storage.errors import IngestRejected, UserError
from storage.ingest import ingest_file
from storage.readers import Limits
from storage.schema import schema_from_settings

log = logging.getLogger(__name__)

ACCEPTED_SUFFIXES = (".csv", ".csv.gz")
NOTHING_STORED = "Nothing was stored."
CHECK_NAMES = {"drift": "the drift check", "performance": "the performance check (realised recall)",
               "retrain": "a retrain on the new labels"}


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_document(file_name: str | None, file_size: int | None, max_upload_mb: float) -> str | None:
    """Why this document cannot be ingested, from its metadata alone; None when it may be downloaded."""
    if not file_name:
        return "The file has no name, so I cannot tell what it is. Send a CRM export as a .csv or .csv.gz document."
    if not file_name.lower().endswith(ACCEPTED_SUFFIXES):
        return (f"{file_name!r} is not a .csv or .csv.gz file. Export the data as CSV (comma or semicolon "
                "separated), optionally gzip-compressed, and send it again.")
    limit = int(max_upload_mb * 1024 * 1024)
    if file_size is not None and file_size > limit:
        return (f"{file_name!r} is {megabytes(file_size)}; uploads are limited to {max_upload_mb:g} MB "
                "(CHURNGUARD_MAX_UPLOAD_MB). Split the export into smaller files and send them one by one, "
                "or ask an admin to put the file in the service's inbox folder.")
    return None


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
    problem = check_document(name, document.file_size, settings.max_upload_mb)
    if problem is not None:
        await reply(update, context, f"{problem}\n{NOTHING_STORED}")
        return "refused before download"

    await show_activity(context, chat.id, ChatAction.TYPING)
    telegram_file = await document.get_file()
    problem = check_document(name, telegram_file.file_size, settings.max_upload_mb)
    if problem is not None:
        await reply(update, context, f"{problem}\n{NOTHING_STORED}")
        return "refused before download"

    suffix = ".csv.gz" if name.lower().endswith(".csv.gz") else ".csv"
    target = uploads_dir(settings.home) / f"{uuid.uuid4().hex}{suffix}"
    try:
        await retry_call(lambda: telegram_file.download_to_drive(target), what="file download")
        size = target.stat().st_size
        if size > int(settings.max_upload_mb * 1024 * 1024):
            # The server did not tell the size up front; the download is discarded unread.
            await reply(update, context, f"{check_document(name, size, settings.max_upload_mb)}\n{NOTHING_STORED}")
            return "refused after download: too large"
        schema, explicit = schema_from_settings(settings)
        try:
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
        reports = await svc.runner.run(ARRIVAL_JOB, trigger="upload", params={"batch_ids": [batch_id], "source": source},
                                       wait_seconds=FOLLOW_UP_WAIT_SECONDS)
        log.info("upload of batch #%s followed up: %s", batch_id,
                 "; ".join(f"{r.job} {r.outcome}" for r in reports))
        await svc.offload(svc.after_change)  # new predictions, perhaps a new champion
    except Exception:
        log.exception("the follow-ups of uploaded batch #%s could not be run", batch_id)


__all__ = ["ACCEPTED_SUFFIXES", "NOTHING_STORED", "check_document", "checks_text", "follow_up", "upload"]
