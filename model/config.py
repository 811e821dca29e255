"""Training settings as plain values, so ``model`` never depends on the root ``Settings``.

The command line and the jobs build a ``TrainConfig`` from ``Settings`` with
:meth:`TrainConfig.from_settings`; tests build one directly.  Values are checked here, once,
because a wrong value (a recall target of 90 instead of 0.90) would otherwise surface as a
baffling failure deep inside the threshold search.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from storage.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training lifecycle needs besides the data and its schema."""

    seed: int = 42
    recall_target: float = 0.90
    tuning_seconds: float = 20.0
    n_folds: int = 5
    contact_cost: float = 5.0
    retained_value: float = 300.0
    offer_success_rate: float = 0.25
    champion_tolerance: float = 0.02
    max_trials: int = 200
    # The recall lower bound of the threshold rule: one-sided z (1.645 ≈ 95 %) and the factor on
    # the binomial variance for model-to-model variation; see model/threshold.py.
    confidence_z: float = 1.645
    recall_dispersion: float = 2.0
    # A label at as-of date d means "left within this many days after d": it is known at
    # d + horizon, and out-of-time validation never trains on a label unknown at the date it tests.
    churn_horizon_days: int = 30
    # Labelled rows over at least this many as-of dates are validated out of time (model/validation.py).
    out_of_time_min_dates: int = 3

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("seed", isinstance(self.seed, int) and self.seed >= 0, "a whole number >= 0"),
            ("recall_target", _finite(self.recall_target) and 0 < self.recall_target < 1,
             "a share between 0 and 1 (e.g. 0.90)"),
            ("tuning_seconds", _finite(self.tuning_seconds) and 0 < self.tuning_seconds <= 3600,
             "seconds between 0 and 3600"),
            ("n_folds", isinstance(self.n_folds, int) and 2 <= self.n_folds <= 20, "a whole number from 2 to 20"),
            ("contact_cost", _finite(self.contact_cost) and self.contact_cost >= 0, "an amount >= 0"),
            ("retained_value", _finite(self.retained_value) and self.retained_value >= 0, "an amount >= 0"),
            ("offer_success_rate", _finite(self.offer_success_rate) and 0 <= self.offer_success_rate <= 1,
             "a share between 0 and 1"),
            ("champion_tolerance", _finite(self.champion_tolerance) and 0 <= self.champion_tolerance < 1,
             "a share between 0 and 1"),
            ("max_trials", isinstance(self.max_trials, int) and self.max_trials >= 1, "a whole number >= 1"),
            ("confidence_z", _finite(self.confidence_z) and 0 <= self.confidence_z <= 5, "a number from 0 to 5"),
            ("recall_dispersion", _finite(self.recall_dispersion) and 1 <= self.recall_dispersion <= 10,
             "a factor from 1 to 10"),
            ("churn_horizon_days", isinstance(self.churn_horizon_days, int) and 1 <= self.churn_horizon_days <= 3660,
             "a whole number of days from 1 to 3660"),
            ("out_of_time_min_dates", isinstance(self.out_of_time_min_dates, int) and self.out_of_time_min_dates >= 3,
             "a whole number >= 3"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise UserError(f"training setting {name} must be {expected}, got {getattr(self, name)!r}",
                                setting=name, value=getattr(self, name))

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> TrainConfig:
        """Take every field that ``settings`` (e.g. ``churnguard.Settings``) has, then the overrides."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if hasattr(settings, item.name):
                values[item.name] = getattr(settings, item.name)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))


__all__ = ["TrainConfig"]
