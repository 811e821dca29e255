"""Sending text that may be longer than Telegram allows, and never a server path.

Telegram rejects a message over 4096 characters and a caption over 1024 with a 400, which
would turn a long model list or ingest report into "something went wrong".  Short overflow
is split at line boundaries into a few messages; anything longer arrives as one text file,
which is easier to read than a wall of ten messages.

Paths of the server stay on the server: replies are worded without them, and as a last line
of defence (exception texts from libraries can hold one) :func:`without_server_paths` cuts
any absolute path down to its last part before a text leaves.  Tests check that it never has
to: the "…/" it leaves behind is itself a finding.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, Update
from telegram.constants import MessageLimit
from telegram.error import TelegramError
from telegram.ext import ContextTypes

log = logging.getLogger(__name__)

TEXT_LIMIT: int = MessageLimit.MAX_TEXT_LENGTH  # 4096
CAPTION_LIMIT: int = MessageLimit.CAPTION_LENGTH  # 1024
MAX_SPLIT_MESSAGES = 3
#: An absolute POSIX path of two or more parts (not a URL, a /command or a fraction), or a
#: Windows one.  What the bot itself writes never contains one; this catches library texts.
_SERVER_PATH = re.compile(
    r"(?<![\w/:.\\-])~?(?:/[^\s/'\"`()<>,;|]+){2,}/?"
    r"|(?<![\w])[A-Za-z]:\\[^\s'\"`()<>,;|]+"
)
HIDDEN_PATH_MARK = "…/"


def without_server_paths(text: str) -> str:
    """``text`` with every absolute path shortened to "…/" and its last part."""

    def shorten(match: re.Match[str]) -> str:
        return HIDDEN_PATH_MARK + re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1]

    return _SERVER_PATH.sub(shorten, text)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, preferring line breaks.

    A single line longer than the limit is cut hard; nothing is dropped, so joining the
    pieces (with the line breaks that were cut at) gives the text back.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    if not text:
        return [""]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else f"{current}\n{line}"
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line) > limit:
            pieces.append(line[:limit])
            line = line[limit:]
        current = line
    pieces.append(current)
    return pieces


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """Shorten to ``limit`` characters with a visible marker (for captions and button labels)."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
    filename: str = "reply.txt",
    max_messages: int = MAX_SPLIT_MESSAGES,
    **kwargs: Any,
) -> Message:
    """Send ``text`` however long it is; returns the last message sent (for later edits).

    Up to ``max_messages`` pieces go as messages (the keyboard on the last); beyond that, the
    full text goes as ``filename`` with its first lines as the caption.
    """
    text = without_server_paths(text)
    pieces = split_text(text)
    if len(pieces) <= max_messages:
        message: Message | None = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message = await bot.send_message(
                chat_id, piece, reply_markup=reply_markup if last else None, **kwargs
            )
        assert message is not None
        return message
    first_lines = truncate(text.split("\n\n", 1)[0], CAPTION_LIMIT - 40)
    caption = truncate(f"{first_lines}\n(full text in the attached file)", CAPTION_LIMIT)
    return await bot.send_document(
        chat_id,
        document=io.BytesIO(text.encode("utf-8")),
        filename=filename,
        caption=caption,
        reply_markup=reply_markup,
    )


async def show_activity(context: ContextTypes.DEFAULT_TYPE, chat_id: int, action: str) -> None:
    """"typing…" / "sending photo…" while a slow answer is prepared.  Best effort: a chat
    action is cosmetic, so its failure must never cost the user the answer itself."""
    try:
        await context.bot.send_chat_action(chat_id, action)
    except TelegramError as error:
        log.debug("chat action %s not shown: %s", action, error)


async def reply(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    text: str,
    *,
    reply_markup: InlineKeyboardMarkup | None = None,
    filename: str = "reply.txt",
) -> Message | None:
    """Answer in the chat the update came from (None when it has no chat)."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await send_text(context.bot, chat.id, text, reply_markup=reply_markup, filename=filename)


__all__ = ["CAPTION_LIMIT", "HIDDEN_PATH_MARK", "MAX_SPLIT_MESSAGES", "TEXT_LIMIT", "reply", "send_text", "show_activity",
           "split_text", "truncate", "without_server_paths"]
