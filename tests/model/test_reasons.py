"""Reasons in plain words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from model.reasons import format_value, reason_dict, reason_text, unknown_client_text


@dataclass
class Effect:
    feature: str
    value: object
    effect: float


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (60, "60"),
        (60.0, "60"),
        (np.int64(60), "60"),
        (70.35, "70.35"),
        (70.3500001, "70.35"),
        (1889.5, "1889.5"),
        (12500.0, "12,500"),
        (12500.756, "12,500.76"),
        (0.004, "0.004"),
        (-3.25, "-3.25"),
        (float("nan"), "missing"),
        (None, "missing"),
        (True, "yes"),
        ("Month-to-month", "Month-to-month"),
        ("  ", "empty"),
    ],
)
def test_values_are_written_the_way_a_person_writes_them(value, text):
    assert format_value(value) == text


def test_reason_text_names_feature_value_and_direction():
    assert reason_text(Effect("Contract", "Month-to-month", 0.8)) == "Contract = Month-to-month raises risk"
    assert reason_text(Effect("tenure", 60.0, -1.2)) == "tenure = 60 lowers risk"
    assert reason_text(Effect("x", 1, 0.0)) == "x = 1 does not change risk"


def test_reason_dict_is_json_safe():
    item = reason_dict(Effect("tenure", np.float64(2.0), np.float32(0.25)))
    assert item == {"feature": "tenure", "value": 2.0, "effect": 0.25, "text": "tenure = 2 raises risk"}
    assert type(item["value"]) is float
    assert reason_dict(Effect("TotalCharges", float("nan"), -0.1))["value"] is None


def test_unknown_client_text_quotes_the_id():
    assert "'abc'" in unknown_client_text("abc")
