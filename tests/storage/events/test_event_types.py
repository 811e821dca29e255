"""The event_types lookup names usage event codes in features and reasons, whether it is
ingested before or after the events; a later lookup renames; a bad lookup stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from storage.db import Database
from storage.events.features import FeatureSpec, feature_description, features_as_of
from tests.storage.events.conftest import Ingest, rejected

CLIENTS = [{"client_id": "a", "region": "north"}, {"client_id": "b", "region": "south"}]
SUBSCRIPTIONS = [{"client_id": c, "start": "2020-01-01", "monthly_amount": 10} for c in ("a", "b")]
EVENTS = [{"account_id": c, "event_time": f"2020-02-{d:02d} 10:00:00", "event_type_id": code, "user_id": ""}
          for c, d, code in [("a", 3, 0), ("a", 4, 0), ("a", 5, 1), ("b", 6, 1), ("b", 7, 2)]]
USAGE_MAPPING = {"client_id": "account_id", "timestamp": "event_time", "event_type": "event_type_id"}
NAMES_MAPPING = {"event_type": "event_type_id", "name": "event_type_name"}
NAMES = [{"event_type_id": 0, "event_type_name": "post"}, {"event_type_id": 1, "event_type_name": "like"},
         {"event_type_id": 2, "event_type_name": "unfriend"}]
AS_OF = "2020-03-01"


def _store(ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    ingest("subscriptions", SUBSCRIPTIONS)


def _counts(db: Database) -> dict[str, list[float]]:
    frame = features_as_of(db, AS_OF, windows=(28,))
    return {c[len("usage_"):-len("_28d")]: frame[c].tolist() for c in frame.columns
            if c.startswith("usage_") and c.endswith("_28d") and "_trend_" not in c and "_value_" not in c}


@pytest.mark.parametrize("names_first", [True, False])
def test_features_use_the_names_whichever_table_came_first(db: Database, ingest: Ingest, names_first: bool) -> None:
    _store(ingest)
    steps = [lambda: ingest("event_types", NAMES, mapping=NAMES_MAPPING),
             lambda: ingest("usage", EVENTS, mapping=USAGE_MAPPING)]
    for step in steps if names_first else steps[::-1]:
        step()
    assert _counts(db) == {"post": [2.0, 0.0], "like": [1.0, 1.0], "unfriend": [0.0, 1.0]}


def test_reasons_name_the_event_type() -> None:
    spec = FeatureSpec((28,), ("like",))
    assert feature_description("usage_like_28d", 3.0, spec=spec) == "3 'like' events in the last 28 days"


def test_usage_without_names_keeps_its_codes_and_says_how_to_name_them(db: Database, ingest: Ingest) -> None:
    _store(ingest)
    report = ingest("usage", EVENTS, mapping=USAGE_MAPPING)
    assert any("--kind event_types" in note for note in report.notes)
    assert set(_counts(db)) == {"0", "1", "2"}


def test_a_later_lookup_renames_without_touching_the_events(db: Database, ingest: Ingest) -> None:
    _store(ingest)
    ingest("usage", EVENTS, mapping=USAGE_MAPPING)
    first = ingest("event_types", NAMES, mapping=NAMES_MAPPING)
    second = ingest("event_types", [{"event_type_id": 1, "event_type_name": "thumbs_up"},
                                    {"event_type_id": 3, "event_type_name": "reply"}], mapping=NAMES_MAPPING)
    assert (first.inserted, first.replaced) == (3, 0)
    assert (second.inserted, second.replaced) == (1, 1)
    assert "event type names" in second.summary() and "1 renamed" in second.summary()
    assert _counts(db) == {"post": [2.0, 0.0], "thumbs_up": [1.0, 1.0], "unfriend": [0.0, 1.0]}


def test_a_name_equal_to_an_unnamed_code_adds_the_two_up(db: Database, ingest: Ingest) -> None:
    # Code 0 is named "2" while code 2 has no name: both are one type "2" (one row per client and type)
    _store(ingest)
    ingest("usage", EVENTS, mapping=USAGE_MAPPING)
    ingest("event_types", [{"event_type_id": 0, "event_type_name": "2"}], mapping=NAMES_MAPPING)
    assert _counts(db) == {"2": [2.0, 1.0], "1": [1.0, 1.0]}




@pytest.mark.parametrize(("rows", "problem", "words"), [
    ([{"event_type_id": 1, "event_type_name": "like"}, {"event_type_id": 1, "event_type_name": "love"}],
     "duplicate_code", "each code is named once"),
    ([{"event_type_id": 1, "event_type_name": "like"}, {"event_type_id": 2, "event_type_name": "like"}],
     "duplicate_name", "'like' for codes 1, 2"),
    ([{"event_type_id": 1, "event_type_name": ""}, {"event_type_id": 2, "event_type_name": "x"}],
     "missing_value", "(name) is empty"),
])
def test_bad_lookups_are_refused_whole(db: Database, ingest: Ingest, rows: list[dict[str, Any]], problem: str,
                                       words: str) -> None:
    error = rejected(db, lambda: ingest("event_types", rows, mapping=NAMES_MAPPING))
    assert error.details["problem"] == problem and words in str(error)


def test_a_name_already_used_by_another_stored_code_isrejected(db: Database, ingest: Ingest) -> None:
    ingest("event_types", NAMES, mapping=NAMES_MAPPING)
    error = rejected(db, lambda: ingest("event_types", [{"event_type_id": 7, "event_type_name": "like"}],
                                        mapping=NAMES_MAPPING))
    assert "'like' for codes 1, 7" in str(error) and "already stored" in str(error)


def test_a_lookup_without_its_columns_names_them(db: Database, ingest: Ingest) -> None:
    error = rejected(db, lambda: ingest("event_types", [{"id": 1, "label": "like"}]))
    assert error.details["problem"] == "missing_column" and "--map event_type=COLUMN" in str(error)
