"""/campaign through the real bot: create, contact list with buttons, contact-log upload,
report with a chart; admins only, every button behind the same guard, no paths or CLI text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.emulator import ChatMessage, Emulator
from bot.guard import VIEWER_REFUSAL
from bot.handlers.campaign import campaign_of_caption, parse_new, split_words
from model.campaigns.service import store_example
from storage.campaigns import contacted_members, members
from storage.errors import UserError
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    LiveBot,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.model.campaigns.outcomes import simulated_outcomes


def no_cli_or_paths(messages: list[ChatMessage], home: Path) -> None:
    for message in messages:
        text = message.shown_text + ((message.document or b"").decode("utf-8", "replace")
                                     if message.document_name and message.document_name.endswith(".txt") else "")
        # Commands are lower case ("churnguard campaign ..."); "ChurnGuard" the product may be named.
        assert "churnguard " not in text and str(home) not in text and "/tmp" not in text, text


def test_phone_typing_is_read_as_meant() -> None:
    words = split_words("—name Spring \u2014segment \u201cContract == \u2018Month-to-month\u2019\u201d --top 5 "
                        "--holdout=25%")
    options = parse_new(words)

    assert options.name == "Spring" and options.segment == "Contract == 'Month-to-month'"
    assert options.top == 5 and options.holdout == 0.25
    for bad, message in ((["--top", "many"], "--top must be a whole number"), (["--colour", "red"], "Unknown option"),
                         (["--segment"], "--segment needs a value"), (["spring"], "did not understand")):
        with pytest.raises(UserError, match=message):
            parse_new(bad)
    with pytest.raises(UserError, match="quote is not closed"):
        split_words("--segment \"plan == 'a'")
    assert campaign_of_caption("campaign 3") == 3 and campaign_of_caption("/Campaign log #12") == 12
    assert campaign_of_caption("campaign three") is None and campaign_of_caption("my campaign 3") is None


def new_campaign(bot: LiveBot, text: str) -> tuple[ChatMessage, ChatMessage, ChatMessage]:
    summary, document, page = bot.send(ADMIN, text, replies=3, timeout=90)
    return summary, document, page


def test_an_admin_creates_a_campaign_and_gets_the_contact_list(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    summary, document, page = new_campaign(bot, "/campaign new --name Pilot --holdout 30% --top 400")

    assert "Campaign 1 \u201cPilot\u201d created" in summary.text and "Power: With " in summary.text
    assert "Treatment 280" in summary.text and "holdout 120" in summary.text
    rows = list(csv.DictReader(io.StringIO((document.document or b"").decode("utf-8-sig"))))
    everyone = members(bot.db, 1)
    held = {m.client_id for m in everyone if m.arm == "holdout"}
    assert len(rows) == 280 and not {row["client_id"] for row in rows} & held
    assert document.document_name == "campaign-1-contacts.csv" and "CSV only" in (document.caption or "")
    assert "contact list, page 1 of 35" in (page.text or "")
    labels = [button.text for button in page.buttons()]
    assert labels[:2] == [f"Contacted {rows[0]['client_id']}", f"Contacted {rows[1]['client_id']}"]
    assert labels[-1] == "Next ▶"
    no_cli_or_paths([summary, document, page], trained_home)
    bot.wait_audits(ADMIN, 1, "campaign")


def test_a_client_button_logs_a_contact_once_and_never_for_the_holdout(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))
    _, _, page = new_campaign(bot, "/campaign new --top 40 --holdout 0.5")
    first = page.buttons()[0]

    answer = emulator.wait_for_answer(bot.press(ADMIN, page, first.callback_data))
    edited = emulator.wait_for_edit(ADMIN, page.message_id)
    again = emulator.wait_for_answer(bot.press(ADMIN, edited, edited.buttons()[0].callback_data))

    treated = members(bot.db, 1, arm="treatment")
    assert "Logged: " in (answer.text or "") and "already logged" in (again.text or "")
    assert list(contacted_members(bot.db, 1)) == [treated[0].id]
    assert "✓ contacted" in (edited.text or "") and edited.buttons()[0].text.endswith("logged")

    holdout = members(bot.db, 1, arm="holdout")[0]
    forged = emulator.wait_for_answer(emulator.inject_callback(ADMIN, page.message_id, f"cgc:1:{holdout.id}:0",
                                                               strict=False))
    malformed = emulator.wait_for_answer(emulator.inject_callback(ADMIN, page.message_id, "cgc:1:x:0",
                                                                  strict=False))
    assert "not valid" in (forged.text or "") and "not valid" in (malformed.text or "")
    assert list(contacted_members(bot.db, 1)) == [treated[0].id]

    emulator.inject_callback(VIEWER, page.message_id, first.callback_data, chat_id=ADMIN, strict=False)
    bot.wait_audits(VIEWER, 1, "campaign:contacted")  # the guard refused and recorded it
    assert list(contacted_members(bot.db, 1)) == [treated[0].id]


def test_the_usage_example_is_made_of_this_stores_columns(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    usage = bot.ask(ADMIN, "/campaign")

    example = store_example(bot.db)
    assert example is not None and f'--segment "{example}"' in usage
    assert "tenure < " in example  # a Telco column, not a made-up one
    assert "caption: campaign ID" in usage and "churnguard " not in usage


def test_viewers_cannot_use_campaigns(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    assert bot.ask(VIEWER, "/campaign new") == VIEWER_REFUSAL.format(name="campaign")
    update = emulator.inject_document(VIEWER, "log.csv", b"client_id,contacted_at\nx,2025-01-01\n",
                                      caption="campaign 1")
    assert emulator.wait_for_replies(update)[0].text == VIEWER_REFUSAL.format(name="campaign")
    assert bot.db.row_counts()["campaign"] == 0


def test_a_contact_log_document_is_checked_whole_then_stored(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))
    new_campaign(bot, "/campaign new --top 60 --holdout 0.5")
    treated = [m.client_id for m in members(bot.db, 1, arm="treatment")]
    held = [m.client_id for m in members(bot.db, 1, arm="holdout")]
    today = datetime.now(UTC).date().isoformat()

    bad = f"client_id,contacted_at,outcome\n{treated[0]},{today},ok\nNOBODY,{today},\n{held[0]},{today},\n"
    refused = emulator.wait_for_replies(emulator.inject_document(ADMIN, "log.csv", bad.encode(), caption="campaign 1"),
                                        timeout=30)[0]
    good = "client_id,contacted_at,outcome\n" + "".join(f"{c},{today} 00:00,accepted\n" for c in treated[:10])
    stored = emulator.wait_for_replies(emulator.inject_document(ADMIN, "log.csv", good.encode(),
                                                                caption="Campaign 1"), timeout=30)[0]
    unnamed = emulator.wait_for_replies(emulator.inject_document(ADMIN, "log.csv", good.encode(),
                                                                 caption="campaign one"), timeout=30)[0]

    assert "was not stored (nothing of it)" in refused.shown_text and "data row(s) 2 ('NOBODY')" in refused.shown_text
    assert f"data row(s) 3 ('{held[0]}')" in refused.shown_text
    assert "10 contact(s) stored" in stored.shown_text and "10 of 30 treated clients" in stored.shown_text
    assert "caption that names the campaign" in unnamed.shown_text
    assert len(contacted_members(bot.db, 1)) == 10
    no_cli_or_paths([refused, stored, unnamed], trained_home)


def test_the_report_shows_pending_then_the_uplift_and_a_chart(trained_home: Path, emulator: Emulator, live_bot, tmp_path: Path) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator)
    bot = live_bot(settings)
    new_campaign(bot, "/campaign new --holdout 0.3")

    waiting = bot.send(ADMIN, "/campaign report 1")[0]
    data, _truth = simulated_outcomes(bot.db, 1, saved=0.3, seed=3)
    (tmp_path / "outcomes.csv").write_bytes(data)
    schema, explicit = schema_from_settings(settings)
    ingest_file(bot.db, tmp_path / "outcomes.csv", schema=schema, explicit=explicit)
    text, chart = bot.send(ADMIN, "/campaign report 1", replies=2, timeout=60)
    listing = bot.send(ADMIN, "/campaign list")[0]
    unknown = bot.send(ADMIN, "/campaign report 9")[0]

    assert "still pending" in (waiting.text or "") and "Nothing to compare yet" in (waiting.text or "")
    assert "Uplift: " in (text.text or "") and "Clients saved:" in (text.text or "")
    assert "CHURNGUARD_OFFER_SUCCESS_RATE assumes 25 %" in (text.text or "")
    assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
    assert "1. \u201cCampaign 1\u201d" in (listing.text or "")
    assert "There is no campaign 9" in (unknown.text or "")
    no_cli_or_paths([waiting, text, chart, listing, unknown], trained_home)
