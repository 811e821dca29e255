"""The insufficient-history rule parser and the risk bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.rules import HistoryRule, high_cutoff, parse_history_rule, risk_band, risk_bands
from storage.errors import UserError


@pytest.mark.parametrize(
    ("text", "column", "op", "value"),
    [
        ("tenure <= 0", "tenure", "<=", 0.0),
        ("tenure=0", "tenure", "==", 0.0),
        ("  Months_on_book < 3.5 ", "Months_on_book", "<", 3.5),
        ("`Customer Age` >= -1e2", "Customer Age", ">=", -100.0),
        ("segment == 'new'", "segment", "==", "new"),
        ('segment != "trial user"', "segment", "!=", "trial user"),
        ("x > .5", "x", ">", 0.5),
    ],
)
def test_valid_rules_parse_to_column_operator_value(text, column, op, value):
    # given a rule text; when parsed; then its parts are exact
    rule = parse_history_rule(text)
    assert rule == HistoryRule(column, op, value)


@pytest.mark.parametrize("text", ["none", "NONE", "", "  ", "off", None])
def test_none_switches_the_rule_off(text):
    assert parse_history_rule(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "tenure",
        "tenure <= ",
        "tenure <=> 0",
        "tenure <= zero",
        "__import__('os').system('x') == 1",
        "tenure <= 0 or 1 == 1",
        "tenure < 'abc'",
        "1 <= tenure",
        "tenure ≤ 0",
    ],
)
def test_invalid_rules_name_the_setting(text):
    with pytest.raises(UserError) as caught:
        parse_history_rule(text)
    assert "CHURNGUARD_NO_HISTORY_RULE" in str(caught.value)
    assert caught.value.details["setting"] == "CHURNGUARD_NO_HISTORY_RULE"


def test_numeric_rule_matches_records_with_text_numbers_and_skips_unknowns():
    rule = parse_history_rule("tenure <= 0")
    assert rule is not None
    assert rule.matches({"tenure": 0})
    assert rule.matches({"tenure": "0"})
    assert rule.matches({"tenure": -1.0})
    assert not rule.matches({"tenure": 1})
    assert not rule.matches({"tenure": None})
    assert not rule.matches({"tenure": float("nan")})
    assert not rule.matches({"tenure": "n/a"})
    # a dataset without the column: the rule does not apply
    assert not rule.matches({"Months_on_book": 0})


def test_text_rule_compares_stripped_text():
    rule = parse_history_rule("segment == 'new'")
    assert rule is not None
    assert rule.matches({"segment": " new "})
    assert not rule.matches({"segment": "old"})
    assert not rule.matches({"segment": None})


def test_mask_agrees_with_matches_on_a_frame():
    frame = pd.DataFrame({"tenure": [0, 5, None, -2, 72], "segment": ["new", "old", None, "new", "x"]})
    for text in ("tenure <= 0", "tenure == 5", "tenure != 5", "segment == 'new'", "segment != 'new'"):
        rule = parse_history_rule(text)
        assert rule is not None
        expected = [rule.matches(record) for record in frame.to_dict("records")]
        assert rule.mask(frame).tolist() == expected, text


def test_mask_is_all_false_without_the_column():
    rule = parse_history_rule("tenure <= 0")
    assert rule is not None
    frame = pd.DataFrame({"other": [0, 1]})
    assert rule.mask(frame).tolist() == [False, False]
    assert not rule.applies_to(frame.columns)


def test_rule_prints_back_as_it_reads():
    assert str(parse_history_rule("tenure<=0")) == "tenure <= 0"
    assert str(parse_history_rule("`Customer Age` == 2.5")) == "`Customer Age` == 2.5"
    assert str(parse_history_rule("segment == 'new'")) == "segment == 'new'"


@pytest.mark.parametrize(
    ("probability", "threshold", "band"),
    [
        (0.05, 0.2, "low"),
        (0.2, 0.2, "medium"),
        (0.59, 0.2, "medium"),
        (0.6, 0.2, "high"),
        (0.99, 0.2, "high"),
        (0.7, 0.8, "low"),
        (0.85, 0.8, "medium"),
        (0.9, 0.8, "high"),
    ],
)
def test_bands_are_relative_to_the_threshold(probability, threshold, band):
    # high starts halfway from the threshold to 1; medium = flagged but not high
    assert risk_band(probability, threshold) == band


def test_vector_bands_match_scalar_bands():
    probabilities = np.linspace(0, 1, 101)
    for threshold in (0.1, 0.35, 0.9):
        assert risk_bands(probabilities, threshold).tolist() == [risk_band(p, threshold) for p in probabilities]
    assert high_cutoff(0.2) == pytest.approx(0.6)
