"""CSV upload: checked before download, ingested like `churnguard ingest`, answered exactly."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
from sqlmodel import select

from bot.access import audit_entries
from bot.emulator import ChatMessage, Emulator
from bot.handlers.upload import check_document, upload_limit
from jobs.reports import latest_report
from jobs.runs import RunView, recent_runs
from storage.tables import Prediction
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    LiveBot,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
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


def finished_runs(bot: LiveBot, jobs: set[str], timeout: float = 120.0) -> list[RunView]:
    """Every job run, oldest first, once runs of all ``jobs`` have finished (the upload's
    follow-ups run in the background, after the reply)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = list(reversed(recent_runs(bot.db, limit=100)))
        done = {run.job for run in runs if run.outcome != "running"}
        if jobs <= done and all(run.outcome != "running" for run in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs so far: {[(r.job, r.outcome) for r in runs]}, waiting for {sorted(jobs)}")
        time.sleep(0.1)


def new_churn_only_clients(count: int) -> bytes:
    """Labelled rows of short-tenure month-to-month clients only: the mix the champion learnt
    from has shifted (contracts, tenure, charges), so the drift check has something to find."""
    rows = [line for line in LINES[1:] if ",Month-to-month," in line and int(line.split(",")[5]) <= 12]
    return ("\n".join([HEADER, *rows[:count]]) + "\n").encode("utf-8")


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
    bot = live_bot(make_settings(home, emulator, retrain_on=["schedule"]))
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
    assert "Started in the background" in first.shown_text and "Started in the background" not in again.shown_text
    counts = bot.db.row_counts()
    assert counts["batch"] == 2 and counts["client_record"] == 500
    results = [row.result for row in audit_entries(bot.db, actor=ADMIN, action="upload")]
    assert results == ["stored batch 1: 300 rows", "stored batch 2: 200 rows", "duplicate of batch 1"]
    assert list((home / "uploads").iterdir()) == []  # downloads are not kept


def test_bad_files_store_nothing_and_the_reply_says_why(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator, max_upload_mb=0.05, retrain_on=["schedule"]))
    assert upload(bot, "base.csv", telco_csv(1, 101)).text.startswith("Stored batch #1")
    finished_runs(bot, {"arrival", "drift", "performance"})  # its follow-ups (no champion: skipped)
    before = stored(bot)  # job runs included: a refused upload starts none
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


