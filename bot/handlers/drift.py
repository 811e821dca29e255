"""/drift: the latest drift report the drift job stored, with its chart.

The bot only reads what ``jobs`` computed (``Report`` rows of kind "drift"), so /drift and
``churnguard drift`` always tell the same story; the chart is drawn off the event loop.
"""

from __future__ import annotations

import io

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.access import Role
from bot.messages import CAPTION_LIMIT, reply, show_activity, truncate
from bot.services import Command, services
from jobs.reports import DriftView, latest_drift
from storage.db import Database

NO_REPORT_TEXT = (
    "No drift report exists yet. The drift job writes one after new CRM data arrives "
    "(or on its schedule); /alerts lists any alerts it raised."
)


def drift_answer(db: Database) -> tuple[str, bytes | None]:
    """In a worker thread: the report text (with its date) and its chart."""
    view: DriftView | None = latest_drift(db)
    if view is None:
        return NO_REPORT_TEXT, None
    when = f"{view.created_at:%Y-%m-%d %H:%M} UTC" if view.created_at is not None else "unknown time"
    scope = []
    if view.model_version:
        scope.append(f"model {view.model_version}")
    if view.batch_id is not None:
        scope.append(f"batch #{view.batch_id}")
    head = f"Drift report #{view.report_id} of {when}" + (f" ({', '.join(scope)})" if scope else "") + ":"
    text = f"{head}\n{view.text}" if view.text else f"{head}\n(the report has no summary text)"
    return text, view.chart_png()


async def drift(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    text, chart = await svc.offload(drift_answer, svc.db)
    # The summary first: it is the answer, the chart its illustration (and a reader sees the
    # verdict while the picture is still uploading).
    await reply(update, context, text, filename="drift-report.txt")
    if chart is None:
        return
    await show_activity(context, chat.id, ChatAction.UPLOAD_PHOTO)
    caption = truncate(text.split("\n", 1)[0] + " Reference (training) vs current distributions of the most "
                       "drifted features.", CAPTION_LIMIT)
    await context.bot.send_photo(chat.id, photo=io.BytesIO(chart), caption=caption, filename="drift.png")


COMMANDS = (Command("drift", "the latest data drift report, with a chart", Role.VIEWER, drift),)

__all__ = ["COMMANDS", "NO_REPORT_TEXT", "drift", "drift_answer"]
