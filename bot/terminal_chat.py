"""Chat with the bot in a terminal, through the local Bot API emulator.

This is what ``churnguard sandbox`` shows a newcomer with no token and no network: lines typed
here become Telegram messages from a pretend user, and whatever the bot sends back (text, edits,
buttons, photos, documents, button-press answers) is printed, with files saved to disk.

Besides ordinary messages and ``/commands`` (which go to the bot), three inputs are handled
here: ``/upload PATH [caption]`` sends a local file as a document, ``press N`` / ``press TEXT``
presses a button of the newest message that has buttons, and ``/quit`` (or end of input, or
Ctrl-C) leaves.  Piped input works too: after each line the chat waits until the bot has fetched
it and gone quiet, so a script's replies come out in order and none is lost at end of input.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from telegram.ext import Application

from bot.emulator import ChatMessage, Emulator, Output
from bot.emulator.media import image_extension
from bot.emulator.ptb import PollingThread

#: Telegram shows a chat action for up to 5 s, or until the bot's next message.
CHAT_ACTION_SECONDS = 5.0
_HELP = ("Type a message or a /command for the bot.  Here: /upload PATH [caption] sends a file, "
         "press N or press TEXT presses a button of the last message, /quit leaves.")


class _Printer:
    """Prints the bot's side of the chat as it happens, from a background thread."""

    def __init__(self, emulator: Emulator, chat_id: int, out: TextIO, files_dir: Path) -> None:
        self.emulator = emulator
        self.chat_id = chat_id
        self.out = out
        self.files_dir = files_dir
        self.write_lock = threading.Lock()
        self.printed_seq = 0  # global output sequence number printed through
        self._stop = threading.Event()
        self._last_action: str | None = None
        self._thread = threading.Thread(target=self._run, name="terminal-chat-printer", daemon=True)

    def start(self) -> None:
        self.printed_seq = len(self.emulator.outputs())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.flush()

    def say(self, text: str) -> None:
        with self.write_lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.flush()
            with contextlib.suppress(TimeoutError):
                self.emulator.wait_for(
                    lambda: bool(self.emulator.outputs(since_seq=self.printed_seq)) or self._stop.is_set(),
                    timeout=0.2)

    def flush(self) -> None:
        """Print every output not printed yet (called from the printer and at the end)."""
        with self.write_lock:
            for output in self.emulator.outputs(since_seq=self.printed_seq):
                self.printed_seq = max(self.printed_seq, output.seq)
                if output.chat_id == self.chat_id:
                    self._show(output)
            self.out.flush()

    def _show(self, output: Output) -> None:
        if output.kind == "chat_action":
            action = str(output.data.get("action"))
            if action != self._last_action:
                self.out.write(f"(bot is {action.replace('_', ' ')}…)\n")
            self._last_action = action
            return
        self._last_action = None
        if output.kind == "callback_answer":
            text = output.data.get("text")
            if text:
                label = "alert" if output.data.get("show_alert") else "notification"
                self.out.write(f"bot ({label}): {text}\n")
            if output.data.get("url"):
                self.out.write(f"bot (opens): {output.data['url']}\n")
            return
        if output.kind == "delete":
            self.out.write(f"(bot deleted message {output.message_id})\n")
            return
        if output.message_id is None:
            return
        message = self.emulator.message(self.chat_id, output.message_id)
        prefix = "bot (edited): " if output.kind == "edit" else "bot: "
        body = self._body(message, output.data, saved=output.kind == "message")
        self.out.write(prefix + _indent(body, len(prefix)) + "\n")
        markup = output.data.get("reply_markup")
        if markup:
            for line in _keyboard_lines(markup):
                self.out.write(" " * len(prefix) + line + "\n")

    def _body(self, message: ChatMessage, content: dict[str, Any], *, saved: bool) -> str:
        caption = content.get("caption")
        if message.kind == "text":
            return str(content.get("text") or "")
        path = self._save(message) if saved else None
        if message.kind == "photo":
            head = f"[photo saved to {path}]" if path else "[photo]"
        else:
            size = len(message.document or b"")
            name = message.document_name or "file"
            head = f"[document {name}, {size} bytes, saved to {path}]" if path else f"[document {name}]"
        return f"{head}\n{caption}" if caption else head

    def _save(self, message: ChatMessage) -> Path:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        if message.photo is not None:
            path = self.files_dir / f"photo-{message.message_id}{image_extension(message.photo)}"
            path.write_bytes(message.photo)
            return path
        name = re.sub(r"[^\w.\- ]", "_", message.document_name or "document").strip() or "document"
        path = self.files_dir / f"{message.message_id}-{name}"
        path.write_bytes(message.document or b"")
        return path


