"""A local Telegram Bot API: lets the bot run, be chatted with and be tested with no token or network.

``Emulator`` is the entry point; the records it returns (``ChatMessage``, ``Call``, ``Output``,
``Injection``, ``CallbackAnswer``, ``Button``) are plain snapshots.
"""

from bot.emulator.emulator import DEFAULT_TOKEN, Emulator
from bot.emulator.errors import ApiError
from bot.emulator.records import Button, Call, CallbackAnswer, ChatMessage, Edit, Injection, Output

__all__ = ["DEFAULT_TOKEN", "ApiError", "Button", "Call", "CallbackAnswer", "ChatMessage", "Edit", "Emulator",
           "Injection", "Output"]
