"""One id rule: what ``/score`` refuses, no ingest accepts — flat client files and every event
kind — and the refusal names the rows.  Runs on SQLite and PostgreSQL (``db``)."""

from __future__ import annotations

import json

import pytest

import churnguard
from model.scoring import MalformedId, clean_client_id
from storage.errors import IngestRejected
from storage.events.ingest import ingest_events
from storage.ids import id_problem, visible, visible_json
from storage.ingest import ingest_file
from storage.schema import Schema

SCHEMA = Schema("id", "Churn", "Yes")

# Ids an attacker or a broken export can produce; each would print as something else.
BAD_IDS = {
    "ansi-escape": "C-1\x1b[2J\x1b[31m",  # clears the terminal, then prints red
    "rtl-override": "C-\u202e1-live",  # shows as "C-evil-1": the text after it runs right to left
    "ltr-override": "\u202dC-2",
    "zero-width-space": "C\u200b-3",  # looks exactly like "C-3", which is another client
    "byte-order-mark": "C-\ufeff4",
    "no-break-space": "C\u00a05",  # looks like "C 5"
    "tab": "C\t6",
    "line-separator": "C\u20287",
    "soft-hyphen": "C\u00ad8",
    "bell": "C-9\x07",
}
GOOD_IDS = ["7590-VHVEG", "Клиент-7", "ACME 001", "東京-1", "José-Müller", "x" * 200]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list(BAD_IDS))
def test_lookup_and_the_rule_agree_on_every_bad_id(name):
    bad = BAD_IDS[name]

    assert id_problem(bad) is not None and "control or invisible" in id_problem(bad)
    with pytest.raises(MalformedId):
        clean_client_id(bad)


@pytest.mark.parametrize("good", GOOD_IDS)
def test_ordinary_ids_in_any_script_pass_both(good):
    assert id_problem(good) is None and clean_client_id(f" {good} ") == good


def test_a_client_file_with_hidden_characters_in_ids_is_refused_with_the_rows(db, tmp_path):
    rows = ["id,plan,Churn", "C-0,basic,No"]
    rows += [f"{bad},basic,{'Yes' if i % 2 else 'No'}" for i, bad in enumerate(BAD_IDS.values()) if "\t" not in bad]
    rows += [f"K-{i},pro,{'Yes' if i % 2 else 'No'}" for i in range(1000)]  # a real export around them
    path = write(tmp_path, "clients.csv", "\n".join(rows) + "\n")

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, path, schema=SCHEMA)

    error = caught.value
    assert error.details["problem"] == "bad_ids" and error.details["rows"] == [2, 3, 4, 5, 6]
    assert "control or invisible characters" in str(error) and "U+202E RIGHT-TO-LEFT OVERRIDE" in str(error)
    assert "\x1b" not in str(error) and "\u202e" not in str(error)  # the message shows them escaped
    assert db.row_counts()["client_record"] == 0


def test_a_tab_in_an_id_is_refused_too(db, tmp_path):
    path = write(tmp_path, "clients.csv", 'id,plan,Churn\nC-1,basic,No\n"C\t2",pro,Yes\n')

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, path, schema=SCHEMA)

    assert caught.value.details["rows"] == [2] and "U+0009" in str(caught.value)


EVENT_FILES = {
    "clients": "client_id,signup_date\n{id},2024-01-01\n",
    "subscriptions": "client_id,start,end,plan,monthly_amount\n{id},2024-01-01,,basic,10\n",
    "purchases": "client_id,timestamp,amount,product\n{id},2024-01-02 10:00:00,5,book\n",
    "tickets": "client_id,opened_at,closed_at,category,satisfaction\n{id},2024-01-02 10:00:00,,bug,\n",
    "usage": "client_id,timestamp,event_type,value\n{id},2024-01-02 10:00:00,login,\n",
}


@pytest.mark.parametrize("kind", list(EVENT_FILES))
def test_every_event_kind_refuses_hidden_characters_in_client_ids_with_the_rows(db, tmp_path, kind):
    ingest_events(db, write(tmp_path, "ok.csv", EVENT_FILES["clients"].format(id="C-1")), kind="clients")
    header, line = EVENT_FILES[kind].splitlines()
    lines = [line.format(id="C-1")] if kind != "clients" else []
    lines += [line.format(id=BAD_IDS["rtl-override"]), line.format(id=BAD_IDS["ansi-escape"])]
    path = write(tmp_path, f"{kind}.csv", "\n".join([header, *lines]) + "\n")
    before = db.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_events(db, path, kind=kind)

    problems = {p["check"]: p for p in caught.value.details["problems"]}
    assert "bad_client_id" in problems, problems
    first_bad = 1 if kind == "clients" else 2
    assert problems["bad_client_id"]["rows"] == [first_bad, first_bad + 1]
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)
    assert db.row_counts() == before


def test_features_for_a_named_client_apply_the_same_rule(home, capsys):
    code = churnguard.main(["features", "--as-of", "2024-01-01", "--client", BAD_IDS["ansi-escape"]])

    err = capsys.readouterr().err
    assert code == 2 and "control or invisible characters" in err and "\x1b" not in err


def test_shown_text_never_carries_escapes_and_json_stays_the_same_json():
    for bad in BAD_IDS.values():
        assert visible(bad).isprintable()
        document = json.dumps({"client_id": bad, "text": "two\nlines"}, indent=2, ensure_ascii=False)
        assert all(ch.isprintable() or ch == "\n" for ch in visible_json(document))
        assert json.loads(visible_json(document)) == {"client_id": bad, "text": "two\nlines"}
    assert visible("line one\nline two", keep="\n") == "line one\nline two"
    assert visible("A\x1b[2JB") == "A\\x1b[2JB"


def test_the_command_line_prints_text_and_json_escaped(capsys):
    # Defence in depth for stores older than the rule: whatever reaches the terminal is escaped.
    evil = BAD_IDS["ansi-escape"] + BAD_IDS["rtl-override"]
    for flags in ([], ["--json"]):
        args = churnguard.build_parser().parse_args(["status", *flags])
        churnguard.emit(args, {"client_id": evil}, f"1. {evil}  91.0%\n2. next")
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\u202e" not in out
        if flags:
            assert json.loads(out) == {"client_id": evil}
        else:
            assert out == f"1. {visible(evil)}  91.0%\n2. next\n"
