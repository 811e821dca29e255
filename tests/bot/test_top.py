"""/top: the riskiest active clients, paged with buttons, and a formula-safe CSV download."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.top import CSV_COLUMNS, PAGE_SIZE, csv_safe, page_markup, page_text, ranking_csv
from model.artifact import Contribution
from model.scoring import SCORED, ScoreResult
from tests.bot.churnguard_fixtures import (  # noqa: F401
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)


def result(client_id: str, probability: float, reason_value: object = "Month-to-month") -> ScoreResult:
    return ScoreResult(client_id=client_id, status=SCORED, message="", probability=probability,
                       risk_band="high" if probability > 0.6 else "medium", flagged=True, threshold=0.2,
                       model_version="v1", reasons=(Contribution("Contract", reason_value, 0.8),))


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_escaped() -> None:
    for dangerous in ("=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\r=1"):
        assert csv_safe(dangerous) == "'" + dangerous
    for harmless in ("7590-VHVEG", "0.8731", "", "a=b", "Contract = Month-to-month raises risk"):
        assert csv_safe(harmless) == harmless
    assert csv_safe(None) == ""


def test_the_ranking_csv_escapes_ids_and_reasons_from_the_crm() -> None:
    rows = [result("=cmd|' /C calc'!A0", 0.91), result("+33-123", 0.55, reason_value="@evil"), result("ok-1", 0.3)]

    data = ranking_csv(rows)

    assert data.startswith("\ufeff".encode())
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert parsed[0] == list(CSV_COLUMNS)
    assert [row[1] for row in parsed[1:]] == ["'=cmd|' /C calc'!A0", "'+33-123", "ok-1"]
    assert parsed[1][2] == "0.9100" and parsed[1][4] == "yes"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in parsed for cell in row)


def test_pages_show_ten_clients_with_prev_next_and_csv_buttons() -> None:
    rows = [result(f"c{i:02d}", 0.9 - i / 100) for i in range(25)]

    first = page_text(rows, 25, 0)
    last = page_text(rows, 25, 2)
    markup = page_markup(len(rows), 25, 1)

    assert "page 1 of 3" in first and "1. c00 — 90.0% high" in first and "11. c10" not in first
    assert "page 3 of 3" in last and "21. c20" in last and "25. c24" in last
    labels = [[button.text for button in row] for row in markup.inline_keyboard]
    assert labels == [["◀ Prev", "Next ▶"], ["⬇ CSV of all 25"], ["⬇ Every flagged client (CSV + Excel)"]]
    assert PAGE_SIZE == 10


def test_top_pages_in_place_and_downloads_the_csv(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    listing = bot.send(VIEWER, "/top 25")[0]
    assert "Top 25 riskiest active clients (model v1" in listing.text and "page 1 of 3" in listing.text
    assert [button.text for button in listing.buttons()] == ["Next ▶", "⬇ CSV of all 25",
                                                             "⬇ Every flagged client (CSV + Excel)"]

    emulator.wait_for_answer(bot.press(VIEWER, listing, "top:25:1"))
    second = emulator.wait_for_edit(VIEWER, listing.message_id)
    assert "page 2 of 3" in (second.text or "") and "11. " in (second.text or "")
    assert [button.text for button in second.buttons()] == ["◀ Prev", "Next ▶", "⬇ CSV of all 25",
                                                            "⬇ Every flagged client (CSV + Excel)"]
    emulator.wait_for_answer(bot.press(VIEWER, second, "top:25:2"))
    edited = emulator.wait_for_edit(VIEWER, listing.message_id, count=2)
    assert "page 3 of 3" in (edited.text or "") and "21. " in (edited.text or "")

    press = bot.press(VIEWER, edited, "topcsv:25")
    document = emulator.wait_for_replies(press)[0]
    rows = list(csv.reader(io.StringIO((document.document or b"").decode("utf-8-sig"))))
    assert document.document_name == "churnguard-top-25-v1.csv"
    assert len(rows) == 26 and rows[0] == list(CSV_COLUMNS)
    probabilities = [float(row[2]) for row in rows[1:]]
    assert probabilities == sorted(probabilities, reverse=True)
    first_line = listing.text.split("\n")[2]
    assert first_line.startswith(f"1. {rows[1][1]} — ")


def test_top_refuses_a_bad_count_with_a_hint(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    assert bot.ask(VIEWER, "/top lots") == "'lots' is not a whole number; try /top 20."
    assert bot.ask(VIEWER, "/top 0") == "The number must be between 1 and 1000, got 0; try /top 20."
