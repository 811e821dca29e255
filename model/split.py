"""Split labelled clients into train (70 %), validation (10 %) and test (20 %), stratified by the label.

Why these roles: the hyperparameter search only sees *train*; the threshold and the calibration
are fitted on out-of-fold scores of train + validation (validation rows are thus scored by
models whose hyperparameters never saw them — the report shows them separately); *test* is
scored once, at the end, and is what the acceptance gate and the ROI are computed on.  The
split is a pure function of the labels and the seed, so a retrain with the same data and seed
reproduces it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

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


def split_rows(labels: np.ndarray, seed: int) -> Split:
    """Stratified 70/10/20 split of ``len(labels)`` rows, fixed by ``seed``."""
    labels = np.asarray(labels)
    positions = np.arange(len(labels))
    rest, test = train_test_split(positions, test_size=TEST_SHARE, stratify=labels, random_state=seed)
    validation_of_rest = VALIDATION_SHARE / (1.0 - TEST_SHARE)
    train, validation = train_test_split(
        rest, test_size=validation_of_rest, stratify=labels[rest], random_state=seed
    )
    return Split(train=np.sort(train), validation=np.sort(validation), test=np.sort(test))


__all__ = ["TEST_SHARE", "VALIDATION_SHARE", "Split", "split_rows"]
