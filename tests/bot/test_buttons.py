"""Buttons obey their commands' rules: a press goes through the guard of its command (role,
private chats only), is audited, and its callback data is untrusted input — forged presses
are injected through the Bot API emulator, in a group and in a private chat."""

from __future__ import annotations

from pathlib import Path

from bot.access import audit_entries
from bot.emulator import Emulator
from bot.guard import PRIVATE_ONLY, UNKNOWN_BUTTON
from bot.handlers.errors import GENERIC_TEXT
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)

GROUP = -100200300
KNOWN = "7590-VHVEG"


def test_forged_presses_in_a_group_post_nothing_and_are_refused_and_audited(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))
    # given the bot's privacy notice in a group (a viewer asked for a score there)
    update = emulator.inject_message(VIEWER, f"/score {KNOWN}", chat_id=GROUP)
    notice = emulator.wait_for_replies(update)[0]
    assert notice.text == PRIVATE_ONLY.format(name="score")
    forged = {"topcsv:1000": "top", "top:1000:0": "top", f"why:{KNOWN}": "score"}

    # when a viewer forges the CSV, paging and "Why?" buttons under it
    answers = {}
    for data, command in forged.items():
        press = emulator.inject_callback(VIEWER, notice.message_id, data, chat_id=GROUP, strict=False)
        answers[data] = (emulator.wait_for_answer(press), command)

    # then each press is answered with its command's privacy rule, as a pop-up
    for data, (answer, command) in answers.items():
        assert answer.text == PRIVATE_ONLY.format(name=command) and answer.show_alert, data
    # and nothing reached the group: no list, no chart, and the notice was not edited into a list
    group = bot.bot_messages(GROUP)
    assert [(m.kind, m.text) for m in group] == [("text", PRIVATE_ONLY.format(name="score"))]
    assert emulator.calls("sendDocument") == [] and emulator.calls("sendPhoto") == []
    assert emulator.calls("editMessageText") == []
    # and every press is in the audit log with who, what and why it was refused
    bot.wait_audits(VIEWER, 1 + len(forged))
    rows = [(row.action, row.detail, row.result) for row in audit_entries(bot.db, actor=VIEWER)]
    assert rows[0] == ("score", f"/score {KNOWN}", "refused: not a private chat")
    assert rows[1:] == [("top:csv", "button 'topcsv:1000'", "refused: not a private chat"),
                        ("top:page", "button 'top:1000:0'", "refused: not a private chat"),
                        ("score:why", f"button 'why:{KNOWN}'", "refused: not a private chat")]


def test_forged_malformed_and_unknown_data_is_answered_never_acted_on_or_crashed_on(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))
    # given a viewer's own /score answer with its "Why?" button, in their private chat
    answer = bot.send(VIEWER, f"/score {KNOWN}")[0]
    assert [b.callback_data for b in answer.buttons()] == [f"why:{KNOWN}"]
    cases = {
        "topcsv:1000": "This button is not valid any more; send /top again.",  # not offered by this message
        "why:4472-LVYGI": "This button has expired; send /score <client id> again.",  # another client's chart
        "why:" + "9" * 200: "This button has expired; send /score <client id> again.",  # oversized
        "top:1:x": "This button is not valid any more; send /top again.",  # malformed
        "why:\u202e7590": "This button has expired; send /score <client id> again.",  # control characters
        "evil:1": UNKNOWN_BUTTON,  # no such button
    }

    # when each is pressed on that message
    for data, expected in cases.items():
        press = emulator.inject_callback(VIEWER, answer.message_id, data, strict=False)
        # then the press is answered with a clear reason, as a pop-up
        reply = emulator.wait_for_answer(press)
        assert (reply.text, reply.show_alert) == (expected, True), data

    # and nothing was sent or changed, and nothing went wrong (no error reply, no admin alarm)
    assert bot.bot_messages(VIEWER) == [answer]
    assert emulator.calls("sendDocument") == [] and emulator.calls("sendPhoto") == []
    assert all(GENERIC_TEXT not in (m.text or "") for m in bot.bot_messages(ADMIN))
    assert bot.bot_messages(ADMIN) == []
    bot.wait_audits(VIEWER, len(cases))
    results = [row.result for row in audit_entries(bot.db, actor=VIEWER)]
    assert results == ["refused: invalid button"] * (len(cases) - 1) + ["refused: unknown button"]

    # and the real button still works, and is audited too
    press = bot.press(VIEWER, answer, f"why:{KNOWN}")
    chart = emulator.wait_for_replies(press)[0]
    assert chart.kind == "photo"
    bot.wait_audits(VIEWER, len(cases) + 1)
    last = audit_entries(bot.db, actor=VIEWER)[-1]
    assert (last.action, last.result) == ("score:why", "chart sent")
