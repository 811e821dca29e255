"""The audit trail survives a short PostgreSQL outage, and strangers are told all the same
(issue 11, item 9).

The outage is real: the store connects to PostgreSQL through a TCP proxy that the test cuts
(every connection reset, new ones refused) and restores (tests/pg_outage.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.access import STRANGER_ACTION, STRANGER_REPLIED, STRANGER_SILENT, AuditTrail, audit_entries
from bot.emulator import Emulator
from bot.guard import STRANGER_TEXT
from storage.db import Database
from storage.tables import utcnow
from tests.bot.churnguard_fixtures import ADMIN, STRANGER, live_bot, make_settings  # noqa: F401
from tests.pg_outage import Outage, pg_outage

WAIT_SECONDS = 30.0


@pytest.fixture
def outage() -> Iterator[Outage]:
    with pg_outage() as found:
        Database(found.direct_url).create_schema().dispose()
        yield found


@pytest.fixture
def direct(outage: Outage) -> Iterator[Database]:
    """The test's own view of the store, which the outage does not touch."""
    db = Database(outage.direct_url)
    try:
        yield db
    finally:
        db.dispose()


def rows(db: Database) -> list[tuple[str, str, str]]:
    return [(row.actor, row.action, row.result) for row in audit_entries(db)]


def wait_for_rows(db: Database, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(audit_entries(db)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"audit rows so far: {rows(db)}")
        time.sleep(0.1)


def test_rows_written_during_an_outage_are_kept_and_written_in_order_when_the_database_is_back(
        outage: Outage, direct: Database) -> None:
    db = Database(outage.url)
    trail = AuditTrail(db, retry_seconds=0.2)
    try:
        assert trail.record(actor=ADMIN, action="users", result="listed")
        outage.proxy.cut()
        cut_at = utcnow()

        assert trail.record(actor=ADMIN, action="promote", detail="/promote v2", result="promoted v2") is False
        assert trail.record(actor=STRANGER, action=STRANGER_ACTION, detail="/top", result=STRANGER_REPLIED) is False
        assert trail.pending == 2
        assert rows(direct) == [(str(ADMIN), "users", "listed")]

        outage.proxy.restore()
        time.sleep(0.3)  # past the retry interval
        assert trail.record(actor=ADMIN, action="rollback", result="rolled back") is True

        assert trail.pending == 0
        assert rows(direct) == [(str(ADMIN), "users", "listed"), (str(ADMIN), "promote", "promoted v2"),
                                (str(STRANGER), STRANGER_ACTION, STRANGER_REPLIED),
                                (str(ADMIN), "rollback", "rolled back")]
        kept = audit_entries(direct)[1]
        assert kept.detail == "/promote v2" and kept.at >= cut_at  # the time it happened, not when written
    finally:
        db.dispose()


def test_the_buffer_is_bounded_and_keeps_the_newest_rows(outage: Outage, direct: Database) -> None:
    db = Database(outage.url)
    trail = AuditTrail(db, limit=2, retry_seconds=60)
    try:
        outage.proxy.cut()
        for number in range(3):
            trail.record(actor=ADMIN, action="promote", detail=f"/promote v{number}", result="promoted")
        assert (trail.pending, trail.dropped) == (2, 1)

        outage.proxy.restore()
        assert trail.flush() is False  # a handler's write does not retry before the interval
        assert trail.flush(force=True) is True  # the periodic retry does

        assert [row.detail for row in audit_entries(direct)] == ["/promote v1", "/promote v2"]
    finally:
        db.dispose()


def test_during_an_outage_a_new_stranger_is_told_and_every_audit_row_arrives_afterwards(
        home: Path, emulator: Emulator, live_bot, outage: Outage, direct: Database) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator, database_url=outage.url))
    outage.proxy.cut()

    # a stranger's first message while the database cannot say whether they were told
    refusal = emulator.wait_for_replies(emulator.inject_message(STRANGER, "/start"), timeout=WAIT_SECONDS)[0]
    # and an admin action, whose reply does not need the database
    users = emulator.wait_for_replies(emulator.inject_message(ADMIN, "/users"), timeout=WAIT_SECONDS)[0]

    assert refusal.text == STRANGER_TEXT.format(user_id=STRANGER)
    assert users.text is not None and "Admins (2): 111, 112" in users.text
    assert rows(direct) == []

    outage.proxy.restore()
    wait_for_rows(direct, 2)  # the bot's periodic retry writes what waited

    assert sorted(rows(direct)) == sorted([(str(STRANGER), STRANGER_ACTION, STRANGER_REPLIED),
                                           (str(ADMIN), "users", "listed")])
    # told once: the next message is answered with silence, and audited as such
    emulator.inject_message(STRANGER, "/top")
    bot.wait_audits(STRANGER, 2, action=STRANGER_ACTION)
    assert len(bot.bot_messages(STRANGER)) == 1
    assert [row.result for row in audit_entries(direct, actor=STRANGER)] == [STRANGER_REPLIED, STRANGER_SILENT]
