"""Every reply the bot gives in a scripted session is something a chat user can act on.

A viewer and an admin use every command and every button, send good and bad files, meet
errors, a background retrain, a rejected inbox file and a damaged champion.  Then every text
the bot put into any chat (messages, edits, captions, button answers, file names) is read for
what a Telegram user cannot use or must not see: command-line instructions (``churnguard
...``, ``--flags``), raw dicts, and server paths (including the "…/" the last-line-of-defence
filter leaves, which would mean a source leaked one).
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.emulator import ChatMessage, Emulator
from bot.handlers.errors import GENERIC_TEXT
from bot.messages import HIDDEN_PATH_MARK
from model.artifact import BOOSTER_FILE
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    SECOND_ADMIN,
    VIEWER,
    LiveBot,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.bot.test_upload import finished_runs, new_churn_only_clients, telco_csv, upload
from tests.conftest import TELCO

KNOWN = "7590-VHVEG"
CLI = re.compile(r"\bchurnguard [a-z]|(?<![\w-])--[a-z]")
RAW_DICT = re.compile(r"\{\s*['\"]|['\"]\s*\}")
ABSOLUTE_PATH = re.compile(r"(?<![\w/:.\\-])~?(?:/[^\s/'\"`()<>,;|]+){2,}")


def said_by_the_bot(emulator: Emulator) -> list[tuple[int | None, str, str]]:
    """(chat, what, text) for everything the bot showed anyone, edits and answers included."""
    found: list[tuple[int | None, str, str]] = []
    for output in emulator.outputs():
        for key in ("text", "caption"):
            value = output.data.get(key)
            if isinstance(value, str) and value:
                found.append((output.chat_id, f"{output.kind} {key}", value))
        if output.kind == "message" and output.message_id is not None and output.chat_id is not None:
            name = emulator.message(output.chat_id, output.message_id).document_name
            if name:
                found.append((output.chat_id, "file name", name))
    return found


def problems_in(text: str, home: Path) -> list[str]:
    found = []
    if CLI.search(text):
        found.append(f"command-line instruction {CLI.search(text).group(0)!r}")  # type: ignore[union-attr]
    if RAW_DICT.search(text):
        found.append("raw dict")
    for marker in (str(home), str(home.resolve()), HIDDEN_PATH_MARK):
        if marker in text:
            found.append(f"server path ({marker!r})")
    if ABSOLUTE_PATH.search(text):
        found.append(f"absolute path {ABSOLUTE_PATH.search(text).group(0)!r}")  # type: ignore[union-attr]
    return found


def press(bot: LiveBot, user: int, message: ChatMessage, data: str, replies: int = 0) -> list[ChatMessage]:
    update = bot.press(user, message, data)
    bot.emulator.wait_for_answer(update, timeout=30)
    return bot.emulator.wait_for_replies(update, replies, timeout=60) if replies else []


def wait_for_text(bot: LiveBot, chat: int, needle: str, timeout: float = 120.0) -> ChatMessage:
    return bot.emulator.wait_for(
        lambda: next((m for m in bot.bot_messages(chat) if needle in m.shown_text), None),
        timeout=timeout, what=f"{needle!r} in chat {chat}")


def damage_the_champion(bot: LiveBot) -> str:
    """Flip a byte of the champion's model file, as a failing disk would."""
    champion = bot.services.registry.champion()
    model_file = champion.artifact_dir / BOOSTER_FILE
    champion.artifact_dir.chmod(0o755)
    model_file.chmod(0o644)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    return champion.version


