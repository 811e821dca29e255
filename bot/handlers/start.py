"""/start and /help: what the bot is for and what this user may ask it.

The command list is built from the user's role, so a viewer never sees admin commands and
the reply stays true when commands are added (it reads the same registry as setMyCommands).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.access import Role
from bot.first_upload import waiting_note
from bot.messages import reply
from bot.services import Command, services

INTRO = (
    "ChurnGuard estimates which clients are about to leave, so the retention team can reach them first. "
    "Scores come from the current champion model, with the reasons behind each score."
)


def help_text(role: Role, commands: list[Command], notes: list[str] | None = None) -> str:
    who = "an admin" if role >= Role.ADMIN else "a viewer"
    lines = [INTRO, "", f"You are {who}. Your commands:"]
    lines += [command.help_line() for command in commands if command.role <= role]
    if role >= Role.ADMIN:
        lines += ["", "Send a CRM export as a .csv or .csv.gz file to store it: it is checked first, and a file "
                      "with problems stores nothing."]
    for note in notes or []:
        lines += ["", note]
    return "\n".join(lines)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    user = update.effective_user
    role = svc.access.role(user.id if user else None)
    notes = list(svc.notes)
    if role >= Role.ADMIN:  # an empty store: how to send the first data (bot/first_upload.py)
        waiting = await svc.offload(waiting_note, svc.db, svc.settings)
        notes += [waiting] if waiting else []
    await reply(update, context, help_text(role, svc.commands, notes))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A known user typed a command that does not exist (or plain text)."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    word = text.split()[0] if text.split() else ""
    if word.startswith("/"):
        await reply(update, context, f"I don't know {word[:64]}. /help lists the commands you can use.")
    else:
        await reply(update, context, "I answer commands, for example /score <client id>. /help lists them all.")


COMMANDS = (
    Command("start", "what this bot does", Role.VIEWER, start, private_only=False),
    Command("help", "the commands you can use", Role.VIEWER, start, private_only=False),
)

__all__ = ["COMMANDS", "INTRO", "help_text", "start", "unknown_command"]
