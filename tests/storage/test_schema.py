"""The dataset schema: given once, remembered, and defended against explicit conflicts."""

from __future__ import annotations

import pytest

from churnguard import Settings
from storage.errors import SchemaConflict
from storage.schema import Schema, remember_schema, remembered_schema, resolve_schema, schema_from_settings

TELCO = Schema("customerID", "Churn", "Yes")
BANK = Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer", ("Naive_Bayes_1",))


def test_empty_store_uses_the_requested_schema(db):
    with db.session() as session:
        assert remembered_schema(session) is None
        assert resolve_schema(session, BANK, explicit={"id_column"}) == BANK


def test_first_schema_is_remembered_and_later_defaults_do_not_clash(db):
    with db.session() as session:
        remember_schema(session, TELCO, batch_id=None)

    with db.session() as session:
        stored = remembered_schema(session)
        resolved = resolve_schema(session, BANK, explicit=set())

    assert stored is not None and stored.id_column == "customerID"
    assert resolved == Schema("customerID", "Churn", "Yes", ())


@pytest.mark.parametrize(("field", "flag"), [
    ("id_column", "--id-column"), ("label_column", "--label-column"), ("positive_label", "--positive-label"),
])
def test_explicit_conflict_names_the_flag_the_variable_and_the_way_out(db, field, flag):
    with db.session() as session:
        remember_schema(session, TELCO, batch_id=None)

    with db.session() as session, pytest.raises(SchemaConflict) as caught:
        resolve_schema(session, BANK, explicit={field})

    message = str(caught.value)
    assert flag in message and f"CHURNGUARD_{field.upper()}" in message and "CHURNGUARD_HOME" in message
    assert caught.value.details == {"setting": field, "remembered": getattr(TELCO, field),
                                    "requested": getattr(BANK, field)}
    assert caught.value.exit_code == 2


def test_explicit_request_equal_to_the_stored_schema_is_fine(db):
    with db.session() as session:
        remember_schema(session, TELCO, batch_id=None)
    with db.session() as session:
        assert resolve_schema(session, TELCO, explicit={"id_column", "label_column", "positive_label"}) == TELCO


def test_explicit_ignore_list_replaces_the_remembered_one(db):
    with db.session() as session:
        remember_schema(session, Schema("customerID", "Churn", "Yes", ("a",)), batch_id=None)

    with db.session() as session:
        default = resolve_schema(session, Schema("customerID", "Churn", "Yes", ("zzz",)), explicit=set())
        changed = resolve_schema(session, Schema("customerID", "Churn", "Yes", ("b", "c")),
                                 explicit={"ignore_columns"})
        remember_schema(session, changed, batch_id=None)

    with db.session() as session:
        stored = remembered_schema(session)

    assert default.ignore_columns == ("a",)
    assert changed.ignore_columns == ("b", "c")
    assert stored is not None and list(stored.ignore_columns) == ["b", "c"]
    assert db.row_counts()["dataset_schema"] == 1


def test_schema_from_settings_reports_only_what_the_user_set(home):
    schema, explicit = schema_from_settings(Settings(id_column="CLIENTNUM", ignore_columns="a, b"))
    default_schema, nothing = schema_from_settings(Settings())

    assert schema == Schema("CLIENTNUM", "Churn", "Yes", ("a", "b"))
    assert explicit == {"id_column", "ignore_columns"}
    assert default_schema == TELCO and nothing == set()


def test_as_dict_is_json_ready():
    assert BANK.as_dict() == {"id_column": "CLIENTNUM", "label_column": "Attrition_Flag",
                              "positive_label": "Attrited Customer", "ignore_columns": ["Naive_Bayes_1"],
                              "as_of_column": ""}
