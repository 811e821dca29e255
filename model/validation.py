"""How a training frame is split for validation: out of time when it has dates, else at random.

A churn model is trained on clients *as of a date* and used on a *later* date.  Judged on a
random split of the same months, it looks better than it is: anything that grows with time
(tenure, counters) tells the months apart, and next month's leavers are caught far less often
than the report promised.  So when the labelled rows cover at least ``min_dates`` as-of dates,
validation follows time:

* **test** — the newest labelled date (older dates are added while it holds fewer than
  ``MIN_TEST_POSITIVES`` churners, keeping at least two dates to learn from): the period the
  report's figures and the acceptance gate are about, which no model of this run trained on;
* **fit** — every earlier date whose label was known when the test period began (a label at
  ``d`` is known at ``d + horizon``: rows whose outcome was still open never train for it);
* **validation dates** — the newest fit dates (up to ``MAX_VALIDATION_DATES``, at most half of
  them): each is scored by a model fitted only on the dates before it whose labels were known
  by then (forward chaining).  Those out-of-time scores set the threshold and the calibration,
  so the recall promise is measured exactly as it will be kept: on a later month;
* **train** — the fit dates before the first validation date: the hyperparameter search sees
  only these.

With fewer dates (a single export such as Telco is one date) the split is random: 70 % train,
10 % validation, 20 % test, stratified; whenever a client has several rows, whole clients move
(every row of a client on one side), and the out-of-fold scores of the fit rows set the threshold.

``GRACE_DAYS``: monthly exports labelled "left during the next month" are a calendar month
apart, 28 to 31 days, while the horizon is a number of days (30): a label is taken as known at
the next month-end when it is within three days of it, so February does not drop a month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from model.split import TEST_SHARE, Split, cv_folds, split_rows

OUT_OF_TIME, RANDOM = "out_of_time", "random"
AS_OF = "as_of"  # the date column of every training frame: one row per client and as-of date
MIN_TEST_POSITIVES = 30
MAX_VALIDATION_DATES = 4
GRACE_DAYS = 3

Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ValidationPlan:
    """Row positions (into the training frame) of each part, and the folds whose held-out
    scores set the threshold.  ``folds`` index into ``fit`` (positions within ``fit``), like
    ``model.split.cv_folds`` does; in a random plan they cover every fit row, out of time only
    the validation dates' rows."""

    kind: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    fit: np.ndarray
    folds: list[Fold]
    # Out of time: the dates of each part (ISO strings) and the rows the embargo left out.
    dates: dict[str, list[str]] = field(default_factory=dict)
    embargoed_rows: int = 0
    reason: str = ""

    @property
    def out_of_time(self) -> bool:
        return self.kind == OUT_OF_TIME

    @property
    def scored(self) -> np.ndarray:
        """Positions within ``fit`` that some fold scores (the rows the threshold is set on)."""
        if not self.folds:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate([held for _, held in self.folds]))

    def sizes(self, labels: np.ndarray) -> dict[str, dict[str, int]]:
        labels = np.asarray(labels)
        return {name: {"rows": len(part), "positives": int(labels[part].sum())}
                for name, part in (("train", self.train), ("validation", self.validation), ("test", self.test))}

    def describe(self) -> dict[str, Any]:
        """The report's ``validation`` block (plain JSON)."""
        described: dict[str, Any] = {"kind": self.kind, "reason": self.reason}
        if self.out_of_time:
            described.update({
                "test_dates": self.dates.get("test", []),
                "validation_dates": self.dates.get("validation", []),
                "train_dates": self.dates.get("train", []),
                "embargoed_rows": self.embargoed_rows,
                "threshold_from": "forward chaining: each validation date scored by a model fitted on the "
                                  "dates before it whose outcomes were known by then",
            })
        else:
            described["threshold_from"] = "out-of-fold scores of train + validation"
        return described


def plan_validation(
    labels: np.ndarray,
    *,
    seed: int,
    n_folds: int,
    as_of: pd.Series | None = None,
    groups: np.ndarray | None = None,
    horizon_days: int = 30,
    min_dates: int = 3,
) -> ValidationPlan:
    """Out of time when ``as_of`` (one date per row) holds at least ``min_dates`` dates, else random."""
    labels = np.asarray(labels).astype("int64")
    dates = pd.to_datetime(as_of).to_numpy(dtype="datetime64[ns]") if as_of is not None else None
    distinct = np.unique(dates) if dates is not None else np.empty(0, dtype="datetime64[ns]")
    if dates is not None and len(distinct) >= max(int(min_dates), 3):
        plan = _out_of_time(labels, dates, distinct, horizon_days=horizon_days)
        if plan is not None:
            return plan
        reason = (f"{len(distinct)} as-of dates, but too few rows with known outcomes before the newest to "
                  "validate out of time")
    elif dates is not None and len(distinct) > 1:
        reason = f"only {len(distinct)} as-of dates (out-of-time validation needs at least {max(min_dates, 3)})"
    else:
        reason = "one as-of date: the data have no time to validate on"
    return _random(labels, seed=seed, n_folds=n_folds, groups=groups, reason=reason)


