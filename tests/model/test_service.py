"""Train-and-register: the champion path, the rejected path and a crash, with real training."""

from __future__ import annotations

import json
import pickle

import pytest
from sqlmodel import select

from model.card import CARD_FILE, CHARTS
from model.registry import verify_artifacts
from model.service import REPORT_FILE, open_scorer, register_candidate, store_schema, train_candidate
from storage.errors import UserError
from storage.tables import AuditLog, ChampionEvent
from tests.model.trained_store import (
    QUICK,
    adopt_quick_model,
    engine_url,
    ingest_telco,
    open_store,
    quick_training,
    train,
)

# The columns that carry most of Telco's signal; a model trained without them is much weaker.
STRONG = ["Contract", "tenure", "TotalCharges", "MonthlyCharges", "InternetService", "OnlineSecurity",
          "TechSupport", "PaymentMethod", "OnlineBackup", "DeviceProtection", "PaperlessBilling"]


def test_the_first_model_becomes_champion_with_its_card_sealed_in():
    store, result = quick_training()
    payload = result.to_dict()
    # the JSON holds every documented key
    for key in ("version", "status", "threshold", "splits", "metrics", "baselines", "roi", "reasons",
                "training_seconds"):
        assert key in payload, key
    assert (payload["version"], payload["status"], payload["reasons"]) == ("v1", "champion", [])
    assert {"train", "validation", "test"} <= set(payload["splits"])
    assert {"lightgbm", "majority", "logistic"} <= set(payload["metrics"]["test"])
    assert payload["metrics"]["test"]["lightgbm"]["recall"] >= 0.90
    assert payload["threshold"] == pytest.approx(store.registry.get("v1").threshold)
    json.dumps(payload)
    # the version directory holds model, report and card, all covered by the manifest
    directory = result.info.artifact_dir
    names = {path.name for path in directory.iterdir()}
    assert {"model.txt", "model.json", REPORT_FILE, CARD_FILE, "manifest.json", *CHARTS.values()} <= names
    manifest = json.loads((directory / "manifest.json").read_text())
    assert {CARD_FILE, REPORT_FILE, "model.txt"} <= set(manifest["files"])
    verify_artifacts(directory, result.info.sha256)
    assert json.loads((directory / REPORT_FILE).read_text())["version"] == "v1"
    # the registry row carries the figures `models` shows, and the run is audited
    assert store.registry.champion().version == "v1"
    assert store.registry.get("v1").metrics["metrics"]["test"]["lightgbm"]["pr_auc"] > 0.5
    with store.db.session() as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "train")).all()
    assert [(row.actor, row.result) for row in audit] == [("test", "champion")]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_much_weaker_model_is_rejected_and_the_champion_stays(kind, tmp_path):
    with engine_url(kind, tmp_path) as url:
        # given a store whose champion is the full Telco model
        store = open_store(url, tmp_path / "home")
        ingest_telco(store)
        adopt_quick_model(store)
        # when a model is trained with Telco's strongest columns ignored
        weak = open_store(url, tmp_path / "home", ignore_columns=STRONG)
        result = train(weak)
        # then it is stored as rejected, with the comparison to the champion among the reasons
        assert result.status == "rejected"
        assert any("champion" in reason for reason in result.reasons), result.reasons
        assert result.to_dict()["reasons"] == result.reasons
        assert store.registry.champion().version == "v1"
        assert store.registry.get("v2").status == "rejected"
        assert store.registry.get("v2").reasons == result.reasons
        verify_artifacts(result.info.artifact_dir, result.info.sha256)
        with store.db.session() as session:
            assert len(session.exec(select(ChampionEvent)).all()) == 1
        # and scores still come from the champion
        scorer = open_scorer(store.db, store.settings, store.registry)
        assert scorer.score_client("7590-VHVEG").model_version == "v1"
        store.db.dispose()
        weak.db.dispose()


def test_training_a_candidate_writes_nothing_and_only_registering_it_promotes(tmp_path):
    # A training worker returns a candidate; only the service registers it (issue 11, item 2).
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home")
        ingest_telco(store)
        before = store.db.row_counts()

        candidate = train_candidate(store.db, store.settings, config=QUICK, registry=store.registry)

        assert store.db.row_counts() == before
        assert not store.registry.models_dir.exists() or list(store.registry.models_dir.iterdir()) == []
        assert candidate.passed and candidate.reasons == []
        assert candidate.outcome.test_frame.empty  # the card does not draw the test rows: they stay behind
        assert len(candidate.outcome.test_labels) > 0
        # it crosses a process boundary as it is
        carried = pickle.loads(pickle.dumps(candidate))
        assert carried.seed == QUICK.seed and carried.train_rows == candidate.train_rows

        result = register_candidate(store.db, carried, registry=store.registry, actor="test")

        assert (result.version, result.status) == ("v1", "champion")
        assert store.registry.champion().version == "v1"
        assert (result.info.artifact_dir / CARD_FILE).is_file()
        verify_artifacts(result.info.artifact_dir, result.info.sha256)
        with store.db.session() as session:
            audit = session.exec(select(AuditLog).where(AuditLog.action == "train")).all()
        assert [(row.actor, row.result) for row in audit] == [("test", "champion")]
        store.db.dispose()


def test_a_crash_during_training_changes_nothing(tmp_path):
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home")
        ingest_telco(store)
        adopt_quick_model(store)
        before = store.db.row_counts()

        def crash(message: str) -> None:
            if message == "preparing data":
                raise RuntimeError("power cut")

        with pytest.raises(RuntimeError, match="power cut"):
            train(store, progress=crash)
        assert store.db.row_counts() == before
        assert sorted(p.name for p in store.registry.models_dir.iterdir()) == ["v1"]
        assert store.registry.champion().version == "v1"
        store.db.dispose()


def test_training_without_data_says_what_to_do(tmp_path):
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home")
        assert store_schema(store.db, store.settings) is None
        with pytest.raises(UserError, match="no data stored yet: run churnguard ingest"):
            train(store)
        assert store.db.row_counts()["model_version"] == 0
        store.db.dispose()


def test_a_bad_history_rule_is_refused_when_the_scorer_opens(tmp_path):
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home", no_history_rule="tenure <== 0")
        with pytest.raises(UserError, match="CHURNGUARD_NO_HISTORY_RULE"):
            open_scorer(store.db, store.settings, store.registry)
        store.db.dispose()