def _indent(text: str, width: int) -> str:
    """Continuation lines under the first one's text; blank lines stay empty."""
    first, *rest = text.split("\n")
    return "\n".join([first, *((" " * width + line) if line else "" for line in rest)])


def _keyboard_lines(markup: dict[str, Any]) -> list[str]:
    """Inline buttons numbered for ``press N``; a reply keyboard shown as suggested replies."""
    lines: list[str] = []
    number = 0
    for row in markup.get("inline_keyboard") or []:
        cells = []
        for button in row:
            number += 1
            suffix = f" ({button['url']})" if button.get("url") else ""
            cells.append(f"[{number}] {button.get('text', '')}{suffix}")
        lines.append("   ".join(cells))
    for row in markup.get("keyboard") or []:
        lines.append("   ".join(f"<{b['text'] if isinstance(b, dict) else b}>" for b in row))
    return lines


class _Chat:
    """Turns typed lines into user actions and waits for the bot's turn to end."""

    def __init__(self, emulator: Emulator, printer: _Printer, *, user_id: int, chat_id: int,
                 settle: float, reply_timeout: float) -> None:
        self.emulator = emulator
        self.printer = printer
        self.user_id = user_id
        self.chat_id = chat_id
        self.settle = settle
        self.reply_timeout = reply_timeout

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the user wants to leave."""
        text = line.strip()
        if not text:
            return True
        if text == "/quit":
            return False
        if text == "/upload" or text.startswith("/upload "):
            update_id = self._upload(text[len("/upload"):].strip())
        elif re.fullmatch(r"press\s+.+", text, flags=re.IGNORECASE):
            update_id = self._press(text.split(None, 1)[1].strip())
        else:
            update_id = self.emulator.inject_message(self.user_id, text, chat_id=self.chat_id)
        if update_id is not None:
            self.wait_for_turn(update_id)
        return True

    def _upload(self, argument: str) -> int | None:
        if not argument:
            self.printer.say("usage: /upload PATH [caption]")
            return None
        try:
            words = shlex.split(argument)
        except ValueError:
            words = [argument]
        path = Path(words[0]).expanduser()
        caption = " ".join(words[1:]) or None
        if not path.is_file():
            self.printer.say(f"cannot upload {path}: " + ("it is a folder" if path.is_dir() else "no such file"))
            return None
        try:
            content = path.read_bytes()
        except OSError as error:
            self.printer.say(f"cannot upload {path}: {error.strerror or error}")
            return None
        return self.emulator.inject_document(self.user_id, path.name, content, chat_id=self.chat_id, caption=caption)

    def _press(self, choice: str) -> int | None:
        message = self.emulator.last_bot_message(self.chat_id, with_buttons=True)
        if message is None:
            self.printer.say("no message with buttons to press")
            return None
        buttons = message.buttons()
        if choice.isdigit():
            number = int(choice)
            if not 1 <= number <= len(buttons):
                self.printer.say(f"there is no button {number}: the last message has buttons 1-{len(buttons)}")
                return None
            button = buttons[number - 1]
        else:
            exact = [b for b in buttons if b.text.casefold() == choice.casefold()]
            partial = [b for b in buttons if choice.casefold() in b.text.casefold()]
            matches = exact or partial
            if len(matches) != 1:
                names = ", ".join(f"[{b.number}] {b.text}" for b in (matches or buttons))
                reason = "matches several buttons" if matches else "matches no button"
                self.printer.say(f"{choice!r} {reason}: {names}")
                return None
            button = matches[0]
        if button.callback_data is None:
            self.printer.say(f"button [{button.number}] opens {button.url or 'something outside the chat'}")
            return None
        return self.emulator.inject_callback(self.user_id, message.message_id, button.callback_data,
                                             chat_id=self.chat_id)

    def wait_for_turn(self, update_id: int) -> None:
        """Return when the bot fetched the update and has been quiet for ``settle`` s (or on timeout)."""
        deadline = time.monotonic() + self.reply_timeout
        try:
            self.emulator.wait_for(lambda: self.emulator.delivered(update_id), timeout=self.reply_timeout)
        except TimeoutError:
            self.printer.say(f"(the bot has not picked up the message after {self.reply_timeout:g} s — is it running?)")
            return
        while time.monotonic() < deadline:
            if self._quiet_since(self.emulator.injection(update_id).at) >= self.settle:
                break
            time.sleep(0.05)
        self.printer.flush()

    def _quiet_since(self, since: float) -> float:
        """Seconds since the bot last did something in this chat (a fresh chat action counts as busy)."""
        outputs = self.emulator.outputs(self.chat_id)
        now = time.monotonic()
        last = outputs[-1] if outputs else None
        if last is None or last.at < since:
            return now - since
        if last.kind == "chat_action" and now - last.at < CHAT_ACTION_SECONDS:
            return 0.0
        return now - last.at


def run_terminal_chat(emulator: Emulator, *, user_id: int, chat_id: int | None = None, first_name: str = "You",
                      stdin: TextIO | None = None, stdout: TextIO | None = None,
                      files_dir: Path | str = "sandbox-files", settle: float = 0.4,
                      reply_timeout: float = 60.0) -> int:
    """Read the user's lines from ``stdin`` and show the bot's side on ``stdout`` until EOF or /quit.

    The bot must already be polling ``emulator`` (see :func:`chat_with_bot`).  Returns the exit
    code: 0 after /quit or end of input, 130 after Ctrl-C.
    """
    source = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    cid = user_id if chat_id is None else chat_id
    emulator.add_user(user_id, chat_id=cid, first_name=first_name)
    interactive = bool(getattr(source, "isatty", lambda: False)())
    printer = _Printer(emulator, cid, out, Path(files_dir))
    chat = _Chat(emulator, printer, user_id=user_id, chat_id=cid, settle=settle, reply_timeout=reply_timeout)
    bot_name = emulator.bot_user.get("username", "bot")
    printer.say(f"Chatting with @{bot_name} as {first_name} (user {user_id}). {_HELP}")
    printer.start()
    try:
        while True:
            if interactive:
                with printer.write_lock:
                    out.write("you> ")
                    out.flush()
            line = source.readline()
            if not line:
                return 0
            if not interactive and line.strip():
                printer.say(f"you> {line.rstrip()}")
            if not chat.handle(line):
                return 0
    except KeyboardInterrupt:
        printer.say("\n(bye)")
        return 130
    finally:
        printer.stop()


def chat_with_bot(application: Application, emulator: Emulator, **chat_options: Any) -> int:
    """Poll the emulator with ``application`` in the background and chat with it here.

    ``application`` must have been built with :func:`bot.emulator.ptb.application_builder`
    (or the same token and base URLs).  The bot is stopped before this returns.
    """
    # the user's chat must exist before the bot starts: per-chat command menus need it
    emulator.add_user(int(chat_options["user_id"]), chat_id=chat_options.get("chat_id"),
                      first_name=chat_options.get("first_name", "You"))
    with PollingThread(application):
        return run_terminal_chat(emulator, **chat_options)
