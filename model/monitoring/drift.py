"""Data drift: is the data the champion now scores still like the data it learnt from?

PSI alone alerts on noise when a batch is small (a 50-row batch almost always has a PSI
above 0.25 somewhere), and a significance test alone alerts on harmless shifts when a batch
is huge.  So a feature counts as drifted only when both agree *and* the batch is large
enough: PSI above the drift level, the two-sample test (KS for numbers, chi-square for
categories) below ``alpha``, and at least ``min_samples`` current rows.  The dataset verdict
weighs drifted features by the champion's feature importance, so that a shift in a feature
the model ignores does not page anybody, while a shift in its main driver does.

Everything here is pure: frames and arrays in, a JSON-able report out.  Storage, schedules
and alerts belong to the jobs that call it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp

from storage.errors import UserError

FeatureKind = Literal["numeric", "categorical"]
FeatureStatus = Literal["stable", "moderate", "drift", "insufficient_data"]
Verdict = Literal["no_drift", "drift", "insufficient_data"]

SCORE_FEATURE = "model score"
REPORT_VERSION = 1
_KINDS: tuple[str, ...] = ("numeric", "categorical")


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds of the drift check; the defaults follow common PSI practice.

    ``psi_moderate``/``psi_drift``: PSI below the first is stable, up to the second moderate,
    above it drift.  ``alpha``: the test's p-value must be below it.  ``min_samples``: fewer
    current (or reference) rows than this give "insufficient data", never drift.
    ``drifted_share``: the dataset drifts when the importance-weighted share of drifted
    features exceeds it.  ``importance_floor``: the smallest weight a feature gets (after the
    importances are normalised to sum 1), so unknown features still count a little.
    ``bins``: quantile bins for numbers.  ``max_levels``: most frequent reference levels kept
    per category; rarer ones join the "other" bin.  ``epsilon``: the share an empty bin is
    given so that PSI stays finite.
    """

    psi_moderate: float = 0.1
    psi_drift: float = 0.25
    alpha: float = 0.01
    min_samples: int = 200
    drifted_share: float = 0.3
    importance_floor: float = 0.01
    bins: int = 10
    max_levels: int = 30
    epsilon: float = 1e-4

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.psi_moderate < self.psi_drift:
            problems.append(
                f"PSI levels must satisfy 0 < moderate < drift (got moderate={self.psi_moderate}, "
                f"drift={self.psi_drift})"
            )
        if not 0 < self.alpha < 1:
            problems.append(f"alpha must be between 0 and 1 (got {self.alpha})")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 1:
            problems.append(f"min_samples must be a whole number of at least 1 (got {self.min_samples!r})")
        if not 0 <= self.drifted_share < 1:
            problems.append(f"drifted_share must be at least 0 and below 1 (got {self.drifted_share})")
        if not 0 <= self.importance_floor < 1:
            problems.append(f"importance_floor must be at least 0 and below 1 (got {self.importance_floor})")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            problems.append(f"bins must be a whole number of at least 2 (got {self.bins!r})")
        if isinstance(self.max_levels, bool) or not isinstance(self.max_levels, int) or self.max_levels < 1:
            problems.append(f"max_levels must be a whole number of at least 1 (got {self.max_levels!r})")
        if not 0 < self.epsilon <= 0.01:
            problems.append(f"epsilon must be above 0 and at most 0.01 (got {self.epsilon})")
        if problems:
            raise UserError("invalid drift settings: " + "; ".join(problems), problems=problems)

    def psi_band(self, psi: float) -> Literal["stable", "moderate", "drift"]:
        """The PSI level on its own, before the sample-size and significance gates."""
        if psi < self.psi_moderate:
            return "stable"
        if psi <= self.psi_drift:
            return "moderate"
        return "drift"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature (or the model score): how far the current data moved from the reference.

    ``bins``/``reference_share``/``current_share`` are the raw (unsmoothed) binned shares the
    PSI was computed on, kept so a chart can be drawn from a stored report.  ``test`` names
    the significance test behind ``statistic``/``p_value``.  ``importance`` is the feature's
    weight in the dataset verdict (all weights sum to 1; 0 for the score row).
    """

    feature: str
    kind: FeatureKind
    psi: float
    statistic: float
    p_value: float
    test: str
    status: FeatureStatus
    importance: float
    n_reference: int
    n_current: int
    bins: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bins"] = list(self.bins)
        data["reference_share"] = [_finite(v) for v in self.reference_share]
        data["current_share"] = [_finite(v) for v in self.current_share]
        for name in ("psi", "statistic", "p_value", "importance"):
            data[name] = _finite(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        try:
            kind = str(data["kind"])
            status = str(data["status"])
            if kind not in _KINDS or status not in ("stable", "moderate", "drift", "insufficient_data"):
                raise ValueError(f"unknown kind {kind!r} or status {status!r}")
            return cls(
                feature=str(data["feature"]),
                kind=cast(FeatureKind, kind),
                psi=_number(data["psi"]),
                statistic=_number(data["statistic"]),
                p_value=_number(data["p_value"]),
                test=str(data["test"]),
                status=cast(FeatureStatus, status),
                importance=_number(data["importance"]),
                n_reference=int(data["n_reference"]),
                n_current=int(data["n_current"]),
                bins=tuple(str(b) for b in data["bins"]),
                reference_share=tuple(_number(v) for v in data["reference_share"]),
                current_share=tuple(_number(v) for v in data["current_share"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"stored drift row is damaged or from another version: {error}") from error

    def describe(self) -> str:
        """One line for people, e.g. ``Contract: PSI 0.41, chi2 p<0.001 — drift``."""
        p = "p<0.001" if self.p_value < 0.001 else f"p={self.p_value:.3f}"
        status = self.status.replace("_", " ")
        return f"{self.feature}: PSI {self.psi:.2f}, {self.test} {p} — {status}"


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift check, restorable from storage with :meth:`from_dict`."""

    verdict: Verdict
    drifted_share: float
    n_reference: int
    n_current: int
    features: tuple[FeatureDrift, ...]
    score: FeatureDrift | None = None
    settings: DriftSettings = field(default_factory=DriftSettings)

    @property
    def drifted_features(self) -> list[FeatureDrift]:
        return [row for row in self.top(len(self.features)) if row.drifted]

    @property
    def score_drifted(self) -> bool:
        return self.score is not None and self.score.drifted

    def top(self, k: int = 5) -> list[FeatureDrift]:
        """The ``k`` most drifted features: drifted ones first, then by PSI."""
        ranked = sorted(self.features, key=lambda row: (row.drifted, row.psi), reverse=True)
        return ranked[: max(k, 0)]

    def feature(self, name: str) -> FeatureDrift:
        for row in self.features:
            if row.feature == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "verdict": self.verdict,
            "drifted_share": _finite(self.drifted_share),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drifted": [row.feature for row in self.drifted_features],
            "features": [row.to_dict() for row in self.features],
            "score": None if self.score is None else self.score.to_dict(),
            "settings": asdict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        try:
            if data.get("version") != REPORT_VERSION:
                raise ValueError(f"report version {data.get('version')!r}, expected {REPORT_VERSION}")
            verdict = str(data["verdict"])
            if verdict not in ("no_drift", "drift", "insufficient_data"):
                raise ValueError(f"unknown verdict {verdict!r}")
            score = data.get("score")
            return cls(
                verdict=cast(Verdict, verdict),
                drifted_share=_number(data["drifted_share"]),
                n_reference=int(data["n_reference"]),
                n_current=int(data["n_current"]),
                features=tuple(FeatureDrift.from_dict(row) for row in data["features"]),
                score=None if score is None else FeatureDrift.from_dict(score),
                settings=DriftSettings(**data["settings"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UserError(f"stored drift report is damaged or from another version: {error}") from error

    def to_text(self, top_k: int = 5) -> str:
        s = self.settings
        lines = []
        if self.verdict == "insufficient_data":
            lines.append(
                f"Data drift: not enough data to judge — {self.n_current:,} current rows vs "
                f"{self.n_reference:,} reference rows (at least {s.min_samples:,} needed each). No alert."
            )
        else:
            head = "DRIFT" if self.verdict == "drift" else "no drift"
            lines.append(
                f"Data drift: {head} — {self.drifted_share:.0%} of the feature weight drifted "
                f"(alert above {s.drifted_share:.0%}); {self.n_current:,} current rows vs "
                f"{self.n_reference:,} reference rows."
            )
            drifted = self.drifted_features
            if drifted:
                lines.append("Drifted features (weight in brackets):")
                lines.extend(f"  • {row.describe()} [{row.importance:.0%}]" for row in drifted[:top_k])
                if len(drifted) > top_k:
                    lines.append(f"  … and {len(drifted) - top_k} more")
            moderate = [row for row in self.top(len(self.features)) if row.status == "moderate"]
            if moderate:
                names = ", ".join(f"{row.feature} ({row.psi:.2f})" for row in moderate[:top_k])
                more = f" and {len(moderate) - top_k} more" if len(moderate) > top_k else ""
                lines.append(f"Moderate shift (watch): {names}{more}")
            if not drifted and not moderate:
                lines.append(f"All {len(self.features)} features are stable.")
        if self.score is not None:
            lines.append(f"Score distribution — {self.score.describe()}")
        return "\n".join(lines)


# --- PSI ----------------------------------------------------------------------------------


def population_stability_index(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, *, epsilon: float = 1e-4
) -> float:
    """PSI = Σ (c − r)·ln(c / r) over bins of shares; empty bins get ``epsilon`` so it stays finite."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError("reference and current counts must be 1-d arrays of the same, non-zero length")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both reference and current need at least one observation")
    r = _smoothed(ref, epsilon)
    c = _smoothed(cur, epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def _smoothed(counts: npt.NDArray[np.float64], epsilon: float) -> npt.NDArray[np.float64]:
    share = np.maximum(counts / counts.sum(), epsilon)
    return cast(npt.NDArray[np.float64], share / share.sum())


# --- binning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Binned:
    labels: tuple[str, ...]
    reference: npt.NDArray[np.int64]
    current: npt.NDArray[np.int64]


def numeric_values(values: pd.Series) -> pd.Series:
    """Numbers from a column that may hold numbers as text (blank cells become missing).

    Telco's ``TotalCharges`` is text with blanks; client records restored from JSON may mix
    numbers and strings.  Values that are not numbers become missing and land in the missing
    bin, so garbage in a numeric column shows up as drift rather than a crash.
    """
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float)
    return pd.to_numeric(_stripped_text(values), errors="coerce").astype(float)


def _stripped_text(values: pd.Series) -> pd.Series:
    """Text with blank cells as missing; ``True``/``False`` become words, so never numbers."""
    text = values.astype(str).where(values.notna()).str.strip()
    return text.where(text != "")


def infer_kind(values: pd.Series) -> FeatureKind:
    """Numbers (or text that is entirely numbers apart from blanks) are numeric; the rest categorical."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "numeric"
    present = _stripped_text(values).dropna()
    if present.empty:
        return "categorical"
    # Converting text is slow; most text columns give themselves away in the first rows.
    for sample in (present.iloc[:100], present):
        if not bool(pd.to_numeric(sample, errors="coerce").notna().all()):
            return "categorical"
    return "numeric"


def _format_edge(value: float) -> str:
    return f"{value:.4g}"


def _bin_numeric(ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64], bins: int) -> _Binned:
    ref_present = ref[~np.isnan(ref)]
    if ref_present.size:
        quantiles = np.arange(1, bins) / bins
        # inverted_cdf: edges are observed values, so a 0/1 column splits at 0, not at 0.2
        edges = np.unique(np.quantile(ref_present, quantiles, method="inverted_cdf"))
    else:
        edges = np.array([], dtype=float)
    # right-closed bins with open outer ends: (-inf, e1], (e1, e2], ..., (ek, inf)
    if edges.size == 0:
        labels = ["all values"]
    else:
        labels = [f"≤ {_format_edge(edges[0])}"]
        labels += [f"{_format_edge(lo)}–{_format_edge(hi)}" for lo, hi in pairwise(edges)]
        labels.append(f"> {_format_edge(edges[-1])}")
    n_value_bins = len(labels)
    ref_counts = _numeric_counts(ref, edges, n_value_bins)
    cur_counts = _numeric_counts(cur, edges, n_value_bins)
    if ref_counts[-1] == 0 and cur_counts[-1] == 0:
        return _Binned(tuple(labels), ref_counts[:-1], cur_counts[:-1])
    return _Binned((*labels, "missing"), ref_counts, cur_counts)


def _numeric_counts(
    values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64], n_value_bins: int
) -> npt.NDArray[np.int64]:
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(index, minlength=n_value_bins)
    return np.append(counts, int(missing.sum())).astype(np.int64)


def _level(value: Any) -> str | None:
    """One category cell as text: stripped, blank as missing, ``3.0`` and ``3`` the same level.

    Mirrors the categorical cell rule the model's encoder applies to its reference sample,
    so that a batch whose cells merely look different (JSON numbers, padded text) does not
    fill the "other" bin and raise a false alarm.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip() or None


def _levels(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.StringDtype):
        return _stripped_text(values)  # the common case, vectorised
    return values.astype(object).map(_level)


def _bin_categorical(reference: pd.Series, current: pd.Series, max_levels: int) -> _Binned:
    ref = _levels(reference)
    cur = _levels(current)
    counts = ref.dropna().value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = [str(level) for level, _ in ordered[:max_levels]]
    other, missing = len(kept), len(kept) + 1

    def count(values: pd.Series) -> npt.NDArray[np.int64]:
        codes = pd.Index(kept, dtype=object).get_indexer(pd.Index(values.astype(object))).astype(np.int64)
        absent = values.isna().to_numpy()
        codes[(codes < 0) & ~absent] = other
        codes[absent] = missing
        return np.bincount(codes, minlength=len(kept) + 2).astype(np.int64)

    ref_counts, cur_counts = count(ref), count(cur)
    labels = [*kept, "other", "missing"]
    keep = [i for i in range(len(labels)) if i < other or ref_counts[i] or cur_counts[i]]
    return _Binned(tuple(labels[i] for i in keep), ref_counts[keep], cur_counts[keep])


# --- significance tests -------------------------------------------------------------------


def _chi_square(ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64]) -> tuple[float, float]:
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _numeric_test(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64], binned: _Binned
) -> tuple[float, float, str]:
    """KS on the values present; a shift in the share of missing values is tested too.

    KS cannot see missing values, yet a column that suddenly arrives half empty has drifted.
    When either side has missing values, a 2×2 chi-square on present/missing joins in and the
    smaller p-value counts, Bonferroni-corrected for the two tests.
    """
    ref_present, cur_present = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref_present.size == 0 or cur_present.size == 0:
        statistic, p = _chi_square(binned.reference, binned.current)
        return statistic, p, "chi2"
    ks = ks_2samp(ref_present, cur_present)
    statistic, p = float(ks.statistic), float(ks.pvalue)
    ref_missing, cur_missing = ref.size - ref_present.size, cur.size - cur_present.size
    if ref_missing == 0 and cur_missing == 0:
        return statistic, p, "ks"
    _, p_missing = _chi_square(
        np.array([ref_present.size, ref_missing], dtype=np.int64),
        np.array([cur_present.size, cur_missing], dtype=np.int64),
    )
    return statistic, min(1.0, 2 * min(p, p_missing)), "ks+missing"


# --- per-feature and dataset checks -------------------------------------------------------


def compare_feature(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    kind: FeatureKind | None = None,
    importance: float = 0.0,
    settings: DriftSettings | None = None,
) -> FeatureDrift:
    """PSI plus a two-sample test for one column; the status applies all three gates."""
    settings = settings or DriftSettings()
    kind = kind or infer_kind(reference)
    if kind not in _KINDS:
        raise UserError(f"feature {name!r}: kind must be 'numeric' or 'categorical' (got {kind!r})")
    if kind == "numeric":
        ref_values = numeric_values(reference).to_numpy(dtype=float)
        cur_values = numeric_values(current).to_numpy(dtype=float)
        binned = _bin_numeric(ref_values, cur_values, settings.bins)
    else:
        binned = _bin_categorical(reference, current, settings.max_levels)
    n_ref, n_cur = len(reference), len(current)
    ref_share = _shares(binned.reference)
    cur_share = _shares(binned.current)
    if n_ref == 0 or n_cur == 0:
        # Nothing to compare: report zeros rather than a PSI of smoothed emptiness.
        return FeatureDrift(
            name, kind, 0.0, 0.0, 1.0, "none", "insufficient_data", importance, n_ref, n_cur,
            binned.labels, ref_share, cur_share,
        )  # fmt: skip
    psi = population_stability_index(binned.reference, binned.current, epsilon=settings.epsilon)
    if kind == "numeric":
        statistic, p_value, test = _numeric_test(ref_values, cur_values, binned)
    else:
        statistic, p_value = _chi_square(binned.reference, binned.current)
        test = "chi2"
    status: FeatureStatus
    band = settings.psi_band(psi)
    if min(n_ref, n_cur) < settings.min_samples:
        status = "insufficient_data"
    elif band == "drift" and p_value < settings.alpha:
        status = "drift"
    elif band == "stable":
        status = "stable"
    else:
        status = "moderate"  # includes a high PSI the test cannot confirm
    return FeatureDrift(
        name, kind, psi, statistic, p_value, test, status, importance, n_ref, n_cur,
        binned.labels, ref_share, cur_share,
    )  # fmt: skip


def _shares(counts: npt.NDArray[np.int64]) -> tuple[float, ...]:
    total = int(counts.sum())
    if total == 0:
        return tuple(0.0 for _ in counts)
    return tuple(float(c) / total for c in counts)


def importance_weights(
    features: Sequence[str], importances: Mapping[str, float] | None, floor: float = 0.01
) -> dict[str, float]:
    """Verdict weights summing to 1: normalised importances, each at least ``floor``.

    Without importances every feature weighs the same.  Importances are matched by column
    name; a feature the model did not report (or reported as 0) still gets the floor, so a
    wholesale shift in ignored columns can add up without dominating.
    """
    if not features:
        return {}
    if importances is None:
        return {name: 1.0 / len(features) for name in features}
    raw = {}
    for name in features:
        value = importances.get(name, 0.0)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"importance of {name!r} is not a number: {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise UserError(f"importance of {name!r} must be a finite number of at least 0 (got {value!r})")
        raw[name] = number
    total = sum(raw.values())
    share = {name: (value / total if total > 0 else 1.0 / len(features)) for name, value in raw.items()}
    floored = {name: max(value, floor) for name, value in share.items()}
    norm = sum(floored.values())
    return {name: value / norm for name, value in floored.items()}


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    importances: Mapping[str, float] | None = None,
    kinds: Mapping[str, FeatureKind] | None = None,
    reference_scores: npt.ArrayLike | None = None,
    current_scores: npt.ArrayLike | None = None,
    settings: DriftSettings | None = None,
) -> DriftReport:
    """Compare ``current`` (a batch, or the latest client records) with the champion's reference.

    ``features`` defaults to the reference's columns; the caller drops the id and label.
    ``kinds`` overrides the inferred kind of a column.  When both score arrays are given the
    score distribution is compared too (reported, not part of the feature verdict, because
    it is a consequence of feature drift rather than an independent witness).
    """
    settings = settings or DriftSettings()
    names = list(reference.columns) if features is None else list(features)
    if not names:
        raise UserError("no features to compare for drift")
    if len(set(names)) != len(names):
        raise UserError("the feature list names a column twice")
    if len(reference) == 0:
        raise UserError("the drift reference (the champion's training data) is empty")
    for label, frame in (("reference", reference), ("current data", current)):
        absent = [name for name in names if name not in frame.columns]
        if absent:
            shown = ", ".join(map(repr, absent[:10])) + (" …" if len(absent) > 10 else "")
            raise UserError(f"the {label} lacks {len(absent)} feature column(s): {shown}", missing=absent)
    kinds = dict(kinds or {})
    weights = importance_weights(names, importances, settings.importance_floor)
    rows = tuple(
        compare_feature(
            name, reference[name], current[name], kind=kinds.get(name), importance=weights[name], settings=settings
        )
        for name in names
    )
    score = None
    if (reference_scores is None) != (current_scores is None):
        raise UserError("score drift needs both reference scores and current scores")
    if reference_scores is not None and current_scores is not None:
        score = score_drift(reference_scores, current_scores, settings=settings)
    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < settings.min_samples:
        return DriftReport("insufficient_data", 0.0, n_ref, n_cur, rows, score, settings)
    share = float(sum(row.importance for row in rows if row.drifted))
    verdict: Verdict = "drift" if share > settings.drifted_share else "no_drift"
    return DriftReport(verdict, share, n_ref, n_cur, rows, score, settings)


def score_drift(
    reference_scores: npt.ArrayLike, current_scores: npt.ArrayLike, *, settings: DriftSettings | None = None
) -> FeatureDrift:
    """PSI and KS between the champion's reference scores and the scores of current clients."""
    ref = pd.Series(np.asarray(reference_scores, dtype=float).ravel())
    cur = pd.Series(np.asarray(current_scores, dtype=float).ravel())
    if ref.empty:
        raise UserError("score drift needs reference scores (the champion's scores on its reference data)")
    return compare_feature(SCORE_FEATURE, ref, cur, kind="numeric", importance=0.0, settings=settings)


# --- JSON helpers -------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    """JSON (and PostgreSQL's json type) has no NaN or infinity."""
    number = float(value)
    return number if math.isfinite(number) else None


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)
