"""A retention team's monthly stream through the command line, on SQLite and PostgreSQL.

Three month-end exports of Telco-like rows, each with an as-of column (one row per active
client; clients who left are gone from the next month, new ones join).  January's export
carries the next-month label; February's outcomes arrive as a labels-only file *after*
March's export; March's outcomes follow from a churn list complete to the end of April.
Training must then see each client at each month with that month's features and outcome."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
from sqlmodel import col, select

import churnguard
from storage.db import Database
from storage.schema import Schema
from storage.snapshots import AS_OF, as_of_dates, departures, snapshot_frame
from storage.tables import ClientRecord
from tests.conftest import TELCO

SCHEMA = Schema("customerID", "Churn", "Yes", as_of_column="snapshot")
MONTHS = [datetime(2024, 1, 31), datetime(2024, 2, 29), datetime(2024, 3, 31)]
SPELLING = ["%Y-%m-%d", "%Y-%m-%d", "%d.%m.%Y"]  # March's export writes its dates day-first
COLUMNS = ["customerID", "gender", "SeniorCitizen", "Partner", "tenure", "Contract", "MonthlyCharges"]


def stream() -> tuple[list[pd.DataFrame], dict[str, datetime]]:
    """Month-end snapshots (month m = 0, 1, 2) and every departure date (February to April)."""
    base = pd.read_csv(TELCO, dtype=str).iloc[:300][[*COLUMNS, "Churn"]].reset_index(drop=True)
    base["tenure"] = base["tenure"].astype(int)
    active = list(range(240))
    joining = [list(range(240, 270)), list(range(270, 300))]
    left: dict[str, datetime] = {}
    snapshots = []
    for month in range(3):
        rows = base.loc[active, COLUMNS].copy()
        rows["tenure"] += month
        rows["TotalCharges"] = (rows["MonthlyCharges"].astype(float) * rows["tenure"]).round(2)
        leaving = [i for i in active if (base.loc[i, "Churn"] == "Yes" and i % 2 == month % 2) or
                   (month == 2 and i % 10 == 0)]
        for i in leaving:
            left[base.loc[i, "customerID"]] = datetime(2024, month + 2, 1 + i % 27, 9, 30)
        rows["Churn"] = ["Yes" if i in leaving else "No" for i in active]
        rows.insert(1, "snapshot", MONTHS[month].strftime(SPELLING[month]))
        snapshots.append(rows.reset_index(drop=True))
        active = [i for i in active if i not in leaving] + (joining[month] if month < 2 else [])
    return snapshots, left


@pytest.fixture
def cli(home, db_url, monkeypatch, capsys):
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", db_url)
    monkeypatch.setenv("CHURNGUARD_AS_OF_COLUMN", "snapshot")

    def run(*args: str) -> dict:
        code = churnguard.main([*args, "--json"])
        out = capsys.readouterr()
        assert code == 0, out.err
        return json.loads(out.out)  # type: ignore[no-any-return]

    return run


def test_a_monthly_stream_gives_each_client_at_each_month_its_features_and_outcome(cli, db_url, tmp_path):
    (jan, feb, mar), left = stream()
    files = {}
    for name, frame in (("jan", jan), ("feb", feb.drop(columns="Churn")), ("mar", mar.drop(columns="Churn")),
                        ("feb-outcomes", feb[["customerID", "snapshot", "Churn"]])):
        files[name] = tmp_path / f"{name}.csv"
        frame.to_csv(files[name], index=False)
    churn_list = tmp_path / "departures.csv"
    pd.DataFrame({"customerID": list(left), "churn_date": [d.isoformat(" ") for d in left.values()]}).to_csv(
        churn_list, index=False)

    reports = {name: cli("ingest", str(files[name])) for name in ("jan", "feb", "mar", "feb-outcomes")}
    listed = cli("ingest", str(churn_list), "--kind", "churns", "--as-of", "2024-04-30")
    status = cli("status")

    for name, month in (("jan", 0), ("feb", 1), ("mar", 2), ("feb-outcomes", 1)):
        assert reports[name]["as_of"] == {"first": MONTHS[month].isoformat(), "last": MONTHS[month].isoformat(),
                                          "count": 1}
        assert reports[name]["as_of_source"] == "column" and "snapshot" not in reports[name]["columns"]
    assert reports["feb-outcomes"]["carried_clients"] == len(feb) and reports["feb-outcomes"]["skipped_clients"] == 0
    assert listed["clients"] == len(left) and listed["complete_until"].startswith("2024-04-30")
    assert status["as_of"]["dates"] == 3 and status["as_of"]["labelled_dates"] == 3

    db = Database(db_url)
    try:
        dates = as_of_dates(db, horizon_days=30)
        frame = snapshot_frame(db, SCHEMA, horizon_days=30, labelled_only=True)
        gone = departures(db, horizon_days=30)
        with db.read_session() as session:
            latest = session.exec(select(ClientRecord).where(col(ClientRecord.is_latest).is_(True))).all()
        current = {r.client_id: r.as_of for r in latest}
    finally:
        db.dispose()

    truth = pd.concat([m.assign(**{AS_OF: MONTHS[i]}) for i, m in enumerate((jan, feb, mar))], ignore_index=True)
    assert [(d.as_of, d.rows, d.labelled, d.positives) for d in dates] == [
        (MONTHS[i], len(m), len(m), int((m["Churn"] == "Yes").sum())) for i, m in enumerate((jan, feb, mar))]
    # One row per client and month, each with that month's features and next-month outcome,
    # whichever way the outcome arrived (in the export, later by file, or from the churn list).
    assert len(frame) == len(truth)
    merged = frame.merge(truth, on=["customerID", AS_OF], suffixes=("", "_true"), validate="one_to_one")
    assert len(merged) == len(truth)
    assert (merged["tenure"] == merged["tenure_true"].astype(float)).all()
    assert (merged["TotalCharges"] == merged["TotalCharges_true"]).all()
    assert (merged["Churn"] == (merged["Churn_true"] == "Yes").astype(int)).all()
    assert "snapshot" not in frame.columns
    # Each client's current record is its newest month, though February's outcomes came last.
    newest = truth.groupby("customerID")[AS_OF].max()
    assert current == {cid: moment.to_pydatetime() for cid, moment in newest.items()}
    assert {cid: d.left_on for cid, d in gone.items()} == left