def test_an_uploaded_batch_is_scored_and_checked_like_an_inbox_file(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    # given a store with a champion, a subscribed viewer, and a retrain on new labels
    bot = live_bot(make_settings(trained_home, emulator, retrain_on=["new_labels"]))
    assert bot.ask(VIEWER, "/subscribe").startswith("Subscribed")
    champion = bot.services.registry.champion().version
    # when an admin sends a file already stored, then a bad one: nothing is started
    again = upload(bot, "telco.csv", TELCO.read_bytes())
    bad = upload(bot, "labels.csv", telco_csv(1, 50).replace(b",No\n", b",Maybe\n"))
    assert again.shown_text.startswith("Nothing changed") and "Started" not in again.shown_text
    assert bad.shown_text.startswith("labels.csv was rejected") and "Started" not in bad.shown_text
    # and then a good labelled batch
    reply = upload(bot, "april.csv", new_churn_only_clients(400))

    # then the reply says what was stored and which checks were started, in their order
    assert reply.shown_text.startswith("Stored batch #2 from april.csv: 400 rows"), reply.shown_text
    assert ("Started in the background: scoring with the champion, then the drift check, then the performance "
            "check (realised recall), then a retrain on the new labels.") in reply.shown_text
    # and the job runs are recorded as the inbox job's follow-ups are, for that batch only
    runs = finished_runs(bot, {"arrival", "drift", "performance", "retrain"})
    assert [(r.job, r.details["trigger"]) for r in runs] == [
        ("arrival", "upload"), ("drift", "new_batch"), ("performance", "new_batch"), ("retrain", "new_labels")]
    assert [r.details["params"].get("batch_ids") for r in runs[:3]] == [[2], [2], [2]]
    assert [r.outcome for r in runs[:3]] == ["ok", "ok", "ok"], [r.details["summary"] for r in runs]
    # and the champion scored the batch on arrival
    with bot.db.read_session() as session:
        scores = session.exec(select(Prediction).where(Prediction.run_id == "ingest-b2")).all()
    assert {p.model_version for p in scores} == {champion} and len(scores) == 400
    assert f"batch #2 (april.csv) scored with {champion} (400 clients)" in runs[0].details["summary"]
    assert latest_report(bot.db, "drift").batch_id == 2
    assert runs[3].outcome == "ok", runs[3].details  # trained on the new labels (promoted or not)
    # and the drift alert reached the subscribed viewer through the notifier
    charts = [m.shown_text for m in bot.bot_messages(VIEWER) if m.kind == "photo"]
    assert len([text for text in charts if "drift: Data drift in batch #2 (april.csv)" in text]) == 1, charts


# ------------------------------------------------------------------ over the limit, encodings in the reply


def test_a_file_over_telegrams_download_limit_gets_the_limit_and_the_ways_to_send_it(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    # given a setting above the 20 MB Telegram lets bots download
    bot = live_bot(make_settings(home, emulator, max_upload_mb=50, retrain_on=["schedule"]))
    before = stored(bot)
    # when an admin sends a 38 MB export
    reply = upload(bot, "year.csv", HEADER.encode() + b"\n" + b"x" * (38 * 1024 * 1024))
    # then the reply says the limit and how to send a large file instead, and nothing is stored
    text = reply.shown_text
    assert text.startswith("'year.csv' (38.0 MB) is too big for the bot to download: Telegram lets bots download "
                           "files of at most 20 MB."), text
    assert ".csv.gz" in text and "split it into files under 20 MB" in text and "inbox folder" in text
    assert text.endswith("Nothing was stored.")
    assert "churnguard " not in text and str(home) not in text and "/" not in text.replace(".csv", "")
    assert "went wrong" not in text
    assert stored(bot) == before
    bot.wait_audits(ADMIN, 1)
    assert [row.result for row in audit_entries(bot.db, actor=ADMIN, action="upload")] == [
        "refused: too big for the Bot API server"]


def test_on_telegrams_servers_the_download_limit_caps_the_setting() -> None:
    official = make_settings(Path("/nonexistent"), max_upload_mb=50)
    own_server = make_settings(Path("/nonexistent"), max_upload_mb=50, telegram_api_base_url="http://127.0.0.1:8081")

    assert upload_limit(official) == (20.0, True) and upload_limit(own_server) == (50.0, False)
    text = check_document("year.csv", 38 * 1024 * 1024, 20.0, telegram_limit=True, inbox_mb=500) or ""
    assert text.startswith("'year.csv' is 38.0 MB; Telegram lets bots download files of at most 20 MB")
    assert "inbox folder (the CHURNGUARD_INBOX setting): files there (up to 500 MB)" in text
    assert "churnguard ingest" not in (check_document("a.csv", 25 * 1024 * 1024, 20.0) or "x")


def test_a_guessed_encoding_is_a_warning_in_the_reply_and_damaged_utf8_is_refused_by_line(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator, retrain_on=["schedule"]))
    cities = ["Łódź", "Kraków", "Gdańsk", "Wrocław", "Częstochowa", "Białystok"]
    polish = "customerID;miasto;Churn\n" + "".join(
        f"PL-{i:03d};{cities[i % len(cities)]};{'Yes' if i % 3 == 0 else 'No'}\n" for i in range(60))

    stored_reply = upload(bot, "klienci.csv", polish.encode("cp1250"))
    damaged = bytearray(polish.replace("PL-", "ПЛ-").encode("utf-8"))
    damaged[damaged.index("ПЛ-007".encode()) + 1] = 0xFF
    refused = upload(bot, "klienci-utf8.csv", bytes(damaged))

    assert stored_reply.shown_text.startswith("Stored batch #1 from klienci.csv: 60 rows")
    assert "not UTF-8: read as cp1250 (Central European, Windows-1250)" in stored_reply.shown_text
    assert refused.shown_text.startswith("klienci-utf8.csv was rejected. Nothing was stored.")
    assert "file line 9" in refused.shown_text and "--encoding" not in refused.shown_text
