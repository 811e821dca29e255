"""Batch frames and scores on arrival, read from the month-by-month story (read-only)."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.data import (
    TrainedOnBatch,
    align,
    batch_frame,
    outcomes_only,
    schema_or_none,
    score_batch,
    stored_batch_scores,
    trained_batches,
)


def batch_id(scenario, step: str) -> int:
    return scenario.steps[step].run("ingest").run.details["new_batch_ids"][0]


def test_a_batch_frame_is_typed_like_the_training_frame(scenario):
    schema = schema_or_none(scenario.db, scenario.settings)
    frame = batch_frame(scenario.db, schema, batch_id(scenario, "concept"))
    assert len(frame) == 1000
    assert "customerID" not in frame.features.columns and "Churn" not in frame.features.columns
    assert frame.features["MonthlyCharges"].dtype == np.float64
    assert frame.features["Contract"].dtype == object
    assert set(np.unique(frame.labels)) == {0.0, 1.0}
    unlabelled = batch_frame(scenario.db, schema, batch_id(scenario, "stable_1"))
    assert np.isnan(unlabelled.labels).all()
    assert len(set(frame.record_ids)) == len(frame)


def test_each_batch_was_scored_on_arrival_by_the_champion_of_that_moment(scenario):
    schema = schema_or_none(scenario.db, scenario.settings)
    concept = batch_id(scenario, "concept")
    scores = stored_batch_scores(scenario.db, concept)
    assert scores.model_version == "v1" and concept not in trained_batches(scenario.db, "v1")
    frame = batch_frame(scenario.db, schema, concept)
    labels, probabilities, flagged = align(frame, scores)
    assert len(labels) == len(probabilities) == len(flagged) == len(scores)
    assert len(scores) == len(frame) - int((frame.features["tenure"] <= 0).sum())  # no-history rule
    assert np.array_equal(flagged, probabilities >= scores.threshold)


def test_a_model_never_scores_a_batch_it_learnt_from(scenario):
    schema = schema_or_none(scenario.db, scenario.settings)
    telco = batch_id(scenario, "telco")
    serving = scenario.runner.services["registry"].serving()
    assert telco in trained_batches(scenario.db, serving.version)
    with pytest.raises(TrainedOnBatch, match=f"trained on batch #{telco}"):
        score_batch(scenario.db, scenario.settings, serving, batch_frame(scenario.db, schema, telco), run_id="x")


def test_a_batch_without_the_model_features_brings_outcomes_only(scenario):
    from jobs.data import get_batch

    model = scenario.runner.services["registry"].serving().model
    batch = get_batch(scenario.db, batch_id(scenario, "concept"))
    assert not outcomes_only(batch, model)
    batch.columns = {}
    assert outcomes_only(batch, model)
