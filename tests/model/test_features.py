"""FeatureEncoder: which columns are used, how cells are filled, and batch == single-client encoding."""

import math

import numpy as np
import pandas as pd
import pytest

from model.features import FeatureEncoder, level_key, to_float
from storage.schema import Schema
from tests.conftest import TELCO
from tests.model.training_data import BANK_SCHEMA, TELCO_SCHEMA, bank_frame, telco_frame

SCHEMA = Schema("id", "label", "1", ("note",))


def small_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(8)],
        "label": [0, 1, 0, 1, 0, 0, 1, 0],
        "note": ["x"] * 8,
        "plan": ["basic", "pro", "basic", None, "pro", " basic ", "max", ""],
        "age": [30.0, np.nan, 40.0, 50.0, 20.0, np.nan, 60.0, 35.0],
        "constant": [1.0] * 8,
        "empty": [np.nan] * 8,
    })


def test_drops_id_ignored_constant_and_empty_columns_with_reasons():
    encoder = FeatureEncoder().fit(small_frame(), SCHEMA)

    assert encoder.dropped_columns_ == {
        "id": "identifier", "note": "ignored by settings", "constant": "constant", "empty": "empty"}
    assert encoder.raw_columns_ == ["plan", "age"]
    assert "label" not in encoder.feature_names_


def test_identifier_like_text_is_dropped():
    rows = 200
    frame = pd.DataFrame({"id": range(rows), "label": [0, 1] * 100, "name": [f"n{i}" for i in range(rows)],
                          "x": np.arange(rows, dtype=float)})

    encoder = FeatureEncoder().fit(frame, Schema("id", "label", "1", ()))

    assert "name" in encoder.dropped_columns_
    assert encoder.raw_columns_ == ["x"]


def test_missing_cells_are_counted_and_filled_with_median_and_mode():
    frame = small_frame()
    encoder = FeatureEncoder().fit(frame, SCHEMA)

    matrix = encoder.transform(frame)

    assert encoder.missing_counts(frame) == {"plan": 2, "age": 2}
    age = matrix[:, encoder.feature_names_.index("age")]
    assert age[1] == age[5] == np.median([30, 40, 50, 20, 60, 35])
    plan = matrix[:, encoder.feature_names_.index("plan")]
    basic = encoder.codes_["plan"]["basic"]
    assert encoder.categorical_modes_["plan"] == "basic"  # " basic " is the same level once stripped
    assert plan[3] == plan[7] == plan[5] == basic


def test_unseen_level_becomes_nan_and_text_in_numeric_column_is_missing():
    encoder = FeatureEncoder().fit(small_frame(), SCHEMA)
    new = pd.DataFrame({"plan": ["platinum", "pro"], "age": ["n/a", " 42 "]})

    matrix = encoder.transform(new)

    assert math.isnan(matrix[0, 0]) and matrix[1, 0] == encoder.codes_["plan"]["pro"]
    assert matrix[0, 1] == encoder.numeric_medians_["age"] and matrix[1, 1] == 42.0
    assert encoder.missing_counts(new) == {"plan": 0, "age": 1}


def test_absent_columns_are_filled_like_missing_cells():
    encoder = FeatureEncoder().fit(small_frame(), SCHEMA)

    matrix = encoder.transform(pd.DataFrame({"age": [25.0]}))

    assert matrix[0, 0] == encoder.codes_["plan"]["basic"]
    assert encoder.transform_record({}).tolist() == [[encoder.codes_["plan"]["basic"], encoder.numeric_medians_["age"]]]


def test_telco_gets_charges_per_month_of_tenure_and_counts_blank_total_charges():
    frame = telco_frame()

    encoder = FeatureEncoder().fit(frame, TELCO_SCHEMA)

    assert [(e.name, e.numerator, e.denominator) for e in encoder.engineered_] == [
        ("TotalCharges_per_tenure", "TotalCharges", "tenure")]
    assert encoder.missing_counts(frame)["TotalCharges"] == 11
    matrix = encoder.transform(frame)
    ratio = matrix[:, encoder.feature_names_.index("TotalCharges_per_tenure")]
    row = frame.index[frame["tenure"] == 34][0]
    assert ratio[row] == pytest.approx(frame.loc[row, "TotalCharges"] / 34)
    # tenure 0 (no history): the ratio is undefined and filled with the training median
    assert ratio[(frame["tenure"] == 0).to_numpy()] == pytest.approx(encoder.engineered_[0].median)


