"""Majority and logistic baselines on the shared encoded matrix."""

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold

from model.baselines import fit_proba, logistic_baseline, majority_baseline, out_of_fold_proba
from model.features import FeatureEncoder
from tests.model.training_data import TELCO_SCHEMA, telco_frame


def encoded_telco():
    frame = telco_frame()
    encoder = FeatureEncoder().fit(frame, TELCO_SCHEMA)
    return encoder, encoder.transform(frame), frame["Churn"].to_numpy()


def test_majority_scores_everyone_with_the_training_churn_rate():
    x = np.zeros((10, 1))
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])

    scores = fit_proba(majority_baseline(), x, y).predict_proba(x)[:, 1]

    assert np.all(scores == 0.2)


def test_out_of_fold_scores_come_from_models_that_did_not_see_the_row():
    y = np.array([1] * 10 + [0] * 40)
    x = np.zeros((50, 1))
    first = np.r_[0:8, 10:20]
    second = np.r_[8:10, 20:50]
    folds = [(second, first), (first, second)]

    scores = out_of_fold_proba(majority_baseline(), x, y, folds)

    # each held-out part gets the churn rate of the *other* part only
    np.testing.assert_allclose(scores[first], 2 / 32)
    np.testing.assert_allclose(scores[second], 8 / 18)


def test_logistic_regression_scales_one_hot_encodes_and_beats_the_prior():
    encoder, x, y = encoded_telco()
    model = logistic_baseline(encoder.numeric_indices_, encoder.categorical_indices_)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))

    scores = out_of_fold_proba(model, x, y, folds)

    assert average_precision_score(y, scores) > 0.6 > y.mean()
    fitted = fit_proba(model, x, y)
    columns = fitted.named_steps["columns"]
    assert columns.named_transformers_["numeric"].__class__.__name__ == "StandardScaler"
    assert columns.named_transformers_["categorical"].__class__.__name__ == "OneHotEncoder"


def test_unseen_levels_do_not_break_the_logistic_regression():
    encoder, x, y = encoded_telco()
    fitted = fit_proba(logistic_baseline(encoder.numeric_indices_, encoder.categorical_indices_), x, y)
    unseen = x[:5].copy()
    unseen[:, encoder.categorical_indices_] = np.nan

    scores = fitted.predict_proba(unseen)[:, 1]

    assert np.isfinite(scores).all()
