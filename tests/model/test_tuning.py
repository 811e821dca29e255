"""LightGBM search and fits: budget respected, deterministic for a seed, out-of-fold complete."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold

from model.tuning import DEFAULT_TRIAL, fit_booster, out_of_fold_boosting, tune_lightgbm


@pytest.fixture(scope="module")
def data():
    x, y = make_classification(n_samples=600, n_features=8, n_informative=4, weights=[0.75], random_state=0)
    x[:, 7] = np.floor(np.abs(x[:, 7]) * 2)  # a small categorical code column
    return x, y


def test_search_runs_the_default_trial_first_and_stops_at_max_trials(data):
    x, y = data
    messages = []

    result = tune_lightgbm(x, y, categorical=[7], seed=1, seconds=120, max_trials=3, n_folds=3,
                           progress=messages.append)

    assert result.trials == 3 and result.stopped_by == "trials"
    assert result.history[0]["cv_pr_auc"] <= result.cv_pr_auc == max(h["cv_pr_auc"] for h in result.history)
    assert messages[0].startswith("tuning 1/3 trials")
    assert result.params["deterministic"] is True and result.params["num_threads"] == 2
    summary = result.summary()
    assert set(DEFAULT_TRIAL) <= set(summary["best_params"]) and summary["best_params"]["num_boost_round"] >= 1


def test_search_is_deterministic_for_a_seed(data):
    x, y = data

    first = tune_lightgbm(x, y, categorical=[7], seed=5, seconds=120, max_trials=2, n_folds=3)
    again = tune_lightgbm(x, y, categorical=[7], seed=5, seconds=120, max_trials=2, n_folds=3)

    assert first.params == again.params and first.best_rounds == again.best_rounds
    assert first.cv_pr_auc == again.cv_pr_auc


def test_time_budget_stops_the_search(data):
    x, y = data

    result = tune_lightgbm(x, y, categorical=[7], seed=1, seconds=0.01, max_trials=50, n_folds=3)

    assert result.trials == 1 and result.stopped_by == "time"


def test_out_of_fold_scores_every_row_and_fits_are_reproducible(data):
    x, y = data
    params = {**tune_lightgbm(x, y, categorical=[7], seed=1, seconds=60, max_trials=1, n_folds=3).params}
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))

    scores = out_of_fold_boosting(params, 50, x, y, [7], folds)
    one, two = fit_booster(params, 50, x, y, [7]), fit_booster(params, 50, x, y, [7])

    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    np.testing.assert_array_equal(one.predict(x), two.predict(x))
    assert one.num_trees() == 50


def test_a_trial_past_the_deadline_is_cut_short(data):
    import time

    from model.tuning import _OutOfTime, base_params, cross_validate

    x, y = data
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))

    with pytest.raises(_OutOfTime):
        cross_validate({**base_params(0), **DEFAULT_TRIAL}, x, y, [7], folds, deadline=time.perf_counter() - 1)
