"""Admin commands: /retrain, /models, /promote, /rollback, /users.

Each returns a short result string that the guard writes to the audit log with who and
when.  /retrain runs through the jobs' ``JobRunner`` (the one the schedules use), so a
scheduled retrain and an admin's /retrain can never train at the same time, and training
runs in a worker thread while the bot keeps answering everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telegram import Bot, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.access import Role
from bot.messages import TEXT_LIMIT, reply, truncate, without_server_paths
from bot.services import Command, Services, services
from jobs.retrain_job import RetrainBusy, RetrainWorker
from jobs.runner import RunReport
from model.commands import version_figures
from model.registry import Registry, VersionInfo
from storage.errors import UserError

log = logging.getLogger(__name__)

PROGRESS_MIN_SECONDS = 1.0


def actor_of(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id}" if user is not None else "telegram:unknown"


def require_registry(svc: Services) -> Registry[object]:
    if svc.registry is None:
        raise UserError("The model registry is not open yet; try again in a moment.")
    registry: Registry[object] = svc.registry
    return registry


# ---------------------------------------------------------------------------------- /retrain
class ProgressMessage:
    """Edits one message as progress lines arrive, at most once per ``PROGRESS_MIN_SECONDS``.

    The job runner already drops lines the bot has no time for (newest wins), so waiting
    here never builds a backlog; it only keeps the chat from flickering.
    """

    def __init__(self, bot: Bot, chat_id: int, message_id: int, heading: str) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.message_id = message_id
        self.heading = heading
        self.started = time.monotonic()
        self.last_edit = 0.0
        self.last_text = ""
        self.edits = 0

    async def update(self, line: str) -> None:
        wait = PROGRESS_MIN_SECONDS - (time.monotonic() - self.last_edit)
        if wait > 0:
            await asyncio.sleep(wait)
        elapsed = time.monotonic() - self.started
        await self.show(f"{self.heading}\n… {line} ({elapsed:.0f} s)")

    async def show(self, text: str) -> None:
        text = truncate(without_server_paths(text), TEXT_LIMIT)
        if text == self.last_text:
            return
        try:
            await self.bot.edit_message_text(text, chat_id=self.chat_id, message_id=self.message_id)
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                log.warning("could not edit the progress message: %s", error)
                return
        except TelegramError as error:
            log.warning("could not edit the progress message: %s", error)
            return
        self.last_text = text
        self.last_edit = time.monotonic()
        self.edits += 1


def retrain_summary(report: RunReport) -> str:
    """The final message of /retrain: what was trained, whether it serves now, and why not."""
    result = dict(report.run.details.get("result") or {})
    lines = [f"Retrain finished: {report.summary}."]
    if result.get("version"):
        lines.append(f"New version: {result['version']} ({result.get('status', '?')}).")
    champion = result.get("champion_after")
    lines.append(f"Serving champion: {champion}." if champion else "There is no champion model yet.")
    reasons = [str(reason) for reason in result.get("reasons") or []]
    if reasons and not result.get("promoted"):
        lines.append("Why it was not promoted:")
        lines += [f"  - {reason}" for reason in reasons]
    warnings = [str(warning) for warning in result.get("warnings") or []]
    if warnings:  # leaking columns left out, event types without columns, a suspicious score
        lines.append("Warnings about the data:")
        lines += [f"  - {warning}" for warning in warnings]
    if result.get("window"):
        lines.append(f"Trained on {result['window']}.")
    if report.run.seconds is not None:
        lines.append(f"Took {report.run.seconds:.0f} s. /model shows the champion's card.")
    return "\n".join(lines)


def busy_text(error: RetrainBusy) -> str:
    text = str(error)
    return text[:1].upper() + text[1:] + ". Scores keep coming from the current champion meanwhile."


async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    chat = update.effective_chat
    worker: RetrainWorker | None = svc.retrain_worker
    if chat is None or worker is None:
        raise UserError("The job runner is not ready yet; try again in a moment.")
    if worker.busy:
        current = worker.current
        since = f" (started {current.started_at:%H:%M} UTC by {current.actor})" if current is not None else ""
        await reply(update, context, f"A retrain is already running{since}; its result will show when it ends. "
                                     "Scores keep coming from the current champion meanwhile.")
        return "refused: already running"
    heading = "Retraining on the stored labelled data. Other commands keep working meanwhile."
    message = await reply(update, context, f"{heading}\n… starting")
    if message is None:
        return "no chat"
    progress = ProgressMessage(context.bot, chat.id, message.message_id, heading)
    progress.last_text = message.text or ""
    try:
        report = await worker.retrain(actor=actor_of(update), on_progress=progress.update)
    except RetrainBusy as error:
        await progress.show(busy_text(error))
        return "refused: already running"
    await svc.offload(svc.after_change)
    if report.outcome == "failed":
        error_text = str(report.run.details.get("chat_error") or report.run.error or report.summary)
        await progress.show(f"The retrain failed: {error_text}\nThe champion model is unchanged; the admins "
                            "were alerted with the details.")
        return "failed"
    if report.outcome == "cancelled":
        await progress.show("The retrain was cancelled because the service is stopping; nothing was registered "
                            "and the champion model is unchanged. Send /retrain again when the bot is back.")
        return "cancelled"
    await progress.show(retrain_summary(report))
    return truncate(f"{report.outcome}: {report.summary}", 64)


# --------------------------------------------------------------------- /models, /promote, /rollback
def version_line(info: VersionInfo) -> str:
    figures = version_figures(info)

    def cell(name: str) -> str:
        value = figures.get(name)
        return "-" if value is None else f"{value:.3f}"

    marker = "★" if info.is_champion else "•"
    return (f"{marker} {info.version} {info.status} · {info.created_at:%Y-%m-%d %H:%M} UTC · threshold "
            f"{info.threshold:.3f} · test recall {cell('recall')}, precision {cell('precision')}, "
            f"PR-AUC {cell('pr_auc')} · {info.train_rows} rows")


def models_text(versions: list[VersionInfo]) -> str:
    if not versions:
        return "No models yet. /retrain trains the first one."
    lines = [f"{len(versions)} model version(s), oldest first (★ = champion, serving scores):"]
    lines += [version_line(info) for info in versions]
    lines.append("/promote <version> makes one the champion; /rollback returns to the previous one.")
    return "\n".join(lines)


async def models(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    registry = require_registry(svc)
    versions = await svc.offload(registry.list_versions)
    await reply(update, context, models_text(versions), filename="models.txt")
    return f"listed {len(versions)}"


async def promote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    registry = require_registry(svc)
    args = list(context.args or [])
    if len(args) != 1:
        raise UserError("Which version? Send /promote <version>, for example /promote v2 (/models lists them).")
    wanted = await svc.offload(registry.get, args[0])  # NotFound names the known versions
    if wanted.is_champion:
        await reply(update, context, f"{wanted.version} is already the champion; nothing changed.")
        return f"unchanged: {wanted.version} already champion"
    switch = await svc.offload(registry.promote, wanted.version, actor_of(update))
    await svc.offload(svc.after_change)
    text = f"{switch.version} is now the champion (was {switch.previous or 'none'}). New scores use it from now on."
    if switch.note:
        text += f"\nNote: {switch.note}"
    await reply(update, context, text)
    return f"promoted {switch.version} (was {switch.previous or 'none'})"


async def rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    registry = require_registry(svc)
    switch = await svc.offload(registry.rollback, actor_of(update))
    await svc.offload(svc.after_change)
    text = f"Rolled back: {switch.version} is the champion again (was {switch.previous})."
    if switch.skipped:
        text += f"\nPassed over damaged version(s): {', '.join(switch.skipped)}."
    await reply(update, context, text)
    return f"rolled back to {switch.version} (was {switch.previous})"


# ------------------------------------------------------------------------------------ /users
async def users(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    text = ("Who has access (from CHURNGUARD_ADMIN_IDS and CHURNGUARD_VIEWER_IDS):\n" + svc.access.describe()
            + "\nAnyone else gets one polite refusal; every attempt is in the audit log.")
    await reply(update, context, text)
    return "listed"


COMMANDS = (
    Command("retrain", "train a new model now (admin)", Role.ADMIN, retrain),
    Command("models", "all model versions and their test figures (admin)", Role.ADMIN, models),
    Command("promote", "make a model version the champion (admin)", Role.ADMIN, promote, usage="<version>"),
    Command("rollback", "return to the previous champion (admin)", Role.ADMIN, rollback),
    Command("users", "who has access (admin)", Role.ADMIN, users),
)

__all__ = ["COMMANDS", "ProgressMessage", "busy_text", "models_text", "retrain", "retrain_summary"]
