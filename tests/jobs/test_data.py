"""Rows of arriving batches, scores on arrival and the rows a model never trained on, read from
the month-by-month story (read-only)."""

from __future__ import annotations

import numpy as np
from sqlmodel import select

from jobs.data import get_batch, monitored, outcomes_only, trained_batches
from model.sources import SnapshotSource, SourceConfig, unseen_rows
from storage.tables import ModelVersion, Prediction


def batch_id(scenario, step: str) -> int:
    return scenario.steps[step].run("ingest").run.details["new_batch_ids"][0]


def source(scenario) -> SnapshotSource:
    return SnapshotSource(scenario.db, SourceConfig.from_settings(scenario.settings))


def test_the_rows_of_a_batch_are_typed_like_the_training_frame(scenario):
    rows = source(scenario).batch_rows(batch_id(scenario, "concept"))
    assert rows is not None and len(rows) == 1000
    assert "customerID" not in rows.inputs.columns and "Churn" not in rows.inputs.columns
    assert rows.inputs["MonthlyCharges"].dtype == np.float64
    assert rows.inputs["Contract"].dtype == object
    assert set(np.unique(rows.labels)) == {0.0, 1.0}
    unlabelled = source(scenario).batch_rows(batch_id(scenario, "stable_1"))
    assert unlabelled is not None and np.isnan(unlabelled.labels).all()
    assert rows.record_ids is not None and len(set(rows.record_ids)) == len(rows)


def test_each_batch_was_scored_on_arrival_by_the_champion_of_that_moment(scenario):
    concept = batch_id(scenario, "concept")
    rows = source(scenario).batch_rows(concept)
    with scenario.db.read_session() as session:
        stored = session.exec(select(Prediction).where(Prediction.run_id == f"ingest-b{concept}")).all()
    assert {p.model_version for p in stored} == {"v1"} and concept not in trained_batches(scenario.db, "v1")
    assert len(stored) == len(rows) - int((rows.inputs["tenure"] <= 0).sum())  # no-history rule
    assert {p.record_id for p in stored} <= set(rows.record_ids.tolist())
    with scenario.db.read_session() as session:
        threshold = session.exec(select(ModelVersion.threshold).where(ModelVersion.version == "v1")).one()
    assert all(p.flagged == (p.probability >= threshold) for p in stored)


def test_a_model_never_measures_the_rows_it_learnt_from(scenario):
    telco = batch_id(scenario, "telco")
    serving = scenario.runner.services["registry"].serving()
    assert telco in trained_batches(scenario.db, serving.version)
    rows = source(scenario).batch_rows(telco)
    unseen = unseen_rows(serving.model, rows.ids, rows.as_of)
    fitted = serving.model.trained_on(rows.ids)
    assert not unseen[fitted].any()  # its training clients at its training date
    assert unseen[~fitted].all()  # the test split's clients


def test_a_batch_without_the_model_features_brings_outcomes_only(scenario):
    model = scenario.runner.services["registry"].serving().model
    batch = get_batch(scenario.db, batch_id(scenario, "concept"))
    assert not outcomes_only(batch, model)
    batch.columns = {}
    assert outcomes_only(batch, model)


def test_the_monitoring_jobs_check_the_newest_batch_by_default(scenario):
    class Context:
        db, settings, params, services = scenario.db, scenario.settings, {}, scenario.runner.services

    found = monitored(Context(), nothing="")
    assert not isinstance(found, str)
    newest = max(b.id for b in [get_batch(scenario.db, i) for i in range(1, 50)] if b is not None)
    assert found.batch_ids == [newest]
