"""Long answers: split at line breaks into a few messages, or sent as one text file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.emulator import Emulator
from bot.messages import TEXT_LIMIT, send_text, split_text, truncate, without_server_paths
from tests.bot.churnguard_fixtures import ADMIN, live_bot, make_settings  # noqa: F401


def test_split_text_keeps_every_character_and_prefers_line_breaks() -> None:
    lines = [f"line {i} " + "x" * 50 for i in range(200)]
    text = "\n".join(lines)

    pieces = split_text(text, limit=1000)

    assert all(len(piece) <= 1000 for piece in pieces)
    assert "\n".join(pieces) == text
    assert all(piece.startswith("line ") for piece in pieces)  # no line was cut in two


def test_split_text_cuts_a_line_longer_than_the_limit_hard() -> None:
    pieces = split_text("a" * 25 + "\nb", limit=10)

    assert pieces == ["a" * 10, "a" * 10, "a" * 5 + "\nb"]
    assert split_text("") == [""]
    with pytest.raises(ValueError):
        split_text("x", limit=0)


def test_truncate_marks_what_it_cut() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("a" * 20, 10) == "a" * 9 + "…"


def test_long_text_arrives_as_messages_within_the_limit_or_as_a_file(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    medium = "\n".join(f"row {i}: " + "y" * 90 for i in range(60))  # ~6,000 characters
    huge = "\n".join(f"row {i}: " + "z" * 90 for i in range(400))  # ~40,000 characters

    bot.thread.run(send_text(bot.application.bot, ADMIN, medium))
    bot.thread.run(send_text(bot.application.bot, ADMIN, huge, filename="huge.txt"))

    messages = bot.bot_messages(ADMIN)
    assert [message.kind for message in messages] == ["text", "text", "document"]
    assert all(len(message.text or "") <= TEXT_LIMIT for message in messages[:2])
    assert "\n".join(message.text or "" for message in messages[:2]) == medium
    assert messages[2].document_name == "huge.txt"
    assert messages[2].document is not None and messages[2].document.decode("utf-8") == huge
    assert "full text in the attached file" in (messages[2].caption or "")


def test_a_server_path_in_a_library_text_is_cut_to_its_last_part_and_nothing_else_changes() -> None:
    leaked = "OSError: [Errno 28] No space left: '/srv/churnguard/var/models/.staging-v3/model.txt'"

    assert without_server_paths(leaked) == "OSError: [Errno 28] No space left: '…/model.txt'"
    assert without_server_paths(r"cannot open C:\churnguard\var\inbox\a.csv") == "cannot open …/a.csv"
    for kept in ("/score 7590-VHVEG", "/models, then /promote <version>", "ids like ACME/12/3",
                 "https://api.telegram.org/bot/getMe", "PSI 0.41, KS/chi-square p<0.001", "v2/model.txt"):
        assert without_server_paths(kept) == kept


def test_a_reply_never_carries_a_server_path(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    bot.thread.run(send_text(bot.application.bot, ADMIN, f"could not write {home}/charts/alert-7.png"))

    assert bot.bot_messages(ADMIN)[-1].text == "could not write …/alert-7.png"
