"""Pilot segments: parsed by a whitelist grammar, never evaluated as code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.campaigns.segment import check, parse_segment
from storage.errors import UserError

FRAME = pd.DataFrame({
    "Contract": ["Month-to-month", "One year", "Month-to-month", None, "Two year"],
    "tenure": [3.0, 20.0, 15.0, 1.0, np.nan],
    "plan": ["annual", "monthly", "annual", "annual", "monthly"],
    "Payment Method": ["card", "card", "bank", "bank", "card"],
})


@pytest.mark.parametrize(("text", "selected"), [
    ("plan == 'annual'", [True, False, True, True, False]),
    ("plan = \u2018annual\u2019", [True, False, True, True, False]),  # a phone's curly quotes
    ("Contract == 'Month-to-month' and tenure < 12", [True, False, False, False, False]),
    ("tenure >= 12 or Contract == 'Two year'", [False, True, True, False, True]),
    ("not (tenure >= 12)", [True, False, False, True, True]),  # a missing value never matches, so not() keeps it
    ("Contract in ('One year', 'Two year')", [False, True, False, False, True]),
    ("Contract not in ('One year', 'Two year')", [True, False, True, True, False]),
    ("`Payment Method` == 'card' AND tenure \u2264 3", [True, False, False, False, False]),
    ("(plan == 'annual' or plan == 'monthly') and tenure > 2", [True, True, True, False, False]),
])
def test_segments_select_the_rows_they_say(text, selected):
    segment = parse_segment(text)

    assert segment is not None
    check(segment, FRAME)
    assert segment.mask(FRAME).tolist() == selected


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/pwned')",
    "tenure < 12; import os",
    "plan == annual",
    "tenure < ",
    "(tenure < 3",
    "tenure < 3 tenure > 1",
    "plan < 'b'",
    "@tenure > 1",
    "x" * 501,
])
def test_anything_but_comparisons_is_refused_without_running_it(text, tmp_path):
    with pytest.raises(UserError) as caught:
        parse_segment(text)

    assert "cannot be read" in str(caught.value)
    assert not (tmp_path / "pwned").exists()


def test_empty_text_means_no_segment():
    assert parse_segment("  ") is None and parse_segment(None) is None


@pytest.mark.parametrize(("text", "message"), [
    ("plann == 'annual'", "the column 'plann', which the clients do not have. Did you mean 'plan'"),
    ("tenure == 'long'", "tenure holds numbers; compare it with a number"),
    ("Contract < 5", "Contract holds text"),
    ("Contract == 'month-to-month'", "no client has Contract = 'month-to-month'. Did you mean 'Month-to-month'?"),
])
def test_segments_that_cannot_mean_what_was_meant_are_refused_with_the_facts(text, message):
    segment = parse_segment(text)
    assert segment is not None

    with pytest.raises(UserError) as caught:
        check(segment, FRAME)

    assert message in str(caught.value)


def test_examples_come_from_the_clients_own_columns():
    from model.campaigns.segment import example_for

    example = example_for(FRAME)

    assert example == "Contract == 'Month-to-month' and tenure < 9"
    parsed = parse_segment(example)
    assert parsed is not None and parsed.mask(FRAME).tolist() == [True, False, False, False, False]
    assert example_for(FRAME, skip=["Contract", "tenure"]) == "plan == 'annual'"
    with pytest.raises(UserError, match="such as \"Contract == 'Month-to-month' and tenure < 9\""):
        parse_segment("Contract ==", example=example)
