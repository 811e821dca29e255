"""Scoring real Telco clients with a real trained champion, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from model.registry import NoChampion
from model.rules import parse_history_rule, risk_band
from model.scoring import DEPARTED, MAX_TOP, MalformedId, Scorer, clean_client_id, contribution_chart
from model.service import open_scorer
from storage.clients import load_frame
from storage.errors import UserError
from storage.tables import Prediction
from tests.model.trained_store import adopt_quick_model, engine_url, ingest_telco, open_store, telco_frame

NEW_CLIENT = "4472-LVYGI"  # tenure 0 in Telco
KNOWN = "7590-VHVEG"  # tenure 1, month-to-month


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"scoring-{request.param}")
    with engine_url(request.param, directory) as url:
        store = open_store(url, directory / "home")
        ingest_telco(store)
        assert adopt_quick_model(store).version == "v1"
        yield store
        store.db.dispose()


@pytest.fixture
def scorer(store) -> Scorer:
    return open_scorer(store.db, store.settings, store.registry)


def test_a_known_client_gets_probability_band_flag_version_and_three_reasons(scorer, store):
    result = scorer.score_client(KNOWN)
    payload = result.to_dict()
    assert set(payload) >= {"client_id", "status", "probability", "risk_band", "flagged", "threshold",
                            "model_version", "reasons", "message"}
    assert payload["status"] == "scored" and payload["client_id"] == KNOWN
    assert 0.0 <= payload["probability"] <= 1.0
    assert payload["model_version"] == "v1"
    assert payload["threshold"] == pytest.approx(store.registry.get("v1").threshold)
    assert payload["flagged"] == (result.probability >= result.threshold)
    assert payload["risk_band"] == risk_band(result.probability, result.threshold)
    assert len(payload["reasons"]) == 3
    for reason in payload["reasons"]:
        assert set(reason) == {"feature", "value", "effect", "text"}
        assert reason["text"].startswith(f"{reason['feature']} = ")
        assert reason["text"].endswith("raises risk" if reason["effect"] > 0 else "lowers risk")
    json.dumps(payload)  # JSON-safe
    assert f"Client {KNOWN}: churn risk" in result.to_text()
    assert "Main reasons:" in result.to_text()


def test_single_scores_match_the_batch_path(scorer, store):
    # the one-client path and the frame path must give the same probability
    model = store.registry.serving().model
    frame = load_frame(store.db, scorer.schema, labelled_only=False).set_index("customerID")
    for client_id in (KNOWN, "5575-GNVDE", "7795-CFOCW"):
        row = frame.loc[[client_id]].drop(columns=["Churn"])
        assert scorer.score_client(client_id).probability == pytest.approx(
            float(model.predict_proba_frame(row)[0]), abs=1e-9)


def test_ids_are_stripped(scorer):
    assert scorer.score_client(f"  {KNOWN}\t").client_id == KNOWN


def test_an_unknown_client_is_told_plainly(scorer):
    result = scorer.score_client("0000-NOPE")
    assert result.status == "unknown_client"
    assert result.probability is None and result.flagged is None and result.reasons == ()
    assert "No client with id '0000-NOPE'" in result.to_text()
    assert result.to_dict()["message"] == result.to_text()
    # the command line is told the command; a chat user who has no shell, who can act
    assert result.to_text().endswith("or ingest the latest CRM export (churnguard ingest FILE).")
    assert result.to_text("chat").endswith("an admin can send the latest CRM export (a .csv file) to this chat.")


def test_a_client_without_history_gets_no_score(scorer, store):
    result = scorer.score_client(NEW_CLIENT)
    assert result.status == "insufficient_history"
    assert result.probability is None and result.risk_band is None
    assert "too little history" in result.message and "tenure <= 0" in result.message
    # with the rule switched off the same client is scored
    unruled = Scorer(store.db, store.registry, rule=None, schema=scorer.schema)
    assert unruled.score_client(NEW_CLIENT).status == "scored"
    # a rule on a column this dataset lacks does not apply
    other = Scorer(store.db, store.registry, rule=parse_history_rule("Months_on_book < 1"), schema=scorer.schema)
    assert other.score_client(NEW_CLIENT).status == "scored"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "abc\x00def", "ab\ncd", "ab\u200bcd", None])
def test_malformed_ids_are_refused_with_a_clear_message(scorer, bad):
    with pytest.raises(MalformedId, match="malformed client id"):
        scorer.score_client(bad)


def test_clean_client_id_keeps_unicode_ids():
    assert clean_client_id(" Клиент-7 ") == "Клиент-7"
    assert clean_client_id("x" * 200) == "x" * 200


def test_top_lists_the_riskiest_active_clients_first(scorer, store):
    results = scorer.top(15)
    assert len(results) == 15
    probabilities = [r.probability for r in results]
    assert probabilities == sorted(probabilities, reverse=True)
    # computed independently: the riskiest clients among those not churned and with history
    frame = telco_frame()
    eligible = frame[(frame["Churn"] == "No") & (frame["tenure"] != "0")]["customerID"]
    stored = load_frame(store.db, scorer.schema, labelled_only=False)
    stored = stored[stored["customerID"].isin(set(eligible))]
    p = store.registry.serving().model.predict_proba_frame(stored.drop(columns=["customerID", "Churn"]))
    # (ties are possible after calibration, so compare the probabilities, then the membership)
    assert probabilities == pytest.approx(sorted(p, reverse=True)[:15], abs=1e-9)
    assert set(r.client_id for r in results) <= set(eligible)
    assert all(len(r.reasons) == 3 and r.status == "scored" for r in results)


@pytest.mark.parametrize("n", [0, -1, 10_001])
def test_top_refuses_silly_sizes(scorer, n):
    with pytest.raises(UserError, match="between 1 and"):
        scorer.top(n)


def test_score_all_writes_predictions_with_the_model_version(scorer, store):
    before = store.db.row_counts()["prediction"]
    run = scorer.score_all(chunk_rows=2000)
    assert run.model_version == "v1"
    assert run.insufficient_history == 11  # Telco's tenure-0 clients
    assert run.departed == 1869  # Telco's churners have left: no score for contact
    assert run.scored == 7043 - 11 - 1869
    assert sum(run.bands.values()) == run.scored
    with store.db.session() as session:
        rows = session.exec(select(Prediction).where(Prediction.run_id == run.run_id)).all()
    assert len(rows) == run.scored and store.db.row_counts()["prediction"] == before + run.scored
    assert {row.model_version for row in rows} == {"v1"}
    assert sum(row.flagged for row in rows) == run.flagged
    assert NEW_CLIENT not in {row.client_id for row in rows}
    by_id = {row.client_id: row for row in rows}
    single = scorer.score_client(KNOWN)
    assert by_id[KNOWN].probability == pytest.approx(single.probability, abs=1e-9)
    assert by_id[KNOWN].risk_band == single.risk_band
    assert "Scored 5163 client(s) with model v1" in run.to_text() and "1869 client(s) skipped: they have already left" in run.to_text()


def test_contribution_chart_is_a_png(scorer):
    png = contribution_chart(scorer.score_client(KNOWN, top=6))
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    with pytest.raises(UserError, match="no reasons to draw"):
        contribution_chart(scorer.score_client("0000-NOPE"))


def test_without_a_champion_scoring_says_to_train(tmp_path):
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home")
        ingest_telco(store)
        scorer = open_scorer(store.db, store.settings, store.registry)
        with pytest.raises(NoChampion, match="no model yet: run churnguard train"):
            scorer.score_client(KNOWN)
        # unknown ids are still told apart without a model
        assert scorer.score_client("0000-NOPE").status == "unknown_client"
        store.db.dispose()


def test_a_scorer_opened_before_the_first_ingest_finds_the_schema_later(tmp_path):
    with engine_url("sqlite", tmp_path) as url:
        store = open_store(url, tmp_path / "home")
        scorer = open_scorer(store.db, store.settings, store.registry)
        assert scorer.schema is None
        adopt_quick_model(store)
        with pytest.raises(UserError, match="no clients stored yet"):
            scorer.top(3)
        ingest_telco(store)
        assert len(scorer.top(3)) == 3
        assert scorer.schema is not None and scorer.schema.id_column == "customerID"
        store.db.dispose()


def test_a_client_whose_record_says_it_left_is_not_scored_for_contact(scorer):
    # 3668-QPYBK is a churner in the Telco export: "left within the horizon after" its record's date.
    result = scorer.score_client("3668-QPYBK")

    assert result.status == DEPARTED and result.probability is None and result.flagged is None
    assert result.message.startswith("Client 3668-QPYBK has already left (its record of ")  # the horizon is still open
    assert "3668-QPYBK" not in {r.client_id for r in scorer.top(MAX_TOP)}


def test_frame_records_round_trip_missing_values():
    from model.scoring import _clean_record

    record = pd.DataFrame({"a": [np.nan], "b": ["x"], "c": [np.int64(3)]}).astype(object).iloc[0].to_dict()
    assert _clean_record(record) == {"a": None, "b": "x", "c": 3}
