"""Leaking columns stop at training, on the real BankChurners file.

BankChurners' two ``Naive_Bayes_Classifier_*`` columns are another model's output trained on
the label.  Ingested without ``--ignore-columns`` they are flagged; training leaves them out
and says how to keep them; kept on purpose, the near-perfect score is called suspicious in
``train --json``, the command line's reply, the model card and the bot's retrain reply.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from bot.handlers.admin import retrain_summary
from churnguard import Settings, main
from jobs.runner import JobRunner
from model.config import TrainConfig
from model.data_checks import LEAK_REASON, SUSPICIOUS_ROC_AUC, suspicious_score
from model.service import train_and_register
from storage.db import Database
from tests.conftest import DATA

BANK = DATA / "BankChurners.csv"
SCHEMA_FLAGS = ["--id-column", "CLIENTNUM", "--label-column", "Attrition_Flag", "--positive-label",
                "Attrited Customer"]
NAIVE_BAYES = [name.strip('"') for name in BANK.open(encoding="utf-8").readline().strip().split(",")
               if name.strip('"').startswith("Naive_Bayes_Classifier_")]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def bank_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BankChurners ingested as a new user would: its schema given, no columns ignored."""
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CHURNGUARD_HOME", str(home))
    monkeypatch.setenv("CHURNGUARD_TUNING_SECONDS", "2")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("ingest", str(BANK), *SCHEMA_FLAGS, "--json")
    assert code == 0, err
    flagged = [w["column"] for w in json.loads(out)["warnings"] if "may leak the label" in w["message"]]
    assert sorted(flagged) == sorted(NAIVE_BAYES) and len(NAIVE_BAYES) == 2
    return home


def test_flagged_columns_are_left_out_of_training_with_a_way_to_keep_them(bank_home: Path) -> None:
    code, out, err = run("train", "--json", "--seed", "1")

    assert code == 0, err
    payload = json.loads(out)
    dropped = payload["processing"]["dropped_columns"]
    assert all(dropped[name] == LEAK_REASON for name in NAIVE_BAYES)
    assert payload["data_checks"]["leaking_columns"]["excluded"].keys() == set(NAIVE_BAYES)
    assert payload["data_checks"]["suspicious_score"] is False
    (left_out,) = payload["warnings"]
    assert left_out.startswith("left out of training, flagged at ingest as leaking the label")
    assert f"keep them with CHURNGUARD_KEEP_LEAKING_COLUMNS={','.join(NAIVE_BAYES)};" in left_out
    assert payload["metrics"]["test"]["lightgbm"]["roc_auc"] < SUSPICIOUS_ROC_AUC
    assert payload["threshold"] < 0.99  # the leaking champion's threshold was 1.000
    card = Path(payload["card"]).read_text(encoding="utf-8")
    assert "## Warnings" in card and "left out of training" in card
    assert all(f"{name} ({LEAK_REASON})" in card for name in NAIVE_BAYES)


def test_kept_leaking_columns_make_a_suspicious_score_that_every_reply_names(
        bank_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNGUARD_KEEP_LEAKING_COLUMNS", ",".join(NAIVE_BAYES))

    code, out, err = run("train", "--seed", "1")  # the command line's reply, as a person reads it

    assert code == 0, err
    assert "Warning: kept although flagged at ingest as leaking the label" in out
    assert "Warning: suspiciously good: test ROC-AUC 1.0000" in out
    assert "Naive_Bayes_Classifier_" in out.split("suspiciously good")[1]  # names what it leans on

    # The bot's /retrain reply is built from the retrain job's result: the same warnings.
    settings = Settings()
    db = Database(settings.database_url)
    try:
        def trainer(db: Database, given: Settings, **kwargs: object) -> object:
            config = TrainConfig.from_settings(given, tuning_seconds=2.0, max_trials=2, n_folds=3, seed=1)
            return train_and_register(db, given, config=config, **kwargs)  # type: ignore[arg-type]

        reports = JobRunner(settings, db, services={"trainer": trainer}).run_sync("retrain", follow=False)
    finally:
        db.dispose()
    text = retrain_summary(reports[-1])
    assert "Warnings about the data:" in text and "suspiciously good" in text and "CHURNGUARD_" in text
    assert "churnguard " not in text.lower().replace("churnguard_", "")  # no command-line instruction


def test_a_report_below_the_level_is_not_suspicious() -> None:
    def report(auc: float) -> dict[str, object]:
        return {"metrics": {"test": {"lightgbm": {"roc_auc": auc}}}, "feature_importances": {"tenure": 0.5}}

    assert suspicious_score(report(0.997)) is None  # BankChurners without its leaks, honestly
    assert "leans most on tenure" in (suspicious_score(report(1.0)) or "")
