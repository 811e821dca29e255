"""The monthly CRM export stream of issue 10 is a trustworthy measuring stick.

What must hold for the stream to judge ChurnGuard: its labels are what the simulator's
subscriptions say happened next month; no row holds anything from after its date; only
clients active at the date are in a file; and a seed always writes the same bytes.  The
checks read the raw CSV files with the ``csv`` module and plain ``datetime`` arithmetic, not
with the generator's own pandas code, so a shared mistake cannot pass unnoticed.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from storage.db import Database
from storage.events.labels import labels_as_of
from tests.storage.events.monthly_stream import (
    DATE_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    MonthlyStream,
    RawTables,
    ingest_event_month,
    read_month,
    resample_of,
    snapshot,
    write_event_months,
    write_monthly_stream,
)
from tests.storage.events.simulator_tables import EVENT_TYPES

SMALL: dict[str, Any] = {"seed": 3, "accounts": 150, "months": 4, "warmup_months": 1}


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> MonthlyStream:
    return write_monthly_stream(tmp_path_factory.mktemp("stream"), **SMALL)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _plan_terms(stream: MonthlyStream) -> dict[str, list[tuple[date, date]]]:
    """Account id -> its plan terms (start, end), from subscription.csv (add-ons have a quantity)."""
    terms: dict[str, list[tuple[date, date]]] = defaultdict(list)
    for row in _rows(stream.tables.subscription):
        if row["quantity"] == "":
            terms[row["account_id"]].append((_day(row["start_date"]), _day(row["end_date"])))
    return terms


def _active(stream: MonthlyStream, day: date) -> set[str]:
    return {row["account_id"] for row in _rows(stream.tables.subscription)
            if _day(row["start_date"]) <= day < _day(row["end_date"])}


def test_the_stream_has_one_file_per_month_end_and_the_export_columns(stream: MonthlyStream) -> None:
    assert [m.as_of for m in stream.months] == [date(2020, 2, 29), date(2020, 3, 31), date(2020, 4, 30),
                                                date(2020, 5, 31)]
    for month in stream.months:
        rows = _rows(month.path)
        assert list(rows[0]) == stream.columns
        assert {row[DATE_COLUMN] for row in rows} == {month.as_of.isoformat()}
        assert len(rows) == month.clients == len({row[ID_COLUMN] for row in rows})
        assert month.churners == sum(row[LABEL_COLUMN] == "Yes" for row in rows)
        assert 0.05 < month.churn_rate < 0.3  # the simulator's 10-15 % a month, give or take noise
    assert stream.truth()[0] == {"number": 1, "as_of": "2020-02-29", "file": stream.months[0].path.name,
                                 "labelled": True, "clients": stream.months[0].clients,
                                 "churners": stream.months[0].churners}


def test_labels_agree_with_the_simulators_subscriptions(stream: MonthlyStream) -> None:
    """Yes exactly when a plan term of the client ends in (D, next month-end] and no term starts
    where it ends; every churner of a month is gone from the next month's file."""
    terms = _plan_terms(stream)
    checked_yes = 0
    for month, following in pairwise(stream.months):
        window_end = following.as_of
        for row in _rows(month.path):
            mine = terms[row[ID_COLUMN]]
            starts = {start for start, _ in mine}
            ends_unrenewed = [end for _, end in mine if month.as_of < end <= window_end and end not in starts]
            assert (row[LABEL_COLUMN] == "Yes") == bool(ends_unrenewed), (month.as_of, row[ID_COLUMN], mine)
            checked_yes += row[LABEL_COLUMN] == "Yes"
        churned = {row[ID_COLUMN] for row in _rows(month.path) if row[LABEL_COLUMN] == "Yes"}
        assert churned and not churned & {row[ID_COLUMN] for row in _rows(following.path)}
    assert checked_yes > 30