def _random(labels: np.ndarray, *, seed: int, n_folds: int, groups: np.ndarray | None, reason: str) -> ValidationPlan:
    if groups is not None and len(np.unique(groups)) == len(groups):
        groups = None  # one row per client: a plain stratified split is the same thing, and cheaper
    split: Split = split_rows(labels, seed, groups)
    fit = split.fit
    folds = cv_folds(labels[fit], n_folds, seed, None if groups is None else groups[fit])
    return ValidationPlan(RANDOM, split.train, split.validation, split.test, fit, folds,
                          reason=reason + ("; whole clients kept on one side" if groups is not None else ""))


def _out_of_time(labels: np.ndarray, dates: np.ndarray, distinct: np.ndarray, *,
                 horizon_days: int) -> ValidationPlan | None:
    horizon = np.timedelta64(int(horizon_days), "D") - np.timedelta64(GRACE_DAYS, "D")
    known_at = dates + horizon
    # Test: the newest date, plus older ones while too few churners, keeping two dates to learn from.
    test_dates: list[np.datetime64] = []
    for date in distinct[::-1]:
        if len(distinct) - len(test_dates) <= 2:
            break
        test_dates.append(date)
        if int(labels[dates == date].sum()) >= MIN_TEST_POSITIVES:
            break
    test_start = min(test_dates)
    test = np.flatnonzero(dates >= test_start)
    before = dates < test_start
    fit_mask = before & (known_at <= test_start)
    fit = np.flatnonzero(fit_mask)
    fit_dates = np.unique(dates[fit])
    if len(fit_dates) < 2 or labels[fit].sum() == 0:
        return None
    n_validation = max(1, min(MAX_VALIDATION_DATES, len(fit_dates) // 2))
    validation_dates = list(fit_dates[-n_validation:])
    fit_positions = {int(row): position for position, row in enumerate(fit)}
    folds: list[Fold] = []
    used: list[np.datetime64] = []
    for date in validation_dates:
        learn = np.flatnonzero(fit_mask & (dates < date) & (known_at <= date))
        held = np.flatnonzero(dates == date)
        if len(learn) == 0 or labels[learn].sum() == 0 or labels[learn].sum() == len(learn):
            continue
        folds.append((np.array([fit_positions[int(r)] for r in learn], dtype=np.int64),
                      np.array([fit_positions[int(r)] for r in held], dtype=np.int64)))
        used.append(date)
    if not folds or int(sum(labels[fit][held].sum() for _, held in folds)) == 0:
        return None
    first_validation = min(used)
    train = fit[dates[fit] < first_validation]
    validation = fit[dates[fit] >= first_validation]
    iso = lambda values: [str(pd.Timestamp(v).isoformat()) for v in sorted(values)]  # noqa: E731
    return ValidationPlan(
        OUT_OF_TIME, train, validation, test, fit, folds,
        dates={"test": iso(test_dates), "validation": iso(used), "train": iso(np.unique(dates[train]))},
        embargoed_rows=int((before & ~fit_mask).sum()),
        reason=f"{len(distinct)} as-of dates: tested on the newest, threshold set on later months scored by "
               "models of earlier months",
    )


def evaluation_positives(plan: ValidationPlan, labels: np.ndarray) -> int:
    """Churners in the set the recall promise is made for: a period like one validation date
    (out of time), or a test split's worth of the fit rows (random).  Derived without reading a
    test label."""
    labels = np.asarray(labels)
    if plan.out_of_time:
        fit_labels = labels[plan.fit]
        per_date = [int(fit_labels[held].sum()) for _, held in plan.folds]
        return max(1, round(float(np.mean(per_date))))
    return max(1, round(int(labels[plan.fit].sum()) * TEST_SHARE / (1.0 - TEST_SHARE)))


__all__ = ["AS_OF", "GRACE_DAYS", "MAX_VALIDATION_DATES", "MIN_TEST_POSITIVES", "OUT_OF_TIME", "RANDOM", "ValidationPlan",
           "evaluation_positives", "plan_validation"]
