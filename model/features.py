"""Turn client columns into the numeric matrix the models read — identically for a batch and one client.

Why one class does both paths: scoring a single client from the bot must give exactly the
probability the batch scorer gives for the same row, so the batch path (vectorised pandas) and
the record path (a plain dict, no pandas, well under a millisecond) are built from the same
fitted state and the same scalar normalisation rules, and a test compares them row by row.

Encoding rules (fitted on the training split only):

* identifier, label and ignored columns are dropped, as are columns that cannot help
  (empty, constant, or identifier-like free text with nearly one value per row);
* numeric columns → float; ``None``, ``""``, text that is not a number and ±inf become missing,
  then missing is filled with the training median;
* text columns are categoricals → integer code in the fitted level list (LightGBM reads them
  natively); missing is filled with the most frequent level, while a level never seen in
  training becomes NaN, which LightGBM routes as "missing" instead of guessing a level;
* engineered ratios are added when the column names suggest them (total charges per month of
  tenure, amount per transaction); a zero or missing denominator gives missing, filled with the
  training median of the ratio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from storage.schema import Schema

# A text column with more levels than this keeps only its most frequent ones; the rest count as
# unseen.  Trees gain nothing from hundreds of rare levels and overfit them instead.
MAX_LEVELS = 100

_TOTAL_CHARGES = re.compile(r"total.*(charge|amount|amt)", re.IGNORECASE)
_NOT_TOTAL = re.compile(r"chng|change|ratio|per|avg|mean", re.IGNORECASE)
_TENURE = re.compile(r"tenure", re.IGNORECASE)
_MONTHS = re.compile(r"months?", re.IGNORECASE)
_NOT_TENURE = re.compile(r"inactive|since|last|12|contact", re.IGNORECASE)
_AMOUNT = re.compile(r"(amount|amt)", re.IGNORECASE)
_COUNT_FOR = {"amount": ("count", "cnt", "ct"), "amt": ("ct", "cnt", "count")}


@dataclass(frozen=True)
class Engineered:
    """A ratio feature added by the encoder; ``formula`` is shown in the training report."""

    name: str
    numerator: str
    denominator: str
    formula: str
    median: float


def to_float(value: Any) -> float:
    """The one scalar rule for numeric cells on both paths: anything unusable becomes NaN."""
    if value is None or isinstance(value, bool | np.bool_):
        return float(value) if value is not None else math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return math.nan
    else:
        return math.nan
    return number if math.isfinite(number) else math.nan


def level_key(value: Any) -> str | None:
    """The one scalar rule for categorical cells: a stripped string, or None when missing.

    Whole floats print as integers so that ``3``, ``3.0`` and ``"3"`` name the same level
    whether they came from a typed column, a JSON record or text.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
        return str(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value).strip() or None


def _numeric_series(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = np.fromiter((to_float(v) for v in series.astype(object)), dtype="float64", count=len(series))
    values = values.copy()
    values[~np.isfinite(values)] = np.nan
    return values


def _level_series(series: pd.Series) -> pd.Series:
    """Normalised level keys (object dtype, None for missing), vectorised for text columns."""
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_bool_dtype(series):
        stripped = series.str.strip()
        stripped = stripped.mask(stripped == "")
        return stripped.astype(object).where(stripped.notna(), None)
    return series.astype(object).map(level_key)


def _category_codes(series: pd.Series, codes: Mapping[str, int], fill: float) -> np.ndarray:
    """Level codes of a column as float64: ``fill`` for missing, NaN for a level never seen in training.

    Why factorize first: a scoring batch holds few distinct values in many rows, so ``level_key``
    (the record path's own scalar rule, hence identical results) runs once per distinct value and
    the rows only gather from a small lookup table.  Object columns are the exception: factorize
    treats ``True`` and ``1`` as one value while ``level_key`` does not, so their rows go through
    ``level_key`` one by one.
    """
    if series.dtype == object:
        keys = [level_key(value) for value in series.to_numpy()]
        return np.fromiter((fill if key is None else codes.get(key, math.nan) for key in keys),
                           dtype="float64", count=len(keys))
    positions, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype="float64")
    for index, value in enumerate(uniques):
        key = level_key(value)
        table[index] = fill if key is None else codes.get(key, math.nan)
    table[-1] = fill  # factorize marks missing cells with -1, which picks this last slot
    return table[positions]


