"""CSV upload: checked before download, ingested like `churnguard ingest`, answered exactly."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bot.access import audit_entries
from bot.emulator import ChatMessage, Emulator
from bot.handlers.upload import check_document
from tests.bot.churnguard_fixtures import ADMIN, LiveBot, live_bot, make_settings  # noqa: F401
from tests.conftest import TELCO

LINES = TELCO.read_text(encoding="utf-8").splitlines()
HEADER = LINES[0]


def telco_csv(start: int, stop: int) -> bytes:
    return ("\n".join([HEADER, *LINES[start:stop]]) + "\n").encode("utf-8")


def stored(bot: LiveBot) -> dict[str, int]:
    """Row counts of everything but the audit log (which records each attempt)."""
    return {table: count for table, count in bot.db.row_counts().items() if table != "audit_log"}


def upload(bot: LiveBot, name: str, content: bytes) -> ChatMessage:
    update = bot.emulator.inject_document(ADMIN, name, content)
    return bot.emulator.wait_for_replies(update, timeout=60)[0]


@pytest.mark.parametrize(("name", "size", "problem"), [
    (None, 10, "has no name"),
    ("clients.xlsx", 10, "is not a .csv or .csv.gz file"),
    ("clients.CSV", 25 * 1024 * 1024, "uploads are limited to 20 MB (CHURNGUARD_MAX_UPLOAD_MB)"),
])
def test_type_and_size_are_refused_from_the_metadata(name: str | None, size: int, problem: str) -> None:
    assert problem in (check_document(name, size, 20.0) or "")


def test_acceptable_documents_pass_the_metadata_check() -> None:
    assert check_document("march.csv", 1024, 20.0) is None
    assert check_document("March.CSV.GZ", 20 * 1024 * 1024, 20.0) is None
    assert check_document("march.csv", None, 20.0) is None  # size unknown: checked again after getFile


def test_a_good_csv_is_stored_and_the_reply_says_exactly_what(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    emulator.fail_next("sendChatAction", 400, description="Bad Request: method is not supported here")

    first = upload(bot, "march.csv", telco_csv(1, 301))  # a failed "typing…" costs nothing
    bot.wait_audits(ADMIN, 1)  # audit rows follow the replies; keep their order for the check below
    second = upload(bot, "april.csv.gz", gzip.compress(telco_csv(301, 501)))
    bot.wait_audits(ADMIN, 2)
    again = upload(bot, "march-copy.csv", telco_csv(1, 301))
    bot.wait_audits(ADMIN, 3)

    churners = sum(line.endswith(",Yes") for line in LINES[1:301])
    assert first.text is not None and first.text.startswith(
        f"Stored batch #1 from march.csv: 300 rows, 19 columns, labelled, {churners} churners")
    assert second.text is not None and second.text.startswith("Stored batch #2 from april.csv.gz: 200 rows")
    assert again.text is not None and again.text.startswith("Nothing changed: march-copy.csv is identical to batch #1")
    counts = bot.db.row_counts()
    assert counts["batch"] == 2 and counts["client_record"] == 500
    results = [row.result for row in audit_entries(bot.db, actor=ADMIN, action="upload")]
    assert results == ["stored batch 1: 300 rows", "stored batch 2: 200 rows", "duplicate of batch 1"]
    assert list((home / "uploads").iterdir()) == []  # downloads are not kept


def test_bad_files_store_nothing_and_the_reply_says_why(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator, max_upload_mb=0.05))
    assert upload(bot, "base.csv", telco_csv(1, 101)).text.startswith("Stored batch #1")
    before = stored(bot)
    downloads = len(emulator.calls("getFile"))
    no_id = "\n".join(line.split(",", 1)[1] for line in LINES[:50]).encode()
    duplicated = telco_csv(200, 230) + LINES[200].encode() + b"\n"
    bad_label = telco_csv(300, 330).replace(b",No\n", b",Maybe\n")

    cases = {
        "empty.csv": (b"", "empty"),
        "page.csv": (b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table></body></html>", "HTML"),
        "no-id.csv": (no_id, "customerID"),
        "duplicates.csv": (duplicated, LINES[200].split(",")[0]),
        "labels.csv": (bad_label, "Maybe"),
    }
    for name, (content, reason) in cases.items():
        reply = upload(bot, name, content)
        assert reply.shown_text.startswith(f"{name} was rejected. Nothing was stored."), reply.shown_text
        assert reason in reply.shown_text, (name, reply.shown_text)
        assert stored(bot) == before

    too_big = upload(bot, "big.csv", telco_csv(1, 2000))
    wrong_type = upload(bot, "clients.xlsx", b"PK\x03\x04")
    assert "uploads are limited to 0.05 MB" in too_big.text and "Nothing was stored." in too_big.text
    assert "is not a .csv or .csv.gz file" in wrong_type.text
    assert len(emulator.calls("getFile")) == downloads + len(cases)  # the last two were never fetched
    assert stored(bot) == before
