"""Validation of parsed batches: what is refused, what is stored with a warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storage.errors import IngestRejected
from storage.readers import Limits, parse_bytes, read_table, table_from_frame
from storage.schema import Schema
from storage.validation import History, column_auc, validate
from tests.conftest import DATA

SCHEMA = Schema("id", "Churn", "Yes")
FIRST = History()
LATER = History(previous_batch_id=1, previous_columns={"spend": "numeric", "plan": "categorical"},
                has_labelled=True, negative_label="No")


def table(text: str, schema: Schema = SCHEMA):
    return parse_bytes(text.encode(), source_name="batch.csv", limits=Limits(),
                       keep_text=(schema.id_column, schema.label_column))


def refused(text: str, history: History = FIRST, schema: Schema = SCHEMA) -> IngestRejected:
    with pytest.raises(IngestRejected) as caught:
        validate(table(text, schema), schema, history)
    return caught.value


GOOD = "id,spend,plan,Churn\n1,10,basic,Yes\n2,20,pro,No\n3,30,pro,No\n"


def test_a_good_first_batch_becomes_records_with_labels():
    batch = validate(table(GOOD), SCHEMA, FIRST)

    assert batch.client_ids == ["1", "2", "3"]
    assert batch.labels == [1, 0, 0]
    assert batch.positives == 1 and batch.labelled
    assert batch.column_types == {"spend": "numeric", "plan": "categorical"}
    assert list(batch.data.columns) == ["spend", "plan"]
    assert batch.negative_label == "No"
    assert batch.warnings == []


def test_missing_id_column_names_it_and_lists_the_columns():
    error = refused("customer_id,spend,Churn\n1,10,Yes\n2,20,No\n", schema=Schema("customerID", "Churn", "Yes"))

    assert error.details["problem"] == "missing_id_column"
    assert error.details["column"] == "customerID"
    assert error.details["available"] == ["customer_id", "spend", "Churn"]
    assert "missing id column 'customerID'" in str(error)
    assert "Did you mean 'customer_id'" in str(error)
    assert "--id-column" in str(error)


def test_duplicate_client_ids_give_data_rows_and_examples():
    error = refused("id,spend,Churn\nA,1,Yes\nB,2,No\nA,3,No\nC,4,No\nB,5,Yes\n")

    assert error.details["problem"] == "duplicate_ids"
    assert error.details["examples"] == ["A", "B"]
    assert error.details["rows"] == [1, 2, 3, 5]
    assert error.details["row_kind"] == "data row"
    assert "'A' at data rows 1, 3" in str(error) and "'B' at data rows 2, 5" in str(error)


def test_blank_client_ids_are_refused_with_rows():
    error = refused("id,spend,Churn\n1,1,Yes\n,2,No\n3,3,No\n")

    assert error.details["problem"] == "missing_ids"
    assert error.details["rows"] == [2]


def test_a_column_with_no_value_at_all_is_refused():
    error = refused("id,spend,notes,Churn\n1,1,,Yes\n2,2, ,No\n")

    assert error.details["problem"] == "empty_column"
    assert error.details["columns"] == ["notes"]
    assert "'notes'" in str(error)


def test_label_with_a_third_value_is_refused_with_its_rows():
    error = refused("id,spend,Churn\n1,1,Yes\n2,2,No\n3,3,Maybe\n4,4,No\n")

    assert error.details["problem"] == "bad_labels"
    assert error.details["column"] == "Churn"
    assert "'Maybe'" in str(error) and "exactly two values" in str(error)


def test_label_values_other_than_the_stores_two_are_refused():
    error = refused("id,spend,plan,Churn\n1,1,a,Yes\n2,2,b,Nope\n3,3,c,Nope\n", history=LATER)

    assert error.details["problem"] == "bad_labels"
    assert error.details["examples"] == ["Nope"]
    assert error.details["rows"] == [2, 3]
    assert "'Yes' (churned) and 'No' (stayed)" in str(error)


def test_label_without_the_positive_value_suggests_setting_it():
    error = refused("id,spend,Churn\n1,1,True\n2,2,False\n3,3,False\n")

    assert error.details["problem"] == "bad_labels"
    assert "--positive-label" in str(error)


def test_blank_labels_are_refused():
    error = refused("id,spend,Churn\n1,1,Yes\n2,2,\n3,3,No\n")

    assert error.details["problem"] == "missing_labels"
    assert error.details["rows"] == [2]


def test_single_class_first_batch_is_refused():
    error = refused("id,spend,Churn\n1,1,No\n2,2,No\n")

    assert error.details["problem"] == "single_class"
    assert "needs both churners" in str(error)


def test_single_class_later_batch_is_stored_with_a_warning():
    batch = validate(table("id,spend,plan,Churn\n1,1,a,No\n2,2,b,No\n"), SCHEMA, LATER)

    assert batch.labels == [0, 0]
    assert {"column": "Churn", "message": "every client in this batch stayed; stored (one class only)"} \
        in batch.warnings


def test_id_and_label_must_be_different_columns():
    error = refused(GOOD, schema=Schema("id", "id", "1"))

    assert error.details["problem"] == "bad_schema"


def test_numeric_labels_match_whatever_their_spelling():
    schema = Schema("id", "Exited", "1")
    frame = pd.DataFrame({"id": ["a", "b", "c"], "spend": [1, 2, 3], "Exited": [1.0, 0.0, 0.0]})
    parsed = table_from_frame(frame, source_name="sql", limits=Limits(), keep_text=("id", "Exited"))

    batch = validate(parsed, schema, FIRST)

    assert batch.labels == [1, 0, 0]
    assert batch.negative_label == "0"


def test_batch_without_the_label_column_is_unlabelled():
    batch = validate(table("id,spend,plan\n1,1,a\n2,2,b\n"), SCHEMA, LATER)

    assert batch.labels is None and batch.positives is None and not batch.labelled
    assert batch.warnings == []


def test_label_column_in_another_case_is_pointed_out():
    batch = validate(table("id,spend,plan,churn\n1,1,a,Yes\n2,2,b,No\n"), SCHEMA, LATER)

    assert batch.labels is None
    assert any(w["column"] == "churn" and "differs only in case" in w["message"] for w in batch.warnings)


def test_new_missing_and_retyped_columns_are_warned_about():
    batch = validate(table("id,spend,region,Churn\n1,low,north,Yes\n2,high,south,No\n"), SCHEMA, LATER)

    messages = {w["column"]: w["message"] for w in batch.warnings}
    assert messages["spend"] == "type changed: numeric in batch #1, now categorical"
    assert messages["region"] == "new column, not in the previous batch #1"
    assert messages["plan"] == "missing: the previous batch #1 had this column"


def _leaky_frame(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    churn = rng.random(rows) < 0.3
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(rows)],
        "spend": rng.normal(50, 10, rows),
        "days_to_close": np.where(churn, rng.uniform(0, 5, rows), rng.uniform(10, 20, rows)),
        "close_reason": np.where(churn, "moved away", "-"),
        "surname": [f"name{i}" for i in range(rows)],
        "was_cancelled_flag": rng.integers(0, 2, rows),
        "Churn": np.where(churn, "Yes", "No"),
    })


def test_columns_that_leak_the_label_are_warned_about_by_auc_and_by_name():
    parsed = table_from_frame(_leaky_frame(), source_name="sql", limits=Limits(), keep_text=("id", "Churn"))

    batch = validate(parsed, SCHEMA, FIRST)

    leaks = {w["column"]: w["message"] for w in batch.warnings}
    assert set(leaks) == {"days_to_close", "close_reason", "was_cancelled_flag"}
    assert "ROC-AUC 1.000" in leaks["days_to_close"]
    assert "ROC-AUC" in leaks["close_reason"]
    assert "its name mentions 'cancel'" in leaks["was_cancelled_flag"]


def test_ignored_columns_do_not_warn():
    schema = Schema("id", "Churn", "Yes", ("days_to_close", "close_reason", "was_cancelled_flag"))
    parsed = table_from_frame(_leaky_frame(), source_name="sql", limits=Limits(), keep_text=("id", "Churn"))

    batch = validate(parsed, schema, FIRST)

    assert batch.warnings == []
    assert "days_to_close" in batch.data.columns  # still stored


def test_unique_text_per_row_is_not_mistaken_for_a_leak():
    y = np.array([0, 1] * 200)
    names = pd.Series([f"name{i}" for i in range(400)])

    auc = column_auc(names, "categorical", y)

    assert auc is None or auc < 0.7  # in-sample mean encoding would give 1.0


def test_tiny_batches_are_not_judged_by_auc():
    assert column_auc(pd.Series([10.0, 20.0, 30.0]), "numeric", np.array([1, 0, 0])) is None


def test_missingness_that_marks_churners_counts_as_a_leak():
    y = np.array([1] * 50 + [0] * 150)
    values = pd.Series([np.nan] * 50 + list(range(150)), dtype="float64")

    assert column_auc(values, "numeric", y) == pytest.approx(1.0)


BANK = Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer")


def test_bankchurners_naive_bayes_columns_leak_unless_ignored():
    parsed = read_table(DATA / "BankChurners.csv", limits=Limits(), keep_text=("CLIENTNUM", "Attrition_Flag"))
    naive_bayes = [c for c in parsed.frame.columns if c.startswith("Naive_Bayes")]

    batch = validate(parsed, BANK, FIRST)
    ignoring = validate(parsed, Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer", tuple(naive_bayes)),
                        FIRST)

    assert len(naive_bayes) == 2
    assert [w["column"] for w in batch.warnings] == naive_bayes
    assert all("may leak the label" in w["message"] for w in batch.warnings)
    assert batch.positives == 1627 and batch.rows == 10127
    assert ignoring.warnings == []
