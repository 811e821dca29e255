"""A production bot on an empty store: no Telco sample, the admins are told how to send data,
and the first upload's caption names the dataset's columns.

A real `churnguard run` against the emulator for the start; the ChurnGuard Application in a
thread (LiveBot) for the uploads, on real SQLite stores."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.commands import WAITING_FOR_DATA, ensure_model
from bot.emulator import Emulator
from bot.first_upload import CAPTION_EXAMPLE, parse_caption
from storage.db import Database
from storage.errors import UserError
from storage.schema import remembered_schema
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
from tests.bot.test_commands import START_TIMEOUT, environment
from tests.conftest import DATA

BANK = (DATA / "BankChurners.csv").read_bytes()
NAIVE_BAYES = ",".join(f"Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_Dependent_count_"
                       f"Education_Level_Months_Inactive_12_mon_{n}" for n in (1, 2))
BANK_CAPTION = f'March export id=CLIENTNUM label=Attrition_Flag positive="Attrited Customer" ignore={NAIVE_BAYES}'


def test_a_real_token_start_on_an_empty_store_waits_for_data_and_tells_the_admins(home: Path, tmp_path: Path,
                                                                                   emulator: Emulator) -> None:
    for user in (ADMIN, SECOND_ADMIN, VIEWER):
        emulator.add_user(user)
    env = environment(home, TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_BASE_URL=emulator.base_url,
                      CHURNGUARD_ADMIN_IDS=f"{ADMIN},{SECOND_ADMIN}", CHURNGUARD_VIEWER_IDS=str(VIEWER))
    process = subprocess.Popen([sys.executable, "-m", "churnguard", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        emulator.wait_for(lambda: emulator.calls("getUpdates"), timeout=START_TIMEOUT, what="the bot to poll")
        notices = {admin: emulator.wait_for_messages(admin, 1, timeout=30)[0].text or "" for admin in
                   (ADMIN, SECOND_ADMIN)}
        admin_help = emulator.wait_for_replies(emulator.inject_message(ADMIN, "/help"), timeout=30)[0].text or ""
        viewer_help = emulator.wait_for_replies(emulator.inject_message(VIEWER, "/help"), timeout=30)[0].text or ""
        status = subprocess.run([sys.executable, "-m", "churnguard", "status", "--json"], cwd=tmp_path,
                                env=environment(home), capture_output=True, text=True, timeout=60)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr[-2000:]
    assert "bundled sample" not in stderr and "WA_Fn-UseC_" not in stderr
    assert "the store is empty: waiting for data" in stderr
    counts = json.loads(status.stdout)
    assert (counts["batches"], counts["clients"], counts["model_versions"]) == (0, 0, 0)
    for text in notices.values():
        assert text.startswith("ChurnGuard is running and waiting for data. How to send your data:")
        assert CAPTION_EXAMPLE in text
    assert "This bot has no data yet." in admin_help and CAPTION_EXAMPLE in admin_help
    assert "no data yet" not in viewer_help
    assert emulator.messages(VIEWER)[0].from_bot is False  # viewers get no start-up notice


def test_ensure_model_loads_the_sample_only_when_asked(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    lines: list[str] = []
    with Database(settings.database_url) as db:
        db.create_schema()

        outcome = ensure_model(settings, db, say=lines.append)

        assert outcome == WAITING_FOR_DATA and lines == [WAITING_FOR_DATA]
        assert {table: rows for table, rows in db.row_counts().items() if rows} == {"meta": 1}


def upload(bot: LiveBot, content: bytes, caption: str | None = None, name: str = "BankChurners.csv") -> str:
    update = bot.emulator.inject_document(ADMIN, name, content, caption=caption)
    return bot.emulator.wait_for_replies(update, timeout=90)[0].shown_text


def schema_of(bot: LiveBot) -> Any:
    with bot.db.read_session() as session:
        return remembered_schema(session)


@pytest.fixture
def empty_bot(home: Path, emulator: Emulator, live_bot: Any) -> LiveBot:  # noqa: F811
    # No retrain follow-up: these tests are about what is stored, not about training.
    return live_bot(make_settings(home, emulator, retrain_on=[]))  # type: ignore[no-any-return]


def test_a_first_upload_without_a_caption_is_told_how_to_name_its_columns(empty_bot: LiveBot) -> None:
    text = upload(empty_bot, BANK)

    assert text.startswith("BankChurners.csv was not ingested. Nothing was stored.\nBankChurners.csv is the first "
                           "file of this bot")
    assert "It has no id column 'customerID' and no outcome column 'Churn'." in text
    assert "'CLIENTNUM'" in text and "'Attrition_Flag'" in text  # its columns are listed
    assert CAPTION_EXAMPLE in text
    assert "--" not in text and "churnguard " not in text  # no command-line instructions in a chat
    assert empty_bot.db.row_counts()["batch"] == 0 and schema_of(empty_bot) is None


def test_the_caption_names_the_columns_of_the_first_upload(empty_bot: LiveBot) -> None:
    wrong_value = upload(empty_bot, BANK, "id=CLIENTNUM label=Attrition_Flag")
    text = upload(empty_bot, BANK, BANK_CAPTION)

    assert "holds 'Attrited Customer', 'Existing Customer', but not 'Yes'" in wrong_value
    assert 'positive="Attrited Customer"' in wrong_value
    assert "Stored" in text or "stored" in text, text
    schema = schema_of(empty_bot)
    assert (schema.id_column, schema.label_column, schema.positive_label) == (
        "CLIENTNUM", "Attrition_Flag", "Attrited Customer")
    assert schema.ignore_columns == NAIVE_BAYES.split(",")
    # Later exports of the same dataset need no caption; a contradicting one is refused.
    again = upload(empty_bot, BANK, "id=customerID")
    assert "already holds a dataset whose id column is 'CLIENTNUM'" in again


def test_a_telco_shaped_first_upload_needs_no_caption(empty_bot: LiveBot) -> None:
    telco = (DATA.parent.parent / "storage" / "sample_data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv").read_bytes()

    text = upload(empty_bot, telco[:20000].rsplit(b"\n", 1)[0] + b"\n", name="crm.csv")

    assert "was not ingested" not in text and "rejected" not in text, text
    assert schema_of(empty_bot).id_column == "customerID"


def test_a_store_with_data_keeps_its_schema_against_a_caption(trained_home: Path, emulator: Emulator,  # noqa: F811
                                                              live_bot: Any) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator, retrain_on=[]))

    text = upload(bot, BANK, BANK_CAPTION)

    assert "already holds a dataset whose id column is 'customerID'" in text
    assert "This bot has no data yet" not in bot.ask(ADMIN, "/help")


def test_start_up_notice_only_on_an_empty_store(tmp_path: Path, trained_home: Path, emulator: Emulator,  # noqa: F811
                                                live_bot: Any) -> None:  # noqa: F811
    trained = live_bot(make_settings(trained_home, emulator), announce=True)
    assert trained.bot_messages(ADMIN) == []
    trained.__exit__(None, None, None)

    live_bot(make_settings(tmp_path / "empty", emulator), announce=True)

    notice = emulator.wait_for_messages(ADMIN, 1, timeout=30)[0].text or ""
    assert notice.startswith("ChurnGuard is running and waiting for data.")


@pytest.mark.parametrize(("caption", "expected"), [
    (None, {}),
    ("March export", {}),
    ('id=CLIENTNUM label=Attrition_Flag positive="Attrited Customer"',
     {"id_column": "CLIENTNUM", "label_column": "Attrition_Flag", "positive_label": "Attrited Customer"}),
    ("ID=x Ignore=a,b", {"id_column": "x", "ignore_columns": "a,b"}),
])
def test_captions_are_read_as_key_value_words(caption: str | None, expected: dict[str, str]) -> None:
    assert parse_caption(caption) == expected


@pytest.mark.parametrize(("caption", "message"), [
    ('id=x positive="Attrited', "a quote is not closed"),
    ("column=x", "The caption names 'column', which I do not know"),
    ("id=", "without a value"),
])
def test_a_broken_caption_is_explained(caption: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_caption(caption)
