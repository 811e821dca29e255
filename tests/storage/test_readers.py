"""Reading CRM exports: formats, encodings, separators, type inference and every way a file
can fail to be a table.  No database is involved: reading is testable on its own."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from storage.errors import IngestRejected
from storage.readers import (
    CATEGORICAL,
    NUMERIC,
    Limits,
    parse_bytes,
    read_table,
    table_from_frame,
)
from tests.conftest import DATA, TELCO

LIMITS = Limits()


def parse(data: bytes, *, keep_text=("id", "Churn"), limits: Limits = LIMITS, name: str = "upload.csv"):
    return parse_bytes(data, source_name=name, limits=limits, keep_text=keep_text)


def rejected(data: bytes, **kwargs) -> IngestRejected:
    with pytest.raises(IngestRejected) as caught:
        parse(data, **kwargs)
    return caught.value


# ------------------------------------------------------------------------------------------
# Real data sets
# ------------------------------------------------------------------------------------------


def test_telco_total_charges_text_with_blanks_becomes_numeric_with_missing_values():
    table = read_table(TELCO, limits=LIMITS, keep_text=("customerID", "Churn"))

    assert table.rows == 7043
    assert table.delimiter == "," and table.encoding == "utf-8" and table.format == "csv"
    assert table.column_types["TotalCharges"] == NUMERIC
    assert table.frame["TotalCharges"].dtype == np.float64
    assert int(table.frame["TotalCharges"].isna().sum()) == 11
    assert table.column_types["tenure"] == NUMERIC
    assert table.column_types["Contract"] == CATEGORICAL
    assert "customerID" not in table.column_types  # kept as text, not typed
    assert table.frame["customerID"].iloc[0] == "7590-VHVEG"
    assert (table.frame["Churn"] == "Yes").sum() == 1869


def test_ids_kept_as_text_keep_their_digits_exactly():
    table = read_table(DATA / "Churn_Modelling.csv", limits=LIMITS, keep_text=("CustomerId", "Exited"))

    assert table.frame["CustomerId"].iloc[0] == "15634602"
    assert table.frame["Exited"].iloc[0] == "1"
    assert table.column_types["Balance"] == NUMERIC


# ------------------------------------------------------------------------------------------
# Accepted encodings, separators and quoting
# ------------------------------------------------------------------------------------------


def test_utf8_with_bom_has_clean_first_column_name():
    table = parse("\ufeffid,Churn,city\n1,Yes,Köln\n2,No,Berlin\n".encode())

    assert table.encoding == "utf-8-sig"
    assert list(table.frame.columns) == ["id", "Churn", "city"]
    assert table.frame["city"].tolist() == ["Köln", "Berlin"]


def test_cp1251_cyrillic_names_and_values_are_decoded():
    text = "Клиент;Отток;Город;Тариф\n1;Да;Москва;Базовый\n2;Нет;Санкт-Петербург;Премиум\n"

    table = parse(text.encode("cp1251"), keep_text=("Клиент", "Отток"))

    assert table.encoding == "cp1251"
    assert table.delimiter == ";"
    assert list(table.frame.columns) == ["Клиент", "Отток", "Город", "Тариф"]
    assert table.frame["Город"].tolist() == ["Москва", "Санкт-Петербург"]
    assert table.frame["Отток"].tolist() == ["Да", "Нет"]


def test_latin1_accented_names_are_decoded():
    text = "id,name,city,Churn\n1,José Müller,Zürich,Yes\n2,Ångström,Besançon,No\n"

    table = parse(text.encode("latin-1"))

    assert table.encoding == "cp1252"  # Windows' superset of Latin-1: the same letters here
    assert "not UTF-8: read as cp1252" in table.notes[0]["message"]
    assert table.frame["name"].tolist() == ["José Müller", "Ångström"]
    assert table.frame["city"].tolist() == ["Zürich", "Besançon"]


def test_utf8_cyrillic_without_bom():
    table = parse("id;Город;Churn\n1;Казань;Yes\n2;Омск;No\n".encode())

    assert table.encoding == "utf-8"
    assert table.frame["Город"].tolist() == ["Казань", "Омск"]


def test_semicolon_separator_with_decimal_commas():
    table = parse(b"id;amount;plan;Churn\n1;1,5;basic;Yes\n2;3;pro;No\n3;-0,25;pro;No\n")

    assert table.delimiter == ";"
    assert table.column_types["amount"] == NUMERIC
    assert table.frame["amount"].tolist() == [1.5, 3.0, -0.25]


def test_crlf_and_quoted_fields_with_separators_quotes_and_line_breaks():
    data = b'id,comment,spend,Churn\r\n1,"late, twice",10,Yes\r\n2,"said ""bye""\r\nthen left",20,No\r\n'

    table = parse(data)

    assert table.rows == 2
    assert table.frame["comment"].tolist() == ["late, twice", 'said "bye"\r\nthen left']
    assert table.frame["spend"].tolist() == [10.0, 20.0]


def test_gzip_compressed_csv_is_read_whatever_its_name():
    table = parse(gzip.compress(b"id,spend,Churn\n1,5,Yes\n2,6,No\n"), name="export.bin")

    assert table.format == "csv.gz"
    assert table.frame["spend"].tolist() == [5.0, 6.0]


def test_parquet_ids_and_labels_read_like_csv(tmp_path):
    path = tmp_path / "clients.parquet"
    pd.DataFrame({
        "id": [15634602, 15647311], "Churn": [1, 0], "spend": [1.5, np.nan],
        "plan": ["basic", None], "text_number": ["12", " 13 "], "active": [True, False],
    }).to_parquet(path)

    table = read_table(path, limits=LIMITS, keep_text=("id", "Churn"))

    assert table.format == "parquet"
    assert table.frame["id"].tolist() == ["15634602", "15647311"]
    assert table.frame["Churn"].tolist() == ["1", "0"]
    assert table.column_types == {"spend": NUMERIC, "plan": CATEGORICAL, "text_number": NUMERIC,
                                  "active": CATEGORICAL}
    assert table.frame["text_number"].tolist() == [12.0, 13.0]
    assert table.frame["active"].tolist() == ["True", "False"]
    assert pd.isna(table.frame["plan"].iloc[1])


def test_parquet_with_a_saved_index_brings_the_index_back_as_a_column(tmp_path):
    path = tmp_path / "indexed.parquet"
    pd.DataFrame({"id": ["a", "b"], "spend": [1.0, 2.0]}).set_index("id").to_parquet(path)

    table = read_table(path, limits=LIMITS, keep_text=("id",))

    assert table.frame["id"].tolist() == ["a", "b"]


# ------------------------------------------------------------------------------------------
# Type inference
# ------------------------------------------------------------------------------------------


def test_missing_tokens_are_missing_in_numbers_but_kept_as_text_in_categories():
    table = parse(b"id,score,country,Churn\n1,NA,NA,Yes\n2,7,DE,No\n3, ,FR,No\n4,n/a,,No\n")

    assert table.column_types == {"score": NUMERIC, "country": CATEGORICAL}
    assert table.frame["score"].isna().tolist() == [True, False, True, True]
    assert table.frame["country"].tolist()[:3] == ["NA", "DE", "FR"]
    assert pd.isna(table.frame["country"].iloc[3])


def test_one_word_in_a_number_column_makes_it_categorical():
    table = parse(b"id,spend,Churn\n1,10,Yes\n2,ten,No\n")

    assert table.column_types["spend"] == CATEGORICAL
    assert table.frame["spend"].tolist() == ["10", "ten"]


def test_text_cells_are_stripped_and_trailing_separator_rows_skipped():
    table = parse(b"id,plan,Churn\n1,  basic ,Yes \n2,pro,No\n,,\n,,\n")

    assert table.rows == 2
    assert table.frame["plan"].tolist() == ["basic", "pro"]
    assert table.frame["Churn"].tolist() == ["Yes", "No"]
    assert table.notes == [{"column": None, "message": "skipped 2 empty row(s)"}]


def test_frame_hash_is_stable_for_identical_rows_and_differs_otherwise():
    frame = pd.DataFrame({"id": ["a", "b"], "spend": [1, 2]})

    first = table_from_frame(frame, source_name="sql", limits=LIMITS, keep_text=("id",))
    again = table_from_frame(frame.copy(), source_name="sql", limits=LIMITS, keep_text=("id",))
    other = table_from_frame(frame.assign(spend=[1, 3]), source_name="sql", limits=LIMITS, keep_text=("id",))

    assert first.sha256 == again.sha256 != other.sha256
    assert first.format == "frame"


# ------------------------------------------------------------------------------------------
# Refusals: the message names the problem and where it is
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem", "words"),
    [
        (b"", "empty", "is empty"),
        (b" \r\n\r\n", "empty", "is empty"),
        (b"id,Churn\r\n", "empty", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_a_table", "PNG image"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not_a_table", "Excel"),
        (b"id,spend\n1,\x00\x01\x02\n", "not_a_table", "binary"),
        (b"<!DOCTYPE html>\n<html><body>Session expired</body></html>", "not_a_table", "HTML"),
        (b'[{"id": 1, "Churn": "Yes"}]', "not_a_table", "JSON"),
        (b'{"rows": []}', "not_a_table", "JSON"),
        (b"just some text\nwithout columns\n", "not_a_table", "single column"),
        (b"id\tspend\tChurn\n1\t5\tYes\n2\t6\tNo\n", "bad_delimiter", "tabs"),
        (b"id,plan,plan\n1,a,b\n", "duplicate_columns", "'plan' appears twice (columns 2 and 3)"),
        (b"\x1f\x8b\x08\x00broken", "not_a_table", "cannot be decompressed"),
        (b"PAR1 not really parquet PAR1", "not_a_table", "not a readable Parquet file"),
    ],
    ids=["empty", "blank-lines", "header-only", "png", "xlsx", "binary", "html", "json-array", "json-object",
         "one-column", "tabs", "duplicate-columns", "broken-gzip", "broken-parquet"],
)
def test_files_that_are_not_tables_are_rejected_with_the_reason(data, problem, words):
    error = rejected(data)

    assert error.details["problem"] == problem
    assert words in str(error)
    assert str(error).startswith("upload.csv")


def test_inconsistent_separator_names_the_file_lines():
    error = rejected(b"id;spend;Churn\n1;5;Yes\n2,6,No\n3;7;No\n4,8,Yes\n")

    assert error.details["problem"] == "bad_delimiter"
    assert error.details["rows"] == [3, 5]
    assert error.details["row_kind"] == "file line"
    assert "line 3 has 1, line 5 has 1" in str(error)


def test_rows_with_extra_fields_are_not_silently_padded_or_cut():
    error = rejected(b"id,spend,Churn\n1,5,Yes\n2,6\n3,7,No,extra\n")

    assert error.details["rows"] == [3, 4]
    assert "line 3 has 2, line 4 has 4" in str(error)
    assert "header has 3 fields" in str(error)


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"id,spend,Churn\n" + b"1,5,Yes\n" * 200)

    with pytest.raises(IngestRejected) as caught:
        read_table(path, limits=Limits(max_file_mb=0.001))

    assert caught.value.details["problem"] == "too_big"
    assert "CHURNGUARD_MAX_FILE_MB" in str(caught.value)


def test_gzip_that_inflates_beyond_the_size_limit_is_refused():
    bomb = gzip.compress(b"id,spend,Churn\n" + b"1,5,Yes\n" * 100_000)

    error = rejected(bomb, limits=Limits(max_file_mb=0.1))

    assert error.details["problem"] == "too_big"
    assert "decompresses" in str(error)


def test_too_many_rows_and_columns_are_refused():
    rows = rejected(b"id,spend,Churn\n1,5,Yes\n2,6,No\n3,7,No\n", limits=Limits(max_rows=2))
    columns = rejected(b"id,a,b,c,Churn\n1,2,3,4,Yes\n", limits=Limits(max_columns=4))

    assert rows.details["problem"] == "too_many_rows" and "CHURNGUARD_MAX_ROWS" in str(rows)
    assert columns.details["problem"] == "too_many_columns" and "CHURNGUARD_MAX_COLUMNS" in str(columns)


def test_parquet_limits_are_checked_from_its_metadata(tmp_path):
    path = tmp_path / "wide.parquet"
    pd.DataFrame({f"c{i}": [1, 2, 3] for i in range(6)}).to_parquet(path)

    with pytest.raises(IngestRejected) as wide:
        read_table(path, limits=Limits(max_columns=5))
    with pytest.raises(IngestRejected) as long:
        read_table(path, limits=Limits(max_rows=2))

    assert wide.value.details["problem"] == "too_many_columns"
    assert long.value.details["problem"] == "too_many_rows"


def test_missing_file_is_a_clear_refusal(tmp_path):
    with pytest.raises(IngestRejected) as caught:
        read_table(tmp_path / "nope.csv", limits=LIMITS)

    assert "no such file" in str(caught.value)
