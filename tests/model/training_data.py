"""Real churn data sets as the training lifecycle receives them, and one cached trained model.

The lifecycle's input contract: an id column, a 0/1 label, numeric columns as float64 with NaN
and text columns as strings with NaN.  The loaders below do what the storage loader does for
each file (Telco's blank ``TotalCharges`` become NaN).  Training is the slow part of these
tests, so one small Telco training run is shared (cached) by every test that only reads it.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from model.config import TrainConfig
from model.lifecycle import TrainingOutcome, train_lifecycle
from storage.schema import Schema
from tests.conftest import DATA, TELCO

TELCO_SCHEMA = Schema("customerID", "Churn", "Yes", ())
BANK_SCHEMA = Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer", ())
CHURN_MODELLING_SCHEMA = Schema("CustomerId", "Exited", "1", ("RowNumber", "Surname"))

# A fixed number of trials (and a budget they always fit in) keeps results identical on fast
# and slow machines: the time budget would otherwise decide how many trials run.
FAST = TrainConfig(seed=42, tuning_seconds=120.0, max_trials=2)


def telco_frame() -> pd.DataFrame:
    frame = pd.read_csv(TELCO)
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    frame["Churn"] = (frame["Churn"] == "Yes").astype(int)
    return frame


def bank_frame() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "BankChurners.csv")
    frame = frame[[c for c in frame.columns if not c.startswith("Naive_Bayes_Classifier")]].copy()
    frame["Attrition_Flag"] = (frame["Attrition_Flag"] == "Attrited Customer").astype(int)
    return frame


def churn_modelling_frame() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "Churn_Modelling.csv")
    frame["Exited"] = frame["Exited"].astype(int)
    return frame


@cache
def trained_telco() -> TrainingOutcome:
    """One Telco training run shared by the tests that only read it (do not mutate)."""
    return train_lifecycle(telco_frame(), schema=TELCO_SCHEMA, config=FAST)
