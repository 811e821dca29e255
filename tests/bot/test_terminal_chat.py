"""The terminal chat, fed piped input, against a real PTB bot polling the emulator."""

from __future__ import annotations

import asyncio
import io
import queue
import re
import threading
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.emulator import Emulator
from bot.terminal_chat import chat_with_bot, run_terminal_chat
from tests.bot.emulator_fixtures import build_app, tiny_png

USER = 42
FAST = {"settle": 0.1, "reply_timeout": 10.0}


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(f"echo: {update.message.text}\n\nsecond line")


async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    keyboard = [[InlineKeyboardButton("Retrain", callback_data="retrain"),
                 InlineKeyboardButton("Report", callback_data="report")],
                [InlineKeyboardButton("Docs", url="https://example.org/docs")]]
    await update.message.reply_text("What next?", reply_markup=InlineKeyboardMarkup(keyboard))


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"starting {query.data}")
    await query.edit_message_text(f"Chosen: {query.data}")


async def upper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.document is not None
    data = await (await update.message.document.get_file()).download_as_bytearray()
    await update.message.reply_document(InputFile(bytes(data).upper(), filename="upper.txt"),
                                        caption=f"{len(data)} bytes")


async def chart(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_photo(tiny_png(), caption="churn chart")


async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.effective_chat is not None
    await context.bot.send_chat_action(update.effective_chat.id, ChatAction.TYPING)
    await asyncio.sleep(0.6)  # longer than the chat's quiet period: the typing action must keep it waiting
    await update.message.reply_text("done at last")


STEPS = 25


async def progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What /retrain does: one message, edited as the work goes on, then the result."""
    assert update.message is not None
    message = await update.message.reply_text("Retraining…\n… starting")
    for step in range(1, STEPS + 1):
        await asyncio.sleep(0.02)
        await message.edit_text(f"Retraining…\n… step {step}/{STEPS}")
    await message.edit_text("Retrain finished: v2 is the champion now.")


def handlers() -> list[Any]:
    return [CommandHandler("menu", menu), CommandHandler("chart", chart), CommandHandler("slow", slow),
            CommandHandler("progress", progress),
            CallbackQueryHandler(pressed), MessageHandler(filters.Document.ALL, upper),
            MessageHandler(filters.TEXT & ~filters.COMMAND, echo)]


def test_piped_session_shows_every_kind_of_reply_and_saves_files(emulator: Emulator, tmp_path: Path) -> None:
    upload = tmp_path / "my notes.txt"
    upload.write_text("hello file")
    script = "\n".join([
        "hi there", "/menu", "press report", "/menu", "press 1", f"/upload '{upload}' weekly batch", "/chart",
        "/slow",
    ]) + "\n"
    out = io.StringIO()
    # given a bot and a script piped in, when the chat runs to the end of its input
    code = chat_with_bot(build_app(emulator, handlers()), emulator, user_id=USER, first_name="Ann",
                         stdin=io.StringIO(script), stdout=out, files_dir=tmp_path / "received", **FAST)
    text = out.getvalue()
    # then every reply was printed in order, buttons numbered, edits and answers marked
    assert code == 0
    assert "you> hi there\nbot: echo: hi there\n\n     second line\n" in text  # blank lines stay blank
    assert "bot: What next?\n     [1] Retrain   [2] Report\n     [3] Docs (https://example.org/docs)\n" in text
    assert "bot (notification): starting report\nbot (edited): Chosen: report\n" in text
    assert "bot (edited): Chosen: retrain\n" in text
    by_kind = {m.kind: m.message_id for m in emulator.bot_messages(USER)}
    saved_document = tmp_path / "received" / f"{by_kind['document']}-upper.txt"
    assert f"bot: [document upper.txt, 10 bytes, saved to {saved_document}]\n     10 bytes\n" in text
    assert saved_document.read_bytes() == b"HELLO FILE"
    photo = tmp_path / "received" / f"photo-{by_kind['photo']}.png"
    assert f"bot: [photo saved to {photo}]\n     churn chart\n" in text and photo.read_bytes() == tiny_png()
    assert "(bot is typing…)\nbot: done at last\n" in text
    # and the upload reached the bot as a document with its caption
    uploaded = [m for m in emulator.messages(USER) if not m.from_bot and m.kind == "document"]
    assert [(m.document_name, m.caption) for m in uploaded] == [("my notes.txt", "weekly batch")]


def test_mistakes_are_explained_and_nothing_is_sent(emulator: Emulator, start_bot: Any, tmp_path: Path) -> None:
    start_bot(build_app(emulator, handlers()))
    script = "\n".join(["press 1", "/menu", "press 7", "press re", "press nothing-like-it", "press docs",
                        "/upload", f"/upload {tmp_path}/missing.csv", f"/upload {tmp_path}", ""]) + "\n"
    out = io.StringIO()
    code = run_terminal_chat(emulator, user_id=USER, stdin=io.StringIO(script), stdout=out, files_dir=tmp_path,
                             **FAST)
    text = out.getvalue()
    assert code == 0
    assert "no message with buttons to press" in text
    assert "there is no button 7: the last message has buttons 1-3" in text
    assert "'re' matches several buttons: [1] Retrain, [2] Report" in text
    assert "'nothing-like-it' matches no button: [1] Retrain, [2] Report, [3] Docs" in text
    assert "button [3] opens https://example.org/docs" in text
    assert "usage: /upload PATH [caption]" in text
    assert f"cannot upload {tmp_path}/missing.csv: no such file" in text
    assert f"cannot upload {tmp_path}: it is a folder" in text
    # only /menu reached the bot
    assert [m.text for m in emulator.messages(USER) if not m.from_bot] == ["/menu"]


def test_quit_stops_reading(emulator: Emulator, start_bot: Any, tmp_path: Path) -> None:
    start_bot(build_app(emulator, handlers()))
    out = io.StringIO()
    code = run_terminal_chat(emulator, user_id=USER, stdin=io.StringIO("first\n/quit\nnever sent\n"), stdout=out,
                             files_dir=tmp_path, **FAST)
    assert code == 0
    assert [m.text for m in emulator.messages(USER) if not m.from_bot] == ["first"]
    assert "bot: echo: first" in out.getvalue()


def test_without_a_bot_the_chat_says_so_instead_of_hanging(emulator: Emulator, tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_terminal_chat(emulator, user_id=USER, stdin=io.StringIO("anyone?\n"), stdout=out, files_dir=tmp_path,
                             settle=0.1, reply_timeout=0.3)
    assert code == 0
    assert "(the bot has not picked up the message after 0.3 s — is it running?)" in out.getvalue()


class _InterruptedInput(io.StringIO):
    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_leaves_with_code_130(emulator: Emulator, tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_terminal_chat(emulator, user_id=USER, stdin=_InterruptedInput(), stdout=out, files_dir=tmp_path)
    assert code == 130
    assert out.getvalue().rstrip().endswith("(bye)")


# ------------------------------------------------------------------ background output and edits


class Terminal(io.StringIO):
    """What the chat prints to, as a terminal (it may move the cursor)."""

    def isatty(self) -> bool:
        return True


class Keyboard:
    """A person at a terminal: lines arrive when typed, not all at once."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.lines.get(timeout=30)


def screen(raw: str) -> list[str]:
    """The rows a terminal shows after ``raw``: text, CR, LF, and the three cursor controls the
    chat uses (erase line, cursor up N rows to their start, clear below)."""
    rows, row, col, i = [""], 0, 0, 0
    while i < len(raw):
        control = re.match(r"\x1b\[(\d*)([A-Za-z])", raw[i:])
        if control:
            count, command = int(control.group(1) or 1), control.group(2)
            if command == "K":
                rows[row] = ""
            elif command == "F":
                row, col = max(0, row - count), 0
            elif command == "J":
                rows[row] = rows[row][:col]
                del rows[row + 1:]
            else:
                raise AssertionError(f"unexpected control {control.group(0)!r}")
            i += len(control.group(0))
            continue
        char = raw[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            if row == len(rows):
                rows.append("")
        else:
            line = rows[row].ljust(col)
            rows[row] = line[:col] + char + line[col + 1:]
            col += 1
        i += 1
    return rows


def test_in_a_transcript_a_message_edited_many_times_is_written_once_in_its_final_state(
        emulator: Emulator, tmp_path: Path) -> None:
    out = io.StringIO()
    # when the bot edits one message 26 times in a piped session (a retrain's progress)
    code = chat_with_bot(build_app(emulator, handlers()), emulator, user_id=USER, stdin=io.StringIO("/progress\nhi\n"),
                         stdout=out, files_dir=tmp_path, **FAST)
    text = out.getvalue()
    # then the transcript holds the message and its final state once, in order, not 26 lines
    assert code == 0
    assert text.count("bot (edited): ") == 1, text
    assert ("you> /progress\nbot: Retraining…\n     … starting\n"
            "bot (edited): Retrain finished: v2 is the champion now.\nyou> hi\n") in text
    assert "step 3/25" not in text


def test_on_a_terminal_an_edited_message_is_updated_where_it_stands(emulator: Emulator, tmp_path: Path) -> None:
    out = Terminal()
    chat_with_bot(build_app(emulator, handlers()), emulator, user_id=USER, stdin=io.StringIO("/progress\nhi\n"),
                  stdout=out, files_dir=tmp_path, **FAST)

    shown = screen(out.getvalue())

    # the screen shows one block for the message, in its final state, then the next exchange
    at = shown.index("you> /progress")
    assert shown[at + 1:at + 4] == ["bot (edited): Retrain finished: v2 is the champion now.", "you> hi",
                                    "bot: echo: hi"], shown
    assert out.getvalue().count("bot (edited): ") > 1  # it was redrawn as it changed, not appended


def test_a_message_that_arrives_while_you_type_is_printed_above_the_prompt(
        emulator: Emulator, start_bot: Any, tmp_path: Path) -> None:
    thread = start_bot(build_app(emulator, handlers()))
    keyboard, out = Keyboard(), Terminal()
    chat = threading.Thread(target=run_terminal_chat, kwargs={
        "emulator": emulator, "user_id": USER, "stdin": keyboard, "stdout": out, "files_dir": tmp_path, **FAST})
    chat.start()
    try:
        emulator.wait_for(lambda: out.getvalue().endswith("you> "), timeout=10, what="the prompt")
        # when an alert arrives while the prompt waits for the user
        thread.run(thread.application.bot.send_message(USER, "⚠️ WARNING · drift: Data drift in batch #7"))
        emulator.wait_for(lambda: "batch #7" in out.getvalue() and out.getvalue().endswith("you> "), timeout=10,
                          what="the alert and the prompt again")
    finally:
        keyboard.lines.put("/quit\n")
        chat.join(10)
    shown = screen(out.getvalue())
    # then it stands on its own line above a fresh prompt, not glued to the old one
    assert shown[-2:] == ["bot: ⚠️ WARNING · drift: Data drift in batch #7", "you> "], shown
    assert not any(line.startswith("you> bot") for line in shown), shown
