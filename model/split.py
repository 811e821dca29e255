"""Split labelled clients into train (70 %), validation (10 %) and test (20 %), stratified by the label.

Why these roles: the hyperparameter search only sees *train*; the threshold and the calibration
are fitted on out-of-fold scores of train + validation (validation rows are thus scored by
models whose hyperparameters never saw them — the report shows them separately); *test* is
scored once, at the end, and is what the acceptance gate and the ROI are computed on.  The
split is a pure function of the labels and the seed, so a retrain with the same data and seed
reproduces it exactly.

Event-based training frames hold one row per (client, observation date): the same client at
several months.  Splitting those rows independently would put a client's March in train and
its April in test, and the test recall would be measured on clients the model has seen.  With
``groups`` the split (and the cross-validation folds, ``cv_folds``) moves whole clients:
clients are stratified by whether they ever churn, so each part keeps the churn rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

TEST_SHARE = 0.20
VALIDATION_SHARE = 0.10


@dataclass(frozen=True)
class Split:
    """Row positions (into the frame that was split) of each part."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    @property
    def fit(self) -> np.ndarray:
        """Train and validation together: what the out-of-fold threshold and final model use."""
        return np.sort(np.concatenate([self.train, self.validation]))

    def sizes(self, labels: np.ndarray) -> dict[str, dict[str, int]]:
        labels = np.asarray(labels)
        return {
            name: {"rows": len(part), "positives": int(labels[part].sum())}
            for name, part in (("train", self.train), ("validation", self.validation), ("test", self.test))
        }


def split_rows(labels: np.ndarray, seed: int, groups: np.ndarray | None = None) -> Split:
    """Stratified 70/10/20 split of ``len(labels)`` rows, fixed by ``seed``; with ``groups``
    (one key per row) every group's rows land in the same part."""
    labels = np.asarray(labels)
    if groups is not None:
        return _split_groups(labels, np.asarray(groups), seed)
    positions = np.arange(len(labels))
    rest, test = train_test_split(positions, test_size=TEST_SHARE, stratify=labels, random_state=seed)
    validation_of_rest = VALIDATION_SHARE / (1.0 - TEST_SHARE)
    train, validation = train_test_split(
        rest, test_size=validation_of_rest, stratify=labels[rest], random_state=seed
    )
    return Split(train=np.sort(train), validation=np.sort(validation), test=np.sort(test))


def _split_groups(labels: np.ndarray, groups: np.ndarray, seed: int) -> Split:
    if len(groups) != len(labels):
        raise ValueError("one group key per row is needed")
    keys, codes = np.unique(groups.astype(str), return_inverse=True)
    ever = np.zeros(len(keys), dtype="int64")
    np.maximum.at(ever, codes, labels.astype("int64"))
    if len(keys) < 10 or min(int(ever.sum()), len(keys) - int(ever.sum())) < 3:
        raise ValueError(f"too few clients to split by client: {len(keys)} clients, {int(ever.sum())} ever churn")
    clients = np.arange(len(keys))
    rest, test = train_test_split(clients, test_size=TEST_SHARE, stratify=ever, random_state=seed)
    validation_of_rest = VALIDATION_SHARE / (1.0 - TEST_SHARE)
    train, validation = train_test_split(rest, test_size=validation_of_rest, stratify=ever[rest], random_state=seed)

    def rows(part: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(codes, part))

    return Split(train=rows(train), validation=rows(validation), test=rows(test))


def cv_folds(labels: np.ndarray, n_folds: int, seed: int,
             groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded folds; with ``groups`` no group is on both sides of a fold, so an
    out-of-fold score is always a score of a client the fold's model never saw."""
    labels = np.asarray(labels)
    if groups is None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels))
    grouped = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(grouped.split(np.zeros(len(labels)), labels, groups=np.asarray(groups).astype(str)))


__all__ = ["TEST_SHARE", "VALIDATION_SHARE", "Split", "cv_folds", "split_rows"]
