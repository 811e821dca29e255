"""Monthly CRM batches with known drift, for tests and the demo.

Monitoring can only be trusted if it stays quiet on data that has not changed and speaks
up on data that has.  This module builds both from a public data set (Telco by default):
each month is a bootstrap resample of the source, optionally reshaped the way real
customer bases drift.

* ``"none"``: plain bootstrap resamples — the stable control.
* ``"covariate"``: the client mix moves while the link between data and churn stays: the
  share of month-to-month contracts rises (those clients churn more) and monthly charges
  climb (a price rise), growing month by month.
* ``"concept"``: the data look the same but who churns changes: long-contract, long-tenure
  clients, whom a model trained on the source considers safe, start leaving.  Data-drift
  checks stay quiet while realised recall falls — the case that needs labels.

Drift grows linearly from nothing in month 1 to full strength in the last month.  Every
month gets fresh, unique client ids (``M01-00001``…); with ``repeat_share`` > 0 part of a
month re-sends clients from the month before with a newer record (tenure + 1, charges
accumulated) and the same outcome, which exercises "latest record per client" logic.
Labels stay in the batches (outcomes arrive with the data); :func:`without_labels` gives
the unlabelled variant.  The same seed gives the same stream.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from storage.errors import UserError

Drift = Literal["none", "covariate", "concept"]
DRIFTS: tuple[str, ...] = ("none", "covariate", "concept")

# Telco's columns the drift scenarios reshape; a source without them supports only "none".
CONTRACT = "Contract"
MONTHLY = "MonthlyCharges"
TOTAL = "TotalCharges"
TENURE = "tenure"
MONTH_TO_MONTH = "Month-to-month"

COVARIATE_M2M_SHARE = 0.90  # month-to-month share reached in the last month (Telco: 55 %)
COVARIATE_PRICE_RISE = 0.30  # monthly charges +30 % by the last month
CONCEPT_CHURN_SHARE = 0.60  # share of the "safe" segment that churns by the last month
CONCEPT_MIN_TENURE = 12


def monthly_stream(
    frame: pd.DataFrame,
    months: int = 6,
    *,
    drift: Drift = "none",
    seed: int = 0,
    rows_per_month: int = 1000,
    id_column: str = "customerID",
    label_column: str = "Churn",
    positive_label: str = "Yes",
    negative_label: str = "No",
    repeat_share: float = 0.0,
) -> list[pd.DataFrame]:
    """``months`` batches of ``rows_per_month`` clients each, drawn from ``frame``."""
    _check(frame, months, drift, rows_per_month, id_column, label_column, repeat_share, seed)
    source = frame.reset_index(drop=True)
    batches: list[pd.DataFrame] = []
    for month in range(months):
        strength = month / (months - 1) if months > 1 else 0.0
        rng = np.random.default_rng([seed, month])
        n_repeat = round(rows_per_month * repeat_share) if batches else 0
        fresh = _draw(source, rows_per_month - n_repeat, drift, strength, rng)
        fresh = _shift(fresh, drift, strength, rng, label_column, positive_label, negative_label)
        fresh[id_column] = [f"M{month + 1:02d}-{i + 1:05d}" for i in range(len(fresh))]
        parts = [fresh]
        if n_repeat:
            parts.insert(0, _repeat(batches[-1], n_repeat, rng))
        batch = pd.concat(parts, ignore_index=True)[list(frame.columns)]
        batches.append(batch)
    return batches


def without_labels(batch: pd.DataFrame, label_column: str = "Churn") -> pd.DataFrame:
    """The batch as a CRM export before outcomes are known."""
    if label_column not in batch.columns:
        raise UserError(f"the batch has no label column {label_column!r}")
    return batch.drop(columns=[label_column])


def _check(
    frame: pd.DataFrame,
    months: int,
    drift: str,
    rows_per_month: int,
    id_column: str,
    label_column: str,
    repeat_share: float,
    seed: int,
) -> None:
    if drift not in DRIFTS:
        raise UserError(f"drift must be one of {', '.join(DRIFTS)} (got {drift!r})")
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise UserError(f"months must be a whole number of at least 1 (got {months!r})")
    if isinstance(rows_per_month, bool) or not isinstance(rows_per_month, int) or rows_per_month < 1:
        raise UserError(f"rows_per_month must be a whole number of at least 1 (got {rows_per_month!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a whole number of at least 0 (got {seed!r})")
    if not 0 <= repeat_share < 1:
        raise UserError(f"repeat_share must be at least 0 and below 1 (got {repeat_share!r})")
    if frame.empty:
        raise UserError("the source data set is empty")
    for column in (id_column, label_column):
        if column not in frame.columns:
            raise UserError(f"the source data set has no column {column!r}")
    needed = {"covariate": (CONTRACT, MONTHLY), "concept": (CONTRACT, TENURE)}.get(drift, ())
    absent = [column for column in needed if column not in frame.columns]
    if absent:
        raise UserError(f"drift {drift!r} needs the Telco columns {', '.join(absent)}, which the source lacks")


def _draw(source: pd.DataFrame, rows: int, drift: str, strength: float, rng: np.random.Generator) -> pd.DataFrame:
    """Bootstrap rows; under covariate drift, reweighted so month-to-month contracts gain share."""
    weights = None
    if drift == "covariate" and strength > 0:
        is_m2m = (source[CONTRACT] == MONTH_TO_MONTH).to_numpy()
        base = float(is_m2m.mean())
        if 0 < base < 1:
            wanted = base + (max(COVARIATE_M2M_SHARE, base) - base) * strength
            weights = np.where(is_m2m, wanted / base, (1 - wanted) / (1 - base))
            weights = weights / weights.sum()
    index = rng.choice(len(source), size=rows, replace=True, p=weights)
    return source.iloc[index].reset_index(drop=True)


def _shift(
    batch: pd.DataFrame,
    drift: str,
    strength: float,
    rng: np.random.Generator,
    label_column: str,
    positive_label: str,
    negative_label: str,
) -> pd.DataFrame:
    batch = batch.copy()
    if drift == "covariate" and strength > 0:
        factor = 1 + COVARIATE_PRICE_RISE * strength * rng.uniform(0.8, 1.2, size=len(batch))
        monthly = pd.to_numeric(batch[MONTHLY], errors="coerce")
        batch[MONTHLY] = (monthly * factor).round(2)
        if TOTAL in batch.columns:
            batch[TOTAL] = _scale_text_numbers(batch[TOTAL], factor)
    if drift == "concept" and strength > 0:
        tenure = pd.to_numeric(batch[TENURE], errors="coerce")
        safe = (batch[CONTRACT] != MONTH_TO_MONTH) & (tenure >= CONCEPT_MIN_TENURE)
        flip = safe.to_numpy() & (rng.random(len(batch)) < CONCEPT_CHURN_SHARE * strength)
        labels = batch[label_column].astype(object)
        labels[flip & (labels != positive_label).to_numpy()] = positive_label
        batch[label_column] = labels.astype(batch[label_column].dtype)
    return batch


def _scale_text_numbers(values: pd.Series, factor: np.ndarray) -> pd.Series:
    """Scale numbers that may be stored as text, keeping blanks (Telco's TotalCharges) blank."""
    numbers = pd.to_numeric(values.astype(object).where(values.notna(), None), errors="coerce")
    scaled = (numbers * factor).round(2)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return scaled
    text = scaled.map(lambda v: "" if pd.isna(v) else f"{v:.2f}").astype(object)
    text[numbers.isna().to_numpy()] = values[numbers.isna().to_numpy()].astype(object)
    return text.astype(values.dtype)


def _repeat(previous: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Clients from last month again, one month older: tenure + 1 and one more month charged."""
    index = rng.choice(len(previous), size=min(rows, len(previous)), replace=False)
    again = previous.iloc[np.sort(index)].reset_index(drop=True).copy()
    if TENURE in again.columns:
        again[TENURE] = pd.to_numeric(again[TENURE], errors="coerce") + 1
    if TOTAL in again.columns and MONTHLY in again.columns:
        monthly = pd.to_numeric(again[MONTHLY], errors="coerce").to_numpy()
        total = pd.to_numeric(again[TOTAL].astype(object).where(again[TOTAL].notna(), None), errors="coerce")
        updated = total.fillna(0).to_numpy() + monthly
        if pd.api.types.is_numeric_dtype(again[TOTAL].dtype):
            again[TOTAL] = np.round(updated, 2)
        else:
            again[TOTAL] = pd.Series([f"{v:.2f}" for v in updated], dtype=again[TOTAL].dtype)
    return again
