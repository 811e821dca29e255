"""The emulated Telegram side of one bot: users, chats, messages, files, the update queue.

One re-entrant lock guards everything, because two threads touch it: the emulator's event loop
(serving the bot's HTTP calls) and the test or terminal thread (injecting what a user does and
reading what the bot did).  Every change ends in :meth:`EmulatorState.notify`, which wakes
blocking waiters (a ``threading.Condition``) and the registered wakers (long polls and async
waiters living on other event loops, reached through ``call_soon_threadsafe``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.emulator.errors import JSONDict, bad_request, blocked_by_user
from bot.emulator.records import Call, CallbackAnswer, ChatMessage, Injection, Output

#: Update types delivered when ``allowed_updates`` is unset or empty (Telegram's default).
DEFAULT_UPDATE_TYPES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "inline_query",
    "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media",
    "poll", "poll_answer", "my_chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
})


@dataclass
class StoredFile:
    """A file Telegram holds: what getFile describes and the download route serves."""

    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    file_name: str | None
    mime_type: str | None
    kind: str
    width: int | None = None
    height: int | None = None

    def document_json(self) -> JSONDict:
        data: JSONDict = {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                          "file_size": len(self.content)}
        if self.file_name:
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        return data

    def photo_json(self) -> list[JSONDict]:
        return [{"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": len(self.content),
                 "width": self.width or 0, "height": self.height or 0}]


@dataclass
class Fault:
    """One injected failure waiting for the next call of its method."""

    kind: str  # "status", "drop" or "delay"
    status: int = 0
    retry_after: float = 1.0
    description: str | None = None
    delay: float = 0.0


@dataclass
class _CallbackQuery:
    id: str
    update_id: int
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    at: float
    answered: bool = False
    answered_at: float | None = None
    answer: JSONDict = field(default_factory=dict)


def scope_key(scope: object, language_code: str | None = "") -> str:
    """A stable key for a BotCommandScope (dict, JSON string, or a bare type name) plus language."""
    if scope is None:
        scope = {"type": "default"}
    if isinstance(scope, str):
        scope = json.loads(scope) if scope.strip().startswith("{") else {"type": scope}
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse BotCommandScope JSON object")
    normal = dict(scope)
    for key in ("chat_id", "user_id"):
        value = normal.get(key)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            normal[key] = int(value)
    return json.dumps(normal, sort_keys=True) + "|" + (language_code or "")


class EmulatorState:
    """Everything the emulated server knows; all public methods are thread-safe."""

    def __init__(self, token: str, *, bot_first_name: str = "ChurnGuard", bot_username: str = "churnguard_bot") -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user: JSONDict = {
            "id": int(bot_id) if bot_id.isdigit() else 1, "is_bot": True, "first_name": bot_first_name,
            "username": bot_username, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False,
        }
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, JSONDict] = {}
        self.blocked: set[int] = set()
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.commands: dict[str, list[JSONDict]] = {}
        self.closing = False
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], ChatMessage] = {}
        self._chat_order: dict[int, list[int]] = {}
        self._pending: list[JSONDict] = []
        self._next_update_id = 1
        self._delivered_through = 0
        self._files: dict[str, StoredFile] = {}
        self._paths: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._callbacks: dict[str, _CallbackQuery] = {}
        self._callback_seq = itertools.count(1)
        self._faults: dict[str, deque[Fault]] = {}
        self._calls: list[Call] = []
        self._outputs: list[Output] = []
        self._injections: dict[int, Injection] = {}
        self._poll_generation = 0
        self._waiting_polls = 0
        self._wakers: dict[int, Callable[[], object]] = {}
        self._waker_seq = itertools.count(1)

    # --- change notification -----------------------------------------------------------

    def notify(self) -> None:
        """Wake everyone waiting for a change (call with the lock held)."""
        self.changed.notify_all()
        for waker in list(self._wakers.values()):
            with contextlib.suppress(RuntimeError):  # the waiter's loop is gone; it no longer waits
                waker()

    def add_waker(self, waker: Callable[[], object]) -> int:
        """Register a thread-safe callback run on every change; returns a handle for removal."""
        with self.lock:
            handle = next(self._waker_seq)
            self._wakers[handle] = waker
            return handle

    def remove_waker(self, handle: int) -> None:
        with self.lock:
            self._wakers.pop(handle, None)

    # --- users and chats -----------------------------------------------------------------

    def ensure_user(self, user_id: int, first_name: str | None = None, username: str | None = None,
                    last_name: str | None = None) -> JSONDict:
        with self.lock:
            user = self.users.get(user_id)
            if user is None:
                user = {"id": user_id, "is_bot": False, "first_name": first_name or "Tester", "language_code": "en"}
                self.users[user_id] = user
            if first_name:
                user["first_name"] = first_name
            if username:
                user["username"] = username
            if last_name:
                user["last_name"] = last_name
            return user

    def ensure_chat(self, user_id: int, chat_id: int | None = None) -> JSONDict:
        """The private chat with ``user_id`` (chat id = user id), or a group when ``chat_id`` differs."""
        with self.lock:
            user = self.ensure_user(user_id)
            cid = user_id if chat_id is None else chat_id
            chat = self.chats.get(cid)
            if chat is None:
                if cid == user_id:
                    chat = {"id": cid, "type": "private", "first_name": user["first_name"]}
                    if "username" in user:
                        chat["username"] = user["username"]
                else:
                    chat = {"id": cid, "type": "group", "title": f"Group {cid}"}
                self.chats[cid] = chat
                self._chat_order[cid] = []
            return chat

    def chat_for_send(self, chat_id: int) -> JSONDict:
        """The chat the bot writes to, or the 400/403 Telegram gives for it."""
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat["type"] == "private" and chat_id in self.blocked:
            raise blocked_by_user()
        return chat

    # --- messages ------------------------------------------------------------------------

    def next_message_id(self, chat_id: int) -> int:
        last = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = last
        return last

    def add_message(self, message: ChatMessage) -> None:
        self._messages[(message.chat_id, message.message_id)] = message
        self._chat_order.setdefault(message.chat_id, []).append(message.message_id)

    def find_message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        message = self._messages.get((chat_id, message_id))
        return None if message is None or message.deleted else message

    def message_json(self, message: ChatMessage, *, with_reply: bool = True) -> JSONDict:
        """The Bot API ``Message`` object for the message as it is now."""
        sender = self.bot_user if message.from_bot else self.users[message.sender_id]
        data: JSONDict = {"message_id": message.message_id, "date": message.date,
                          "chat": dict(self.chats[message.chat_id]), "from": dict(sender)}
        if message.text is not None:
            data["text"] = message.text
            if message.entities:
                data["entities"] = copy.deepcopy(message.entities)
        if message.file_id is not None:
            stored = self._files[message.file_id]
            if message.photo is not None:
                data["photo"] = stored.photo_json()
            else:
                data["document"] = stored.document_json()
        if message.caption is not None:
            data["caption"] = message.caption
            if message.caption_entities:
                data["caption_entities"] = copy.deepcopy(message.caption_entities)
        if message.media_group_id:
            data["media_group_id"] = message.media_group_id
        markup = message.reply_markup or {}
        if "inline_keyboard" in markup:  # Telegram echoes only inline keyboards
            data["reply_markup"] = copy.deepcopy(markup)
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if with_reply and message.reply_to_message_id is not None:
            replied = self.find_message(message.chat_id, message.reply_to_message_id)
            if replied is not None:
                data["reply_to_message"] = self.message_json(replied, with_reply=False)
        return data

    def transcript(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        with self.lock:
            found = [self._messages[(chat_id, mid)] for mid in self._chat_order.get(chat_id, [])]
            return [snapshot(m) for m in found if include_deleted or not m.deleted]

    def message_snapshot(self, chat_id: int, message_id: int) -> ChatMessage | None:
        with self.lock:
            message = self._messages.get((chat_id, message_id))
            return None if message is None else snapshot(message)

    # --- files ---------------------------------------------------------------------------

    def store_file(self, content: bytes, *, kind: str, file_name: str | None, mime_type: str | None,
                   width: int | None = None, height: int | None = None) -> StoredFile:
        """Keep a file so ``getFile`` and the download route can serve it."""
        with self.lock:
            seq = next(self._file_seq)
            digest = hashlib.sha256(content).hexdigest()
            folder = "photos" if kind == "photo" else "documents"
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1][:10]
            elif kind == "photo":
                suffix = ".jpg"
            stored = StoredFile(
                file_id=f"EMU{kind[:3].upper()}{seq:06d}{digest[:16]}",
                file_unique_id=f"U{digest[:15]}",
                file_path=f"{folder}/file_{seq}{suffix}",
                content=content, file_name=file_name, mime_type=mime_type, kind=kind, width=width, height=height,
            )
            self._files[stored.file_id] = stored
            self._paths[stored.file_path] = stored
            return stored

    def find_file(self, file_id: str) -> StoredFile | None:
        with self.lock:
            return self._files.get(file_id)

    def file_at(self, path: str) -> StoredFile | None:
        with self.lock:
            return self._paths.get(path)

    # --- updates -------------------------------------------------------------------------

    def push_update(self, kind: str, payload: JSONDict, injection: Callable[[int], Injection]) -> int:
        """Queue an update for getUpdates; returns its update_id (call with the lock held)."""
        update_id = self._next_update_id
        self._next_update_id += 1
        self._pending.append({"update_id": update_id, kind: payload})
        self._injections[update_id] = injection(update_id)
        self.notify()
        return update_id

    def begin_poll(self) -> int:
        """Start a getUpdates call: the one before it, if still waiting, is now superseded."""
        with self.lock:
            self._poll_generation += 1
            self.notify()
            return self._poll_generation

    def poll_waiting(self, delta: int) -> None:
        """Count long polls entering (+1) or leaving (-1) their wait."""
        with self.lock:
            self._waiting_polls += delta
            self.notify()

    def waiting_polls(self) -> int:
        with self.lock:
            return self._waiting_polls

    def poll_superseded(self, generation: int) -> bool:
        with self.lock:
            return generation != self._poll_generation

    def take_updates(self, offset: int | None, limit: int, allowed: list[str] | None) -> list[JSONDict]:
        """getUpdates semantics: confirm below ``offset``, filter by allowed types, return up to ``limit``."""
        with self.lock:
            if offset is not None:
                if offset < 0:
                    self._pending = self._pending[offset:]
                else:
                    self._pending = [u for u in self._pending if u["update_id"] >= offset]
            if allowed is not None:
                self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
            # Telegram does not keep updates of types the bot said it does not want
            self._pending = [u for u in self._pending if _update_type(u) in self.allowed_updates]
            batch = copy.deepcopy(self._pending[:limit])
            if batch:
                self._delivered_through = max(self._delivered_through, batch[-1]["update_id"])
                self.notify()
            return batch

    def drop_pending(self) -> None:
        with self.lock:
            self._pending.clear()
            self.notify()

    def pending_updates(self) -> list[JSONDict]:
        with self.lock:
            return copy.deepcopy(self._pending)

    def delivered(self, update_id: int) -> bool:
        """Whether the bot has fetched this update (at least once)."""
        with self.lock:
            return update_id <= self._delivered_through

    def injection(self, update_id: int) -> Injection:
        with self.lock:
            try:
                return self._injections[update_id]
            except KeyError:
                raise KeyError(f"no update {update_id} was injected") from None

    # --- callback queries ----------------------------------------------------------------

    def new_callback(self, user_id: int, chat_id: int, message_id: int, data: str | None, update_id: int) -> str:
        query_id = f"{user_id}{next(self._callback_seq):08d}"
        self._callbacks[query_id] = _CallbackQuery(query_id, update_id, user_id, chat_id, message_id, data,
                                                   time.monotonic())
        return query_id

    def answer_callback(self, query_id: str, answer: JSONDict) -> _CallbackQuery:
        query = self._callbacks.get(query_id)
        if query is None or query.answered:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        query.answered = True
        query.answered_at = time.monotonic()
        query.answer = answer
        return query

    def callback_answers(self) -> list[CallbackAnswer]:
        with self.lock:
            return [
                CallbackAnswer(
                    callback_query_id=q.id, update_id=q.update_id, chat_id=q.chat_id, message_id=q.message_id,
                    data=q.data, pressed_at=q.at, answered=q.answered, answered_at=q.answered_at,
                    text=q.answer.get("text"), show_alert=bool(q.answer.get("show_alert", False)),
                    url=q.answer.get("url"),
                )
                for q in self._callbacks.values()
            ]

    # --- faults, calls, outputs ----------------------------------------------------------

    def add_fault(self, method: str, fault: Fault, times: int) -> None:
        with self.lock:
            queue = self._faults.setdefault(method.lower(), deque())
            queue.extend(replace(fault) for _ in range(times))

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            queue = self._faults.get(method.lower())
            return queue.popleft() if queue else None

    def record_call(self, method: str, params: JSONDict, status: int, description: str | None = None,
                    result: object = None) -> None:
        with self.lock:
            self._calls.append(Call(seq=len(self._calls) + 1, method=method, params=params, at=time.monotonic(),
                                    status=status, description=description, result=copy.deepcopy(result)))
            self.notify()

    def calls(self, method: str | None = None) -> list[Call]:
        with self.lock:
            wanted = method.lower() if method else None
            return [c for c in self._calls if wanted is None or c.method.lower() == wanted]

    def record_output(self, kind: str, method: str, chat_id: int | None, message_id: int | None,
                      data: JSONDict | None = None) -> None:
        self._outputs.append(Output(seq=len(self._outputs) + 1, kind=kind, method=method, chat_id=chat_id,
                                    message_id=message_id, at=time.monotonic(), data=dict(data or {})))
        self.notify()

    def outputs(self, chat_id: int | None = None, since_seq: int = 0) -> list[Output]:
        with self.lock:
            return [o for o in self._outputs[since_seq:] if chat_id is None or o.chat_id == chat_id]


def _update_type(update: JSONDict) -> str:
    return next(key for key in update if key != "update_id")


def snapshot(message: ChatMessage) -> ChatMessage:
    """A copy the caller may keep while the original goes on changing."""
    return replace(message, entities=copy.deepcopy(message.entities),
                   caption_entities=copy.deepcopy(message.caption_entities),
                   reply_markup=copy.deepcopy(message.reply_markup), edits=list(message.edits))

