"""The whole contact list: every flagged client, ranked, with reasons, as CSV and XLSX, written
chunk by chunk (Scorer.flagged_ranking + model/export.py), and `churnguard export`.

The Telco store holds 7,043 clients; with the quick model about half of the 5,163 active ones
are flagged, more than /top (1,000) shows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import model.export as export_module
from churnguard import main
from model.export import COLUMNS, FORMULA_PREFIXES, csv_safe, write_list
from model.reasons import reason_text
from model.scoring import MAX_TOP, FlaggedList, Scorer, ScoreResult
from model.service import open_scorer
from storage.ingest import ingest_frame
from storage.readers import Limits
from storage.schema import Schema
from tests.model.event_store import trained_event_store
from tests.model.trained_store import adopt_quick_model, engine_url, ingest_telco, open_store, telco_frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("export")
    with engine_url("sqlite", directory) as url:
        store = open_store(url, directory / "home")
        ingest_telco(store)
        assert adopt_quick_model(store).version == "v1"
        yield store
        store.db.dispose()


@pytest.fixture
def scorer(store) -> Scorer:
    return open_scorer(store.db, store.settings, store.registry)


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # Excel reads non-ASCII ids right
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def read_xlsx(path: Path) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}
    finally:
        book.close()


def flagged_by_top(scorer: Scorer) -> list[ScoreResult]:
    """The independent answer: /top's ranking of every active client, cut at the threshold."""
    return [result for result in scorer.top(MAX_TOP) if result.flagged]


