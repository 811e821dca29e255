"""`churnguard ingest --kind`: event tables through the same command as flat client tables."""

import json

import pytest

import churnguard
from storage.db import Database
from tests.conftest import REPO

SAMPLE = REPO / "storage" / "sample_data" / "events"
MAPPING = SAMPLE / "mapping.toml"


def _counts(home):
    db = Database(f"sqlite:///{(home / 'churnguard.db').as_posix()}")
    try:
        return db.row_counts()
    finally:
        db.dispose()


def test_event_tables_ingest_with_a_mapping_file(home, capsys):
    # given the shipped client table and its purchases
    assert churnguard.main(["ingest", str(SAMPLE / "clients.csv"), "--kind", "clients",
                            "--mapping", str(MAPPING)]) == 0
    capsys.readouterr()
    # when purchases are ingested with --json
    assert churnguard.main(["ingest", str(SAMPLE / "purchases.csv"), "--kind", "purchase",
                            "--mapping", str(MAPPING), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    # then the report names the kind and the rows stored
    assert payload["kind"] == "purchases"
    assert payload["rows"] > 0


def test_a_mapping_naming_a_missing_column_is_refused_and_stores_nothing(home, capsys):
    churnguard.main(["ingest", str(SAMPLE / "clients.csv"), "--kind", "clients", "--mapping", str(MAPPING)])
    before = _counts(home)
    code = churnguard.main(["ingest", str(SAMPLE / "purchases.csv"), "--kind", "purchases",
                            "--map", "client_id=nope,timestamp=purchased_at,amount=amount"])
    assert code == 2
    assert "nope" in capsys.readouterr().err
    assert _counts(home) == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--kind", "frobs"], "unknown event kind 'frobs'"),
    (["--mapping", str(MAPPING)], "add --kind"),
    (["--map", "client_id=a"], "add --kind"),
])
def test_bad_event_arguments_get_a_clear_message(home, capsys, argv, message):
    code = churnguard.main(["ingest", str(SAMPLE / "purchases.csv"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err
