"""/export and the button under /top: every flagged client of the 7,043-client Telco store as a
CSV and an Excel document, through the real bot and the Bot API emulator."""

from __future__ import annotations

import csv
import gzip
import io
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import bot.handlers.export as export_handler
from bot.emulator import ChatMessage, Emulator
from bot.guard import PRIVATE_ONLY
from bot.handlers.scoring import NO_MODEL_TEXT
from model.export import COLUMNS, write_list
from model.scoring import MAX_TOP
from model.service import open_registry, open_scorer
from storage.db import Database
from storage.ingest import ingest_frame
from storage.readers import Limits
from storage.schema import Schema
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    STRANGER,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.model.trained_store import adopt_quick_model, open_store, quick_training, telco_frame

GROUP = -100500


def flagged_ids(home: Path) -> list[str]:
    """Independently of /export: /top's ranking of every active client, cut at the threshold."""
    settings = make_settings(home)
    db = Database(settings.database_url).create_schema()
    try:
        scorer = open_scorer(db, settings, open_registry(db, settings))
        return [result.client_id for result in scorer.top(MAX_TOP) if result.flagged]
    finally:
        db.dispose()


def csv_rows(message: ChatMessage) -> list[list[str]]:
    data = message.document or b""
    if (message.document_name or "").endswith(".gz"):
        data = gzip.decompress(data)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_rows(message: ChatMessage) -> list[tuple]:
    book = openpyxl.load_workbook(io.BytesIO(message.document or b""), read_only=True)
    try:
        return list(book["Flagged clients"].iter_rows(values_only=True))
    finally:
        book.close()


def test_export_sends_every_flagged_client_as_csv_and_excel(trained_home: Path, emulator: Emulator,  # noqa: F811
                                                             live_bot) -> None:  # noqa: F811
    expected = flagged_ids(trained_home)
    bot = live_bot(make_settings(trained_home, emulator))

    sent = bot.send(VIEWER, "/export", replies=2, timeout=120)

    assert [message.kind for message in sent] == ["document", "document"]
    table, book = sent
    assert table.document_name is not None and table.document_name.startswith("churnguard-flagged-v1-")
    assert table.document_name.endswith(".csv") and (book.document_name or "").endswith(".xlsx")
    assert (table.caption or "").startswith(f"Every flagged client: {len(expected):,} of 5,163 active clients, "
                                            "riskiest first, with the top 3 reasons (model v1, flagged at ≥ ")
    rows = csv_rows(table)
    assert rows[0] == list(COLUMNS)
    assert len(expected) > 1000  # more than /top can page through
    assert [row[1] for row in rows[1:]] == expected
    probabilities = [float(row[2]) for row in rows[1:]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(row[4].endswith(("raises risk", "lowers risk")) and row[8] == "v1" and row[9] for row in rows[1:])
    sheet = xlsx_rows(book)
    assert sheet[0] == COLUMNS and [row[1] for row in sheet[1:]] == expected
    assert "churnguard " not in (table.caption or "") + (book.caption or "")  # no CLI instruction in the chat


def test_the_button_under_top_sends_the_whole_list_to_an_admin_too(trained_home: Path, emulator: Emulator,  # noqa: F811
                                                                   live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))
    listing = bot.send(ADMIN, "/top 5")[0]
    assert "⬇ Every flagged client (CSV + Excel)" in [button.text for button in listing.buttons()]

    press = bot.press(ADMIN, listing, export_handler.EXPORT_DATA)
    answer = emulator.wait_for_answer(press, timeout=30)
    sent = emulator.wait_for_replies(press, 2, timeout=120)

    assert answer.text == "Preparing the list of every flagged client…"
    rows = csv_rows(sent[0])
    first_line = listing.text.split("\n")[2]
    assert first_line.startswith(f"1. {rows[1][1]} — ")  # the same ranking as /top
    assert [row[1] for row in xlsx_rows(sent[1])[1:]] == [row[1] for row in rows[1:]]