def test_the_last_month_is_labelled_from_the_extra_simulated_month(stream: MonthlyStream) -> None:
    """The simulation runs a month past the last export, so its renewals are decided too."""
    last = stream.months[-1]
    assert stream.tables.end > last.as_of + timedelta(days=28)
    terms = _plan_terms(stream)
    window_end = date(2020, 6, 30)
    for row in _rows(last.path):
        mine = terms[row[ID_COLUMN]]
        starts = {start for start, _ in mine}
        left = any(last.as_of < end <= window_end and end not in starts for _, end in mine)
        assert (row[LABEL_COLUMN] == "Yes") == left


def test_only_clients_active_at_the_date_are_in_a_file(stream: MonthlyStream) -> None:
    """Departed clients and clients who have not joined yet are absent; every active one is there."""
    everyone = {row["id"] for row in _rows(stream.tables.account)}
    for month in stream.months:
        ids = {row[ID_COLUMN] for row in _rows(month.path)}
        active = _active(stream, month.as_of)
        assert ids == active
        assert everyone - ids  # some have left or not joined yet: the check means something
    # joiners of the last month's following month are in no file
    later = {row["account_id"] for row in _rows(stream.tables.subscription)
             if _day(row["start_date"]) > stream.months[-1].as_of} - _active(stream, stream.months[-1].as_of)
    assert later and not later & {row[ID_COLUMN] for m in stream.months for row in _rows(m.path)}


def test_a_row_recomputed_from_tables_cut_at_its_date_is_identical(stream: MonthlyStream) -> None:
    """No future data: from tables holding only what was known at the close of D (running terms
    without an end date), the same rows come out, byte for byte."""
    raw = RawTables.read(stream.tables)
    for month in stream.months:
        cut = raw.truncated(month.as_of)
        assert len(cut.events) < len(raw.events) and len(cut.subscriptions) < len(raw.subscriptions)
        assert cut.subscriptions["end"].isna().any()
        again = snapshot(cut, month.as_of).to_csv(index=False, lineterminator="\n")
        written = read_month(month).drop(columns=[LABEL_COLUMN]).to_csv(index=False, lineterminator="\n")
        assert again == written


def test_features_match_a_plain_recount_of_the_raw_events(stream: MonthlyStream) -> None:
    """Counts of the calendar month ending at D and the month before, days since the last event,
    tenure and age, recomputed for sampled rows with plain Python (windows edge-exact)."""
    events: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    names = {row["event_type_id"]: row["event_type_name"] for row in _rows(stream.tables.event_type)}
    for row in _rows(stream.tables.event):
        events[row["account_id"]].append((datetime.fromisoformat(row["event_time"]), names[row["event_type_id"]]))
    births = {row["id"]: _day(row["date_of_birth"]) for row in _rows(stream.tables.account)}
    terms = _plan_terms(stream)
    rng = random.Random(5)
    for month in stream.months:
        d = month.as_of
        close = datetime.combine(d + timedelta(days=1), datetime.min.time())
        first = datetime.combine(d.replace(day=1), datetime.min.time())
        before = datetime.combine((d.replace(day=1) - timedelta(days=1)).replace(day=1), datetime.min.time())
        rows = _rows(month.path)
        for row in rng.sample(rows, 25):
            mine = events[row[ID_COLUMN]]
            for name in EVENT_TYPES:
                assert int(row[f"{name}_last_month"]) == sum(first <= t < close and n == name for t, n in mine)
                assert int(row[f"{name}_prev_month"]) == sum(before <= t < first and n == name for t, n in mine)
            past = [t for t, _ in mine if t < close]
            expected = "" if not past else str((d - max(past).date()).days)
            assert row["days_since_last_event"] == expected
            assert int(row["tenure_days"]) == (d - min(s for s, _ in terms[row[ID_COLUMN]])).days
            born = births[row[ID_COLUMN]]
            assert int(row["age"]) == d.year - born.year - ((d.month, d.day) < (born.month, born.day))


