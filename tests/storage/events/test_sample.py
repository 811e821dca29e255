"""The shipped event sample is reproducible from its seed and ingests cleanly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from storage.db import Database
from storage.events.features import features_as_of
from storage.events.ingest import ingest_events
from storage.events.labels import labels_as_of
from storage.events.mapping import load_mapping_file
from storage.events.sample import KIND_FILES, SAMPLE_DIR, generate, write_sample


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, again, other = generate(clients=12, seed=5), generate(clients=12, seed=5), generate(clients=12, seed=6)
    for kind in KIND_FILES:
        pd.testing.assert_frame_equal(first[kind], again[kind])
    assert not first["usage"].equals(other["usage"])


def test_shipped_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = write_sample(tmp_path)
    for path in written.values():
        shipped = SAMPLE_DIR / path.name
        assert _digest(path) == _digest(shipped), f"{shipped} differs; regenerate with python -m storage.events.sample"
    total = sum((SAMPLE_DIR / name).stat().st_size for name in KIND_FILES.values())
    assert total < 4 * 1024 * 1024


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Database:
    db = Database(f"sqlite:///{(tmp_path_factory.mktemp('sample') / 'store.db').as_posix()}")
    for kind, name in KIND_FILES.items():
        mapping = load_mapping_file(SAMPLE_DIR / "mapping.toml", kind)
        ingest_events(db, SAMPLE_DIR / name, kind=kind, mapping=mapping)
    return db


def test_sample_ingests_with_its_mapping(sample_db: Database) -> None:
    counts = sample_db.row_counts()
    assert counts["event_client"] == 300 and counts["batch"] == 5
    assert counts["event_usage"] > 50_000 and counts["event_ticket"] > 1000 and counts["event_purchase"] > 100


def test_sample_churners_look_different_before_they_leave(sample_db: Database) -> None:
    # Given month-end dates across the sample, the clients who churn next month
    rows = []
    for month in pd.date_range("2024-01-01", "2025-10-01", freq="3MS"):
        features = features_as_of(sample_db, month, windows=(30,))
        labels = labels_as_of(sample_db, month, client_ids=features["client_id"].tolist())
        rows.append(features.assign(label=labels.to_numpy()))
    frame = pd.concat(rows)
    means = frame.groupby("label")[["events_30d", "tickets_30d"]].mean()
    # Then they used the product less and opened more tickets than those who stayed
    assert 0.01 < frame["label"].mean() < 0.1
    assert means.loc[1, "events_30d"] < 0.8 * means.loc[0, "events_30d"]
    assert means.loc[1, "tickets_30d"] > means.loc[0, "tickets_30d"]
    clients = pd.read_csv(SAMPLE_DIR / "clients.csv")
    subs = pd.read_csv(SAMPLE_DIR / "subscriptions.csv")
    ended = subs.groupby("customer_id")["ended"].apply(lambda s: s.notna().all())
    assert 0.3 < ended.mean() < 0.65
    assert (ended & clients.set_index("customer_id")["cancelled_on"].isna()).any()  # churn by subscription end only
