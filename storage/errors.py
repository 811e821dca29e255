"""Errors a user can fix, kept apart from bugs so every entry point can show them plainly.

Most of these texts are read in two places: a shell (``churnguard ...``) and a Telegram chat.
What the reader should *do* differs between them — a shell user types ``churnguard train``,
a chat user sends ``/retrain`` or asks an admin — so a message that ends in advice carries it
as an :class:`Advice`: the message itself is written for both, and each channel appends its
own next step.  ``str(error)`` is the command line's text; :func:`chat_text` is the chat's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: Who reads a message: someone at a shell, or someone in a chat with the bot.
Channel = Literal["cli", "chat"]


@dataclass(frozen=True)
class Advice:
    """The next step after a shared message, in the words of each channel.

    Both texts are appended to the message as they are, so each starts with the punctuation
    it needs (``": run churnguard train"`` / ``": an admin can train one with /retrain"``).
    ``cli`` may name commands, flags and settings; ``chat`` names only the bot's own commands,
    or says that an admin must act — a chat user has no shell.
    """

    cli: str
    chat: str

    def text(self, channel: Channel) -> str:
        return self.chat if channel == "chat" else self.cli


class UserError(Exception):
    """A problem with the user's input or request: shown as one clear message, never a traceback.

    ``exit_code`` is what the command line returns (2 = bad input, nothing stored);
    ``details`` carries structured facts (column, rows, examples) for ``--json`` output;
    ``advice`` the next step per channel (see :class:`Advice`): ``str(error)`` ends with its
    command-line form, :meth:`for_chat` with its chat form.
    """

    exit_code = 2

    def __init__(self, message: str, *, advice: Advice | None = None, **details: Any) -> None:
        super().__init__(message + (advice.cli if advice is not None else ""))
        self.plain = message
        self.advice = advice
        self.details: dict[str, Any] = details

    def for_chat(self) -> str:
        """The message with the chat's next step instead of the command line's."""
        plain = getattr(self, "plain", None)
        if plain is None:  # raised with the plain Exception signature, e.g. rebuilt from a pickle
            return str(self)
        advice: Advice | None = getattr(self, "advice", None)
        return plain + (advice.chat if advice is not None else "")


def chat_text(error: BaseException) -> str:
    """What a chat shows for ``error``: a ``UserError``'s chat wording, else its type and text."""
    if isinstance(error, UserError):
        return error.for_chat()
    return f"{type(error).__name__}: {error}"


class SchemaConflict(UserError):
    """A command's schema settings disagree with the schema remembered in storage."""


class NotFound(UserError):
    """Something the user named (a client, a model version) does not exist."""

    exit_code = 1


class IngestRejected(UserError):
    """A CRM file or SQL pull that cannot be stored as it is; nothing of it was stored.

    ``details`` names the problem (``problem``), and where it is when that is known:
    ``column``, ``rows`` (1-based; ``row_kind`` says "data row" or "file line") and ``examples``.
    """


__all__ = ["Advice", "Channel", "IngestRejected", "NotFound", "SchemaConflict", "UserError", "chat_text"]
