"""storage/redact.py: secrets are masked in every log record and in every text shown to people."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.alerts import AlertDraft, raise_alert, recent_alerts
from jobs.runs import finish_run, get_run, start_run
from storage import redact
from storage.db import Database
from tests.conftest import REPO

TOKEN = "6012345678:AAF0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
OTHER = "5550001111:AAEzyxwvutsrqponmlkjihgfedcba987654"  # never registered: caught by its shape


@pytest.fixture(autouse=True)
def registered() -> None:
    redact.register(TOKEN, "pg-Secret-Pass")


@pytest.mark.parametrize(("text", "expected"), [
    (f"token {TOKEN} refused", "token 6012345678:*** refused"),
    (f"https://api.telegram.org/bot{TOKEN}/getMe", "https://api.telegram.org/bot6012345678:***/getMe"),
    (f"http://x/file/bot{OTHER}/photos/1.jpg", "http://x/file/bot5550001111:***/photos/1.jpg"),
    (f"The token `{OTHER}` was rejected", "The token `5550001111:***` was rejected"),
    ("only the half AAF0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234 leaked", "only the half *** leaked"),
    ("bot1:x is a token in a URL whatever its length", "bot1:*** is a token in a URL whatever its length"),
    ("postgresql+psycopg://churn:hunter2@db:5432/churn", "postgresql+psycopg://churn:***@db:5432/churn"),
    ("host=db user=churn password=hunter2 dbname=churn", "host=db user=churn password=*** dbname=churn"),
    ("connection to pg-Secret-Pass failed", "connection to *** failed"),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    ("http://127.0.0.1:8081/path at 12:30:45", "http://127.0.0.1:8081/path at 12:30:45"),
    ("client 7590-VHVEG scored 0.81", "client 7590-VHVEG scored 0.81"),
])
def test_redact_masks_secrets_and_nothing_else(text: str, expected: str) -> None:
    assert redact.redact(text) == expected


def test_short_values_are_never_registered_as_secrets() -> None:
    redact.register("abc", "", None)

    assert redact.redact("abc abc") == "abc abc"


def test_every_log_record_is_masked_whatever_its_logger_level_and_arguments() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("telegram.ext.ExtBot.test")  # a third-party logger that propagates
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = library.level
    library.setLevel(logging.DEBUG)
    try:
        redact.install()
        library.debug("Set Bot API URL: %s", f"https://api.telegram.org/bot{TOKEN}")
        try:
            raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
        except ValueError:
            library.exception("startup failed for %s", OTHER)
        library.warning("stack follows", stack_info=True, extra={"note": TOKEN})
    finally:
        root.removeHandler(handler)
        library.setLevel(old_level)

    output = stream.getvalue()
    assert TOKEN not in output and OTHER not in output
    assert "DEBUG telegram.ext.ExtBot.test: Set Bot API URL: https://api.telegram.org/bot6012345678:***" in output
    assert "startup failed for 5550001111:***" in output
    assert "ValueError: The token `6012345678:***` was rejected by the server." in output


def test_job_errors_and_alerts_are_stored_masked(db: Database) -> None:
    run_id = start_run(db, "ingest", trigger="test")
    finish_run(db, run_id, "failed", error=f"could not pull from postgresql://u:hunter2@h/db ({TOKEN})",
               details={"summary": f"failed: {TOKEN}", "tries": [f"bot{OTHER}"]})
    decision = raise_alert(db, AlertDraft("job_failed", "warning", "x", "Job failed", f"it said {TOKEN}",
                                          {"error": f"password=hunter2 {OTHER}"}), cooldown_hours=0)

    run = get_run(db, run_id)
    assert run is not None
    assert run.error == "could not pull from postgresql://u:***@h/db (6012345678:***)"
    assert run.details["summary"] == "failed: 6012345678:***" and run.details["tries"] == ["bot5550001111:***"]
    [alert] = recent_alerts(db)
    assert decision.stored and alert.message == "it said 6012345678:***"
    assert alert.figures["error"] == "password=*** 5550001111:***"


def test_the_command_line_masks_its_error_line_and_settings_errors(home: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "CHURNGUARD_HOME": str(home),
           "CHURNGUARD_DATABASE_URL": "mysql://churn:hunter2@db/churn"}

    done = subprocess.run([sys.executable, "-m", "churnguard", "status"], env=env, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 2
    assert "hunter2" not in done.stderr
    assert "mysql://churn:***@db/churn" in done.stderr
