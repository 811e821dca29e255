"""Chat with the bot in a terminal, through the local Bot API emulator.

This is what ``churnguard sandbox`` shows a newcomer with no token and no network: lines typed
here become Telegram messages from a pretend user, and whatever the bot sends back (text, edits,
buttons, photos, documents, button-press answers) is printed, with files saved to disk.

Besides ordinary messages and ``/commands`` (which go to the bot), three inputs are handled
here: ``/upload PATH [caption]`` sends a local file as a document, ``press N`` / ``press TEXT``
presses a button of the newest message that has buttons, and ``/quit`` (or end of input, or
Ctrl-C) leaves.  Piped input works too: after each line the chat waits until the bot has fetched
it and gone quiet, so a script's replies come out in order and none is lost at end of input.

What the bot sends on its own (an alert, a background retrain's result) is printed above the
``you>`` prompt, which is drawn again below it with whatever was typed so far.  A message the
bot keeps editing (a retrain's progress) is redrawn in place on a terminal; into a file or a
pipe it is written once, in its final state (see ``_Printer``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from telegram.ext import Application

from bot.emulator import ChatMessage, Emulator, Output
from bot.emulator.media import image_extension
from bot.emulator.ptb import PollingThread

#: Telegram shows a chat action for up to 5 s, or until the bot's next message.
CHAT_ACTION_SECONDS = 5.0
#: Into a file or pipe, an edited message is written once it has not changed for this long.
EDIT_SETTLE_SECONDS = 3.0
PROMPT = "you> "
ERASE_LINE = "\r\x1b[2K"  # back to the line's start and clear it (the prompt line)
CLEAR_BELOW = "\x1b[J"  # clear from the cursor to the end of the screen
_HELP = ("Type a message or a /command for the bot.  Here: /upload PATH [caption] sends a file, "
         "press N or press TEXT presses a button of the last message, /quit leaves.")


class _Printer:
    """Prints the bot's side of the chat as it happens, from a background thread.

    Three things keep a live chat readable.  A message that arrives while the ``you>`` prompt
    waits for input (an alert, a retrain's result) is printed *above* the prompt, which is then
    drawn again.  Edits of one message (a retrain reports progress some 25 times) update that
    message where it stands on a terminal; into a file or a pipe, only its final state is
    written, once it has stopped changing for ``edit_settle`` seconds (or before the next
    message, or at the end), so a transcript gets one line instead of 25.
    """

    def __init__(self, emulator: Emulator, chat_id: int, out: TextIO, files_dir: Path, *,
                 edit_settle: float = EDIT_SETTLE_SECONDS) -> None:
        self.emulator = emulator
        self.chat_id = chat_id
        self.out = out
        self.files_dir = files_dir
        self.edit_settle = edit_settle
        self.terminal = bool(getattr(out, "isatty", lambda: False)())
        self.write_lock = threading.Lock()
        self.printed_seq = 0  # global output sequence number printed through
        self.prompt = ""  # the prompt on screen while the user types ("" when none)
        self.typed: Any = lambda: ""  # what the user has typed after the prompt so far
        self._stop = threading.Event()
        self._last_action: str | None = None
        # terminal: the message printed last (id, screen rows), while nothing came after it
        self._last_block: tuple[int, int] | None = None
        # file or pipe: the newest edit of each message not yet written, and when it came
        self._pending_edits: dict[int, Output] = {}
        self._thread = threading.Thread(target=self._run, name="terminal-chat-printer", daemon=True)

    def start(self) -> None:
        self.printed_seq = len(self.emulator.outputs())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.flush(final=True)

    def say(self, text: str) -> None:
        """A line of the chat itself (the user's echoed input, a hint): after every edit seen so far."""
        with self.write_lock:
            self.flush_edits_locked()
            self._last_block = None
            self._write_above_prompt(text + "\n")
            self.out.flush()

    def show_prompt(self, prompt: str) -> None:
        """The chat waits for a line: remember the prompt so output can be printed above it."""
        with self.write_lock:
            self.prompt = prompt
            self.out.write(prompt)
            self.out.flush()

    def prompt_answered(self) -> None:
        """The user pressed Enter: the cursor is on a fresh line below the prompt."""
        with self.write_lock:
            self.prompt = ""
            self._last_block = None  # the prompt line and the typed text now follow it

    def _run(self) -> None:
        while not self._stop.is_set():
            self.flush()
            with contextlib.suppress(TimeoutError):
                self.emulator.wait_for(
                    lambda: bool(self.emulator.outputs(since_seq=self.printed_seq)) or self._stop.is_set(),
                    timeout=0.2)

    def flush(self, *, final: bool = False) -> None:
        """Print every output not printed yet (called from the printer, after each turn, at the end)."""
        with self.write_lock:
            chunks: list[str] = []
            for output in self.emulator.outputs(since_seq=self.printed_seq):
                self.printed_seq = max(self.printed_seq, output.seq)
                if output.chat_id == self.chat_id:
                    self._show(output, chunks)
            now = time.monotonic()
            for message_id, edit in list(self._pending_edits.items()):
                if final or now - edit.at >= self.edit_settle:
                    del self._pending_edits[message_id]
                    chunks.append(self._render(edit))
            if chunks:
                self._write_above_prompt("".join(chunks))
            self.out.flush()

    def flush_edits_locked(self) -> None:
        """Write the edits held back so far (the caller holds ``write_lock``)."""
        if self._pending_edits:
            chunks = [self._render(edit) for edit in self._pending_edits.values()]
            self._pending_edits.clear()
            self._write_above_prompt("".join(chunks))

    def _write_above_prompt(self, text: str) -> None:
        """Write ``text`` where the prompt stands, then draw the prompt (and typed text) again."""
        if not self.prompt:
            self.out.write(text)
            return
        typed = str(self.typed())
        self.out.write(ERASE_LINE if self.terminal else "\n")
        self.out.write(text)
        self.out.write(self.prompt + typed)

    def _show(self, output: Output, chunks: list[str]) -> None:
        if output.kind == "edit" and output.message_id is not None:
            self._last_action = None
            if not self.terminal:
                self._pending_edits[output.message_id] = output  # written once it settles
                return
            block = self._last_block
            if block is not None and block[0] == output.message_id and not chunks and block[1] < self._screen_rows():
                # the message is the last thing on screen: update it where it stands
                rendered = self._render(output)
                self._write_in_place(block[1], rendered)
                self._last_block = (output.message_id, self._rows(rendered))
                return
        elif output.kind != "chat_action":
            # keep the order: an edit not yet written happened before this
            for message_id in list(self._pending_edits):
                chunks.append(self._render(self._pending_edits.pop(message_id)))
        if output.kind == "chat_action":
            action = str(output.data.get("action"))
            if action != self._last_action:
                chunks.append(self._plain(f"(bot is {action.replace('_', ' ')}…)\n"))
            self._last_action = action
            return
        self._last_action = None
        if output.kind == "callback_answer":
            text = output.data.get("text")
            if text:
                label = "alert" if output.data.get("show_alert") else "notification"
                chunks.append(self._plain(f"bot ({label}): {text}\n"))
            if output.data.get("url"):
                chunks.append(self._plain(f"bot (opens): {output.data['url']}\n"))
            return
        if output.kind == "delete":
            chunks.append(self._plain(f"(bot deleted message {output.message_id})\n"))
            return
        if output.message_id is None:
            return
        rendered = self._render(output)
        chunks.append(rendered)
        self._last_block = (output.message_id, self._rows(rendered))

    def _plain(self, text: str) -> str:
        """A line that is not a message: it ends any message's chance to be updated in place."""
        self._last_block = None
        return text

    def _render(self, output: Output) -> str:
        assert output.message_id is not None
        message = self.emulator.message(self.chat_id, output.message_id)
        prefix = "bot (edited): " if output.kind == "edit" else "bot: "
        body = self._body(message, output.data, saved=output.kind == "message")
        lines = [prefix + _indent(body, len(prefix))]
        markup = output.data.get("reply_markup")
        if markup:
            lines += [" " * len(prefix) + line for line in _keyboard_lines(markup)]
        self._last_block = None
        return "\n".join(lines) + "\n"

    def _write_in_place(self, rows: int, rendered: str) -> None:
        """Replace the last ``rows`` screen rows (the message's old text) with ``rendered``."""
        typed = str(self.typed()) if self.prompt else ""
        if self.prompt:
            self.out.write(ERASE_LINE)
        self.out.write(f"\x1b[{rows}F" + CLEAR_BELOW + rendered)
        if self.prompt:
            self.out.write(self.prompt + typed)

    def _columns(self) -> int:
        try:
            return max(20, os.get_terminal_size(self.out.fileno()).columns)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return 80

    def _screen_rows(self) -> int:
        try:
            return max(5, os.get_terminal_size(self.out.fileno()).lines - 1)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return 24

    def _rows(self, rendered: str) -> int:
        """How many screen rows ``rendered`` takes, long lines wrapping at the terminal's width."""
        width = self._columns()
        rows = 0
        for line in rendered.rstrip("\n").split("\n"):
            cells = sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)
            rows += max(1, -(-cells // width))
        return rows

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
    read_line = _line_reader(source, out, printer, interactive)
    printer.start()
    try:
        while True:
            line = read_line()
            if not line:
                return 0
            if not interactive and line.strip():
                printer.say(f"{PROMPT}{line.rstrip()}")
            if not chat.handle(line):
                return 0
    except KeyboardInterrupt:
        printer.say("\n(bye)")
        return 130
    finally:
        printer.stop()


def _line_reader(source: TextIO, out: TextIO, printer: _Printer, interactive: bool) -> Callable[[], str]:
    """How the chat reads a line: through readline (editing, history, and the typed text
    redrawn under background messages) at a real terminal, else straight from ``source``."""
    if interactive and source is sys.stdin and out is sys.stdout:
        try:
            import readline
        except ImportError:  # not every Python build has it
            readline = None  # type: ignore[assignment]
        if readline is not None:
            printer.typed = readline.get_line_buffer

            def read_with_readline() -> str:
                with printer.write_lock:
                    printer.prompt = PROMPT  # input() draws it; the printer only needs to know
                try:
                    return input(PROMPT) + "\n"
                except EOFError:
                    return ""
                finally:
                    printer.prompt_answered()

            return read_with_readline

    def read_plain() -> str:
        if interactive:
            printer.show_prompt(PROMPT)
        try:
            return source.readline()
        finally:
            if interactive:
                printer.prompt_answered()

    return read_plain


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
