"""The test- and terminal-facing handle on a running emulator.

:class:`Emulator` runs the aiohttp server on a private event loop in a daemon thread, so the
bot under test keeps its own loop and the two talk only over real HTTP on 127.0.0.1.  Its
methods are plain synchronous calls safe from any thread: inject what a user does, read what
the bot did, inject faults, and wait.  Waiting has two flavours: ``wait_*`` blocks the calling
thread (use it from synchronous tests or while the bot runs on another thread) and
``wait_*_async`` awaits (use it from code running on the bot's own loop, which a blocking wait
would freeze).
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

from aiohttp import web

from bot.emulator.errors import JSONDict, from_status
from bot.emulator.formatting import utf16_len
from bot.emulator.records import Call, CallbackAnswer, ChatMessage, Injection, Output
from bot.emulator.server import ApiServer
from bot.emulator.state import EmulatorState, Fault, scope_key

DEFAULT_TOKEN = "123456789:EMULATOR-token-for-local-tests_0000"
_T = TypeVar("_T")
_RECHECK_SECONDS = 0.05
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?(?=\s|$)")


class Emulator:
    """A local Telegram Bot API for one bot token, served over HTTP.

    Point python-telegram-bot at it with
    ``ApplicationBuilder().token(emu.token).base_url(emu.bot_api_url).base_file_url(emu.file_url)``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = DEFAULT_TOKEN, *,
                 bot_first_name: str = "ChurnGuard", bot_username: str = "churnguard_bot") -> None:
        if not re.match(r"^\d+:[A-Za-z0-9_-]+$", token):
            raise ValueError(f"token {token!r} is not shaped like a Bot API token (digits, ':', letters)")
        self.host = host
        self.token = token
        self.state = EmulatorState(token, bot_first_name=bot_first_name, bot_username=bot_username)
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Serve in a background thread; returns once the port is bound (raises if it cannot be)."""
        if self._thread is not None:
            raise RuntimeError("this emulator was already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, failure), name="telegram-emulator",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the Telegram emulator did not start within {timeout} s")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError(f"the Telegram emulator could not listen on {self.host}:{self._requested_port}: "
                               f"{failure[0]}") from failure[0]
        return self

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as error:
            failure.append(error)
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = ApiServer(self.state).build_app()
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        address = self._runner.addresses[0]
        self._port = int(address[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Answer waiting long polls, close the server and end its thread.  Stop the bot first."""
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None or not thread.is_alive():
            return
        with self.state.lock:
            self.state.closing = True
            self.state.notify()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self.state.closing

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (the root; the Bot API lives under ``/bot<token>``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def bot_api_url(self) -> str:
        """What PTB's ``base_url`` wants: the token is appended to it."""
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        """What PTB's ``base_file_url`` wants."""
        return f"{self.base_url}/file/bot"

    @property
    def bot_user(self) -> JSONDict:
        """The bot's ``User`` object, as getMe returns it."""
        return dict(self.state.bot_user)

    # --- what a user does ------------------------------------------------------------------

    def add_user(self, user_id: int, *, chat_id: int | None = None, first_name: str | None = None,
                 username: str | None = None, last_name: str | None = None) -> int:
        """Make a user and their chat exist, as if they had pressed Start; returns the chat id.

        The chat is the private one unless ``chat_id`` names a group.  Do this before the bot
        starts when it publishes per-chat command menus: Telegram refuses those for unknown chats.
        """
        with self.state.lock:
            self.state.ensure_user(user_id, first_name, username, last_name)
            return int(self.state.ensure_chat(user_id, chat_id)["id"])

    def inject_message(self, user_id: int, text: str, *, chat_id: int | None = None, first_name: str | None = None,
                       username: str | None = None, reply_to_message_id: int | None = None) -> int:
        """The user sends ``text`` (a leading ``/command`` gets its bot_command entity); returns the update_id."""
        if not text.strip():
            raise ValueError("a Telegram user cannot send an empty message")
        entities: list[JSONDict] = []
        match = _COMMAND.match(text)
        if match:
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))})
        return self._inject_user_message(user_id, chat_id, first_name, username, kind="message", text=text,
                                         raw_text=text, entities=entities, reply_to_message_id=reply_to_message_id)

    def inject_command(self, user_id: int, command: str, args: str = "", **kwargs: Any) -> int:
        """``inject_command(7, "start")`` or ``inject_command(7, "/predict", "42")``: a command message."""
        text = command if command.startswith("/") else f"/{command}"
        return self.inject_message(user_id, f"{text} {args}".strip(), **kwargs)

    def inject_document(self, user_id: int, filename: str, content: bytes, mime_type: str | None = None, *,
                        chat_id: int | None = None, caption: str | None = None, first_name: str | None = None,
                        username: str | None = None) -> int:
        """The user sends a file; the bot can ``getFile`` and download it.  Returns the update_id."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        stored = self.state.store_file(bytes(content), kind="document", file_name=filename, mime_type=mime)
        return self._inject_user_message(user_id, chat_id, first_name, username, kind="document",
                                         document=stored.content, document_name=filename, mime_type=mime,
                                         file_id=stored.file_id, caption=caption)

    def inject_callback(self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None,
                        strict: bool = True) -> int:
        """The user presses the inline button with ``callback_data == data`` under a bot message.

        With ``strict`` (default) the message must exist and carry such a button, as in a real
        client; ``strict=False`` allows stale or forged presses.  Returns the update_id.
        """
        with self.state.lock:
            cid = user_id if chat_id is None else chat_id
            message = self.state.find_message(cid, message_id)
            if message is None:
                raise ValueError(f"chat {cid} has no message {message_id} to press a button on")
            if strict:
                offered = [b.callback_data for b in message.buttons() if b.callback_data is not None]
                if data not in offered:
                    raise ValueError(f"message {message_id} has no button with callback_data {data!r} "
                                     f"(it offers {offered})")
            user = self.state.ensure_user(user_id)
            self.state.ensure_chat(user_id, chat_id)
            message_json = self.state.message_json(message)
            query_holder: dict[str, str] = {}

            def injection(update_id: int) -> Injection:
                query_id = self.state.new_callback(user_id, cid, message_id, data, update_id)
                query_holder["id"] = query_id
                return Injection(update_id, "callback_query", user_id, cid, message_id, time.monotonic(), query_id)

            payload: JSONDict = {"id": "", "from": dict(user), "message": message_json,
                                 "chat_instance": str(abs(hash((cid, self.token))) % 10**18), "data": data}
            update_id = self.state.push_update("callback_query", payload, injection)
            # still under the lock, so no poll can have read the update before its id is set
            payload["id"] = query_holder["id"]
            return update_id

    def _inject_user_message(self, user_id: int, chat_id: int | None, first_name: str | None,
                             username: str | None, *, kind: str, **fields: Any) -> int:
        with self.state.lock:
            self.state.ensure_user(user_id, first_name, username)
            chat = self.state.ensure_chat(user_id, chat_id)
            cid = int(chat["id"])
            reply_to = fields.pop("reply_to_message_id", None)
            if reply_to is not None and self.state.find_message(cid, reply_to) is None:
                raise ValueError(f"chat {cid} has no message {reply_to} to reply to")
            message = ChatMessage(chat_id=cid, message_id=self.state.next_message_id(cid), from_bot=False,
                                  sender_id=user_id, date=int(time.time()), at=time.monotonic(), method="user",
                                  reply_to_message_id=reply_to, **fields)
            self.state.add_message(message)
            update_id = self.state.push_update(
                "message", self.state.message_json(message),
                lambda uid: Injection(uid, kind, user_id, cid, message.message_id, time.monotonic()),
            )
            message.update_id = update_id
            return update_id

    # --- what the bot did ------------------------------------------------------------------

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        """The chat transcript, user and bot messages in order, edits applied."""
        return self.state.transcript(chat_id, include_deleted=include_deleted)

    def bot_messages(self, chat_id: int, *, after_update: int | None = None) -> list[ChatMessage]:
        """The bot's messages in a chat, optionally only those sent after an injected update."""
        since = self.state.injection(after_update).at if after_update is not None else None
        return [m for m in self.messages(chat_id) if m.from_bot and (since is None or m.at >= since)]

    def message(self, chat_id: int, message_id: int) -> ChatMessage:
        found = self.state.message_snapshot(chat_id, message_id)
        if found is None:
            raise KeyError(f"chat {chat_id} has no message {message_id}")
        return found

    def last_bot_message(self, chat_id: int, *, with_buttons: bool = False) -> ChatMessage | None:
        """The newest bot message in the chat (with an inline keyboard, if asked)."""
        for message in reversed(self.messages(chat_id)):
            if message.from_bot and (not with_buttons or message.buttons()):
                return message
        return None

    def outputs(self, chat_id: int | None = None, *, since_seq: int = 0) -> list[Output]:
        """Every bot→user effect in order (messages, edits, deletions, answers, chat actions)."""
        return self.state.outputs(chat_id, since_seq)

    def calls(self, method: str | None = None) -> list[Call]:
        """Every HTTP call the bot made (or those of one method, case-insensitive), with its status."""
        return self.state.calls(method)

    def callback_answers(self) -> list[CallbackAnswer]:
        return self.state.callback_answers()

    def callback_answer(self, update_id: int) -> CallbackAnswer:
        """How the bot answered the button press injected as ``update_id``."""
        for answer in self.callback_answers():
            if answer.update_id == update_id:
                return answer
        raise KeyError(f"update {update_id} was not a button press")

    def commands(self, scope: str | JSONDict | None = "default", language_code: str = "") -> list[JSONDict]:
        """The command list setMyCommands set for a scope (``"default"``, ``{"type": "chat", "chat_id": 7}``...)."""
        with self.state.lock:
            return [dict(c) for c in self.state.commands.get(scope_key(scope, language_code), [])]

    def file_content(self, file_id: str) -> bytes:
        stored = self.state.find_file(file_id)
        if stored is None:
            raise KeyError(f"no file {file_id}")
        return stored.content

    def injection(self, update_id: int) -> Injection:
        """When and where an update was injected (for round-trip timing)."""
        return self.state.injection(update_id)

    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by the bot's getUpdates offset."""
        return self.state.pending_updates()

    def waiting_polls(self) -> int:
        """How many getUpdates long polls are waiting right now (1 while an idle bot polls)."""
        return self.state.waiting_polls()

    def delivered(self, update_id: int) -> bool:
        """Whether the bot has fetched the update."""
        return self.state.delivered(update_id)

    # --- faults -----------------------------------------------------------------------------

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends to their private chat answer 403."""
        with self.state.lock:
            self.state.blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        with self.state.lock:
            self.state.blocked.discard(user_id)

    def fail_next(self, method: str, status: int = 429, retry_after: float = 1, times: int = 1, *,
                  description: str | None = None) -> None:
        """The next ``times`` calls of ``method`` fail with ``status`` (429 carries ``retry_after``)."""
        from_status(status, retry_after, description)  # reject statuses we cannot render now
        self.state.add_fault(method, Fault("status", status=status, retry_after=retry_after,
                                           description=description), times)

    def drop_next(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` lose their connection with no answer."""
        self.state.add_fault(method, Fault("drop"), times)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer only after ``seconds``."""
        self.state.add_fault(method, Fault("delay", delay=seconds), times)

    # --- waiting ----------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], _T | None], timeout: float = 5.0, *, what: str = "condition") -> _T:
        """Block until ``predicate()`` is truthy (re-checked on every change, and every 50 ms); return its value.

        Raises TimeoutError naming ``what``.  Never call it on the loop the bot runs on: use
        :meth:`wait_for_async` there.
        """
        deadline = time.monotonic() + timeout
        with self.state.changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                # re-check now and then too: the predicate may read things besides the emulator
                self.state.changed.wait(min(remaining, _RECHECK_SECONDS))

    async def wait_for_async(self, predicate: Callable[[], _T | None], timeout: float = 5.0, *,
                             what: str = "condition") -> _T:
        """:meth:`wait_for` for code on an event loop: the loop keeps running while we wait."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        handle = self.state.add_waker(lambda: loop.call_soon_threadsafe(changed.set))
        deadline = loop.time() + timeout
        try:
            while True:
                changed.clear()
                with self.state.lock:
                    value = predicate()
                if value:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, _RECHECK_SECONDS))
        finally:
            self.state.remove_waker(handle)

    def _enough_messages(self, chat_id: int, count: int, after_update: int | None) -> Callable[[], list[ChatMessage]]:
        def check() -> list[ChatMessage]:
            found = self.bot_messages(chat_id, after_update=after_update)
            return found if len(found) >= count else []
        return check

    def wait_for_messages(self, chat_id: int, count: int = 1, timeout: float = 5.0, *,
                          after_update: int | None = None) -> list[ChatMessage]:
        """Block until the bot has sent ``count`` messages to the chat (after ``after_update``); return them all."""
        return self.wait_for(self._enough_messages(chat_id, count, after_update), timeout,
                             what=f"{count} bot message(s) in chat {chat_id}")

    async def wait_for_messages_async(self, chat_id: int, count: int = 1, timeout: float = 5.0, *,
                                      after_update: int | None = None) -> list[ChatMessage]:
        return await self.wait_for_async(self._enough_messages(chat_id, count, after_update), timeout,
                                         what=f"{count} bot message(s) in chat {chat_id}")

    def wait_for_replies(self, update_id: int, count: int = 1, timeout: float = 5.0) -> list[ChatMessage]:
        """Block until the bot sent ``count`` new messages to the chat of an injected update."""
        chat_id = self.injection(update_id).chat_id
        return self.wait_for_messages(chat_id, count, timeout, after_update=update_id)

    async def wait_for_replies_async(self, update_id: int, count: int = 1, timeout: float = 5.0) -> list[ChatMessage]:
        chat_id = self.injection(update_id).chat_id
        return await self.wait_for_messages_async(chat_id, count, timeout, after_update=update_id)

    def _answered(self, update_id: int) -> Callable[[], CallbackAnswer | None]:
        def check() -> CallbackAnswer | None:
            answer = self.callback_answer(update_id)
            return answer if answer.answered else None
        return check

    def wait_for_answer(self, update_id: int, timeout: float = 5.0) -> CallbackAnswer:
        """Block until the bot answered the button press injected as ``update_id``."""
        return self.wait_for(self._answered(update_id), timeout, what=f"an answer to callback update {update_id}")

    async def wait_for_answer_async(self, update_id: int, timeout: float = 5.0) -> CallbackAnswer:
        return await self.wait_for_async(self._answered(update_id), timeout,
                                         what=f"an answer to callback update {update_id}")

    def _edited(self, chat_id: int, message_id: int, count: int) -> Callable[[], ChatMessage | None]:
        def check() -> ChatMessage | None:
            message = self.message(chat_id, message_id)
            return message if len(message.edits) >= count else None
        return check

    def wait_for_edit(self, chat_id: int, message_id: int, count: int = 1, timeout: float = 5.0) -> ChatMessage:
        """Block until a message has been edited ``count`` times; return it as it is then."""
        return self.wait_for(self._edited(chat_id, message_id, count), timeout,
                             what=f"{count} edit(s) of message {message_id} in chat {chat_id}")

    async def wait_for_edit_async(self, chat_id: int, message_id: int, count: int = 1,
                                  timeout: float = 5.0) -> ChatMessage:
        return await self.wait_for_async(self._edited(chat_id, message_id, count), timeout,
                                         what=f"{count} edit(s) of message {message_id} in chat {chat_id}")