def test_the_same_seed_writes_the_same_bytes(stream: MonthlyStream, tmp_path: Path) -> None:
    again = write_monthly_stream(tmp_path / "again", **SMALL)
    for first, second in zip(stream.months, again.months, strict=True):
        assert first.path.read_bytes() == second.path.read_bytes()
    other = write_monthly_stream(tmp_path / "other", **{**SMALL, "seed": 4})
    assert other.months[0].path.read_bytes() != stream.months[0].path.read_bytes()


def test_unlabelled_months_and_file_names_are_options(tmp_path: Path) -> None:
    made = write_monthly_stream(tmp_path, seed=1, accounts=60, months=3, warmup_months=0, unlabelled=[2, -1],
                                name="export-{as_of:%Y%m}-{number}.csv")
    assert [m.path.name for m in made.months] == ["export-202001-1.csv", "export-202002-2.csv",
                                                  "export-202003-3.csv"]
    assert [m.labelled for m in made.months] == [True, False, False]
    assert LABEL_COLUMN in read_month(made.months[0]).columns
    assert LABEL_COLUMN not in read_month(made.months[1]).columns
    assert made.months[2].churners > 0  # the truth is still known from the simulation
    with pytest.raises(ValueError, match="unlabelled months"):
        write_monthly_stream(tmp_path / "bad", accounts=10, months=2, unlabelled=[3])
    with pytest.raises(ValueError, match="same name"):
        write_monthly_stream(tmp_path / "same", accounts=10, months=2, name="one.csv")


def test_a_resample_of_the_months_has_one_row_per_client_and_no_label(stream: MonthlyStream, tmp_path: Path) -> None:
    path = resample_of(stream.months[:3], tmp_path / "resample.csv", rows=120, seed=2)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(frame) == 120 and frame[ID_COLUMN].is_unique
    assert LABEL_COLUMN not in frame.columns
    assert set(frame[DATE_COLUMN]) <= {m.as_of.isoformat() for m in stream.months[:3]}
    assert len(set(frame[DATE_COLUMN])) == 3
    pool = pd.concat([read_month(m) for m in stream.months[:3]])
    keyed = pool.drop(columns=[LABEL_COLUMN]).set_index([ID_COLUMN, DATE_COLUMN])
    for _, row in frame.head(20).iterrows():  # every row is a real row of its month
        assert keyed.loc[(row[ID_COLUMN], row[DATE_COLUMN])].tolist() == row.drop([ID_COLUMN, DATE_COLUMN]).tolist()


def test_event_months_hold_what_was_known_and_churnguard_labels_agree(stream: MonthlyStream, tmp_path: Path) -> None:
    """The same months for the event-history path: folders ingested in order with fightchurn.toml
    hold exactly the raw rows dated up to each month-end, and ChurnGuard's own event labels at
    each month-end (horizon = the days of the next month) equal the stream's labels."""
    event_months = write_event_months(stream, tmp_path / "events")
    db = Database(f"sqlite:///{(tmp_path / 'store.db').as_posix()}").create_schema()
    raw = RawTables.read(stream.tables)
    try:
        for event_month in event_months:
            ingest_event_month(db, event_month)
            counts = db.row_counts()
            cut = raw.truncated(event_month.as_of)
            assert counts["event_usage"] == len(cut.events)
            assert counts["event_subscription"] == len(cut.subscriptions)
            assert counts["event_client"] == len(cut.accounts)
        for month, following in pairwise(stream.months):
            frame = read_month(month)
            horizon = (following.as_of - month.as_of).days
            theirs = labels_as_of(db, month.as_of, horizon_days=horizon, client_ids=frame[ID_COLUMN].tolist(),
                                  known_until=stream.months[-1].as_of + timedelta(days=1))
            assert theirs.tolist() == (frame[LABEL_COLUMN] == "Yes").astype(int).tolist()
    finally:
        db.dispose()
