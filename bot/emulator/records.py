"""What the emulator remembers, as plain snapshots a test can read without locks.

Every record is a copy taken under the emulator's lock, so the test thread can keep and
inspect it while the bot goes on changing the chat.  Times are ``time.monotonic()`` values
(``at``) so a benchmark can subtract an injection time from a reply time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Button:
    """One inline keyboard button, numbered from 1 in reading order (rows, then columns)."""

    number: int
    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Edit:
    """One change of a message (``editMessageText`` / ``editMessageReplyMarkup`` / caption)."""

    method: str
    at: float
    text: str | None
    caption: str | None
    reply_markup: JSONDict | None


@dataclass
class ChatMessage:
    """A message in a chat transcript, with every edit already applied.

    ``text``/``caption`` are what the user sees (markup parsed away); ``raw_text`` is what the
    bot sent with its ``parse_mode``.  ``photo``/``document`` hold the bytes the bot uploaded or
    the user sent.
    """

    chat_id: int
    message_id: int
    from_bot: bool
    sender_id: int
    date: int
    at: float
    method: str
    text: str | None = None
    raw_text: str | None = None
    parse_mode: str | None = None
    entities: list[JSONDict] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[JSONDict] = field(default_factory=list)
    photo: bytes | None = None
    document: bytes | None = None
    document_name: str | None = None
    mime_type: str | None = None
    file_id: str | None = None
    media_group_id: str | None = None
    reply_markup: JSONDict | None = None
    reply_to_message_id: int | None = None
    edits: list[Edit] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    update_id: int | None = None

    @property
    def kind(self) -> str:
        """``"text"``, ``"photo"`` or ``"document"``."""
        if self.photo is not None:
            return "photo"
        if self.document is not None:
            return "document"
        return "text"

    @property
    def shown_text(self) -> str:
        """The text or caption, whichever this message carries ('' when neither)."""
        return self.text if self.text is not None else (self.caption or "")

    def buttons(self) -> list[Button]:
        """The inline keyboard as numbered buttons ([] when the message has none)."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        found: list[Button] = []
        for row in rows:
            for raw in row:
                found.append(
                    Button(
                        number=len(found) + 1,
                        text=str(raw.get("text", "")),
                        callback_data=raw.get("callback_data"),
                        url=raw.get("url"),
                    )
                )
        return found

    def button_rows(self) -> list[list[Button]]:
        """The inline keyboard row by row, numbered like :meth:`buttons`."""
        flat = iter(self.buttons())
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[next(flat) for _ in row] for row in rows]


@dataclass(frozen=True)
class Call:
    """One HTTP call the bot made: what it asked and how the emulator answered."""

    seq: int
    method: str
    params: JSONDict
    at: float
    status: int
    description: str | None = None
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Output:
    """One bot→user effect, in order: a sent message, an edit, a deletion, an answer, an action.

    ``kind`` is ``"message"``, ``"edit"``, ``"delete"``, ``"callback_answer"`` or ``"chat_action"``.
    ``data`` holds what the user saw at that instant: for messages and edits ``kind`` (text,
    photo, document), ``text``, ``caption`` and ``reply_markup``; for answers ``text``,
    ``show_alert``, ``url``; for chat actions ``action``.
    """

    seq: int
    kind: str
    method: str
    chat_id: int | None
    message_id: int | None
    at: float
    data: JSONDict = field(default_factory=dict)


@dataclass(frozen=True)
class Injection:
    """An update a test (or the terminal) pushed to the bot, and when."""

    update_id: int
    kind: str
    user_id: int
    chat_id: int
    message_id: int | None
    at: float
    callback_query_id: str | None = None


@dataclass(frozen=True)
class CallbackAnswer:
    """How the bot answered one button press."""

    callback_query_id: str
    update_id: int
    chat_id: int
    message_id: int
    data: str | None
    pressed_at: float
    answered: bool
    answered_at: float | None = None
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