def test_bank_churners_gets_amount_per_transaction_and_per_month_but_no_ratio_of_ratios():
    encoder = FeatureEncoder().fit(bank_frame(), BANK_SCHEMA)

    names = [e.name for e in encoder.engineered_]

    # Total_Amt_Chng_Q4_Q1 is already a ratio, and Months_Inactive_12_mon is no tenure
    assert names == ["Total_Trans_Amt_per_Months_on_book", "Total_Trans_Amt_per_Total_Trans_Ct"]


def test_scalar_rules():
    assert level_key(3.0) == level_key(3) == level_key("3") == level_key(" 3 ") == "3"
    assert level_key(None) is None and level_key(float("nan")) is None and level_key("  ") is None
    assert level_key(True) == "True" and level_key(2.5) == "2.5"
    assert to_float("1.5") == 1.5 and to_float(True) == 1.0 and to_float(7) == 7.0
    for bad in (None, "", "abc", float("inf"), float("nan"), [1]):
        assert math.isnan(to_float(bad))


def perturbed_records(frame: pd.DataFrame, columns: list[str], categorical: set[str]) -> list[dict]:
    """Real rows, plus rows with unseen levels, blanks, None, junk text and numbers as text."""
    base = frame[columns].astype(object).where(frame[columns].notna(), None).to_dict("records")
    rng = np.random.default_rng(0)
    records = list(base[:300])
    for record in base[300:600]:
        record = dict(record)
        for column in rng.choice(columns, size=3, replace=False):
            if column in categorical:
                record[column] = rng.choice(["never seen level", None, "", " " + str(record[column])])
            else:
                record[column] = rng.choice([None, "", "abc", str(record[column]), -1.0])
        records.append(record)
    return records


@pytest.mark.parametrize("loader,schema", [(telco_frame, TELCO_SCHEMA), (bank_frame, BANK_SCHEMA)],
                         ids=["telco", "bank"])
def test_record_path_encodes_exactly_like_the_batch_path(loader, schema):
    frame = loader()
    encoder = FeatureEncoder().fit(frame.iloc[:5000], schema)
    categorical = set(encoder.categorical_levels_)
    records = perturbed_records(frame, encoder.raw_columns_, categorical)

    batch = encoder.transform(pd.DataFrame(records, dtype=object))
    single = np.vstack([encoder.transform_record(record) for record in records])

    np.testing.assert_array_equal(batch, single)
    assert np.isnan(batch).any()  # the unseen levels really were exercised


def test_encoder_round_trips_through_json_dict():
    frame = telco_frame()
    encoder = FeatureEncoder().fit(frame, TELCO_SCHEMA)

    again = FeatureEncoder.from_dict(encoder.to_dict())

    np.testing.assert_array_equal(again.transform(frame), encoder.transform(frame))
    assert again.feature_names_ == encoder.feature_names_


def test_numbers_stored_as_text_are_numeric():
    frame = telco_frame()
    frame["TotalCharges"] = pd.read_csv(TELCO, usecols=["TotalCharges"])["TotalCharges"]  # raw text, 11 blanks

    encoder = FeatureEncoder().fit(frame, TELCO_SCHEMA)

    assert encoder.column_types_["TotalCharges"] == "numeric"
    assert encoder.missing_counts(frame)["TotalCharges"] == 11
    np.testing.assert_array_equal(encoder.transform(frame), FeatureEncoder().fit(telco_frame(), TELCO_SCHEMA)
                                  .transform(telco_frame()))


@pytest.mark.parametrize("cells", [
    pd.Series([1, True, "1", " True ", None, np.nan, "x"], dtype=object),  # factorize would merge 1 and True
    pd.Series([1.0, 2.0, np.nan, 1.0, -0.0, 3.5, 2.0], dtype="float64"),
    pd.Series([" 1", "True", "", None, "2", "1 ", "zz"], dtype="str"),
    pd.Series([True, False, True, True, False, False, True], dtype="bool"),
])
def test_categorical_cells_of_any_dtype_encode_like_the_record_path(cells):
    training = pd.DataFrame({"id": range(8), "label": [0, 1] * 4,
                             "level": ["1", "True", "2", "False", "1", "True", "0", "2"]})
    encoder = FeatureEncoder().fit(training, Schema("id", "label", "1", ()))
    frame = pd.DataFrame({"level": cells})

    batch = encoder.transform(frame)
    records = np.vstack([encoder.transform_record({"level": value}) for value in cells.astype(object)])

    np.testing.assert_array_equal(batch, records)
