"""The storage commands through the real command line: ``ingest``, ``schema``, ``status``.

Each test runs against a SQLite file and a PostgreSQL schema (CHURNGUARD_DATABASE_URL)."""

from __future__ import annotations

import json

import pytest

import churnguard
from storage.db import Database
from storage.tables import ChampionEvent, ModelVersion
from tests.conftest import DATA, TELCO


@pytest.fixture
def cli(home, db_url, monkeypatch, capsys):
    """Run ``churnguard ARGS``; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", db_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = churnguard.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def store(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SMALL = "customerID,tenure,plan,Churn\nA,1,basic,Yes\nB,20,pro,No\nC,5,pro,No\n"


def test_telco_ingest_repeat_and_schema_conflict(cli, store):
    code, out, _ = cli("ingest", str(TELCO), "--json")
    report = json.loads(out)

    assert code == 0
    assert {"batch_id", "rows", "columns", "labelled", "positives", "warnings", "duplicate_of"} <= set(report)
    assert (report["rows"], report["positives"], report["labelled"]) == (7043, 1869, True)
    assert report["columns"]["TotalCharges"] == "numeric"
    assert report["warnings"] == [] and report["duplicate_of"] is None
    counts = store.row_counts()

    code, out, _ = cli("ingest", str(TELCO))
    assert code == 0
    assert f"Nothing changed: WA_Fn-UseC_-Telco-Customer-Churn.csv is identical to batch #{report['batch_id']}" in out
    code, out, _ = cli("ingest", str(TELCO), "--json")
    assert json.loads(out)["duplicate_of"] == report["batch_id"]

    code, out, err = cli("ingest", "--id-column", "CLIENTNUM", str(DATA / "Churn_Modelling.csv"))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("churnguard: ")
    assert "remembers id column 'customerID'" in err and "--id-column" in err and "CHURNGUARD_HOME" in err
    assert store.row_counts() == counts


def test_rejection_prints_one_line_or_json_details_and_stores_nothing(cli, store, tmp_path):
    path = write(tmp_path, "dupes.csv", "customerID,tenure,Churn\nA,1,Yes\nB,2,No\nA,3,No\n")
    before = store.row_counts()

    code, out, err = cli("ingest", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "repeat in column 'customerID'" in err and "'A' at data rows 1, 3" in err

    code, out, _ = cli("ingest", path, "--json")
    payload = json.loads(out)
    assert code == 2
    assert payload["problem"] == "duplicate_ids"
    assert payload["column"] == "customerID" and payload["rows"] == [1, 3] and payload["row_kind"] == "data row"
    assert "repeat" in payload["error"]
    assert store.row_counts() == before


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("CHURNGUARD_MAX_ROWS", "2", "too_many_rows"),
    ("CHURNGUARD_MAX_COLUMNS", "3", "too_many_columns"),
    ("CHURNGUARD_MAX_FILE_MB", "0.00001", "too_big"),
])
def test_limits_come_from_settings(cli, store, tmp_path, monkeypatch, variable, value, problem):
    monkeypatch.setenv(variable, value)

    code, out, _ = cli("ingest", write(tmp_path, "small.csv", SMALL), "--json")

    assert code == 2
    assert json.loads(out)["problem"] == problem
    assert variable in json.loads(out)["error"]
    assert store.row_counts()["batch"] == 0


def test_missing_file_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("ingest", str(tmp_path / "nope.csv"))

    assert code == 2 and "no such file" in err


def test_text_summary_lists_warnings(cli, tmp_path):
    cli("ingest", write(tmp_path, "jan.csv", SMALL))

    code, out, _ = cli("ingest", write(tmp_path, "feb.csv", "customerID,tenure,region,Churn\nD,1,N,No\nE,2,S,No\n"))

    assert code == 0
    assert "Stored batch #2 from feb.csv: 2 rows, 2 columns, labelled, 0 churners (0.0%)." in out
    assert "  - region: new column, not in the previous batch #1" in out
    assert "  - plan: missing: the previous batch #1 had this column" in out
    assert "  - Churn: every client in this batch stayed" in out


def test_bankchurners_naive_bayes_columns_are_reported_as_leaking_when_not_ignored(home, capsys):
    # Leak detection does not depend on the engine: SQLite only, to keep the suite fast.
    code = churnguard.main(["ingest", str(DATA / "BankChurners.csv"), "--id-column", "CLIENTNUM",
                       "--label-column", "Attrition_Flag", "--positive-label", "Attrited Customer", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert (report["rows"], report["positives"]) == (10127, 1627)
    leaking = [w["column"] for w in report["warnings"] if "may leak the label" in w["message"]]
    assert len(leaking) == 2 and all(c.startswith("Naive_Bayes_Classifier_") for c in leaking)


def test_schema_before_and_after_the_first_batch(cli, tmp_path):
    code, out, _ = cli("schema")
    assert code == 0 and out.startswith("No schema remembered yet")
    code, out, _ = cli("schema", "--json")
    assert json.loads(out) == {"schema": None, "columns": {}}

    cli("ingest", write(tmp_path, "jan.csv", SMALL), "--ignore-columns", "plan")

    code, out, _ = cli("schema")
    assert code == 0
    assert "id column:       customerID" in out
    assert "label column:    Churn (churn = 'Yes', stayed = 'No')" in out
    assert "ignored columns: plan" in out
    payload = json.loads(cli("schema", "--json")[1])
    assert payload["schema"]["id_column"] == "customerID"
    assert payload["schema"]["ignore_columns"] == ["plan"]
    assert payload["columns"] == {"tenure": "numeric", "plan": "categorical"}


def test_status_counts_batches_clients_models_and_champion(cli, store, tmp_path):
    code, out, _ = cli("status", "--json")
    empty = json.loads(out)
    assert code == 0
    assert (empty["batches"], empty["clients"], empty["model_versions"], empty["champion"]) == (0, 0, 0, None)

    cli("ingest", write(tmp_path, "jan.csv", SMALL))
    cli("ingest", write(tmp_path, "feb.csv", "customerID,tenure,plan\nA,2,basic\nZ,1,pro\n"))
    with store.session() as session:
        session.add(ModelVersion(version="v1", artifact_dir="models/v1", sha256="0" * 64, threshold=0.3,
                                 seed=42, train_rows=3))
        session.add(ChampionEvent(version="v1", action="promote"))

    payload = json.loads(cli("status", "--json")[1])
    assert (payload["batches"], payload["clients"], payload["labelled_clients"]) == (2, 4, 3)
    assert payload["labelled_share"] == 0.75
    assert (payload["model_versions"], payload["champion"]) == (1, "v1")
    code, out, _ = cli("status")
    assert code == 0
    assert "clients:  4 (3 with a known outcome, 75.0%)" in out
    assert "champion: v1" in out
    assert "events:" not in out and payload["events"]["clients"] == 0


def test_status_counts_the_event_tables_and_says_up_to_when_they_are_complete(cli, tmp_path):
    from storage.events.sample import KIND_FILES, SAMPLE_DIR

    for kind in ("clients", "subscriptions", "usage"):
        code, _, err = cli("ingest", str(SAMPLE_DIR / KIND_FILES[kind]), "--kind", kind,
                           "--mapping", str(SAMPLE_DIR / "mapping.toml"))
        assert code == 0, err

    payload = json.loads(cli("status", "--json")[1])
    code, out, _ = cli("status")

    events = payload["events"]
    assert (events["clients"], events["purchases"], events["tickets"]) == (300, 0, 0)
    assert events["subscriptions"] > 300 and events["usage"] > 10_000
    assert events["data_end"].startswith("2025-12")
    assert code == 0 and "events:   300 clients" in out and "complete to 2025-12" in out


def test_ingest_as_of_dates_the_file_and_reports_the_dates_and_their_source(cli, store, tmp_path):
    code, out, _ = cli("ingest", write(tmp_path, "jan.csv", SMALL), "--as-of", "2024-01-31", "--json")
    report = json.loads(out)

    assert code == 0
    assert report["as_of"] == {"first": "2024-01-31T00:00:00", "last": "2024-01-31T00:00:00", "count": 1}
    assert report["as_of_source"] == "flag"
    code, out, _ = cli("ingest", write(tmp_path, "feb.csv", "customerID,tenure,plan\nA,2,basic\n"))
    assert code == 0 and "As of " in out and "(the ingest time)" in out


def test_the_as_of_column_setting_dates_rows_and_the_schema_remembers_it(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_AS_OF_COLUMN", " month ")
    code, out, err = cli("ingest", write(tmp_path, "m.csv", "customerID,month,tenure\nA,2024-01-31,1\n"
                                                            "A,2024-02-29,2\n"), "--json")
    assert code == 0, err
    assert json.loads(out)["as_of"]["count"] == 2 and json.loads(out)["as_of_source"] == "column"

    monkeypatch.delenv("CHURNGUARD_AS_OF_COLUMN")
    code, out, _ = cli("schema")
    assert "as-of column:    month" in out
    assert json.loads(cli("schema", "--json")[1])["schema"]["as_of_column"] == "month"


@pytest.mark.parametrize(("args", "message"), [
    (("--as-of", "yesterday"), "--as-of: 'yesterday' is not a date"),
    (("--as-of", "2199-01-01"), "in the future"),
    (("--kind", "usage", "--as-of", "2024-01-31"), "--as-of dates a client table or a churn list"),
])
def test_a_bad_as_of_is_one_clear_line_and_stores_nothing(cli, store, tmp_path, args, message):
    path = write(tmp_path, "jan.csv", SMALL)
    before = store.row_counts()

    code, out, err = cli("ingest", path, *args)

    assert code == 2 and out == "" and err.count("\n") == 1 and message in err
    assert store.row_counts() == before


def test_churn_lists_through_the_command_line(cli, store, tmp_path):
    cli("ingest", write(tmp_path, "jan.csv", SMALL), "--as-of", "2024-01-31")
    path = write(tmp_path, "left.csv", "cust,left\nA,2024-02-10\n")

    code, out, err = cli("ingest", path, "--kind", "churns", "--map", "client_id=cust,churn_date=left",
                         "--as-of", "2024-02-29", "--json")
    report = json.loads(out)

    assert code == 0, err
    assert report["kind"] == "churns" and report["clients"] == 1 and report["complete_until"].startswith("2024-02-29")
    code, out, _ = cli("ingest", write(tmp_path, "bad.csv", "customerID,churn_date\nNOBODY,2024-02-10\n"),
                       "--kind", "churns")
    assert code == 2 and out == ""
    status = json.loads(cli("status", "--json")[1])["as_of"]["churn_lists"]
    assert (status["lists"], status["departures"]) == (1, 1) and status["complete_until"].startswith("2024-02-29")
    assert "churns:   1 departures from 1 churn list(s), complete to 2024-02-29 00:00" in cli("status")[1]
    code, out, _ = cli("ingest", path, "--mapping", str(tmp_path / "m.toml"))
    assert code == 2


def test_status_shows_the_as_of_dates_and_how_many_have_known_outcomes(cli, store, tmp_path):
    cli("ingest", write(tmp_path, "jan.csv", SMALL), "--as-of", "2024-01-31")
    cli("ingest", write(tmp_path, "feb.csv", "customerID,tenure,plan\nA,2,basic\nB,21,pro\n"), "--as-of", "2024-02-29")

    payload = json.loads(cli("status", "--json")[1])["as_of"]
    code, out, _ = cli("status")

    assert (payload["dates"], payload["labelled_dates"], payload["horizon_days"]) == (2, 1, 30)
    assert payload["first"].startswith("2024-01-31") and payload["last"].startswith("2024-02-29")
    assert code == 0
    assert "as of:    2 dates, 2024-01-31 to 2024-02-29 (1 with known outcomes, the last 2024-01-31; horizon 30 days)" \
        in out