def test_every_reply_of_a_full_session_is_free_of_cli_instructions_raw_dicts_and_server_paths(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator, retrain_on=["new_labels"], max_upload_mb=0.2)
    bot = live_bot(settings)

    # ---- a viewer: every viewer command and button, refusals, mistakes
    for text in ("/start", "/help", "/score", "/score NOPE-0000", "/top lots", "/drift", "/alerts", "/subscribe",
                 "/unsubscribe", "/subscribe", "/retrain", "/promote v1", "/users", "/nonsense", "hello"):
        bot.send(VIEWER, text)
    answer = bot.send(VIEWER, f"/score {KNOWN}")[0]
    press(bot, VIEWER, answer, f"why:{KNOWN}", replies=1)
    listing = bot.send(VIEWER, "/top 25")[0]
    press(bot, VIEWER, listing, "top:25:1")
    edited = emulator.wait_for_edit(VIEWER, listing.message_id)
    press(bot, VIEWER, edited, "topcsv:25", replies=1)
    bot.send(VIEWER, "/model", replies=6)
    update = emulator.inject_document(VIEWER, "clients.csv", telco_csv(1, 20))
    emulator.wait_for_replies(update)

    # ---- an admin: files good and bad, then the work they start in the background
    bot.send(ADMIN, "/start")
    for name, content in {
        "no-id.csv": "\n".join(line.split(",", 1)[1] for line in telco_csv(1, 40).decode().splitlines()).encode(),
        "labels.csv": telco_csv(300, 330).replace(b",No\n", b",Maybe\n"),
        "clients.xlsx": b"PK\x03\x04",
        "everything.csv": TELCO.read_bytes(),  # over the 0.2 MB upload limit
    }.items():
        upload(bot, name, content)
    stored = upload(bot, "april.csv", new_churn_only_clients(400))
    assert stored.shown_text.startswith("Stored batch #2"), stored.shown_text
    finished_runs(bot, {"arrival", "drift", "performance", "retrain"}, timeout=300)
    wait_for_text(bot, VIEWER, "retrain:")  # the background retrain's news reached the subscriber
    for text in ("/drift", "/alerts", "/models", "/users", "/promote v99", "/promote", "/rollback", "/top 0"):
        bot.send(ADMIN, text, replies=2 if text == "/drift" else 1)

    # ---- /retrain: progress edits, the summary, and the news
    started = bot.send(ADMIN, "/retrain")[0]
    emulator.wait_for(lambda: emulator.message(ADMIN, started.message_id).shown_text.startswith(
        ("Retrain finished", "The retrain failed")), timeout=300, what="the end of /retrain")

    # ---- the inbox job rejects a file: admins hear of it, viewers never see it
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    (settings.inbox_dir / "march.csv").write_bytes(b"name,Churn\nAnn,Yes\nBob,No\n")
    bot.thread.run(bot.services.runner.run("ingest"), timeout=120)
    wait_for_text(bot, ADMIN, "march.csv was not stored")
    viewer_alerts = bot.ask(VIEWER, "/alerts 50")
    assert "march.csv" not in viewer_alerts and "ingest_rejected" not in viewer_alerts

    # ---- an error: Telegram refuses a chart; the user and the admins are told
    emulator.fail_next("sendPhoto", 400, description="Bad Request: wrong picture size")
    answer = bot.send(VIEWER, f"/score {KNOWN}")[0]
    press(bot, VIEWER, answer, f"why:{KNOWN}")
    wait_for_text(bot, VIEWER, GENERIC_TEXT)
    wait_for_text(bot, ADMIN, "picture size")

    # ---- the champion's files are damaged (found when the service starts again): the viewer's
    # answers say so, without paths
    damaged = damage_the_champion(bot)
    bot.__exit__(None, None, None)
    bot = live_bot(settings)
    warned = bot.ask(VIEWER, f"/score {KNOWN}")
    assert damaged in warned and ("Warning: champion" in warned or "cannot be loaded" in warned), warned
    model = bot.send(VIEWER, "/model")[0].shown_text
    assert "damaged" in model, model

    # then nothing any chat was shown tells a chat user to use a shell, dumps a dict, or shows a path
    said = said_by_the_bot(emulator)
    assert len(said) > 60 and {chat for chat, _, _ in said} >= {VIEWER, ADMIN, SECOND_ADMIN}
    findings = [(chat, what, problem, text[:300]) for chat, what, text in said
                for problem in problems_in(text, trained_home)]
    assert findings == [], "\n\n".join(map(str, findings))
