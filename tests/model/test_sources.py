"""The data-source seam: rows of a batch typed like training rows, and which rows a model never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.sources import EVENTS, SNAPSHOTS, SnapshotSource, SourceConfig, source_kind, unseen_rows
from storage.ingest import ingest_file
from storage.schema import Schema


def test_a_blank_text_cell_stays_missing_instead_of_becoming_a_level(db, tmp_path: Path):
    # A blank country must reach drift and scoring as missing, as in training, not as a new level "nan".
    path = tmp_path / "batch.csv"
    path.write_text("id,country,spend,Churn\n1,US,3,No\n2,,4,Yes\n3,DE,5,No\n")
    report = ingest_file(db, path, schema=Schema("id", "Churn", "Yes"))
    source = SnapshotSource(db, SourceConfig(id_column="id", label_column="Churn"), Schema("id", "Churn", "Yes"))

    rows = source.batch_rows(report.batch_id)

    assert rows is not None
    country = rows.inputs["country"].tolist()
    assert country[0] == "US" and country[2] == "DE" and pd.isna(country[1])
    assert rows.labels.tolist() == [0.0, 1.0, 0.0]


class _Model:
    """The two things ``unseen_rows`` reads from a model."""

    def __init__(self, trained_ids: set[str] | None, dates: list[str]):
        self.trained_ids, self.metadata_ = trained_ids, {"training_dates": dates}

    def trained_on(self, ids):
        return None if self.trained_ids is None else np.array([i in self.trained_ids for i in ids])

    def newest_training_date(self):
        dates = self.metadata_["training_dates"]
        return max(pd.Timestamp(d) for d in dates) if dates else None


def test_a_client_it_trained_on_is_new_to_a_model_again_after_its_training_period():
    model = _Model({"a", "b"}, ["2024-01-31", "2024-02-29"])
    ids = np.array(["a", "a", "c"], dtype=object)
    dates = np.array(["2024-02-29", "2024-03-31", "2024-02-29"], dtype="datetime64[ns]")

    assert unseen_rows(model, ids, dates).tolist() == [False, True, True]  # type: ignore[arg-type]


def test_a_model_that_does_not_know_its_clients_counts_its_training_period_as_seen():
    model = _Model(None, ["2024-02-29"])
    dates = np.array(["2024-02-29", "2024-03-31"], dtype="datetime64[ns]")

    assert unseen_rows(model, np.array(["a", "b"]), dates).tolist() == [False, True]  # type: ignore[arg-type]
    assert unseen_rows(_Model(None, []), np.array(["a"]), dates[:1]).tolist() == [False]  # type: ignore[arg-type]


def test_auto_learns_from_the_client_table_when_it_has_labels(db, tmp_path: Path):
    assert source_kind(db, SourceConfig()) == SNAPSHOTS  # an empty store: the client table
    path = tmp_path / "batch.csv"
    path.write_text("id,spend,Churn\n1,3,No\n2,4,Yes\n")
    ingest_file(db, path, schema=Schema("id", "Churn", "Yes"))
    assert source_kind(db, SourceConfig()) == SNAPSHOTS
    assert source_kind(db, SourceConfig(training_source="clients")) == SNAPSHOTS
    assert EVENTS != SNAPSHOTS


def test_event_rows_are_recomputed_for_a_model_with_another_feature_spec(db):
    """The shadow challenger scores exactly the champion's clients at the champion's date, with
    its own feature columns (``same_rows``); a model with the same spec reuses the rows."""
    from model.sources import EventSource
    from storage.errors import UserError
    from storage.events.features import FeatureSpec, features_as_of
    from storage.events.labels import GROUP_COLUMN
    from tests.model.event_store import ingest_sample

    ingest_sample(db)
    config = SourceConfig(training_source="events")
    moment = EventSource(db, config).scoring_date()
    types = FeatureSpec.from_dict(features_as_of(db, moment).attrs["spec"]).event_types
    champion = EventSource(db, config, spec=FeatureSpec(windows=(7, 30, 90), event_types=types))
    shadow = EventSource(db, config, spec=FeatureSpec(windows=(14,), event_types=types[:1]))
    [rows] = champion.arrivals([])
    rows = rows.subset(np.arange(len(rows)) % 3 == 0)  # some of them, in the champion's order
    rows.labels = np.arange(len(rows), dtype=float)  # carried as they are

    mine = shadow.same_rows(rows, champion)

    assert list(mine.ids) == list(rows.ids) and mine.when == rows.when and list(mine.labels) == list(rows.labels)
    assert "events_14d" in mine.inputs.columns and "events_30d" not in mine.inputs.columns
    assert "events_30d" in rows.inputs.columns
    expected = features_as_of(db, moment, spec=shadow.spec, client_ids=list(rows.ids)).set_index(GROUP_COLUMN)
    assert (mine.raw["events_14d"].to_numpy() == expected.loc[list(rows.ids), "events_14d"].to_numpy()).all()
    assert champion.same_rows(rows, EventSource(db, config, spec=champion.spec)) is rows
    assert SnapshotSource(db, config).same_rows(rows, champion) is rows
    rows.when = None
    with pytest.raises(UserError, match="without their date"):
        shadow.same_rows(rows, champion)
