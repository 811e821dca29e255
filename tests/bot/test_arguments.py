"""Command arguments: a count from 1 to a maximum, refused with a hint otherwise."""

from __future__ import annotations

import pytest

from bot.arguments import parse_count
from storage.errors import UserError


def test_no_argument_gives_the_default_and_a_number_in_range_is_taken() -> None:
    assert parse_count("top", [], 20, 1000) == 20
    assert parse_count("top", ["7"], 20, 1000) == 7
    assert parse_count("top", ["1000"], 20, 1000) == 1000


@pytest.mark.parametrize(("args", "message"), [
    (["ten"], "'ten' is not a whole number; try /top 20."),
    (["2.5"], "'2.5' is not a whole number; try /top 20."),
    (["0"], "The number must be between 1 and 1000, got 0; try /top 20."),
    (["1001"], "The number must be between 1 and 1000, got 1001; try /top 20."),
    (["1", "2"], "Give at most one number, for example /top 20."),
])
def test_bad_counts_are_refused_with_a_hint(args: list[str], message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_count("top", args, 20, 1000)
    assert str(caught.value) == message