def is_numeric_column(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _numbers_as_text(series: pd.Series, share: float = 0.95) -> bool:
    """A text column whose filled cells are (almost) all numbers is numeric (e.g. Telco's TotalCharges
    before blanks are coerced); the rare junk cells then count as missing."""
    keys = _level_series(series).dropna()
    if keys.empty:
        return False
    parsed = np.fromiter((to_float(v) for v in keys), dtype="float64", count=len(keys))
    return bool(np.isfinite(parsed).mean() >= share)


class FeatureEncoder:
    """Fitted column plan: which columns, their fill values, levels and engineered ratios."""

    def __init__(self, max_levels: int = MAX_LEVELS) -> None:
        self.max_levels = max_levels

    # ------------------------------------------------------------------ fitting
    def fit(self, frame: pd.DataFrame, schema: Schema) -> FeatureEncoder:
        excluded = {schema.id_column, schema.label_column, *schema.ignore_columns}
        self.dropped_columns_: dict[str, str] = {}
        for column in frame.columns:
            if column == schema.id_column:
                self.dropped_columns_[column] = "identifier"
            elif column == schema.label_column:
                continue
            elif column in schema.ignore_columns:
                self.dropped_columns_[column] = "ignored by settings"
        self.numeric_: list[str] = []
        self.numeric_medians_: dict[str, float] = {}
        self.categorical_levels_: dict[str, list[str]] = {}
        self.categorical_modes_: dict[str, str] = {}
        self.raw_columns_: list[str] = []
        rows = len(frame)
        for column in frame.columns:
            if column in excluded:
                continue
            series = frame[column]
            if is_numeric_column(series) or _numbers_as_text(series):
                values = _numeric_series(series)
                present = values[~np.isnan(values)]
                if present.size == 0:
                    self.dropped_columns_[column] = "empty"
                    continue
                if np.unique(present).size < 2:
                    self.dropped_columns_[column] = "constant"
                    continue
                self.numeric_.append(column)
                self.numeric_medians_[column] = float(np.median(present))
            else:
                keys = _level_series(series)
                counts = keys.dropna().value_counts()
                if counts.empty:
                    self.dropped_columns_[column] = "empty"
                    continue
                if len(counts) < 2:
                    self.dropped_columns_[column] = "constant"
                    continue
                if len(counts) > 50 and len(counts) > 0.5 * rows:
                    self.dropped_columns_[column] = "identifier-like text (a different value in most rows)"
                    continue
                ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
                levels = [str(level) for level, _ in ordered[: self.max_levels]]
                self.categorical_levels_[column] = levels
                self.categorical_modes_[column] = levels[0]
            self.raw_columns_.append(column)
        self.engineered_ = self._fit_engineered(frame)
        self.feature_names_: list[str] = [*self.raw_columns_, *(item.name for item in self.engineered_)]
        self._compile()
        return self

    def _fit_engineered(self, frame: pd.DataFrame) -> list[Engineered]:
        numeric = list(self.numeric_)
        pairs: list[tuple[str, str, str, str]] = []
        tenure = [c for c in numeric if _TENURE.search(c)] or [
            c for c in numeric if _MONTHS.search(c) and not _NOT_TENURE.search(c)
        ]
        totals = [c for c in numeric if _TOTAL_CHARGES.search(c) and not _NOT_TOTAL.search(c)]
        if tenure:
            for total in totals:
                if total != tenure[0]:
                    pairs.append((f"{total}_per_{tenure[0]}", total, tenure[0],
                                  f"{total} / {tenure[0]} (per month of tenure)"))
        lower = {c.lower(): c for c in numeric}
        for amount in numeric:
            match = _AMOUNT.search(amount)
            if not match or _NOT_TOTAL.search(amount):
                continue
            word = match.group(1).lower()
            for count_word in _COUNT_FOR[word]:
                candidate = (amount[: match.start()] + count_word + amount[match.end():]).lower()
                count = lower.get(candidate)
                if count is not None and count != amount:
                    pairs.append((f"{amount}_per_{count}", amount, count, f"{amount} / {count} (average amount)"))
                    break
        engineered: list[Engineered] = []
        taken = set(frame.columns)
        for name, numerator, denominator, formula in pairs:
            if name in taken:
                continue
            ratio = _ratio(_numeric_series(frame[numerator]), _numeric_series(frame[denominator]))
            present = ratio[~np.isnan(ratio)]
            if present.size == 0 or np.unique(present).size < 2:
                continue
            engineered.append(Engineered(name, numerator, denominator, formula, float(np.median(present))))
            taken.add(name)
        return engineered

    def _compile(self) -> None:
        """Precompute the per-column plan the record path walks (no pandas on that path)."""
        self.codes_: dict[str, dict[str, int]] = {
            column: {level: code for code, level in enumerate(levels)}
            for column, levels in self.categorical_levels_.items()
        }
        self._index = {name: position for position, name in enumerate(self.feature_names_)}
        self._plan: list[tuple[int, str, bool, float, dict[str, int]]] = []
        for column in self.raw_columns_:
            position = self._index[column]
            if column in self.codes_:
                codes = self.codes_[column]
                self._plan.append((position, column, True, float(codes[self.categorical_modes_[column]]), codes))
            else:
                self._plan.append((position, column, False, self.numeric_medians_[column], {}))
        self._ratio_plan = [
            (self._index[item.name], item.numerator, item.denominator, item.median) for item in self.engineered_
        ]

    # ------------------------------------------------------------------ describing
    @property
    def categorical_features_(self) -> list[str]:
        return [c for c in self.raw_columns_ if c in self.categorical_levels_]

    @property
    def categorical_indices_(self) -> list[int]:
        return [self._index[c] for c in self.categorical_features_]

    @property
    def numeric_indices_(self) -> list[int]:
        return [i for i, name in enumerate(self.feature_names_) if name not in self.categorical_levels_]

    @property
    def column_types_(self) -> dict[str, str]:
        return {c: ("categorical" if c in self.categorical_levels_ else "numeric") for c in self.raw_columns_}

    def missing_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        """Cells filled per used column (missing or unusable, e.g. text in a numeric column)."""
        counts: dict[str, int] = {}
        for column in self.raw_columns_:
            if column not in frame.columns:
                counts[column] = len(frame)
            elif column in self.categorical_levels_:
                counts[column] = int(_level_series(frame[column]).isna().sum())
            else:
                counts[column] = int(np.isnan(_numeric_series(frame[column])).sum())
        return counts

    # ------------------------------------------------------------------ encoding
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Batch path: an (n_rows, n_features) float64 matrix; absent columns count as missing."""
        rows = len(frame)
        # Filled column by column, so columns are laid out contiguously (Fortran order); one copy at
        # the end gives the row-major matrix LightGBM reads fastest.
        matrix = np.empty((len(self.feature_names_), rows), dtype="float64").T
        raw_numeric: dict[str, np.ndarray] = {}
        for position, column, categorical, fill, codes in self._plan:
            if column not in frame.columns:
                matrix[:, position] = fill
                if not categorical:
                    raw_numeric[column] = np.full(rows, np.nan)
                continue
            if categorical:
                matrix[:, position] = _category_codes(frame[column], codes, fill)
            else:
                values = _numeric_series(frame[column])
                raw_numeric[column] = values
                matrix[:, position] = np.where(np.isnan(values), fill, values)
        for position, numerator, denominator, fill in self._ratio_plan:
            ratio = _ratio(raw_numeric[numerator], raw_numeric[denominator])
            matrix[:, position] = np.where(np.isnan(ratio), fill, ratio)
        return np.ascontiguousarray(matrix)

    def transform_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """Single-client path: a (1, n_features) float64 row built straight from the dict."""
        row = np.empty((1, len(self.feature_names_)), dtype="float64")
        values = row[0]
        raw: dict[str, float] = {}
        for position, column, categorical, fill, codes in self._plan:
            value = record.get(column)
            if categorical:
                key = level_key(value)
                if key is None:
                    values[position] = fill
                else:
                    code = codes.get(key)
                    values[position] = math.nan if code is None else code
            else:
                number = to_float(value)
                raw[column] = number
                values[position] = fill if math.isnan(number) else number
        for position, numerator, denominator, fill in self._ratio_plan:
            top, bottom = raw[numerator], raw[denominator]
            ratio = top / bottom if (bottom > 0 and not math.isnan(top)) else math.nan
            values[position] = fill if math.isnan(ratio) else ratio
        return row

    def engineered_values(self, record: Mapping[str, Any]) -> dict[str, float]:
        """The engineered ratios of one record before filling, for explanations."""
        out: dict[str, float] = {}
        for item in self.engineered_:
            top, bottom = to_float(record.get(item.numerator)), to_float(record.get(item.denominator))
            out[item.name] = top / bottom if (bottom > 0 and not math.isnan(top)) else math.nan
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "max_levels": self.max_levels,
            "raw_columns": list(self.raw_columns_),
            "numeric_medians": dict(self.numeric_medians_),
            "categorical_levels": {k: list(v) for k, v in self.categorical_levels_.items()},
            "categorical_modes": dict(self.categorical_modes_),
            "engineered": [asdict(item) for item in self.engineered_],
            "dropped_columns": dict(self.dropped_columns_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureEncoder:
        encoder = cls(int(data.get("max_levels", MAX_LEVELS)))
        encoder.raw_columns_ = list(data["raw_columns"])
        encoder.numeric_medians_ = {k: float(v) for k, v in data["numeric_medians"].items()}
        encoder.numeric_ = [c for c in encoder.raw_columns_ if c in encoder.numeric_medians_]
        encoder.categorical_levels_ = {k: [str(x) for x in v] for k, v in data["categorical_levels"].items()}
        encoder.categorical_modes_ = {k: str(v) for k, v in data["categorical_modes"].items()}
        encoder.engineered_ = [Engineered(**item) for item in data["engineered"]]
        encoder.dropped_columns_ = dict(data.get("dropped_columns", {}))
        encoder.feature_names_ = [*encoder.raw_columns_, *(item.name for item in encoder.engineered_)]
        encoder._compile()
        return encoder


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)
    return np.asarray(ratio, dtype="float64")


__all__ = ["MAX_LEVELS", "Engineered", "FeatureEncoder", "is_numeric_column", "level_key", "to_float"]
