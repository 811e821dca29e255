"""70/10/20 stratified split, fixed by the seed."""

import numpy as np
import pytest

from model.split import split_rows


def labels(rows=1000, share=0.27, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(rows) < share).astype(int)


def test_parts_are_disjoint_cover_all_rows_and_have_the_right_sizes():
    y = labels()

    split = split_rows(y, seed=1)

    together = np.concatenate([split.train, split.validation, split.test])
    assert sorted(together.tolist()) == list(range(len(y)))
    assert (len(split.train), len(split.validation), len(split.test)) == (700, 100, 200)
    np.testing.assert_array_equal(split.fit, np.sort(np.concatenate([split.train, split.validation])))


@pytest.mark.parametrize("seed", [0, 7])
def test_each_part_keeps_the_churn_rate(seed):
    y = labels(rows=3001, share=0.2, seed=seed)

    split = split_rows(y, seed=seed)

    for part in (split.train, split.validation, split.test):
        assert abs(y[part].mean() - y.mean()) <= 1.0 / len(part) + 1e-9
    sizes = split.sizes(y)
    assert sum(item["positives"] for item in sizes.values()) == int(y.sum())


def test_same_seed_same_split_other_seed_other_split():
    y = labels()

    first, again, other = split_rows(y, seed=3), split_rows(y, seed=3), split_rows(y, seed=4)

    np.testing.assert_array_equal(first.test, again.test)
    np.testing.assert_array_equal(first.validation, again.validation)
    assert not np.array_equal(first.test, other.test)
