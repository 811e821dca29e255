"""`churnguard features`: the point-in-time feature table on stdout, as JSON or in a file,
with a one-line message and an exit code for every bad request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import churnguard
from storage.db import Database
from storage.events.ingest import ingest_events
from tests.storage.events.conftest import FAR_FUTURE_NOW, write_csv


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clients a (active, 3 logins in February) and b (its subscription ended in January)."""
    folder = tmp_path_factory.mktemp("features_store")
    tables = {
        "clients": [{"client_id": "a", "region": "north"}, {"client_id": "b", "region": "south"}],
        "subscriptions": [{"client_id": "a", "start": "2020-01-01", "monthly_amount": 10},
                          {"client_id": "b", "start": "2020-01-01", "end": "2020-02-01", "monthly_amount": 5}],
        "usage": [{"client_id": "a", "timestamp": f"2020-02-{d:02d} 09:00", "event_type": "login"} for d in (3, 4, 27)],
    }
    path = folder / "churnguard.db"
    db = Database(f"sqlite:///{path.as_posix()}")
    for kind, rows in tables.items():
        ingest_events(db, write_csv(folder / f"{kind}.csv", rows), kind=kind, now=FAR_FUTURE_NOW)
    db.dispose()
    return path


@pytest.fixture
def store(built: Path, home: Path) -> Path:
    """A copy of the built store in this test's CHURNGUARD_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, home / "churnguard.db")
    return home


def test_csv_on_stdout_has_one_row_per_active_client(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert churnguard.main(["features", "--as-of", "2020-03-01", "--windows", "7,28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split(",")
    assert header[0] == "client_id" and "usage_login_28d" in header and "usage_login_7d" in header
    assert len(lines) == 2 and lines[1].startswith("a,")
    row = dict(zip(header, lines[1].split(","), strict=True))
    assert (row["usage_login_28d"], row["usage_login_7d"]) == ("3", "1")  # counts print as whole numbers


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_output_file_and_json_summary(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      suffix: str) -> None:
    out = tmp_path / f"features{suffix}"
    assert churnguard.main(["features", "--as-of", "2020-03-01", "--windows", "28", "--client", "a", "b",
                            "--output", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["clients"] == 2 and payload["output"] == str(out) and payload["event_types"] == ["login"]
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert frame["client_id"].tolist() == ["a", "b"]  # --client includes b, no longer active
    assert frame["usage_login_28d"].tolist() == [3, 0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_json_on_stdout_carries_the_rows(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert churnguard.main(["features", "--as-of", "2020-02-04 09:00:01", "--windows", "7", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["as_of"] == "2020-02-04 09:00:01"
    assert payload["rows"][0]["client_id"] == "a" and payload["rows"][0]["usage_login_7d"] == 2
    assert payload["rows"][0]["days_since_last_purchase"] is None  # NaN becomes null


def test_no_active_client_prints_the_header_and_says_so(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert churnguard.main(["features", "--as-of", "2019-06-01"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("client_id,") and len(captured.out.splitlines()) == 1
    assert "no clients active at 2019-06-01" in captured.err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--as-of", "31.03.2020"], 2, "--as-of: '31.03.2020' is not a date"),
    (["--as-of", "2020-02-30"], 2, "is not a date"),
    (["--as-of", "1066-10-14"], 2, "outside the years"),
    (["--as-of", "2020-03-01", "--windows", "0"], 2, "--windows: '0' is not a number of days"),
    (["--as-of", "2020-03-01", "--windows", "7,x"], 2, "--windows: 'x'"),
    (["--as-of", "2020-03-01", "--windows", "7,7"], 2, "--windows: 7 is given twice"),
    (["--as-of", "2020-03-01", "--client", "a", "nobody"], 1, "not in the stored clients table: 'nobody'"),
    (["--as-of", "2020-03-01", "--output", "features.xlsx"], 2, "must end in .csv or .parquet"),
    (["--as-of", "2020-03-01", "--output", "missing/features.csv"], 2, "the folder missing does not exist"),
])
def test_bad_requests_get_one_line_and_an_exit_code(store: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], code: int, message: str) -> None:
    assert churnguard.main(["features", *argv]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_output_that_is_a_folder_is_refused(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "out.csv"
    folder.mkdir()
    assert churnguard.main(["features", "--as-of", "2020-03-01", "--output", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_failed_write_keeps_the_earlier_file_whole(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "features.csv"
    out.write_text("earlier\n", encoding="utf-8")

    def full_disk(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_text("client_id,half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    assert churnguard.main(["features", "--as-of", "2020-03-01", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: No space left on device" in err
    assert out.read_text(encoding="utf-8") == "earlier\n"
    assert not list(tmp_path.glob(".*.tmp"))
