"""The model commands through ``churnguard.main``, as a user runs them (SQLite home)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from sqlmodel import select

from churnguard import main
from storage.db import Database
from storage.tables import AuditLog
from tests.conftest import TELCO
from tests.model.trained_store import adopt_quick_model, open_store

KNOWN = "7590-VHVEG"
NEW_CLIENT = "4472-LVYGI"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """An isolated home with Telco ingested and one model trained through the CLI."""
    base = tmp_path_factory.mktemp("cli")
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    patch.setenv("CHURNGUARD_HOME", str(base / "home"))
    patch.setenv("CHURNGUARD_TUNING_SECONDS", "3")
    patch.chdir(base)
    code, _out, err = run("ingest", str(TELCO))
    assert code == 0, err
    code, out, err = run("train", "--json", "--seed", "3")
    assert code == 0, err
    trained = json.loads(out)
    if trained["status"] != "champion":  # the gate is honest; the commands below need a champion
        assert run("promote", trained["version"])[0] == 0
    yield {"home": base / "home", "train": trained}
    patch.undo()


def counts(cli) -> dict[str, int]:
    db = Database(f"sqlite:///{(cli['home'] / 'churnguard.db').as_posix()}")
    try:
        return db.row_counts()
    finally:
        db.dispose()


def test_train_json_has_every_documented_key(cli):
    payload = cli["train"]
    for key in ("version", "status", "threshold", "splits", "metrics", "baselines", "roi", "reasons",
                "training_seconds"):
        assert key in payload, key
    assert payload["version"] == "v1"
    assert payload["status"] in ("champion", "rejected")
    assert (payload["status"] == "rejected") == bool(payload["reasons"])
    assert 0 < payload["threshold"] < 1
    assert {"lightgbm", "majority", "logistic"} <= set(payload["metrics"]["test"])
    assert os.path.isfile(payload["card"])


def test_models_lists_versions_with_the_champion_marked(cli, capsys):
    code, out, _ = run("models", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["champion"] == "v1"
    (row,) = listing["versions"]
    assert row["version"] == "v1" and row["champion"] is True
    assert set(row["test"]) == {"recall", "precision", "pr_auc"}
    assert row["integrity"] == "ok"
    assert all(isinstance(value, float) for value in row["test"].values())
    code, out, _ = run("models")
    assert "* v1" in out and "champion" in out and "PR-AUC" in out


def test_report_prints_the_summary_and_card_path(cli):
    code, out, _ = run("report")
    assert code == 0
    assert "card.md" in out and "v1" in out
    code, out, _ = run("report", "v1", "--json")
    assert json.loads(out)["integrity"] == "ok"
    code, _out, err = run("report", "v42")
    assert code == 1 and "no model version 'v42'" in err


def test_score_known_unknown_new_and_malformed(cli):
    code, out, _ = run("score", KNOWN, "--json")
    payload = json.loads(out)
    assert code == 0 and payload["status"] == "scored" and payload["model_version"] == "v1"
    assert set(payload) >= {"client_id", "status", "probability", "risk_band", "flagged", "threshold",
                            "model_version", "reasons", "message"}
    assert len(payload["reasons"]) == 3
    code, out, _ = run("score", KNOWN)
    assert "churn risk" in out and ("raises risk" in out or "lowers risk" in out)

    code, out, _ = run("score", "NOPE-0000", "--json")
    assert code == 0 and json.loads(out)["status"] == "unknown_client"
    code, out, _ = run("score", NEW_CLIENT, "--json")
    assert code == 0 and json.loads(out)["status"] == "insufficient_history"

    code, out, err = run("score", "   ", "--json")
    assert code == 2 and "malformed client id" in err
    assert json.loads(out)["status"] == "malformed_id"


def test_a_bad_history_rule_names_its_setting(cli, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_NO_HISTORY_RULE", "tenure is zero")
    code, _out, err = run("score", KNOWN)
    assert code == 2 and "CHURNGUARD_NO_HISTORY_RULE" in err


def test_top_and_score_all(cli):
    code, out, _ = run("top", "-n", "5", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["count"] == 5
    probabilities = [client["probability"] for client in payload["clients"]]
    assert probabilities == sorted(probabilities, reverse=True)
    code, out, _ = run("top", "-n", "3")
    assert code == 0 and out.count("\n") >= 4
    before = counts(cli)["prediction"]
    code, out, _ = run("score-all", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["model_version"] == "v1" and payload["scored"] == 5163 and payload["departed"] == 1869
    assert counts(cli)["prediction"] == before + 5163


def test_promote_of_an_unknown_version_changes_nothing(cli):
    before = counts(cli)
    code, _out, err = run("promote", "v9")
    assert code == 1 and "no model version 'v9'" in err
    after = counts(cli)
    assert after["champion_event"] == before["champion_event"]
    assert after["model_version"] == before["model_version"]
    assert after["audit_log"] == before["audit_log"] + 1  # the refusal is audited


def test_rollback_without_a_previous_champion_is_explained(cli):
    code, _out, err = run("rollback")
    assert code == 2 and "no previous champion to roll back to" in err
    code, out, _ = run("models", "--json")
    assert json.loads(out)["champion"] == "v1"


def test_score_before_any_training_says_to_train(home):
    assert main(["ingest", str(TELCO)]) == 0
    code, _out, err = run("score", KNOWN)
    assert code == 1 and "no model yet: run churnguard train" in err
    code, out, _ = run("models")
    assert "No models yet" in out


def test_promote_and_rollback_switch_the_champion_and_are_audited(cli):
    # given a second version registered in the same store (runs last: it changes the champion)
    store = open_store(f"sqlite:///{(cli['home'] / 'churnguard.db').as_posix()}", cli["home"])
    assert adopt_quick_model(store).version == "v2"
    store.db.dispose()
    # when rolled back, then promoted again
    code, out, _ = run("rollback", "--json")
    assert code == 0 and json.loads(out) == {"version": "v1", "previous": "v2", "action": "rollback",
                                             "skipped": [], "note": ""}
    code, out, _ = run("score", KNOWN, "--json")
    assert json.loads(out)["model_version"] == "v1"
    code, out, _ = run("promote", "v2")
    assert code == 0 and "v2 is now the champion (was v1)" in out
    code, out, _ = run("score", KNOWN, "--json")
    assert json.loads(out)["model_version"] == "v2"
    db = Database(f"sqlite:///{(cli['home'] / 'churnguard.db').as_posix()}")
    with db.session() as session:
        audit = session.exec(select(AuditLog).where(AuditLog.actor == "cli")).all()
    db.dispose()
    actions = {(row.action, row.result) for row in audit}
    assert {("rollback", "ok"), ("promote", "ok")} <= actions
    assert {action for action, _ in actions} >= {"train", "promote", "rollback"}
