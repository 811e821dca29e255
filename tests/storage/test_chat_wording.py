"""Refusals and warnings are worded for the reader's channel: the command line keeps its flags
and commands, a chat gets advice a Telegram user can follow (the bot's commands, or that an
admin must act), from the same error — never by rewriting the command line's text."""

from __future__ import annotations

import pickle
import re

import pytest

from storage.errors import IngestRejected, SchemaConflict, UserError, chat_text
from storage.ingest import ingest_file
from storage.schema import Schema
from tests.conftest import DATA

SCHEMA = Schema("id", "Churn", "Yes")
CLI_ONLY = re.compile(r"churnguard |(?<![\w-])--[a-z]")


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return path


def refusal(db, tmp_path, name: str, content: str, schema: Schema = SCHEMA, explicit=()) -> UserError:
    with pytest.raises(UserError) as caught:
        ingest_file(db, write(tmp_path, name, content), schema=schema, explicit=explicit)
    return caught.value


def test_each_refusal_a_chat_user_can_meet_says_what_to_do_there(db, tmp_path):
    cases = {
        # the file lacks the id column the store expects
        "--id-column": refusal(db, tmp_path, "no-id.csv", "client,Churn\n1,Yes\n2,No\n"),
        # a first labelled batch where everyone churned
        "--positive-label": refusal(db, tmp_path, "one-class.csv", "id,x,Churn\n1,1,Yes\n2,2,Yes\n"),
    }
    ingest_file(db, write(tmp_path, "first.csv", "id,x,Churn\n1,1,Yes\n2,2,No\n"), schema=SCHEMA)
    # a label column without the configured churn value but with several others
    cases["CHURNGUARD_POSITIVE_LABEL"] = refusal(db, tmp_path, "labels.csv", "id,x,Churn\n3,1,A\n4,2,B\n5,3,C\n",
                                                 schema=Schema("id", "Churn", "Gone"))
    # a setting that contradicts the store's remembered schema
    cases["CHURNGUARD_HOME"] = refusal(db, tmp_path, "other.csv", "CLIENTNUM,x,Churn\n1,1,Yes\n2,2,No\n",
                                       schema=Schema("CLIENTNUM", "Churn", "Yes"), explicit={"id_column"})

    for cli_hint, error in cases.items():
        assert isinstance(error, IngestRejected | SchemaConflict)
        # the command line's text is what it always was
        assert cli_hint in str(error), str(error)
        # a chat gets the same facts, and advice without a flag or a shell command
        chat = chat_text(error)
        assert error.plain in chat and chat != str(error)
        assert not CLI_ONLY.search(chat), chat
        assert "admin" in chat, chat


def test_a_leak_warning_tells_the_chat_who_excludes_the_column(db):
    bank = Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer", ())

    report = ingest_file(db, DATA / "BankChurners.csv", schema=bank)

    leaks = [w for w in report.warnings if "may leak the label" in w["message"]]
    assert len(leaks) == 2  # the two Naive_Bayes columns
    assert "CHURNGUARD_IGNORE_COLUMNS" in report.to_text() and "CHURNGUARD_KEEP_LEAKING_COLUMNS" in report.to_text()
    chat = report.to_text("chat")
    assert chat.count("may leak the label") == 2 and not CLI_ONLY.search(chat)
    assert "an admin should exclude it" in chat
    # --json keeps its documented shape
    assert all(set(w) == {"column", "message"} for w in report.to_dict()["warnings"])


def test_the_chat_wording_survives_the_trip_back_from_a_training_process(db, tmp_path):
    error = refusal(db, tmp_path, "no-id.csv", "client,Churn\n1,Yes\n2,No\n")

    copy = pickle.loads(pickle.dumps(error))

    assert str(copy) == str(error) and copy.for_chat() == error.for_chat()
    assert copy.details == error.details
