"""A challenger in shadow is never shown: /score and /top answer with the champion while a
newer candidate scores every arriving client beside it (issue 13 item 4)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
from sqlmodel import select

from bot.emulator import Emulator
from jobs.notifier import RecordingNotifier
from jobs.runner import JobRunner
from model.monitoring.stream import monthly_stream
from model.registry import NewVersion
from model.service import open_registry
from storage.db import Database
from storage.tables import Prediction, ShadowPrediction
from tests.bot.churnguard_fixtures import (  # noqa: F401
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.conftest import TELCO


def test_score_and_top_serve_the_champion_while_a_newer_candidate_runs_in_shadow(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator, shadow=True)
    db = Database(settings.database_url).create_schema()
    try:
        registry = open_registry(db, settings)
        champion = registry.champion()
        assert champion is not None and champion.version == "v1"

        def copy(directory: Path, version: str) -> None:  # the champion's files, as a candidate flagging everyone
            for item in champion.artifact_dir.iterdir():
                if item.name != "manifest.json":
                    (shutil.copytree if item.is_dir() else shutil.copyfile)(item, directory / item.name)

        registry.register(copy, NewVersion(threshold=0.001, seed=1, train_rows=champion.train_rows), promote=False,
                          actor="test")
        arrivals = monthly_stream(pd.read_csv(TELCO, dtype=str, keep_default_na=False), 1, seed=3,
                                  rows_per_month=200)[0]
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        arrivals.to_csv(settings.inbox_dir / "arrivals.csv", index=False)
        settings = settings.model_copy(update={"retrain_on": []})
        [ingest, *_checks] = JobRunner(settings, db, RecordingNotifier()).run_sync("ingest")
        assert "scored in shadow by v2" in ingest.summary
        with db.read_session() as session:
            assert set(session.exec(select(ShadowPrediction.model_version)).all()) == {"v2"}
            assert set(session.exec(select(Prediction.model_version)).all()) == {"v1"}
    finally:
        db.dispose()

    bot = live_bot(settings)
    client = str(arrivals.loc[(arrivals.Churn == "No") & (pd.to_numeric(arrivals.tenure) > 0), "customerID"].iloc[0])
    answer = bot.ask(VIEWER, f"/score {client}")
    assert answer.startswith(f"Client {client}: churn risk ") and "model v1" in answer and "v2" not in answer

    listing = bot.send(VIEWER, "/top 25")[0]
    assert "Top 25 riskiest active clients (model v1" in (listing.text or "") and "v2" not in (listing.text or "")
    press = bot.press(VIEWER, listing, "topcsv:25")
    document = emulator.wait_for_replies(press)[0]
    assert document.document_name == "churnguard-top-25-v1.csv"
    rows = list(csv.DictReader(io.StringIO((document.document or b"").decode("utf-8-sig"))))
    assert len(rows) == 25
