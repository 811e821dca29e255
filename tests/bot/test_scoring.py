"""/score: probability, band, flag, three reasons and the model version; "Why?" draws them;
unknown, too-new and malformed ids each get their own clear answer."""

from __future__ import annotations

from pathlib import Path

from bot.access import AccessList
from bot.emulator import Emulator
from bot.handlers.scoring import USAGE, client_from_why, why_data
from bot.services import Services
from model.service import open_scorer
from storage.db import Database
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.conftest import DATA

KNOWN, NEW_CLIENT = "7590-VHVEG", "4472-LVYGI"  # a one-month client; a client with tenure 0


def test_long_client_ids_fit_telegrams_64_byte_button_limit(home: Path) -> None:
    svc = Services(settings=make_settings(home), db=Database("sqlite://"), access=AccessList.from_ids([], []))
    long_id = "ÄÖÜ-" * 30

    short, long = why_data(svc, "7590-VHVEG"), why_data(svc, long_id)

    assert short == "why:7590-VHVEG" and client_from_why(svc, short) == "7590-VHVEG"
    assert len(long.encode()) <= 64 and client_from_why(svc, long) == long_id
    assert client_from_why(svc, "why:#unknown-token") is None


def test_score_answers_like_the_scorer_and_why_sends_the_chart(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator)
    bot = live_bot(settings)
    expected = open_scorer(bot.db, settings).score_client(KNOWN)

    answer = bot.send(VIEWER, f"/score {KNOWN}")[0]

    assert answer.text == expected.to_text()
    assert answer.text.startswith(f"Client {KNOWN}: churn risk ") and "model v1" in answer.text
    assert ("flagged for contact" in answer.text) == bool(expected.flagged)
    assert len([line for line in answer.text.splitlines() if line.startswith("  - ")]) == 3
    assert [(button.text, button.callback_data) for button in answer.buttons()] == [("Why?", f"why:{KNOWN}")]

    press = bot.press(VIEWER, answer, f"why:{KNOWN}")
    assert emulator.wait_for_answer(press).answered
    chart = emulator.wait_for_replies(press)[0]
    assert chart.kind == "photo" and chart.photo is not None and chart.photo.startswith(b"\x89PNG")
    assert chart.caption is not None and chart.caption.startswith(f"Why client {KNOWN} scores ")
    assert bot.ask(ADMIN, f"/score {KNOWN}") == expected.to_text()


def test_unknown_new_malformed_and_missing_ids_each_get_a_clear_answer(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    unknown = bot.send(VIEWER, "/score NOPE-0000")[0]
    new = bot.send(VIEWER, f"/score {NEW_CLIENT}")[0]

    assert unknown.text is not None and unknown.text.startswith("No client with id 'NOPE-0000' is stored.")
    assert new.text is not None and new.text.startswith(f"Client {NEW_CLIENT} has too little history to be scored")
    assert "tenure <= 0" in new.text
    assert unknown.buttons() == [] and new.buttons() == []
    assert bot.ask(VIEWER, "/score \u200b") == ("Malformed client id: the id contains control or invisible "
                                             "characters (U+200B ZERO WIDTH SPACE)")
    assert bot.ask(VIEWER, "/score " + "9" * 201).startswith("Malformed client id: the id is 201 characters long")
    # the example is an id of this store (the Telco sample's first client), not a made-up one
    assert bot.ask(VIEWER, "/score") == f"{USAGE}, for example /score {KNOWN}."


def test_the_usage_example_is_a_client_of_this_store(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    # given a store holding BankChurners, not the Telco sample
    settings = make_settings(home, emulator, id_column="CLIENTNUM", label_column="Attrition_Flag",
                             positive_label="Attrited Customer")
    db = Database(settings.database_url).create_schema()
    try:
        schema, explicit = schema_from_settings(settings)
        ingest_file(db, DATA / "BankChurners.csv", schema=schema, explicit=explicit)
    finally:
        db.dispose()
    bot = live_bot(settings)

    # then /score without an id shows one of its clients, not a Telco id
    assert bot.ask(VIEWER, "/score") == f"{USAGE}, for example /score 768805383."