def test_in_a_group_neither_the_command_nor_a_forged_button_posts_the_list(trained_home: Path,  # noqa: F811
                                                                          emulator: Emulator, live_bot) -> None:  # noqa: F811
    emulator.add_user(VIEWER, chat_id=GROUP)
    bot = live_bot(make_settings(trained_home, emulator))

    command = emulator.inject_message(VIEWER, "/export", chat_id=GROUP)
    (refusal,) = emulator.wait_for_replies(command, 1)
    assert refusal.text == PRIVATE_ONLY.format(name="export")
    forged = emulator.inject_callback(VIEWER, refusal.message_id, export_handler.EXPORT_DATA, chat_id=GROUP,
                                      strict=False)
    answer = emulator.wait_for_answer(forged)  # refused in a pop-up, nothing posted into the group
    assert answer.text == PRIVATE_ONLY.format(name="export")
    stranger = emulator.inject_message(STRANGER, "/export")
    assert "do not have access" in (emulator.wait_for_replies(stranger, 1)[0].text or "")
    bot.send(VIEWER, "/help")  # a later update: everything before it has been handled
    assert not [message for message in bot.bot_messages(GROUP) if message.kind == "document"]
    assert not [message for message in bot.bot_messages(STRANGER) if message.kind == "document"]


def test_a_csv_over_telegrams_limit_arrives_gzipped_and_the_reply_says_so(trained_home: Path,  # noqa: F811
                                                                         emulator: Emulator, live_bot,  # noqa: F811
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Telegram's 50 MB, scaled down to the Telco list: its CSV (~400 kB) is over, its gzip and workbook are not.
    monkeypatch.setattr(export_handler, "SEND_LIMIT_BYTES", 250_000)
    expected = flagged_ids(trained_home)
    bot = live_bot(make_settings(trained_home, emulator))

    packed, book = bot.send(VIEWER, "/export", replies=2, timeout=120)

    assert (packed.document_name or "").endswith(".csv.gz") and (book.document_name or "").endswith(".xlsx")
    assert "over Telegram's 50 MB limit for files a bot sends, so it comes gzip-compressed" in (packed.caption or "")
    assert [row[1] for row in csv_rows(packed)[1:]] == expected
    assert len(packed.document or b"") < 250_000 < len(gzip.decompress(packed.document or b""))


def test_documents_still_over_the_limit_are_not_sent_and_the_reply_says_why(trained_home: Path,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    settings = make_settings(trained_home)
    db = Database(settings.database_url).create_schema()
    try:
        scorer = open_scorer(db, settings, open_registry(db, settings))
        result = write_list(scorer.flagged_ranking(), [tmp_path / "list.csv", tmp_path / "list.xlsx"])
    finally:
        db.dispose()
    limit = 1000  # smaller than anything the list makes

    prepared = export_handler.fit_for_telegram(result, limit)

    assert prepared.documents == []
    assert prepared.notes[0].startswith(f"The CSV is {result.sizes['.csv'] / 1e6:.1f} MB (")
    assert "so I cannot send it here" in prepared.notes[0]
    assert prepared.notes[1].startswith("The Excel workbook is") and prepared.notes[1].endswith("it is not sent.")
    assert all(str(tmp_path) not in note for note in prepared.notes)  # no server path in the chat


def test_without_a_model_or_without_flagged_clients_export_says_so_in_words(tmp_path: Path, emulator: Emulator,
                                                                            live_bot) -> None:  # noqa: F811
    home = tmp_path / "home"
    settings = make_settings(home, emulator)
    store = open_store(settings.database_url, home)
    telco = telco_frame()
    # Churned clients (gone, so never listed) and the 60 active clients the shared model ranks lowest.
    source, _trained = quick_training()
    lowest = {r.client_id for r in open_scorer(source.db, source.settings, source.registry).top(MAX_TOP)[-60:]}
    frame = pd.concat([telco[telco["Churn"] == "Yes"].head(60), telco[telco["customerID"].isin(lowest)]])
    ingest_frame(store.db, frame, schema=Schema("customerID", "Churn", "Yes"), limits=Limits(), source_name="crm.csv")
    bot = live_bot(settings)

    assert bot.ask(VIEWER, "/export") == NO_MODEL_TEXT
    adopt_quick_model(store)
    store.db.dispose()
    time.sleep(1.2)  # the bot re-reads the champion pointer at most once a second
    answer = bot.ask(VIEWER, "/export", timeout=60)

    assert answer.startswith("No client is flagged for contact right now (model v1): every active client is below "
                             "the threshold of ")
    assert not [message for message in bot.bot_messages(VIEWER) if message.kind == "document"]