# ------------------------------------------------------------------ the ranking
def test_the_ranking_holds_every_flagged_active_client_riskiest_first_with_the_reasons_score_gives(scorer):
    ranked = scorer.flagged_ranking(chunk_rows=700)
    chunks = list(ranked.chunks)
    listed = [result for chunk in chunks for result in chunk]
    expected = flagged_by_top(scorer)

    assert ranked.total == len(listed) == len(expected) > 1000  # more than /top can show
    assert ranked.active == 5163 and ranked.active > ranked.total  # active Telco clients: not churned, tenure > 0
    assert [len(chunk) for chunk in chunks[:-1]] == [700] * (len(chunks) - 1)
    assert [r.client_id for r in listed] == [r.client_id for r in expected]
    assert [r.probability for r in listed] == [r.probability for r in expected]
    assert all(r.flagged and r.probability >= ranked.threshold for r in listed)
    assert [[reason_text(c) for c in r.reasons] for r in listed] == \
           [[reason_text(c) for c in r.reasons] for r in expected]
    for result in listed[:: len(listed) // 25]:  # the words of /score, from its own code path
        single = scorer.score_client(result.client_id)
        assert single.probability == pytest.approx(result.probability, abs=1e-12)
        assert [reason_text(c) for c in single.reasons] == [reason_text(c) for c in result.reasons]
        assert single.risk_band == result.risk_band
    assert (ranked.model_version, ranked.champion, ranked.warnings) == ("v1", "v1", ())
    assert ranked.as_of is not None  # the arrival of the Telco batch: client records carry no date


def test_explaining_a_frame_gives_what_explaining_each_record_gives(store):
    model = store.registry.load("v1")
    frame = telco_frame().drop(columns=["customerID", "Churn"]).iloc[:300]
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    for column in ("tenure", "MonthlyCharges", "SeniorCitizen"):
        frame[column] = pd.to_numeric(frame[column])
    records = frame.to_dict("records")

    together = model.explain_frame(frame, records, top=4)

    for record, reasons in zip(records, together, strict=True):
        alone = model.explain_record(record, top=4)
        assert [(c.feature, c.value) for c in reasons] == [(c.feature, c.value) for c in alone]
        assert [c.effect for c in reasons] == pytest.approx([c.effect for c in alone], abs=1e-9)
    with pytest.raises(ValueError):
        model.explain_frame(frame, records[:5])


# ------------------------------------------------------------------ the documents
def test_the_csv_and_the_workbook_hold_the_same_ranked_list_with_model_and_date(scorer, tmp_path):
    result = write_list(scorer.flagged_ranking(chunk_rows=500), [tmp_path / "list.csv", tmp_path / "list.xlsx"])
    expected = flagged_by_top(scorer)

    rows = read_csv(tmp_path / "list.csv")
    sheets = read_xlsx(tmp_path / "list.xlsx")
    assert rows[0] == list(COLUMNS)
    assert result.rows == len(rows) - 1 == len(expected)
    assert [int(row[0]) for row in rows[1:]] == list(range(1, len(expected) + 1))
    assert [row[1] for row in rows[1:]] == [r.client_id for r in expected]
    assert [float(row[2]) for row in rows[1:]] == [round(r.probability, 4) for r in expected]
    assert [row[3] for row in rows[1:]] == [r.risk_band for r in expected]
    assert [row[4:7] for row in rows[1:]] == [[reason_text(c) for c in r.reasons] for r in expected]
    moment = f"{result.as_of:%Y-%m-%d %H:%M}"
    assert {(row[7], row[8], row[9]) for row in rows[1:]} == {(f"{result.threshold:.4f}", "v1", moment)}

    assert list(sheets) == ["Flagged clients", "About"]
    data = sheets["Flagged clients"]
    assert data[0] == COLUMNS and len(data) == len(rows)
    assert [row[1] for row in data[1:]] == [row[1] for row in rows[1:]]
    assert [row[2] for row in data[1:]] == pytest.approx([r.probability for r in expected])  # numbers, not text
    assert [list(row[4:7]) for row in data[1:]] == [row[4:7] for row in rows[1:]]
    about = dict(sheets["About"])
    assert about["Model version"] == "v1" and about["As of"] == moment
    assert about["Flagged clients"] == len(expected) and about["Threshold"] == pytest.approx(result.threshold)
    assert result.sizes == {".csv": (tmp_path / "list.csv").stat().st_size,
                            ".xlsx": (tmp_path / "list.xlsx").stat().st_size}


def dangerous_store(tmp_path: Path):
    """A store whose riskiest clients have ids a spreadsheet would run as formulas."""
    store = open_store(f"sqlite:///{(tmp_path / 'churnguard.db').as_posix()}", tmp_path / "home")
    ingest_telco(store)
    adopt_quick_model(store)
    frame = telco_frame()
    risky = frame[(frame["Contract"] == "Month-to-month") & (frame["tenure"] == "1")].head(4).copy()
    risky = risky.drop(columns=["Churn"])
    risky["customerID"] = ['=HYPERLINK("http://x","y")', "+33-123", "-2+3", "@SUM(A1)"]
    ingest_frame(store.db, risky, schema=Schema("customerID", "Churn", "Yes"), limits=Limits(),
                 source_name="crm-export.csv")
    return store


def test_cells_a_spreadsheet_would_run_are_escaped_in_both_documents(tmp_path):
    store = dangerous_store(tmp_path)
    try:
        scorer = open_scorer(store.db, store.settings, store.registry)
        write_list(scorer.flagged_ranking(), [tmp_path / "list.csv", tmp_path / "list.xlsx"])
    finally:
        store.db.dispose()

    rows = read_csv(tmp_path / "list.csv")
    sheet = read_xlsx(tmp_path / "list.xlsx")["Flagged clients"]
    wanted = {"'=HYPERLINK(\"http://x\",\"y\")", "'+33-123", "'-2+3", "'@SUM(A1)"}
    assert wanted <= {row[1] for row in rows[1:]}
    assert wanted <= {row[1] for row in sheet[1:]}
    for cell in [cell for row in rows for cell in row] + [c for row in sheet for c in row if isinstance(c, str)]:
        assert not cell.startswith(FORMULA_PREFIXES), cell
    assert csv_safe("\tx") == "'\tx" and csv_safe("\r=1") == "'\r=1" and csv_safe("a=b") == "a=b"


def failing(ranked: FlaggedList, after: int) -> FlaggedList:
    def chunks() -> Iterator[list[ScoreResult]]:
        for index, chunk in enumerate(ranked.chunks):
            if index == after:
                raise RuntimeError("the database went away")
            yield chunk

    return FlaggedList(ranked.model_version, ranked.champion, ranked.threshold, ranked.as_of, ranked.active,
                       ranked.total, ranked.warnings, chunks())


def test_a_failure_half_way_leaves_no_partial_file_and_keeps_the_earlier_one(scorer, tmp_path):
    earlier = tmp_path / "list.csv"
    earlier.write_text("yesterday's list\n")

    with pytest.raises(RuntimeError):
        write_list(failing(scorer.flagged_ranking(chunk_rows=300), after=2), [earlier, tmp_path / "list.xlsx"])

    assert earlier.read_text() == "yesterday's list\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["list.csv"]


def test_a_list_longer_than_a_sheet_goes_on_in_the_next_sheet(scorer, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "SHEET_ROWS", 1001)  # Excel's 1,048,576, scaled down

    result = write_list(scorer.flagged_ranking(), [tmp_path / "list.xlsx"])

    sheets = read_xlsx(tmp_path / "list.xlsx")
    parts = [name for name in sheets if name != "About"]
    assert parts == ["Flagged clients"] + [f"Flagged clients ({i})" for i in range(2, len(parts) + 1)]
    assert len(parts) == -(-result.rows // 1000)
    ranks = [row[0] for name in parts for row in sheets[name][1:]]
    assert all(sheets[name][0] == COLUMNS for name in parts)
    assert ranks == list(range(1, result.rows + 1))


def test_an_event_model_lists_its_clients_with_plain_reasons_as_of_the_scoring_date(tmp_path):
    events = trained_event_store("sqlite")
    scorer = events.scorer()
    ranked = scorer.flagged_ranking()

    result = write_list(ranked, [tmp_path / "events.csv"])

    rows = read_csv(tmp_path / "events.csv")
    expected = flagged_by_top(scorer)
    assert result.rows == len(expected) > 0 and [row[1] for row in rows[1:]] == [r.client_id for r in expected]
    assert [row[4:7] for row in rows[1:]] == [[reason_text(c) for c in r.reasons] for r in expected]
    assert {row[9] for row in rows[1:]} == {expected[0].as_of}  # the date the features are computed at
    assert all(" = " not in row[4] for row in rows[1:])  # plain words ("2 support tickets ..."), not feature = value


# ------------------------------------------------------------------ the command line
def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_home(store, home, monkeypatch):
    """The Telco store, used through `churnguard` with its home and database."""
    monkeypatch.setenv("CHURNGUARD_HOME", str(store.settings.home))
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", store.db.url)
    return home


def test_churnguard_export_writes_every_flagged_client_to_csv_and_xlsx(cli_home, scorer, tmp_path):
    expected = flagged_by_top(scorer)

    code, out, err = run("export", "--output", str(tmp_path / "all.csv"))
    assert code == 0, err
    assert out.startswith(f"Wrote {len(expected):,} flagged client(s) of 5,163 active, riskiest first, to ")
    assert [row[1] for row in read_csv(tmp_path / "all.csv")[1:]] == [r.client_id for r in expected]

    code, out, err = run("export", "--output", str(tmp_path / "all.xlsx"), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rows"] == len(expected) and payload["format"] == "xlsx" and payload["model_version"] == "v1"
    assert payload["bytes"] == (tmp_path / "all.xlsx").stat().st_size and payload["as_of"]
    sheet = read_xlsx(tmp_path / "all.xlsx")["Flagged clients"]
    assert [row[1] for row in sheet[1:]] == [r.client_id for r in expected]


@pytest.mark.parametrize(("name", "message"), [
    ("list.txt", "must end in .csv or .xlsx"),
    ("missing-folder/list.csv", "the folder"),
    ("a-folder.csv", "is a folder"),
])
def test_churnguard_export_refuses_an_output_it_cannot_write_before_any_work(cli_home, tmp_path, name, message):
    target = tmp_path / name
    if name == "a-folder.csv":
        target.mkdir()

    code, _out, err = run("export", "--output", str(target))

    assert code == 2 and message in err and err.count("\n") == 1
    assert not target.is_file()
    assert not list(tmp_path.rglob("*.part*"))


def test_churnguard_export_without_a_model_says_so(home, tmp_path):
    code, _out, err = run("export", "--output", str(tmp_path / "list.csv"))

    assert code == 1 and "no model yet" in err
    assert not (tmp_path / "list.csv").exists()
